"""fgvc_ref.data.layouts: a layout is chosen because its files are all there, for every loader that detects one."""

import shutil
from pathlib import Path

import pytest

from benchmark_trees import write_cub, write_flowers102
from fgvc_ref.cli import main
from fgvc_ref.data.cub import load_cub
from fgvc_ref.data.flowers102 import load_flowers102
from fgvc_ref.data.layouts import Layout, find_layout, lacks
from fgvc_ref.data.records import DatasetError
from fgvc_ref.data.stanford_cars import detect_layout, load_stanford_cars
from fgvc_ref.data.synthetic import make_fake_stanford_cars


@pytest.fixture(scope="module")
def full_download(tmp_path_factory):
    """The full original Stanford Cars download: a complete devkit copy plus cars_annos.mat from the other archive, no car_ims/."""
    root = tmp_path_factory.mktemp("full") / "stanford_cars"
    make_fake_stanford_cars(root, "devkit", classes=4, per_class=2, seed=3)
    other = make_fake_stanford_cars(root.parent / "car_ims_copy", "car_ims", classes=4, per_class=2, seed=3)
    shutil.copy(other.root / "cars_annos.mat", root / "cars_annos.mat")
    return root, other.root


def test_the_full_original_download_loads_as_the_devkit_copy_and_says_why(full_download):
    root, _ = full_download
    found = detect_layout(root)
    assert found.layout == "devkit"
    assert "all its files are present" in found.note and "incomplete, not used: car_ims lacks ['car_ims/*.jpg']" in found.note
    split = load_stanford_cars(root, "test", expected=None)
    assert split.layout == "devkit" and len(split.records) == 8 and split.notes[0] == found.note


def test_two_complete_layouts_use_the_documented_preference_and_layout_forces_the_other(full_download, tmp_path):
    root, car_ims = full_download
    both = tmp_path / "both"
    shutil.copytree(root, both)
    shutil.copytree(car_ims / "car_ims", both / "car_ims")
    found = detect_layout(both)
    assert found.layout == "devkit"
    assert "also complete: car_ims, not used: the preference is devkit > kaggle_devkit > car_ims" in found.note
    assert "--layout car_ims to use it" in found.note
    forced = load_stanford_cars(both, "train", expected=None, layout="car_ims")
    assert forced.layout == "car_ims" and all("/car_ims/" in r.path for r in forced.records)
    with pytest.raises(DatasetError, match=r"the kaggle_folders layout \(Stanford Cars, asked for with --layout\) lacks \['names.csv'"):
        detect_layout(both, "kaggle_folders")
    with pytest.raises(DatasetError, match=r"--layout 'devkits' is not a Stanford Cars layout; use one of \['devkit'"):
        detect_layout(both, "devkits")


def test_with_no_complete_layout_every_candidate_says_what_it_lacks(full_download, tmp_path):
    root, _ = full_download
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    (broken / "devkit" / "cars_train_annos.mat").unlink()
    with pytest.raises(DatasetError) as e:
        detect_layout(broken)
    message = str(e.value)
    assert "no complete Stanford Cars layout" in message
    assert "devkit (the original devkit download, torchvision's layout) lacks ['devkit/cars_train_annos.mat']" in message
    assert "car_ims (the car_ims.tgz download) lacks ['car_ims/*.jpg']" in message


def test_prepare_reads_the_full_download_and_prints_the_choice(full_download, tmp_path, capsys):
    root, _ = full_download
    assert main(["prepare", "--data", str(root), "--out", str(tmp_path / "c"), "--any-size", "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "Stanford Cars layout devkit: all its files are present" in err and "car_ims lacks" in err
    assert main(["prepare", "--data", str(root), "--out", str(tmp_path / "d"), "--any-size", "--layout", "car_ims"]) == 2
    assert "the car_ims layout (Stanford Cars, asked for with --layout) lacks ['car_ims/*.jpg']" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_a_folder_need_is_met_only_by_a_folder_with_something_but_junk(tmp_path):
    layout = Layout("x", ("images/", ("a.txt", "sub/a.txt")))
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / ".DS_Store").write_bytes(b"")
    (tmp_path / "images" / "._1.jpg").write_bytes(b"")
    assert lacks(tmp_path, layout) == ["images/", "a.txt or sub/a.txt"]
    (tmp_path / "images" / "1.jpg").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("")
    assert lacks(tmp_path, layout) == [] and find_layout(tmp_path, (layout,), what="X").layout == "x"


def test_cub_and_flowers_choose_the_complete_place_among_several(tmp_path):
    """A root holding a broken copy beside a complete nested one: the complete one is read, for CUB and Flowers-102."""
    tree = write_cub(tmp_path / "cub")
    for name in ("images.txt", "classes.txt"):  # a partial copy at the root, as an interrupted unpack leaves it
        shutil.copy(tree["base"] / name, tmp_path / "cub" / name)
    split = load_cub(tmp_path / "cub", "train", expected=None)
    assert split.notes[0].startswith("CUB-200-2011 layout CUB_200_2011: all its files are present")
    assert "incomplete, not used: root lacks" in split.notes[0]
    flowers = write_flowers102(tmp_path / "fl")
    shutil.copy(flowers["base"] / "setid.mat", tmp_path / "fl" / "setid.mat")
    split = load_flowers102(tmp_path / "fl", "test", expected=None)
    assert split.layout == "flowers102" and "layout torchvision" in split.notes[0] and Path(split.records[0].path).parent.parent.name == "flowers-102"
