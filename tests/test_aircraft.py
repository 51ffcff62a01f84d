"""fgvc_ref.data.aircraft: the same images, labels and order as torchvision's FGVCAircraft; the banner removed."""

import numpy as np
import pytest

from benchmark_trees import BANNER_COLOUR, write_aircraft
from fgvc_ref.data.aircraft import BANNER, FULL, LEVELS, load_aircraft
from fgvc_ref.data.cache import decode
from fgvc_ref.data.records import DatasetError, Record


@pytest.fixture(scope="module")
def aircraft(tmp_path_factory):
    return write_aircraft(tmp_path_factory.mktemp("aircraft"))


@pytest.mark.parametrize("level", sorted(LEVELS))
@pytest.mark.parametrize("split, theirs", [("train", "trainval"), ("test", "test")])
def test_same_images_labels_classes_and_order_as_torchvision(aircraft, level, split, theirs):
    from torchvision.datasets import FGVCAircraft

    tv = FGVCAircraft(str(aircraft["root"]), split=theirs, annotation_level=level)  # reads the tree, never downloads
    ours = load_aircraft(aircraft["root"], split, level=level)
    assert ours.classes == tv.classes and ours.layout == f"aircraft:{level}"
    assert [r.path for r in ours.records] == [str(p) for p in tv._image_files]
    assert [r.label for r in ours.records] == tv._labels


def test_boxes_are_taken_1_based_as_the_readme_says(aircraft):
    ours = load_aircraft(aircraft["root"], "test")
    by_image = {i["image"]: i["box"] for i in aircraft["images"]}
    assert [r.bbox for r in ours.records] == [by_image[r.path.split("/")[-1][:-4]] for r in ours.records]
    assert all(r.trim_bottom == BANNER == 20 for r in ours.records)


def test_the_banner_is_removed_whole_images_and_boxes_alike(aircraft, tmp_path):
    """Stored images hold no banner row: a whole image is the photo above the banner; a box reaching into the
    banner is clipped to it, so the crop equals the same box on the image without its banner."""
    from PIL import Image

    for truth in aircraft["images"]:
        path = str(aircraft["data"] / "images" / f"{truth['image']}.jpg")
        w, h = truth["size"]
        clean = tmp_path / f"{truth['image']}.png"
        Image.open(path).convert("RGB").crop((0, 0, w, h - BANNER)).save(clean)
        for box in (None, truth["box"]):
            with_banner, _ = decode(Record(path, 0, box, BANNER), 32)
            clipped = None if box is None else (box[0], box[1], box[2], min(box[3], h - BANNER))
            without, _ = decode(Record(str(clean), 0, clipped), 32)
            assert np.array_equal(with_banner, without)
            assert not (np.abs(with_banner.astype(int) - BANNER_COLOUR).sum(-1) < 60).all(-1).any()  # no magenta row left


def test_no_boxes_and_the_official_counts(aircraft):
    assert all(r.bbox is None and r.trim_bottom == BANNER for r in load_aircraft(aircraft["root"], "train", boxes=False).records)
    with pytest.raises(DatasetError, match="expected 100 classes, found 4"):
        load_aircraft(aircraft["root"], "train", expected=FULL["variant"])
    with pytest.raises(DatasetError, match="should have 3333 images, found 4"):
        load_aircraft(aircraft["root"], "test", expected={"test": FULL["family"]["test"]})


def test_unknown_level_missing_box_unknown_class_and_no_layout_are_named(tmp_path):
    tree = write_aircraft(tmp_path / "a")
    with pytest.raises(DatasetError, match="level must be one of"):
        load_aircraft(tmp_path / "a", "train", level="model")
    box_file = tree["data"] / "images_box.txt"
    box_file.write_text("\n".join(box_file.read_text().splitlines()[1:]) + "\n")
    with pytest.raises(DatasetError, match=r"images_box.txt: no box for image 1000003"):
        load_aircraft(tmp_path / "a", "train")
    assert load_aircraft(tmp_path / "a", "train", boxes=False).records  # boxes not asked for: not needed
    (tree["data"] / "variants.txt").write_text("Only One\n")
    with pytest.raises(DatasetError, match=r"images_variant_trainval.txt:1: class .* is not in variants.txt"):
        load_aircraft(tmp_path / "a", "train", boxes=False)
    with pytest.raises(DatasetError, match="no FGVC-Aircraft layout found"):
        load_aircraft(tmp_path, "train")
