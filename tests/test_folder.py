"""fgvc_ref.data.folder: class folders, canonical or alphabetical order, optional box CSV; names in either Unicode form,
folders of files that are not read, links."""

import os
import unicodedata
from pathlib import Path

import pytest
from PIL import Image

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


# --- files as people have them: names, skipped files, links -------------------------------------------


NFD = lambda name: unicodedata.normalize("NFD", name)  # macOS
NFC = lambda name: unicodedata.normalize("NFC", name)


def write_split(root: Path, split: str, classes: dict[str, list[str]]) -> None:
    """``root/split/<class>/<file>`` with a small PNG in each file, names written exactly as given."""
    for name, files in classes.items():
        (root / split / name).mkdir(parents=True, exist_ok=True)
        for k, f in enumerate(files):
            Image.new("RGB", (8 + k, 6), (40 * k, 90, 200)).save(root / split / name / f, "PNG")


def test_class_folders_in_nfd_and_nfc_are_the_same_classes_in_the_same_order_and_box_rows_join_either_form(tmp_path):
    """train written on a Mac (NFD), test by another tool (NFC): one class list, in NFC, ordered by the NFC names."""
    names = ["Citroën C4", "Citroen DS", "Škoda Octavia", "Ärger"]
    write_split(tmp_path, "train", {NFD(n): [NFD("Zoë 1.png"), "b.png"] for n in names})
    write_split(tmp_path, "test", {NFC(n): [NFC("Zoë 1.png")] for n in names})
    train, test = load_folder(tmp_path, "train"), load_folder(tmp_path, "test")
    assert train.classes == test.classes == sorted(NFC(n) for n in names)
    assert [train.classes[r.label] for r in train.records] == [c for c in train.classes for _ in range(2)]
    csv = tmp_path / "boxes.csv"
    csv.write_text(f"{NFC('Škoda Octavia/Zoë 1.png')},1,1,4,4\n{NFD('Ärger/Zoë 1.png')},2,2,5,5\n", encoding="utf-8")  # NFC and NFD rows
    boxed = load_folder(tmp_path, "train", bbox_csv=csv)
    assert [(train.classes[r.label], Path(r.path).name, r.bbox) for r in boxed.records if r.bbox] == [
        (NFC("Ärger"), NFD("Zoë 1.png"), (2, 2, 5, 5)), (NFC("Škoda Octavia"), NFD("Zoë 1.png"), (1, 1, 4, 4))]
    given = load_folder(tmp_path, "train", class_names=[NFC(n) for n in names])  # a canonical list in NFC matches NFD folders
    assert given.classes == [NFC(n) for n in names] and len(given.records) == 8


def test_one_name_in_both_forms_and_a_folder_matching_no_class_are_shown_with_escapes(tmp_path):
    write_split(tmp_path, "train", {NFD("Citroën"): ["a.png"], NFC("Citroën"): ["b.png"]})
    with pytest.raises(DatasetError, match=r"folders 'Citroe\\u0308n', 'Citro\\xebn' are one name in two Unicode normal forms"):
        load_folder(tmp_path, "train")
    write_split(tmp_path, "test", {"Citroe\u0301n": ["a.png"]})  # an acute accent, not a diaeresis: another name
    with pytest.raises(DatasetError, match=r"1 folder\(s\) match no class name, e.g. 'Citro\\xe9n'"):
        load_folder(tmp_path, "test", class_names=[NFC("Citroën")])


def test_a_class_folder_of_files_that_are_not_read_is_an_error_naming_them_not_an_empty_class(tmp_path):
    write_split(tmp_path, "train", {"Acura": ["a.png"], "BMW": [], "Cadillac": []})
    for name in ("IMG_1.HEIC", "IMG_2.heic"):
        (tmp_path / "train" / "BMW" / name).write_bytes(b"heic")
    (tmp_path / "train" / "Cadillac" / "2012").mkdir()
    Image.new("RGB", (8, 6)).save(tmp_path / "train" / "Cadillac" / "2012" / "c.png")
    with pytest.raises(DatasetError) as e:
        load_folder(tmp_path, "train", allow_empty=True)
    message = str(e.value)
    assert message.startswith(f"{tmp_path / 'train'}: 2 class folder(s) hold no image file that is read here:")
    assert f"{tmp_path / 'train' / 'BMW'} holds 'IMG_1.HEIC', 'IMG_2.heic', but no image file" in message
    assert f"{tmp_path / 'train' / 'Cadillac'} holds '2012/', but no image file" in message and "empty class" not in message
    (tmp_path / "train" / "BMW" / "IMG_1.HEIC").unlink()
    (tmp_path / "train" / "BMW" / "IMG_2.heic").unlink()
    (tmp_path / "train" / "BMW" / ".DS_Store").write_bytes(b"junk")  # junk alone: an empty class, as before
    Image.new("RGB", (8, 6)).save(tmp_path / "train" / "Cadillac" / "d.png")
    with pytest.raises(DatasetError, match=r"1 empty class\(es\), expected >= 1 image each: \['BMW'\]"):
        load_folder(tmp_path, "train")
    loaded = load_folder(tmp_path, "train", allow_empty=True)
    assert f"1 sub-folders of a class folder (not read: images sit in the class folder itself) (e.g. {tmp_path / 'train' / 'Cadillac' / '2012'})" in loaded.notes[0]


def test_class_folders_and_images_reached_by_links_are_read_and_broken_links_of_every_class_are_listed_at_once(tmp_path):
    write_split(tmp_path / "store", "all", {"Acura": ["a.png", "b.png"], "BMW": ["c.png"]})
    write_split(tmp_path / "copy", "train", {"Acura": ["a.png", "b.png"], "BMW": ["c.png"]})
    (tmp_path / "linked" / "train" / "BMW").mkdir(parents=True)
    os.symlink(tmp_path / "store" / "all" / "Acura", tmp_path / "linked" / "train" / "Acura")  # a class folder outside the tree
    os.symlink("../../../store/all/BMW/c.png", tmp_path / "linked" / "train" / "BMW" / "c.png")  # a file outside the tree
    copy, linked = load_folder(tmp_path / "copy", "train"), load_folder(tmp_path / "linked", "train")
    assert linked.classes == copy.classes and [r.label for r in linked.records] == [r.label for r in copy.records]
    assert [Path(r.path).read_bytes() for r in linked.records] == [Path(r.path).read_bytes() for r in copy.records]
    os.symlink("moved.png", tmp_path / "linked" / "train" / "BMW" / "d.png")
    os.symlink("gone.png", tmp_path / "store" / "all" / "Acura" / "e.png")
    with pytest.raises(DatasetError) as e:
        load_folder(tmp_path / "linked", "train")
    assert "Acura/e.png -> gone.png is broken" in str(e.value) and "BMW/d.png -> moved.png is broken" in str(e.value)
