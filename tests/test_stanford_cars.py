"""fgvc_ref.data.stanford_cars: every layout loads to the same records; clear errors otherwise."""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from fgvc_ref.data.records import DatasetError
from fgvc_ref.data.stanford_cars import FULL, LAYOUTS, detect_layout, folder_name, load_stanford_cars
from fgvc_ref.data.synthetic import RAM, make_fake_stanford_cars


def content_records(split):
    """(image content hash, label, box) per record: layout-independent identity of each image (a file's bytes, or the
    bytes a Hugging Face shard holds in the record's row)."""
    from fgvc_ref.data.hub import iter_image_bytes

    rows = [r for r in split.records if r.row is not None]
    data = iter(iter_image_bytes(rows, [r.path for r in rows]))
    return sorted((hashlib.sha256(next(data) if r.row is not None else Path(r.path).read_bytes()).hexdigest(), r.label, r.bbox)
                  for r in split.records)


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    root = tmp_path_factory.mktemp("cars")
    return {layout: make_fake_stanford_cars(root / layout, layout, classes=5, per_class=3, seed=7) for layout in LAYOUTS}


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_layout_loads_to_the_same_records_in_canonical_order(fakes, split):
    """Same images, same labels (cars_meta order) and same boxes from every layout; folders have no boxes."""
    reference = load_stanford_cars(fakes["devkit"].root, split, expected=None)
    expected = content_records(reference)
    for layout, fake in fakes.items():
        got = load_stanford_cars(fake.root, split, expected=None, class_names=fake.classes if layout == "folders" else None)
        assert got.layout == layout and got.classes == reference.classes == fake.classes
        if layout in ("folders", "hf_repo", "hf_save_to_disk"):  # copies without boxes
            assert [(h, lab) for h, lab, _ in content_records(got)] == [(h, lab) for h, lab, _ in expected]
            assert all(r.bbox is None for r in got.records)
        else:
            assert content_records(got) == expected, layout


def test_kaggle_ram_c_v_folder_maps_to_ram_c_slash_v(fakes):
    kaggle = load_stanford_cars(fakes["kaggle_folders"].root, "train", expected=None)
    ram = kaggle.classes.index(RAM)
    paths = [r.path for r in kaggle.records if r.label == ram]
    assert paths and all(f"{Path(p).parent.name}" == "Ram C-V Cargo Van Minivan 2012" for p in paths)
    assert folder_name(RAM) == "Ram C-V Cargo Van Minivan 2012"


def test_folders_without_a_class_list_are_alphabetical_and_with_names_csv_canonical(fakes, tmp_path):
    fake = fakes["folders"]
    alpha = load_stanford_cars(fake.root, "train", expected=None)
    assert alpha.classes == sorted(folder_name(c) for c in fake.classes) != fake.classes
    root = tmp_path / "f"
    shutil.copytree(fake.root, root)
    (root / "names.csv").write_text("".join(f'"{c}"\n' for c in fake.classes))
    assert load_stanford_cars(root, "train", expected=None).classes == fake.classes


def test_car_ims_six_digit_names_are_never_joined_with_split_names(fakes):
    """The split comes from the 'test' field: no car_ims file name equals its devkit name."""
    car_ims = load_stanford_cars(fakes["car_ims"].root, "test", expected=None)
    assert all(len(Path(r.path).stem) == 6 for r in car_ims.records)


def test_kaggle_devkit_without_test_labels_names_the_missing_file(fakes, tmp_path):
    root = tmp_path / "k"
    shutil.copytree(fakes["kaggle_devkit"].root, root)
    for p in root.rglob("cars_test_annos_withlabels.mat"):
        p.unlink()
    for split in ("train", "test"):  # an incomplete layout is not chosen, for either split
        with pytest.raises(DatasetError, match=r"no complete Stanford Cars layout: kaggle_devkit .*lacks \['cars_test_annos_withlabels\.mat or "
                                               r".*no 'class' field"):
            load_stanford_cars(root, split, expected=None)


def test_wrong_class_count_and_image_count_give_expected_vs_found_and_path(fakes):
    root = fakes["devkit"].root
    with pytest.raises(DatasetError, match=rf"{root}: expected 196 classes, found 5"):
        load_stanford_cars(root, "train")
    with pytest.raises(DatasetError, match=r"should have 8144 images, found 15"):
        load_stanford_cars(root, "train", expected={"classes": 5, "train": FULL["train"]})


def test_an_empty_class_is_refused_with_its_name(fakes, tmp_path):
    root = tmp_path / "f"
    shutil.copytree(fakes["folders"].root, root)
    victim = sorted((root / "train").iterdir())[0]
    shutil.rmtree(victim)
    victim.mkdir()
    with pytest.raises(DatasetError, match=rf"empty class.*{victim.name}"):
        load_stanford_cars(root, "train", expected=None)


def test_missing_split_missing_root_and_unknown_layout_are_clear(fakes, tmp_path):
    root = tmp_path / "f"
    shutil.copytree(fakes["folders"].root, root)
    shutil.rmtree(root / "test")
    for split in ("train", "test"):
        with pytest.raises(DatasetError, match=r"no complete Stanford Cars layout: folders .*lacks \['test/\*/\*\.<image>'\]"):
            load_stanford_cars(root, split, expected=None)
    with pytest.raises(DatasetError, match="not found"):
        load_stanford_cars(tmp_path / "nowhere", "train")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "readme.txt").write_text("hi")
    with pytest.raises(DatasetError, match=r"no Stanford Cars layout found.*readme\.txt"):
        detect_layout(tmp_path / "junk")
    with pytest.raises(DatasetError, match="split must be"):
        load_stanford_cars(root, "val")


def test_missing_images_and_bad_annotation_fields_are_named(fakes, tmp_path):
    from scipy.io import loadmat, savemat

    root = tmp_path / "d"
    shutil.copytree(fakes["devkit"].root, root)
    (root / "cars_train" / "00001.jpg").unlink()
    with pytest.raises(DatasetError, match=r"1 image file\(s\).*missing.*00001\.jpg"):
        load_stanford_cars(root, "train", expected=None)
    m = loadmat(str(root / "devkit" / "cars_meta.mat"))
    savemat(str(root / "devkit" / "cars_meta.mat"), {"names": m["class_names"]})
    with pytest.raises(DatasetError, match=r"cars_meta\.mat: variable 'class_names' not found"):
        load_stanford_cars(root, "test", expected=None)


def test_mat_fields_are_read_by_name_not_position(fakes, tmp_path):
    """Reorder the struct fields of the train annotations: same records."""
    from scipy.io import loadmat, savemat

    root = tmp_path / "d"
    shutil.copytree(fakes["devkit"].root, root)
    path = root / "devkit" / "cars_train_annos.mat"
    a = loadmat(str(path))["annotations"]
    fields = list(reversed(a.dtype.names))
    b = np.empty(a.shape, dtype=[(f, object) for f in fields])
    for f in fields:
        b[f] = a[f]
    savemat(str(path), {"annotations": b})
    assert content_records(load_stanford_cars(root, "train", expected=None)) == content_records(load_stanford_cars(fakes["devkit"].root, "train", expected=None))
