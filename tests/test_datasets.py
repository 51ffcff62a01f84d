"""fgvc_ref.data.datasets and `prepare --dataset`: every set prepared from its native layout, end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmark_trees import write_aircraft, write_cub, write_dogs, write_flowers102
from fgvc_ref.cli import main
from fgvc_ref.data.cache import load_cache
from fgvc_ref.data.datasets import NAMES, load_dataset
from fgvc_ref.data.records import DatasetError

ROOT = Path(__file__).resolve().parents[1]
WRITERS = {"cub": write_cub, "aircraft": write_aircraft, "aircraft:family": write_aircraft, "dogs": write_dogs, "flowers102": write_flowers102}
COUNTS = {"cub": (6, 6, 3), "aircraft": (8, 4, 4), "aircraft:family": (8, 4, 2), "dogs": (6, 6, 3), "flowers102": (204, 102, 102)}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_prepare_reads_each_set_in_its_native_layout_and_writes_a_cache(name, tmp_path, capsys):
    WRITERS[name](tmp_path / "raw")
    assert main(["prepare", "--dataset", name, "--data", str(tmp_path / "raw"), "--out", str(tmp_path / "cache"), "--any-size",
                 "--train-size", "24", "--test-size", "20", "--workers", "1"]) == 0
    train, test = load_cache(tmp_path / "cache", "train"), load_cache(tmp_path / "cache", "test")
    n_train, n_test, k = COUNTS[name]
    assert (len(train.labels), len(test.labels), len(train.classes)) == (n_train, n_test, k)
    assert train.manifest["dataset"].startswith(name)
    boxed = name != "flowers102"
    assert all((s["bbox"] is not None) == boxed for s in train.manifest["sources"])
    assert all(s.get("trim_bottom", 0) == (20 if name.startswith("aircraft") else 0) for s in test.manifest["sources"])


@pytest.mark.parametrize("name", ["cub", "aircraft", "dogs", "flowers102"])
def test_official_counts_are_enforced_without_any_size(name, tmp_path, capsys):
    WRITERS[name](tmp_path / "raw")
    assert main(["prepare", "--dataset", name, "--data", str(tmp_path / "raw"), "--out", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert ("expected" in err or "should have" in err) and not (tmp_path / "cache").exists()


def test_no_boxes_drops_every_box_whatever_the_loader(tmp_path):
    from fgvc_ref.data.synthetic import make_fake_stanford_cars

    fake = make_fake_stanford_cars(tmp_path / "cars", "devkit", classes=3, per_class=2)
    assert all(r.bbox is not None for r in load_dataset("stanford_cars", fake.root, "train", any_size=True).records)
    assert all(r.bbox is None for r in load_dataset("stanford_cars", fake.root, "train", any_size=True, boxes=False).records)


def test_no_boxes_reaches_the_cache(tmp_path):
    write_cub(tmp_path / "raw")
    assert main(["prepare", "--dataset", "cub", "--data", str(tmp_path / "raw"), "--out", str(tmp_path / "cache"), "--any-size",
                 "--no-boxes", "--train-size", "24", "--test-size", "20", "--workers", "1"]) == 0
    assert all(s["bbox"] is None for s in load_cache(tmp_path / "cache", "test").manifest["sources"])


@pytest.mark.parametrize("name", ["cub", "aircraft", "dogs", "flowers102"])
def test_an_unreadable_image_stops_preparation_and_is_named(name, tmp_path):
    from fgvc_ref.data.cache import prepare

    WRITERS[name](tmp_path / "raw")
    split = load_dataset(name, tmp_path / "raw", "test", any_size=True)
    Path(split.records[1].path).write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(DatasetError, match=rf"(?s)1 of {len(split.records)} test image\(s\) cannot be used.*{Path(split.records[1].path).name}"):
        prepare(split.records, tmp_path / "cache", split="test", classes=split.classes, size=16, workers=1, progress=False)
    assert not (tmp_path / "cache" / "test.manifest.json").exists()


def test_predict_preprocesses_an_aircraft_image_as_its_cache_stores_it(tmp_path):
    """The export's preprocessing carries the banner trim: a test file becomes exactly its cached image."""
    from fgvc_ref.export import stored_image
    from fgvc_ref.run import preprocessing_of

    write_aircraft(tmp_path / "raw")
    main(["prepare", "--dataset", "aircraft", "--data", str(tmp_path / "raw"), "--out", str(tmp_path / "cache"), "--any-size",
          "--train-size", "24", "--test-size", "20", "--workers", "1"])
    prep, classes = preprocessing_of(str(tmp_path / "cache"), 16)
    test = load_cache(tmp_path / "cache", "test")
    assert prep["trim_bottom"] == 20 and classes == test.classes
    for k, source in enumerate(test.manifest["sources"]):
        assert torch.equal(stored_image(source["path"], prep, tuple(source["bbox"])), test.images[k])


def test_unknown_dataset_names_are_refused_with_the_list(tmp_path, capsys):
    with pytest.raises(DatasetError, match="unknown dataset 'birds'"):
        load_dataset("birds", tmp_path, "train")
    with pytest.raises(SystemExit):
        main(["prepare", "--dataset", "aircraft:model", "--data", str(tmp_path), "--out", str(tmp_path / "c")])
    assert "aircraft:manufacturer" in capsys.readouterr().err and "flowers102" in NAMES


@pytest.mark.slow
def test_reproduce_sh_runs_the_recipe_on_another_dataset(tmp_path):
    """`./reproduce.sh --data ROOT --dataset cub` prepares that set and trains on it (one tiny stage here)."""
    write_cub(tmp_path / "raw")
    env = {**os.environ, "PYTHON": sys.executable}
    args = ["--data", str(tmp_path / "raw"), "--dataset", "cub", "--any-size", "--no-boxes", "--out", str(tmp_path / "out"), "--seeds", "1",
            "--epochs", "1", "--stages", "base", "--set", "model=tiny_cnn", "--set", "weights=none", "--set", "image_size=16"]
    done = subprocess.run(["bash", "reproduce.sh", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((tmp_path / "out" / "cache" / "train.manifest.json").read_text())
    assert manifest["dataset"] == "cub:cub" and all(s["bbox"] is None for s in manifest["sources"])
    assert "CUB-200-2011 (224 px, ResNet-50): whole images, not the blog's box-crop protocol" in (tmp_path / "out" / "RESULTS.md").read_text()
    recipe = json.loads((tmp_path / "out" / "runs" / "base" / "seed0" / "recipe.json").read_text())
    assert recipe["protocol"] == "whole images, not the blog's box-crop protocol"


def mac_copy(source: Path, target: Path) -> None:
    """``source`` copied as macOS and other tools leave it: an AppleDouble ``._`` file beside every file, ``.DS_Store``
    in every folder, ``__MACOSX/``, ``@eaDir/`` and ``.ipynb_checkpoints/`` at the top, ``Thumbs.db`` and ``desktop.ini``
    in a class folder."""
    import shutil

    shutil.copytree(source, target)
    for folder in [target, *[p for p in target.rglob("*") if p.is_dir()]]:
        for f in [p for p in folder.iterdir() if p.is_file()]:
            (folder / f"._{f.name}").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
        (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    for junk in ("__MACOSX", "@eaDir", ".ipynb_checkpoints"):
        (target / junk / "train").mkdir(parents=True)
        (target / junk / "train" / "._x.jpg").write_bytes(b"junk")
    if (target / "train").is_dir():  # class folders
        a_class = next(p for p in (target / "train").iterdir() if p.is_dir() and not p.name.startswith("."))
        (a_class / "Thumbs.db").write_bytes(b"junk")
        (a_class / "desktop.ini").write_text("[.ShellClassInfo]")
        (target / "train" / "__MACOSX").mkdir()


@pytest.mark.parametrize("dataset, layout", [("stanford_cars", "folders"), ("folder", "folders"), ("stanford_cars", "hf_repo")])
def test_a_copy_full_of_os_junk_prepares_like_the_clean_copy_with_one_summary_line(dataset, layout, tmp_path, capsys):
    from fgvc_ref.data.synthetic import make_fake_stanford_cars

    clean = make_fake_stanford_cars(tmp_path / "clean", layout, classes=3, per_class=2).root
    mac_copy(clean, tmp_path / "mac")
    args = ["--dataset", dataset, "--any-size", "--train-size", "24", "--test-size", "20", "--workers", "1"]
    assert main(["prepare", "--data", str(clean), "--out", str(tmp_path / "c1"), *args]) == 0
    capsys.readouterr()
    assert main(["prepare", "--data", str(tmp_path / "mac"), "--out", str(tmp_path / "c2"), *args]) == 0
    err = capsys.readouterr().err
    assert "not a readable image" not in err and "BytesIO" not in err
    if layout == "folders":
        notes = [line for line in err.splitlines() if line.startswith("skipped ")]
        assert len(notes) == 2, err  # one line per split
        assert "._* (macOS AppleDouble)" in notes[0] and "find '" in notes[0] and "-name '._*'" in notes[0]
    for split in ("train", "test"):
        a, b = load_cache(tmp_path / "c1", split), load_cache(tmp_path / "c2", split)
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels) and a.classes == b.classes


def test_when_no_image_can_be_read_nothing_is_left_behind(tmp_path, capsys):
    """All unreadable: exit 2, no cache folder. The test split unreadable after a good train split: nothing published."""
    from fgvc_ref.data.synthetic import make_fake_stanford_cars

    raw = make_fake_stanford_cars(tmp_path / "raw", "folders", classes=2, per_class=2).root
    for f in (raw / "train").rglob("*.jpg"):
        f.write_bytes(b"not an image")
    args = ["--any-size", "--workers", "1", "--train-size", "24", "--test-size", "20"]
    assert main(["prepare", "--data", str(raw), "--out", str(tmp_path / "new"), *args]) == 2
    assert "nothing was written" in capsys.readouterr().err and not (tmp_path / "new").exists()
    raw2 = make_fake_stanford_cars(tmp_path / "raw2", "folders", classes=2, per_class=2).root
    next((raw2 / "test").rglob("*.jpg")).write_bytes(b"")
    assert main(["prepare", "--data", str(raw2), "--out", str(tmp_path / "new2"), *args]) == 2  # train decoded, test not
    assert not (tmp_path / "new2").exists()
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "mine.txt").write_text("a file of the user's")
    assert main(["prepare", "--data", str(raw2), "--out", str(tmp_path / "kept"), *args]) == 2
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["mine.txt"]
    from fgvc_ref.data.cache import prepare

    bad = load_dataset("folder", raw, "train", any_size=True)
    with pytest.raises(DatasetError, match="nothing was written"):
        prepare(bad.records, tmp_path / "direct", split="train", classes=bad.classes, size=8, workers=1, progress=False)
    assert not (tmp_path / "direct").exists()  # prepare() itself makes no folder before every image decodes


def test_bad_files_of_every_split_are_listed_in_one_error(tmp_path, capsys):
    from fgvc_ref.data.synthetic import make_fake_stanford_cars

    raw = make_fake_stanford_cars(tmp_path / "raw", "folders", classes=2, per_class=3).root
    bad = [sorted((raw / split).rglob("*.jpg"))[0] for split in ("train", "test")]
    for f in bad:
        f.write_bytes(b"not an image")
    assert main(["prepare", "--data", str(raw), "--out", str(tmp_path / "c"), "--any-size", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert all(str(f) in err for f in bad) and "train image(s) cannot be used" in err and "test image(s) cannot be used" in err


def test_prepare_reuse_keeps_the_same_cache_and_refuses_one_prepared_otherwise(tmp_path, capsys):
    """reproduce.sh calls prepare --reuse: the same data and settings keep the cache; other data or other settings are
    refused with what differs, never silently trained on."""
    from fgvc_ref.data.synthetic import make_fake_stanford_cars

    a = make_fake_stanford_cars(tmp_path / "a", "devkit", classes=2, per_class=2).root
    b = make_fake_stanford_cars(tmp_path / "b", "folders", classes=2, per_class=2, seed=5).root
    args = ["--out", str(tmp_path / "c"), "--any-size", "--workers", "1", "--reuse"]
    assert main(["prepare", "--data", str(a), *args]) == 0
    written = (tmp_path / "c" / "train.pt").stat().st_mtime_ns
    assert main(["prepare", "--data", str(a), *args]) == 0 and "reused" in capsys.readouterr().err
    assert (tmp_path / "c" / "train.pt").stat().st_mtime_ns == written
    assert main(["prepare", "--data", str(b), *args]) == 2
    assert f"data_root '{a.resolve()}' (asked: '{b.resolve()}')" in capsys.readouterr().err
    assert main(["prepare", "--data", str(a), *args, "--no-boxes"]) == 2
    assert "boxes True (asked: False)" in capsys.readouterr().err
    assert main(["prepare", "--data", str(a), *args, "--layout", "car_ims"]) == 2


def test_a_stray_parquet_file_does_not_make_a_class_folder_copy_a_hugging_face_one(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fgvc_ref.data.stanford_cars import load_stanford_cars
    from fgvc_ref.data.synthetic import make_fake_stanford_cars

    root = make_fake_stanford_cars(tmp_path / "f", "folders", classes=2, per_class=2).root
    (root / "features").mkdir()
    pq.write_table(pa.table({"embedding": [[0.1, 0.2]]}), root / "features" / "emb.parquet")
    assert load_stanford_cars(root, "train", expected=None).layout == "folders"
    with pytest.raises(DatasetError, match=r"options of the Hugging Face copies; .* is a folders copy"):
        load_stanford_cars(root, "train", expected=None, image_column="img")


# --- files as people have them: extensions, links, names, sizes, through prepare -------------------------------


def _prepare(data, out, dataset="stanford_cars") -> int:
    return main(["prepare", "--dataset", dataset, "--data", str(data), "--out", str(out), "--any-size", "--train-size", "24",
                 "--test-size", "20", "--workers", "1"])


def _same_cache(a: Path, b: Path) -> bool:
    return all(torch.equal(load_cache(a, s).images, load_cache(b, s).images) and torch.equal(load_cache(a, s).labels, load_cache(b, s).labels)
               and load_cache(a, s).classes == load_cache(b, s).classes for s in ("train", "test"))


@pytest.mark.parametrize("dataset", ["stanford_cars", "folder"])
def test_a_copy_whose_images_have_other_extensions_and_cases_prepares_like_the_original(dataset, tmp_path, capsys):
    """.JPG, .jfif, .jpe, .Jpeg are JPEGs as Pillow reads them: the layout is found and every image is read; a .heic is
    skipped and named by its extension."""
    import shutil

    from fgvc_ref.data.synthetic import make_fake_stanford_cars

    clean = make_fake_stanford_cars(tmp_path / "clean", "folders", classes=3, per_class=2).root
    shutil.copytree(clean, tmp_path / "renamed")
    for k, f in enumerate(sorted((tmp_path / "renamed").rglob("*.jpg"))):
        f.rename(f.with_suffix((".JPG", ".jfif", ".jpe", ".Jpeg")[k % 4]))
    (next((tmp_path / "renamed" / "train").iterdir()) / "IMG_0001.heic").write_bytes(b"an iPhone photo")
    assert _prepare(clean, tmp_path / "c1", dataset) == 0
    capsys.readouterr()
    assert _prepare(tmp_path / "renamed", tmp_path / "c2", dataset) == 0
    err = capsys.readouterr().err
    assert "1 files without an image extension (.heic)" in err and "Image extensions read here (any case): " in err
    assert _same_cache(tmp_path / "c1", tmp_path / "c2")


def test_a_tree_of_links_prepares_like_a_copy_and_a_broken_link_stops_prepare_naming_it(tmp_path, capsys):
    """Stanford Cars class folders linked from a store outside the tree, and single images linked: followed; the cache
    equals a plain copy's, and its manifest names the paths as linked."""
    import os

    from fgvc_ref.data.synthetic import make_fake_stanford_cars

    store = make_fake_stanford_cars(tmp_path / "store", "folders", classes=3, per_class=2).root
    linked = tmp_path / "linked"
    for split in ("train", "test"):
        (linked / split).mkdir(parents=True)
        for k, folder in enumerate(sorted((store / split).iterdir())):
            if k % 2 == 0:
                os.symlink(folder, linked / split / folder.name)  # a folder outside the tree
            else:
                (linked / split / folder.name).mkdir()
                for f in folder.iterdir():
                    os.symlink(f, linked / split / folder.name / f.name)  # files outside the tree
    assert _prepare(store, tmp_path / "c1") == 0
    assert _prepare(linked, tmp_path / "c2") == 0
    assert _same_cache(tmp_path / "c1", tmp_path / "c2")
    assert all(s["path"].startswith(str(linked)) for s in load_cache(tmp_path / "c2", "train").manifest["sources"])
    capsys.readouterr()
    some_class = sorted((linked / "test").iterdir())[1]
    os.symlink("../../store/gone.jpg", some_class / "lost.jpg")
    assert _prepare(linked, tmp_path / "c3") == 2
    err = capsys.readouterr().err
    assert f"{some_class / 'lost.jpg'} -> ../../store/gone.jpg is broken" in err and not (tmp_path / "c3").exists()


def test_splits_written_in_nfd_and_nfc_prepare_as_one_class_list_and_a_real_difference_is_shown_with_escapes(tmp_path, capsys):
    import unicodedata

    from PIL import Image

    names = ["Citroën C4", "Škoda Octavia"]
    for split, form in (("train", "NFD"), ("test", "NFC")):
        for c, name in enumerate(names):
            folder = tmp_path / "raw" / split / unicodedata.normalize(form, name)
            folder.mkdir(parents=True)
            for k in range(2):
                Image.new("RGB", (30, 20), (100 * c, 50 * k, 90)).save(folder / f"{k}.png")
    assert _prepare(tmp_path / "raw", tmp_path / "c", "folder") == 0
    assert load_cache(tmp_path / "c", "train").classes == load_cache(tmp_path / "c", "test").classes == [unicodedata.normalize("NFC", n) for n in names]
    (tmp_path / "raw" / "test" / unicodedata.normalize("NFC", "Citroën C4")).rename(tmp_path / "raw" / "test" / "Citroen C4")
    assert _prepare(tmp_path / "raw", tmp_path / "c2", "folder") == 2
    err = capsys.readouterr().err
    assert "train and test have different classes: 2 classes in train, 2 in test; only in train: 'Citro\\xebn C4'; only in test: 'Citroen C4'" in err


def test_prepare_keeps_the_pixel_limit_for_a_large_jpeg_and_writes_nothing(tmp_path, capsys, monkeypatch):
    from PIL import Image

    from fgvc_ref.data.synthetic import make_fake_stanford_cars

    raw = make_fake_stanford_cars(tmp_path / "raw", "folders", classes=2, per_class=2).root
    big = sorted((raw / "test").rglob("*.jpg"))[0]
    Image.new("RGB", (300, 200), (10, 200, 30)).save(big, quality=90)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)  # 60,000 pixels: a JPEG predict would read reduced
    assert _prepare(raw, tmp_path / "c") == 2
    assert f"{big}: 60,000 pixels is over the 50,000-pixel limit that guards against decompression bombs" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
