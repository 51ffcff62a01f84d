"""fgvc_ref.data.cache: exact crops, every hazard reported at once, atomic writes, tamper and staleness detection."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fgvc_ref.data.cache import crop_box, decode, fit, load_cache, prepare
from fgvc_ref.data.records import DatasetError, Record
from fgvc_ref.data.stanford_cars import load_stanford_cars
from fgvc_ref.data.synthetic import make_fake_stanford_cars
from photos import photo_dir


# --- box semantics -------------------------------------------------------------------------------


def coordinate_image(w=13, h=9):
    """Pixel (x, y) holds (x, y, 0): a crop tells exactly which pixels it took."""
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0] = np.arange(w)[None, :]
    a[..., 1] = np.arange(h)[:, None]
    return Image.fromarray(a)


def test_one_based_inclusive_box_crops_exactly_the_intended_pixels():
    """Box (x1, y1, x2, y2) = (3, 2, 7, 5) covers columns 2..6 and rows 1..4 (0-based)."""
    crop = np.asarray(crop_box(coordinate_image(), (3, 2, 7, 5), "p"))
    assert crop.shape == (4, 5, 3)
    assert crop[..., 0].min() == 2 and crop[..., 0].max() == 6
    assert crop[..., 1].min() == 1 and crop[..., 1].max() == 4


def test_box_over_the_border_is_clamped_and_zero_area_box_is_refused_naming_the_file():
    crop = np.asarray(crop_box(coordinate_image(), (0, -3, 99, 99), "p"))
    assert crop.shape == (9, 13, 3)
    with pytest.raises(DatasetError, match=r"cars/x\.jpg: box \(5, 2, 4, 5\) has zero area"):
        crop_box(coordinate_image(), (5, 2, 4, 5), "cars/x.jpg")
    with pytest.raises(DatasetError, match="zero area"):
        crop_box(coordinate_image(), (20, 1, 30, 5), "p")  # entirely outside


def test_full_train_images_keep_every_pixel_with_their_aspect_in_the_top_left_of_the_slot():
    """Train split, no box: longer side to the slot size, aspect kept, zero elsewhere, so RandomResizedCrop sees it all."""
    for w, h in ((40, 20), (20, 40), (31, 30)):
        img = coordinate_image(w, h)
        slot, (vh, vw) = fit(img, 10, cropped=False, whole=True)
        expected = np.asarray(img.resize((10, round(h * 10 / w)) if w >= h else (round(w * 10 / h), 10), Image.BILINEAR))
        assert (vh, vw) == expected.shape[:2] and max(vh, vw) == 10
        assert np.array_equal(slot[:vh, :vw], expected) and not slot[vh:].any() and not slot[:, vw:].any()


def test_eval_split_equals_torchvision_classification_preset_eval_on_real_photos_with_odd_margins(tmp_path):
    """Test split, no box: the cache holds what torchvision's ClassificationPresetEval (Resize(256), CenterCrop(224))
    makes of each photo, before normalisation, bit for bit. Shapes chosen so that the centre-crop margins are odd
    (round(37.5) = 38 where // 2 would give 37), in landscape and portrait."""
    import torchvision.transforms as T

    from fgvc_ref.data.folder import load_folder
    from photos import real_photos

    preset = T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BILINEAR, antialias=True), T.CenterCrop(224), T.PILToTensor()])
    photos = [p.convert("RGB") for p in real_photos(400)[:4]]
    shapes = [(301, 257), (257, 301), (400, 263), (263, 333)]
    for k, (photo, shape) in enumerate(zip(photos, shapes)):
        (tmp_path / "raw" / "test" / f"c{k}").mkdir(parents=True)
        photo.resize(shape, Image.BILINEAR).save(tmp_path / "raw" / "test" / f"c{k}" / "a.png")
    split = load_folder(tmp_path / "raw", "test")
    prepare(split.records, tmp_path / "cache", split="test", classes=split.classes, size=224, workers=1, progress=False)
    cached = load_cache(tmp_path / "cache", "test")
    for k, record in enumerate(split.records):
        assert torch.equal(cached.images[k], preset(Image.open(record.path).convert("RGB"))), record.path
    assert cached.sizes.tolist() == [[224, 224]] * 4 and not cached.cropped.any()


# --- preparation -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hazards(tmp_path_factory):
    fake = make_fake_stanford_cars(tmp_path_factory.mktemp("hz") / "d", "devkit", classes=4, per_class=3, seed=2, hazards=True)
    return fake, load_stanford_cars(fake.root, "train", expected=None)


def test_bad_files_fail_preparation_with_the_complete_list_and_nothing_is_written(hazards, tmp_path):
    fake, split = hazards
    with pytest.raises(DatasetError) as info:
        prepare(split.records, tmp_path, split="train", classes=split.classes, size=16, workers=2, progress=False)
    message = str(info.value)
    assert f"{len(fake.bad_files)} of {len(split.records)}" in message
    for bad in fake.bad_files:
        assert bad in message
    assert "empty file" in message and "truncated" in message
    assert list(tmp_path.iterdir()) == []


def test_every_mode_becomes_rgb_and_modes_are_counted(hazards, tmp_path):
    fake, split = hazards
    good = [r for r in split.records if r.path not in fake.bad_files]
    prepare(good, tmp_path, split="train", classes=split.classes, size=16, workers=1, progress=False)
    cached = load_cache(tmp_path, "train")
    assert cached.images.shape == (len(good), 3, 16, 16) and cached.images.dtype == torch.uint8
    assert {"L", "CMYK", "RGBA", "P", "RGB"} <= set(cached.manifest["mode_counts"])
    assert sum(cached.manifest["mode_counts"].values()) == len(good)
    grey = [i for i, r in enumerate(good) if Image.open(r.path).mode == "L"]
    assert grey and torch.equal(cached.images[grey[0], 0], cached.images[grey[0], 1])


@pytest.fixture
def prepared(tmp_path):
    fake = make_fake_stanford_cars(tmp_path / "d", "car_ims", classes=3, per_class=2, seed=4)
    split = load_stanford_cars(fake.root, "train", expected=None)
    out = tmp_path / "cache"
    prepare(split.records, out, split="train", classes=split.classes, size=24, workers=2, progress=False)
    return split, out


def test_cache_round_trips_exactly(prepared):
    split, out = prepared
    cached = load_cache(out, "train")
    for k, r in enumerate(split.records):
        array, facts = decode(r, 24, whole=True)
        assert torch.equal(cached.images[k], torch.from_numpy(np.array(array)).permute(2, 0, 1))
        assert cached.labels[k].item() == r.label == facts["label"]
    assert cached.classes == split.classes
    assert cached.manifest["class_counts"] == [2, 2, 2]


def test_parallel_and_serial_preparation_write_identical_data(prepared, tmp_path):
    split, out = prepared
    prepare(split.records, tmp_path / "serial", split="train", classes=split.classes, size=24, workers=1, progress=False)
    assert torch.equal(load_cache(tmp_path / "serial", "train").images, load_cache(out, "train").images)


def test_one_flipped_byte_in_the_data_file_is_detected(prepared):
    _, out = prepared
    path = out / "train.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"train\.pt: data file changed or corrupted"):
        load_cache(out, "train")


def test_a_source_image_changed_after_preparation_is_detected(prepared):
    split, out = prepared
    victim = Path(split.records[0].path)
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(DatasetError, match=rf"stale.*1 changed.*{victim.name}"):
        load_cache(out, "train")
    assert load_cache(out, "train", verify_sources=False).images.shape[0] == len(split.records)


def test_touching_a_source_without_changing_it_is_not_stale(prepared):
    split, out = prepared
    p = Path(split.records[0].path)
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    load_cache(out, "train")


def test_a_crash_while_writing_leaves_no_cache_that_looks_finished(hazards, tmp_path, monkeypatch):
    """torch.save dies half way: no manifest, no temporary file, and load_cache says 'incomplete' or 'missing'."""
    fake, split = hazards
    good = [r for r in split.records if r.path not in fake.bad_files]

    def dying_save(obj, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError, match="No space"):
        prepare(good, tmp_path, split="train", classes=split.classes, size=8, workers=1, progress=False)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    with pytest.raises(DatasetError, match="missing"):
        load_cache(tmp_path, "train")
    (tmp_path / "train.pt").write_bytes(b"left over from an old run")
    with pytest.raises(DatasetError, match="incomplete"):
        load_cache(tmp_path, "train")


def test_a_tampered_manifest_is_refused(prepared):
    _, out = prepared
    path = out / "train.manifest.json"
    m = json.loads(path.read_text())
    m["version"] = 99
    path.write_text(json.dumps(m))
    with pytest.raises(DatasetError, match="not a fgvc_ref-cache v2 manifest"):
        load_cache(out, "train")
    path.write_text("{not json")
    with pytest.raises(DatasetError, match="unreadable manifest"):
        load_cache(out, "train")


# --- real photos ---------------------------------------------------------------------------------


def test_real_photos_in_a_devkit_layout_go_through_the_whole_path(tmp_path):
    """scikit-image's bundled photos as a 3-class devkit tree: load, prepare, verify, and check a crop."""
    from scipy.io import savemat

    from fgvc_ref.data.synthetic import _cell, _mat_box, _struct

    photos = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "camera.png", "hubble_deep_field.jpg"]
    root = tmp_path / "cars"
    (root / "devkit").mkdir(parents=True)
    rows = {"train": [], "test": []}
    for k, name in enumerate(photos):
        split = "train" if k % 2 == 0 else "test"
        img = Image.open(photo_dir() / name)
        folder = root / f"cars_{split}"
        folder.mkdir(exist_ok=True)
        fname = f"{k + 1:05d}.jpg"
        img.convert("RGB" if img.mode != "L" else "L").save(folder / fname, quality=95)
        box = (11, 21, img.width // 2, img.height // 2)
        rows[split].append({**_mat_box(box), "class": np.array([[k // 2 + 1]], dtype=np.uint8), "fname": fname})
    savemat(str(root / "devkit" / "cars_meta.mat"), {"class_names": _cell(["Cat Sedan 2012", "Coffee Coupe 2010", "Rocket SUV 2001"])})
    savemat(str(root / "devkit" / "cars_train_annos.mat"), {"annotations": _struct(rows["train"])})
    savemat(str(root / "cars_test_annos_withlabels.mat"), {"annotations": _struct(rows["test"])})
    for split in ("train", "test"):
        data = load_stanford_cars(root, split, expected={"classes": 3, split: 3})
        prepare(data.records, tmp_path / "cache", split=split, classes=data.classes, size=32, progress=False)
        cached = load_cache(tmp_path / "cache", split)
        first = data.records[0]
        expected = Image.open(first.path).convert("RGB").crop((10, 20, first.bbox[2], first.bbox[3])).resize((32, 32), Image.BILINEAR)
        assert torch.equal(cached.images[0], torch.from_numpy(np.array(expected)).permute(2, 0, 1))
        assert cached.labels.tolist() == [0, 1, 2]


def test_prepare_cli_refuses_a_non_full_copy_then_prepares_it_with_any_size(tmp_path, capsys):
    from fgvc_ref.cli import main

    fake = make_fake_stanford_cars(tmp_path / "k", "kaggle_folders", classes=3, per_class=2)
    assert main(["prepare", "--data", str(fake.root), "--out", str(tmp_path / "c")]) == 2
    assert "expected 196 classes, found 3" in capsys.readouterr().err
    assert main(["prepare", "--data", str(fake.root), "--out", str(tmp_path / "c"), "--any-size", "--train-size", "20", "--test-size", "16", "--workers", "1"]) == 0
    assert load_cache(tmp_path / "c", "train").images.shape == (6, 3, 20, 20)
    assert load_cache(tmp_path / "c", "test").images.shape == (6, 3, 16, 16)


def test_exif_orientation_is_logged_not_applied_and_bombs_and_bad_boxes_are_listed(tmp_path, monkeypatch, capsys):
    """docs/data.md: boxes refer to raw pixels, so EXIF rotation is counted, never applied; a decompression
    bomb and a zero-area box are reported in the same complete list as unreadable files."""
    img = coordinate_image(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW" orientation tag
    rotated = tmp_path / "rotated.jpg"
    img.save(rotated, exif=exif, quality=100)
    out = tmp_path / "c"
    plain = tmp_path / "plain.jpg"
    img.save(plain, quality=100)
    prepare([Record(str(rotated), 0, None), Record(str(plain), 0, None)], out, split="train", classes=["a"], size=10, workers=1, progress=False)
    warned = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warned == [f"warning: {rotated}: EXIF orientation 6 not applied (dataset boxes refer to the stored pixels)"]  # one per tagged file
    cached = load_cache(out, "train")
    assert cached.manifest["exif_rotated"] == [str(rotated)]
    h, w = cached.sizes[0].tolist()
    red = cached.images[0, 0, :h, :w].float()  # red = x coordinate: unrotated, it still grows along each row
    assert red.std(dim=1).mean() > 5 * red.std(dim=0).mean()

    big, big_jpeg = tmp_path / "big.png", tmp_path / "big.jpg"
    Image.new("RGB", (64, 64)).save(big)
    Image.new("RGB", (64, 64)).save(big_jpeg)  # a JPEG too: only user-facing paths read a large one reduced
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 px > 2x the limit: a "bomb" here
    records = [Record(str(big), 0, None), Record(str(big_jpeg), 0, None), Record(str(rotated), 0, (5, 5, 4, 9))]
    with pytest.raises(DatasetError) as info:
        prepare(records, tmp_path / "d", split="train", classes=["a"], size=10, workers=1, progress=False)
    assert "3 of 3" in str(info.value) and "zero area" in str(info.value)
    for path in (big, big_jpeg):
        assert f"{path}: 4,096 pixels is over the 1,000-pixel limit that guards against decompression bombs" in str(info.value)
