"""fgvc_ref.data.dogs: Stanford Dogs from its .mat lists and VOC XML, several dogs in one image, clear errors."""

from pathlib import Path

import pytest

from benchmark_trees import write_dogs
from fgvc_ref.data.dogs import FULL, load_dogs, voc_box
from fgvc_ref.data.records import DatasetError


@pytest.fixture(scope="module")
def dogs(tmp_path_factory):
    return write_dogs(tmp_path_factory.mktemp("dogs"))


@pytest.mark.parametrize("split", ["train", "test"])
def test_records_follow_the_mat_list_with_labels_made_0_based(dogs, split):
    got = load_dogs(dogs["root"], split, expected=None)
    want = [i for i in dogs["images"] if i["split"] == split]
    assert [(r.path, r.label) for r in got.records] == [(i["path"], i["label"]) for i in want]
    assert got.classes == dogs["breeds"] == ["Breed_A", "Breed_B", "Breed_C"]  # synset id removed


def test_a_single_dog_box_is_taken_as_is_and_several_dogs_give_their_union(dogs):
    got = load_dogs(dogs["root"], "train", expected=None)
    for record, truth in zip(got.records, [i for i in dogs["images"] if i["split"] == "train"]):
        xs1, ys1, xs2, ys2 = zip(*truth["boxes"])
        assert record.bbox == (min(xs1), min(ys1), max(xs2), max(ys2))
    two = [i for i in dogs["images"] if len(i["boxes"]) == 2]
    assert two and next(r.bbox for r in got.records if r.path == two[0]["path"]) == (5, 4, 66, 50)


def test_kaggles_nesting_reads_the_same_records(dogs, tmp_path):
    kaggle = write_dogs(tmp_path, kaggle=True)
    ours, theirs = load_dogs(kaggle["root"], "test", expected=None), load_dogs(dogs["root"], "test", expected=None)
    assert [(r.label, r.bbox) for r in ours.records] == [(r.label, r.bbox) for r in theirs.records]
    assert all("/images/Images/" in r.path for r in ours.records)


def test_counts_missing_lists_and_bad_xml_are_named(dogs, tmp_path):
    with pytest.raises(DatasetError, match="expected 120 classes, found 3"):
        load_dogs(dogs["root"], "train", expected=FULL)
    tree = write_dogs(tmp_path / "a")
    (tmp_path / "a" / "lists" / "test_list.mat").unlink()
    with pytest.raises(DatasetError, match=r"lacks \['test_list.mat or lists/test_list.mat'\].*lists.tar"):
        load_dogs(tmp_path / "a", "test", expected=None)
    victim = next(i for i in tree["images"] if i["split"] == "train")
    note = tmp_path / "a" / "Annotation" / victim["path"].split("/")[-2] / victim["path"].split("/")[-1][:-4]
    note.write_text("<annotation><object><name>x</name></object>")
    with pytest.raises(DatasetError, match="not a readable annotation XML"):
        load_dogs(tmp_path / "a", "train", expected=None)
    note.write_text("<annotation><object><name>x</name></object></annotation>")
    with pytest.raises(DatasetError, match=r"no <object> with a <bndbox>"):
        voc_box(note)
    assert load_dogs(tmp_path / "a", "train", expected=None, boxes=False).records  # no boxes asked for: XML not read


def test_a_label_given_to_two_breed_folders_is_refused(tmp_path):
    from scipy.io import loadmat, savemat

    write_dogs(tmp_path)
    lists = tmp_path / "lists" / "train_list.mat"
    m = loadmat(str(lists))
    m["labels"][:] = 1  # every image called breed 1, though they sit in three folders
    savemat(str(lists), {k: v for k, v in m.items() if not k.startswith("__")})
    with pytest.raises(DatasetError, match=r"label 1 is given to images of two folders"):
        load_dogs(tmp_path, "train", expected=None)


def test_a_copy_from_macos_with_nfd_breed_folders_reads_the_nfc_names_of_the_lists(tmp_path):
    """The .mat lists name a breed in NFC; the image and annotation folders were copied from a Mac (NFD): both found."""
    import unicodedata

    from scipy.io import loadmat, savemat

    from benchmark_trees import _cell

    tree = write_dogs(tmp_path)
    old = "n02085631-Breed_B"
    new = "n02085631-Grünfink"
    for split in ("train", "test"):
        path = tmp_path / "lists" / f"{split}_list.mat"
        m = loadmat(str(path), squeeze_me=True)
        savemat(str(path), {"file_list": _cell([str(f).replace(old, new) for f in m["file_list"]]),
                            "annotation_list": _cell([str(f).replace(old, new) for f in m["annotation_list"]]), "labels": m["labels"].reshape(-1, 1)})
    for folder in ("Images", "Annotation"):
        (tmp_path / folder / old).rename(tmp_path / folder / unicodedata.normalize("NFD", new))
    got = load_dogs(tmp_path, "train", expected=None)
    assert got.classes[1] == "Grünfink" and unicodedata.is_normalized("NFC", got.classes[1])
    want = [i for i in tree["images"] if i["split"] == "train"]
    union = lambda boxes: (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    assert [r.bbox for r in got.records] == [union(i["boxes"]) for i in want]  # each annotation read from its NFD folder
    assert all(Path(r.path).is_file() for r in got.records)
