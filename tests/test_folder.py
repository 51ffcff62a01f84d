"""fgvc_ref.data.folder: class folders, canonical or alphabetical order, optional box CSV."""

import pytest

from fgvc_ref.data.folder import load_folder
from fgvc_ref.data.records import DatasetError
from fgvc_ref.data.synthetic import make_fake_stanford_cars


@pytest.fixture
def folders(tmp_path):
    return make_fake_stanford_cars(tmp_path / "f", "folders", classes=3, per_class=2, seed=1)


def test_alphabetical_classes_and_sorted_images(folders):
    split = load_folder(folders.root, "train")
    assert split.classes == sorted(p.name for p in (folders.root / "train").iterdir())
    assert len(split.records) == 6 and all(r.bbox is None for r in split.records)
    assert [r.path for r in split.records] == sorted(r.path for r in split.records)


def test_box_csv_attaches_one_based_boxes_by_relative_path(folders, tmp_path):
    split = load_folder(folders.root, "train")
    first = split.records[0]
    rel = "/".join(first.path.split("/")[-2:])
    csv = tmp_path / "boxes.csv"
    csv.write_text(f"{rel},3,4,50,60\n")
    boxed = load_folder(folders.root, "train", bbox_csv=csv)
    assert boxed.records[0].bbox == (3, 4, 50, 60) and boxed.records[1].bbox is None
    csv.write_text(f"{rel},3,4,fifty,60\n")
    with pytest.raises(DatasetError, match=r"boxes\.csv:1: box coordinates must be integers"):
        load_folder(folders.root, "train", bbox_csv=csv)
    csv.write_text(f"{rel},3,4\n")
    with pytest.raises(DatasetError, match="expected 5 columns"):
        load_folder(folders.root, "train", bbox_csv=csv)


def test_folders_not_in_the_class_list_and_wrong_counts_are_refused(folders):
    with pytest.raises(DatasetError, match="match no class name"):
        load_folder(folders.root, "train", class_names=["only this"])
    with pytest.raises(DatasetError, match="expected 200 classes, found 3"):
        load_folder(folders.root, "train", expected_classes=200)
