"""fgvc_ref.data.cub: CUB-200-2011 read from its official files, boxes converted exactly, clear errors."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from benchmark_trees import write_cub
from fgvc_ref.data.cache import decode
from fgvc_ref.data.cub import FULL, cub_box, load_cub
from fgvc_ref.data.records import DatasetError


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    return write_cub(tmp_path_factory.mktemp("cub"))


@pytest.mark.parametrize("split", ["train", "test"])
def test_records_follow_images_txt_with_1_based_ids_made_0_based(cub, split):
    got = load_cub(cub["root"], split, expected=None)
    want = [i for i in cub["images"] if i["train"] == (split == "train")]
    assert [r.path for r in got.records] == [i["path"] for i in want]
    assert [r.label for r in got.records] == [i["label"] for i in want]
    assert got.classes == cub["classes"] and got.layout == "cub"


def test_the_box_crop_equals_the_common_crop_x_y_x_plus_w_y_plus_h(cub):
    """Whole-number boxes: prepare's crop is exactly PIL's crop((x, y, x + w, y + h)), the crop CUB users write."""
    got = load_cub(cub["root"], "train", expected=None)
    for record, truth in zip(got.records, [i for i in cub["images"] if i["train"]]):
        x, y, w, h = truth["xywh"]
        if any(v != int(v) for v in (x, y, w, h)):
            continue
        stored, _ = decode(record, 24)
        expected = Image.open(truth["path"]).convert("RGB").crop((int(x), int(y), int(x + w), int(y + h))).resize((24, 24), Image.BILINEAR)
        assert np.array_equal(stored, np.asarray(expected))


def test_fractional_boxes_round_each_edge_half_up():
    assert cub_box(4.4, 2.5, 39.6, 30.49) == (5, 4, 44, 33)  # left 4, top 3 (2.5 up), right 44.0, bottom round(32.99) = 33
    assert cub_box(60.0, 27.0, 325.0, 304.0) == (61, 28, 385, 331)  # whole numbers, as the official file writes them


@given(st.floats(0, 500), st.floats(0, 500), st.floats(1, 500), st.floats(1, 500))
def test_whole_number_boxes_convert_exactly_and_any_box_covers_its_rounded_edges(x, y, w, h):
    x1, y1, x2, y2 = cub_box(float(int(x)), float(int(y)), float(int(w)), float(int(h)))
    assert (x1 - 1, y1 - 1, x2, y2) == (int(x), int(y), int(x) + int(w), int(y) + int(h))  # PIL crop edges
    x1, y1, x2, y2 = cub_box(x, y, w, h)
    assert abs((x1 - 1) - x) <= 0.5 and abs(x2 - (x + w)) <= 0.5 and abs((y1 - 1) - y) <= 0.5 and abs(y2 - (y + h)) <= 0.5


def test_the_kaggle_nested_copy_and_no_boxes(tmp_path, cub):
    nested = write_cub(tmp_path, nested=True)
    got = load_cub(tmp_path, "test", expected=None, boxes=False)
    assert len(got.records) == 6 and all(r.bbox is None for r in got.records)
    assert [r.label for r in got.records] == [r.label for r in load_cub(cub["root"], "test", expected=None).records]
    assert got.records[0].path.startswith(str(nested["base"]))


def test_classes_are_in_class_id_order_counted_as_integers_whatever_the_line_order_of_classes_txt(tmp_path):
    """12 classes (ids 1..12: "10" sorts before "2" as a string), classes.txt written with its lines shuffled: class k is
    the one with id k + 1, and every image's class name is the folder it sits in (CUB keeps each class in its folder)."""
    tree = write_cub(tmp_path, classes=12, per_class=2)
    lines = (tree["base"] / "classes.txt").read_text().splitlines()
    (tree["base"] / "classes.txt").write_text("".join(lines[k] + "\n" for k in (7, 10, 0, 3, 11, 1, 9, 2, 5, 8, 4, 6)))
    for split in ("train", "test"):
        got = load_cub(tmp_path, split, expected=None)
        assert got.classes == tree["classes"] and got.classes[9] == "010.Bird_J" and got.classes[10] == "011.Bird_K"
        assert [got.classes[r.label] for r in got.records] == [Path(r.path).parent.name for r in got.records]


def test_official_counts_are_enforced(cub):
    with pytest.raises(DatasetError, match="expected 200 classes, found 3"):
        load_cub(cub["root"], "train")
    with pytest.raises(DatasetError, match="should have 5994 images, found 6"):
        load_cub(cub["root"], "train", expected={"train": FULL["train"]})


def test_missing_files_ids_and_images_are_named(tmp_path):
    tree = write_cub(tmp_path / "a")
    (tree["base"] / "train_test_split.txt").unlink()
    with pytest.raises(DatasetError, match=r"no complete CUB-200-2011 layout: .*lacks \['(CUB_200_2011/)*train_test_split.txt'\]"):
        load_cub(tmp_path / "a", "train", expected=None)
    tree = write_cub(tmp_path / "b")
    lines = (tree["base"] / "bounding_boxes.txt").read_text().splitlines()
    (tree["base"] / "bounding_boxes.txt").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DatasetError, match=r"bounding_boxes.txt: its image ids differ from images.txt's \(e.g. \[12\]\)"):
        load_cub(tmp_path / "b", "train", expected=None)
    (tree["base"] / "bounding_boxes.txt").write_text("\n".join(lines[:-1] + ["12 1.0 2.0 3.0"]) + "\n")
    with pytest.raises(DatasetError, match=r"bounding_boxes.txt:12: expected 5 fields"):
        load_cub(tmp_path / "b", "train", expected=None)
    tree = write_cub(tmp_path / "c")
    Path(tree["images"][0]["path"]).unlink()
    with pytest.raises(DatasetError, match=r"1 image file\(s\).*missing"):
        load_cub(tmp_path / "c", "train", expected=None)
    with pytest.raises(DatasetError, match="no CUB-200-2011 layout found"):
        load_cub(tmp_path, "train", expected=None)


def test_a_copy_from_macos_with_nfd_folder_and_file_names_reads_the_nfc_names_of_the_text_files(tmp_path):
    """images.txt in NFC (as the dataset's tools write it), classes.txt, the folders and files in NFD (edited and copied on a
    Mac): the images are found, the classes are NFC."""
    import unicodedata

    tree = write_cub(tmp_path)
    base = tree["base"]
    old = tree["classes"][1]  # 002.Bird_B
    new = "002.Grünfink_Zoë"
    nfd = unicodedata.normalize("NFD", new)
    (base / "images.txt").write_text((base / "images.txt").read_text().replace(old, new), encoding="utf-8")
    (base / "classes.txt").write_text((base / "classes.txt").read_text().replace(old, nfd), encoding="utf-8")  # edited on the Mac
    (base / "images" / old).rename(base / "images" / nfd)
    got = load_cub(tmp_path, "train", expected=None)
    assert got.classes[1] == new and unicodedata.is_normalized("NFC", got.classes[1])
    moved = [r for r in got.records if r.label == 1]
    assert moved and all(Path(r.path).is_file() and f"/{nfd}/" in r.path for r in moved)
