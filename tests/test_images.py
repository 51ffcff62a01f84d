"""fgvc_ref.data.images: every mode to 8-bit RGB by one rule, errors that name the file, EXIF orientation, junk-free listing.

Oracles are independent of the decoder: the 8-bit picture a file was made from (16-bit files hold ``257 g``, float files
``g / 255``), a palette looked up by hand, and Pillow's own ``ImageOps.exif_transpose`` for the EXIF table.
"""

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageOps, TiffImagePlugin

from fgvc_ref.data.images import (APPLEDOUBLE, NOT_IMAGE, OrientationNotApplied, decode_image, junk_kind, junk_note, scan,
                                  to_rgb8)
from fgvc_ref.data.records import DatasetError


@pytest.fixture(scope="module")
def photo():
    """A real photo (scikit-image's astronaut), small: the 8-bit picture every test file is made from."""
    skimage = pytest.importorskip("skimage")
    return Image.open(Path(skimage.__file__).parent / "data" / "astronaut.png").convert("RGB").resize((40, 30), Image.BILINEAR)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def rgb(array: np.ndarray) -> np.ndarray:
    return np.repeat(array[..., None], 3, axis=2) if array.ndim == 2 else array


def decoded(data: bytes, name="f", **kw) -> np.ndarray:
    out = decode_image(data, name, **kw)
    assert out.image.mode == "RGB"
    return np.asarray(out.image)


# --- every mode -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_8_bit_grey_rgb_and_alpha_modes_give_their_pixels_and_drop_alpha(photo, fmt):
    g = np.asarray(photo.convert("L"))
    a = np.asarray(photo)
    alpha = Image.fromarray(255 - g)
    assert (decoded(encode(Image.fromarray(g), fmt)) == rgb(g)).all()
    assert (decoded(encode(Image.merge("LA", (Image.fromarray(g), alpha)), fmt)) == rgb(g)).all()
    assert (decoded(encode(photo, fmt)) == a).all()
    assert (decoded(encode(Image.merge("RGBA", (*photo.split(), alpha)), fmt)) == a).all()
    bits = g > 127
    assert (decoded(encode(Image.fromarray(bits), fmt)) == rgb(bits.astype(np.uint8) * 255)).all()


@pytest.mark.parametrize("fmt, mode", [("PNG", "P"), ("TIFF", "P"), ("TIFF", "PA")])
def test_palette_images_give_the_palette_colour_of_each_index(photo, fmt, mode):
    p = photo.quantize(37)
    img = p if mode == "P" else p.convert("PA")
    data = encode(img, fmt)
    opened = Image.open(io.BytesIO(data))
    assert opened.mode == mode
    palette = np.array(p.getpalette()[: 3 * 256]).reshape(-1, 3)
    assert (decoded(data) == palette[np.asarray(p)]).all()


@pytest.mark.parametrize("mode, tolerance", [("CMYK", 0), ("YCbCr", 3), ("LAB", 6)])
def test_colour_spaces_give_back_the_rgb_picture_they_were_made_from(photo, mode, tolerance):
    """TIFF holds CMYK, YCbCr and LAB; each round trip from the photo lands within the conversion's rounding."""
    if mode == "LAB":
        img = ImageCms.profileToProfile(photo, ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), outputMode="LAB")
    else:
        img = photo.convert(mode)
    data = encode(img, "TIFF")
    assert Image.open(io.BytesIO(data)).mode == mode
    assert np.abs(decoded(data).astype(int) - np.asarray(photo).astype(int)).max() <= tolerance


def test_hsv_which_no_file_format_holds_converts_in_memory(photo):
    assert np.abs(np.asarray(to_rgb8(photo.convert("HSV"))).astype(int) - np.asarray(photo).astype(int)).max() <= 6  # hue in 256 steps: <= 6 levels


def sixteen_bit(g: np.ndarray, mode: str) -> Image.Image:
    v = g.astype(np.uint16) * 257  # 255 * 257 = 65535: the full 16-bit range
    order = {"I;16": "<u2", "I;16L": "<u2", "I;16B": ">u2"}[mode]
    return Image.frombytes(mode, (g.shape[1], g.shape[0]), v.astype(order).tobytes())


@pytest.mark.parametrize("fmt, mode", [("PNG", "I;16"), ("TIFF", "I;16"), ("TIFF", "I;16B"), ("TIFF", "I;16L"), ("PNG", "I;16B")])
def test_16_bit_images_are_scaled_to_8_bits_not_clipped(photo, fmt, mode):
    """A 16-bit copy of an 8-bit picture (v = 257 g) decodes to that picture exactly; convert("RGB") would clip it white."""
    g = np.asarray(photo.convert("L"))
    data = encode(sixteen_bit(g, mode), fmt)
    opened = Image.open(io.BytesIO(data))
    assert opened.mode.startswith("I;16")
    assert (np.asarray(opened.convert("RGB")) == 255).mean() > 0.9  # what the old path gave: almost all white
    assert (decoded(data) == rgb(g)).all()
    assert decode_image(data, "f").mode == opened.mode


def test_16_bit_native_and_32_bit_int_from_a_16_bit_png_in_memory(photo):
    g = np.asarray(photo.convert("L"))
    native = Image.frombytes("I;16N", (g.shape[1], g.shape[0]), (g.astype(np.uint16) * 257).astype("=u2").tobytes())
    assert (np.asarray(to_rgb8(native)) == rgb(g)).all()
    old_pillow = Image.fromarray(g.astype(np.int32) * 257)  # mode I: how Pillow < 10 opened a 16-bit grey PNG
    old_pillow.format = "PNG"
    assert (np.asarray(to_rgb8(old_pillow)) == rgb(g)).all()


def test_32_bit_integer_images_are_refused_with_their_mode_named(photo):
    g = np.asarray(photo.convert("L")).astype(np.int32) * 257
    data = encode(Image.fromarray(g), "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "I"
    with pytest.raises(DatasetError, match=r"^deep\.tif: image mode I with 32 bits per sample has no 8-bit rule"):
        decode_image(data, "deep.tif")
    with pytest.raises(DatasetError, match=r"mode I with no stated bits"):
        to_rgb8(Image.fromarray(g), "x")
    negative = Image.fromarray(-g)
    negative.format = "PNG"
    with pytest.raises(DatasetError, match=r"mode I holds samples in \[-\d+, 0\], outside its stated 16-bit range"):
        to_rgb8(negative, "x")


def stated_range(lo: float, hi: float) -> TiffImagePlugin.ImageFileDirectory_v2:
    """TIFF tags SMinSampleValue / SMaxSampleValue (340 / 341) as floats, for ``tiffinfo=``."""
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[340], tags[341] = lo, hi
    tags.tagtype[340] = tags.tagtype[341] = 11  # float
    return tags


def test_float_images_map_their_stated_range_and_refuse_samples_outside_it(photo):
    g = np.asarray(photo.convert("L"))
    unit = encode(Image.fromarray((g / 255).astype(np.float32)), "TIFF")
    assert Image.open(io.BytesIO(unit)).mode == "F"
    assert (decoded(unit) == rgb(g)).all()  # no stated range: [0, 1]
    assert (decoded(encode(Image.fromarray(g.astype(np.float32)), "TIFF", tiffinfo=stated_range(0.0, 255.0))) == rgb(g)).all()
    with pytest.raises(DatasetError, match=r"^hdr\.tif: image mode F holds samples in \[\d+, \d+\], outside its stated range \[0, 1\]"):
        decode_image(encode(Image.fromarray(g.astype(np.float32)), "TIFF"), "hdr.tif")
    nan = g.astype(np.float32) / 255
    nan[0, 0] = np.nan
    with pytest.raises(DatasetError, match="non-finite"):
        decode_image(encode(Image.fromarray(nan), "TIFF"), "nan.tif")


@pytest.mark.parametrize("lo, hi", [(100.0, 355.0), (-1.0, 1.0), (-1000.0, -745.0)])
def test_a_float_file_with_a_stated_range_away_from_zero_maps_its_minimum_to_0_and_refuses_samples_just_below(photo, lo, hi):
    """A float file holding ``lo + (hi - lo) g / 255`` over the stated range [lo, hi] decodes to g exactly (its lower
    bound maps to 0, not to 255 lo / (hi - lo)); a sample one float32 step below lo, or above hi, is refused."""
    g = np.asarray(photo.convert("L"))
    v = (lo + (hi - lo) * g.astype(np.float64) / 255).astype(np.float32)
    assert (decoded(encode(Image.fromarray(v), "TIFF", tiffinfo=stated_range(lo, hi))) == rgb(g)).all()
    edges = np.array([[lo, hi]], dtype=np.float32)
    assert decoded(encode(Image.fromarray(edges), "TIFF", tiffinfo=stated_range(lo, hi)))[0, :, 0].tolist() == [0, 255]
    for outside in (np.nextafter(np.float32(lo), np.float32(-np.inf)), np.nextafter(np.float32(hi), np.float32(np.inf))):
        bad = v.copy()
        bad[0, 0] = outside
        with pytest.raises(DatasetError, match=rf"^f\.tif: image mode F holds samples in .*outside its stated range \[{lo:g}, {hi:g}\]"):
            decode_image(encode(Image.fromarray(bad), "TIFF", tiffinfo=stated_range(lo, hi)), "f.tif")


@given(st.integers(-4000, 4000), st.integers(1, 8000), st.integers(0, 1 << 12))
def test_float_rule_is_round_half_up_of_255_times_v_minus_lo_over_hi_minus_lo(lo8, width8, t):
    """The float rule, literally: round(255 (v - lo) / (hi - lo)) for lo <= v <= hi, lo giving 0 and hi 255, over stated
    ranges on both sides of zero (lo, hi and v are float32 values, lo and hi multiples of 1/8 so that they are exact)."""
    lo, hi = lo8 / 8, (lo8 + width8) / 8
    v = float(np.float32(lo + (hi - lo) * t / (1 << 12)))  # float32 rounding keeps it in [lo, hi]: both are float32 values
    img = Image.fromarray(np.array([[v, lo, hi]], dtype=np.float32))
    img.tag_v2 = {340: lo, 341: hi}
    got = np.asarray(to_rgb8(img))[0, :, 0].tolist()
    assert got == [int(np.floor(255 * (v - lo) / (hi - lo) + 0.5)), 0, 255]


@given(st.integers(0, 65535), st.integers(1, 16))
def test_integer_rule_is_round_half_up_of_v_times_255_over_full_scale(v, bits):
    """The integer rule, literally: round(v * 255 / (2**b - 1)) for v within b bits, and monotone in v."""
    v = v % (1 << bits)
    img = Image.fromarray(np.array([[v, (1 << bits) - 1, 0]], dtype=np.int32))
    img.format = "TIFF"
    img.tag_v2 = {258: bits}
    got = np.asarray(to_rgb8(img))[0, :, 0].tolist()
    assert got == [int(np.floor(v * 255 / ((1 << bits) - 1) + 0.5)), 255, 0]


# --- errors name the file -----------------------------------------------------------------------


@pytest.mark.parametrize("data, why", [(b"", "empty file"), (b"not an image at all", "not a readable image"),
                                       (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "not a readable image")])
def test_errors_name_the_file_and_never_an_in_memory_object(data, why):
    with pytest.raises(DatasetError) as e:
        decode_image(data, "train/Acura/._00001.jpg")
    assert str(e.value).startswith(f"train/Acura/._00001.jpg: {why}")
    assert "BytesIO" not in str(e.value) and "0x" not in str(e.value)


def test_truncated_file_missing_file_and_decompression_bomb_are_named(photo, tmp_path, monkeypatch):
    full = encode(photo, "JPEG", quality=90)
    with pytest.raises(DatasetError, match=r"^cut\.jpg: not a readable image \(OSError: image file is truncated"):
        decode_image(full[: len(full) // 2], "cut.jpg")
    with pytest.raises(DatasetError, match=rf"^{tmp_path / 'gone.jpg'}: cannot be read"):
        decode_image(tmp_path / "gone.jpg")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DatasetError, match=r"^bomb\.png: not a readable image \(Decompression"):
        decode_image(encode(photo, "PNG"), "bomb.png")


# --- EXIF orientation ----------------------------------------------------------------------------


def tagged(photo: Image.Image, orientation: int) -> bytes:
    """The photo stored as a camera stores it: pixels turned so that the tag turns them back (lossless PNG)."""
    stored = photo.transpose({2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
                              8: Image.Transpose.ROTATE_270}[orientation]) if orientation > 1 else photo
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "PNG", exif=exif.tobytes())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_applied_orientation_shows_the_upright_picture_as_exif_transpose_does(photo, orientation):
    data = tagged(photo, orientation)
    out = decode_image(data, "phone.png", orientation="apply")
    assert (np.asarray(out.image) == np.asarray(photo)).all()
    assert (np.asarray(out.image) == np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))).all()
    assert out.orientation == orientation and out.oriented == (orientation > 1)


@pytest.mark.parametrize("orientation", [1, 6])
def test_kept_orientation_keeps_the_stored_pixels_and_warns_for_each_file_with_a_turn(photo, orientation):
    data = tagged(photo, orientation)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = decode_image(data, "car.png")
    assert (np.asarray(out.image) == np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))).all() and not out.oriented
    said = [str(w.message) for w in caught if issubclass(w.category, OrientationNotApplied)]
    assert said == ([f"car.png: EXIF orientation {orientation} not applied (dataset boxes refer to the stored pixels)"] if orientation > 1 else [])


# --- listing -----------------------------------------------------------------------------------


def junk_tree(root: Path) -> list[str]:
    """Two images among every kind of junk; returns the images' names."""
    root.mkdir(parents=True)
    for name in ("b.jpg", "a.PNG"):
        (root / name).write_bytes(b"x")
    for name in ("._b.jpg", "._a.PNG", ".DS_Store", "Thumbs.db", "thumbs.db", "desktop.ini", ".hidden.jpg", "notes.txt"):
        (root / name).write_bytes(b"junk")
    for folder in ("__MACOSX", "@eaDir", ".ipynb_checkpoints", ".git"):
        (root / folder).mkdir()
        (root / folder / "c.jpg").write_bytes(b"x")
    (root / "class_a").mkdir()
    return ["a.PNG", "b.jpg"]


def test_scan_keeps_images_and_folders_sorted_and_counts_every_kind_of_junk(tmp_path):
    images = junk_tree(tmp_path / "t")
    found = scan(tmp_path / "t")
    assert [p.name for p in found.files] == images and [p.name for p in found.folders] == ["class_a"]
    assert found.skipped == {APPLEDOUBLE: 2, ".DS_Store (macOS Finder)": 1, "Thumbs.db (Windows thumbnails)": 2,
                             "desktop.ini (Windows folder settings)": 1, "other dot-files": 2, NOT_IMAGE: 1,
                             "__MACOSX/ (macOS zip metadata)": 1, "@eaDir/ (Synology thumbnails)": 1, ".ipynb_checkpoints/ (Jupyter)": 1}
    note = junk_note(found.skipped, found.examples, tmp_path / "t")
    assert note.startswith(f"skipped 12 entries that are not dataset images under {tmp_path / 't'}: ")
    assert "-name '._*'" in note and "-name .DS_Store" in note and "-name '__MACOSX'" in note and ".git" not in note.split("Delete")[1]


@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"), min_size=1, max_size=12))
def test_junk_kind_is_exactly_the_listed_names_dot_files_and_appledouble(name):
    kind = junk_kind(name)
    listed = {".DS_Store", "__MACOSX", "@eaDir", ".ipynb_checkpoints", "$RECYCLE.BIN", "System Volume Information"}
    assert (kind is not None) == (name.startswith(".") or name in listed or name.lower() in ("thumbs.db", "desktop.ini"))
    if name.startswith("._"):
        assert kind == APPLEDOUBLE
