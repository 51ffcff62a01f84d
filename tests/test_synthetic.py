"""fgvc_ref.data.synthetic: deterministic, fine-grained by construction, hazards as promised."""

import numpy as np
import pytest
from PIL import Image

from fgvc_ref.data.synthetic import class_names, draw_car, make_fake_stanford_cars


def read_marks(img: Image.Image, box, label_bits=8):
    """Decode the door pattern back from the pixels, knowing only the box (the class detail)."""
    a = np.asarray(img).astype(int)
    x0, y0, x2, y2 = box[0] - 1, box[1] - 1, box[2], box[3]
    cw, ch = x2 - x0, y2 - y0
    cell = max(2, cw // 24)
    body_top = y0 + ch * 2 // 5
    bits = 0
    for bit in range(label_bits):
        mx = x0 + cw // 2 - 2 * cell * 2 + (bit % 4) * cell * 2
        my = body_top + cell + (bit // 4) * cell * 2
        bits |= int(a[my, mx].mean() > 128) << bit
    return bits


@pytest.mark.parametrize("label", [0, 1, 37, 200, 255])
def test_the_class_is_written_in_the_door_detail_and_readable_from_the_box(label):
    img, box = draw_car(label, np.random.default_rng(label), (160, 120))
    assert read_marks(img, box) == label


def test_same_seed_same_files_and_different_seed_different_files(tmp_path):
    a = make_fake_stanford_cars(tmp_path / "a", "devkit", classes=3, per_class=2, seed=5)
    b = make_fake_stanford_cars(tmp_path / "b", "devkit", classes=3, per_class=2, seed=5)
    c = make_fake_stanford_cars(tmp_path / "c", "devkit", classes=3, per_class=2, seed=6)
    read = lambda root: [p.read_bytes() for p in sorted((root / "cars_train").iterdir())]
    assert read(a.root) == read(b.root) != read(c.root)


def test_canonical_order_is_not_alphabetical_and_has_the_ram_case():
    names = class_names(10)
    assert names != sorted(names) and "Ram C/V Cargo Van Minivan 2012" in names


def test_hazards_write_the_promised_modes_and_bad_files(tmp_path):
    fake = make_fake_stanford_cars(tmp_path / "h", "devkit", classes=4, per_class=3, hazards=True)
    train = sorted((fake.root / "cars_train").iterdir())
    modes = {Image.open(p).mode for p in train[:4]}
    assert modes == {"L", "CMYK", "RGBA", "P"}
    assert [p.name for p in map(lambda s: tmp_path / s, fake.bad_files)] == ["00006.jpg", "00007.jpg", "00008.jpg"]
    assert (fake.root / "cars_train" / "00006.jpg").stat().st_size == 0


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="layout"):
        make_fake_stanford_cars(tmp_path, "zip")
    with pytest.raises(ValueError, match="classes"):
        make_fake_stanford_cars(tmp_path, "devkit", classes=300)
