"""fgvc_ref.data.dogs: Stanford Dogs from its .mat lists and VOC XML, several dogs in one image, clear errors."""

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
