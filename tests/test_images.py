"""fgvc_ref.data.images: every mode to 8-bit RGB by one rule, errors that name the file, EXIF orientation, large
pictures, junk-free listing by extension, links followed by one rule, names compared in NFC.

Oracles are independent of the decoder: the 8-bit picture a file was made from (16-bit files hold ``257 g``, float files
``g / 255``), a palette looked up by hand, Pillow's own ``ImageOps.exif_transpose`` for the EXIF table and Pillow's own
draft mode for a reduced JPEG, the files and links a test made, and names written in both Unicode normal forms.
"""

import io
import os
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageOps, TiffImagePlugin, features

from fgvc_ref.data.images import (APPLEDOUBLE, IMAGE, NOT_IMAGE, SPECIAL, OrientationNotApplied, decode_image, find, image_extensions,
                                  junk_kind, junk_note, on_disk, scan, to_rgb8, what_it_holds)
from fgvc_ref.data.records import DatasetError

NFD = lambda name: unicodedata.normalize("NFD", name)  # how macOS writes a file name
NFC = lambda name: unicodedata.normalize("NFC", name)  # how most tools and annotation files write it


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
    with pytest.raises(DatasetError, match=r"^bomb\.png: 1,200 pixels is over the 100-pixel limit that guards against decompression bombs"):
        decode_image(encode(photo, "PNG"), "bomb.png")


# --- large pictures -------------------------------------------------------------------------------


def jpeg_of(photo: Image.Image, size: tuple[int, int], **kw) -> bytes:
    return encode(photo.resize(size, Image.BILINEAR), "JPEG", quality=95, **kw)


@pytest.mark.parametrize("limit", [30_000, 20_000])  # 49,152 pixels: Pillow's warning (1x-2x the limit), then its error (> 2x)
def test_over_the_pixel_limit_a_dataset_path_refuses_any_file_and_names_its_size(photo, monkeypatch, limit):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    for data, name in ((jpeg_of(photo, (256, 192)), "car.jpg"), (encode(photo.resize((256, 192)), "PNG"), "car.png")):
        with pytest.raises(DatasetError, match=rf"^{name}: 49,152 pixels is over the {limit:,}-pixel limit .* dataset preparation keeps it"):
            decode_image(data, name)


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_a_large_jpeg_on_a_user_path_is_read_reduced_by_the_largest_draft_factor_the_caller_affords(photo, monkeypatch, mode):
    """The picture is Pillow's own draft decode at that factor (1/8 when the caller can lose 8x, 1/4 when 7.9x) less its
    last row and column when they hold a partial block (190 = 23 x 8 + 6 rows): exactly 1/factor of the picture."""
    data = jpeg_of(photo.convert(mode), (260, 190))
    oracles = {}
    for factor in (8, 4):
        oracles[factor] = Image.open(io.BytesIO(data))
        oracles[factor].draft(oracles[factor].mode, (260 // factor, 190 // factor))
        oracles[factor] = np.asarray(oracles[factor].convert("RGB"))
        assert oracles[factor].shape[:2] == (-(-190 // factor), -(-260 // factor))  # Pillow rounds up
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4_000)
    for affordable, factor in ((8.0, 8), (7.9, 4)):
        out = decode_image(data, "big.jpg", max_reduction=lambda w, h: affordable)
        assert out.reduced == factor and out.image.size == (260 // factor, 190 // factor)
        assert (np.asarray(out.image) == oracles[factor][: 190 // factor, : 260 // factor]).all()
    assert Image.MAX_IMAGE_PIXELS == 4_000  # the draft path never touches Pillow's limit


def test_a_jpeg_the_caller_cannot_reduce_enough_or_any_other_large_file_is_refused_with_the_option_to_allow_it(photo, monkeypatch):
    data, png = jpeg_of(photo, (256, 192)), encode(photo.resize((256, 192)), "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    for source, affordable, why in ((data, 3.0, r"even read at 1/2 \(JPEG draft mode\) it has 12,288 pixels"),
                                    (data, 1.9, "read at 1/2 it would lose pixels the model uses"), (png, 8.0, "only a JPEG can be read reduced")):
        with pytest.raises(DatasetError, match=rf"49,152 pixels is over the 10,000-pixel limit .*\({why}\); if you trust the file, "
                                               r"allow it: --max-image-pixels 49152"):
            decode_image(source, "big", max_reduction=lambda w, h: affordable)


def test_max_pixels_reads_a_trusted_large_file_whole_and_puts_pillows_limit_back(photo, monkeypatch):
    png, data = encode(photo.resize((256, 192)), "PNG"), jpeg_of(photo, (256, 192))
    whole = {source: np.asarray(Image.open(io.BytesIO(source)).convert("RGB")) for source in (png, data)}
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # 49,152 pixels: over twice the limit, Pillow's hard error
    for source in (png, data):
        out = decode_image(source, "big", max_pixels=49_152, max_reduction=lambda w, h: 8.0)
        assert out.reduced == 1 and (np.asarray(out.image) == whole[source]).all()
        assert Image.MAX_IMAGE_PIXELS == 10_000
    with pytest.raises(DatasetError, match="over the 49,151-pixel limit"):
        decode_image(png, "big.png", max_pixels=49_151)
    assert Image.MAX_IMAGE_PIXELS == 10_000


@pytest.mark.parametrize("orientation, shown", [(1, (256, 192)), (6, (192, 256)), (8, (192, 256))])
def test_the_caller_is_asked_about_the_picture_as_displayed(photo, monkeypatch, orientation, shown):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = jpeg_of(photo, (256, 192), exif=exif.tobytes())
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    asked = []
    out = decode_image(data, "phone.jpg", orientation="apply", max_reduction=lambda w, h: asked.append((w, h)) or 8.0)
    assert asked == [shown] and out.image.size == (shown[0] // 8, shown[1] // 8) and out.reduced == 8


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


# --- listing: image extensions ---------------------------------------------------------------------


def test_image_extensions_are_pillows_for_each_picture_format_it_decodes_here():
    read = image_extensions()
    assert {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".bmp", ".tif", ".tiff", ".ppm"} <= set(read)
    assert (".webp" in read) == features.check("webp") and (".avif" in read) == features.check("avif")
    assert not {".h5", ".mpg", ".pdf", ".psd", ".ico", ".txt", ".heic"} & set(read)  # stubs, documents, icons, not in Pillow
    assert all(ext == ext.lower() and ext.startswith(".") for ext in read) and list(read) == sorted(read)


def test_a_format_whose_decoder_pillow_lacks_is_not_an_image_extension(monkeypatch):
    real = features.check
    monkeypatch.setattr(features, "check", lambda feature: feature != "avif" and real(feature))
    assert ".avif" not in image_extensions() and ".avifs" not in image_extensions() and ".jpg" in image_extensions()


def test_every_extension_pillow_reads_in_any_case_is_listed_and_decodes_and_others_are_named_by_extension(photo, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    files = {"a.JPG": encode(photo, "JPEG"), "b.jfif": encode(photo, "JPEG"), "c.Jpeg": encode(photo, "JPEG"), "d.jpe": encode(photo, "JPEG"),
             "e.PNG": encode(photo, "PNG"), "f.tif": encode(photo, "TIFF")}
    if features.check("avif"):
        files["g.avif"] = encode(photo, "AVIF", quality=90)
    if features.check("webp"):
        files["h.WEBP"] = encode(photo, "WEBP", lossless=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    for name in ("x.heic", "y.HEIC", "notes.txt", "README"):
        (folder / name).write_bytes(b"not read")
    found = scan(folder)
    assert [p.name for p in found.files] == sorted(files)
    assert all(decode_image(p).image.size == photo.size for p in found.files)
    assert found.skipped == {f"{NOT_IMAGE} (.heic)": 2, f"{NOT_IMAGE} (.txt)": 1, f"{NOT_IMAGE} (none)": 1}
    note = junk_note(found.skipped, found.examples, folder)
    assert f"2 {NOT_IMAGE} (.heic) (e.g. {folder / 'x.heic'})" in note and f"Image extensions read here (any case): {' '.join(image_extensions())}" in note
    assert what_it_holds(found) is None  # it holds images


def test_a_folder_of_skipped_files_says_what_it_holds_and_junk_alone_says_nothing(tmp_path):
    (tmp_path / "phone").mkdir()
    for name in ("IMG_1.HEIC", "IMG_2.heic", ".DS_Store"):
        (tmp_path / "phone" / name).write_bytes(b"x")
    (tmp_path / "phone" / "2023").mkdir()
    held = what_it_holds(scan(tmp_path / "phone"))
    assert held.startswith("'IMG_1.HEIC', 'IMG_2.heic', '2023/', but no image file (image extensions read here: .apng")
    assert ".DS_Store" not in held
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / ".DS_Store").write_bytes(b"x")
    assert what_it_holds(scan(tmp_path / "junk")) is None


def test_find_reads_image_placeholder_as_any_image_extension_in_any_case(tmp_path):
    for rel in ("train/Acura/1.JPG", "train/Acura/2.jfif", "train/BMW/3.png", "train/BMW/4.heic", "train/BMW/5.jpg.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert [str(p.relative_to(tmp_path)) for p in find(tmp_path, f"train/*/*{IMAGE}")] == ["train/Acura/1.JPG", "train/Acura/2.jfif",
                                                                                          "train/BMW/3.png"]
    assert [p.name for p in find(tmp_path, f"train/*/3{IMAGE}")] == ["3.png"]


# --- listing: junk ---------------------------------------------------------------------------------


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
                             "desktop.ini (Windows folder settings)": 1, "other dot-files": 2, f"{NOT_IMAGE} (.txt)": 1,
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


def test_entries_that_are_neither_files_nor_folders_are_counted_not_dropped(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "a.png").write_bytes(b"x")
    found = scan(tmp_path)
    assert [p.name for p in found.files] == ["a.png"] and found.skipped == {SPECIAL: 1} and found.others == [(tmp_path / "pipe", SPECIAL)]


# --- listing: symbolic links ---------------------------------------------------------------------------


def linked_tree(root: Path) -> Path:
    """A tree whose entries are links to files and folders inside and outside it, beside real ones."""
    (root / "outside" / "far_class").mkdir(parents=True)
    (root / "outside" / "far.jpg").write_bytes(b"far")
    (root / "outside" / "far_class" / "f.jpg").write_bytes(b"f")
    tree = root / "tree"
    (tree / "class_a").mkdir(parents=True)
    (tree / "class_a" / "a.jpg").write_bytes(b"a")
    os.symlink("a.jpg", tree / "class_a" / "inside_file.jpg")
    os.symlink(root / "outside" / "far.jpg", tree / "class_a" / "outside_file.jpg")  # absolute
    os.symlink("class_a", tree / "inside_folder")
    os.symlink("../outside/far_class", tree / "outside_folder")  # relative
    return tree


LISTERS = {"scan": lambda root: [str(p.relative_to(root)) for p in scan(root).files + scan(root).folders],
           "find *": lambda root: [str(p.relative_to(root)) for p in find(root, "*")],
           "find **": lambda root: [str(p.relative_to(root)) for p in find(root, "**/*.jpg")]}


def test_links_to_files_and_folders_inside_and_outside_the_tree_are_followed_under_their_own_names(tmp_path):
    tree = linked_tree(tmp_path)
    inner = scan(tree / "class_a")
    assert [p.name for p in inner.files] == ["a.jpg", "inside_file.jpg", "outside_file.jpg"] and not inner.skipped
    assert [p.read_bytes() for p in inner.files] == [b"a", b"a", b"far"]
    assert [p.name for p in scan(tree).folders] == ["class_a", "inside_folder", "outside_folder"]
    assert [str(p.relative_to(tree)) for p in find(tree, "**/*.jpg")] == [
        "class_a/a.jpg", "class_a/inside_file.jpg", "class_a/outside_file.jpg", "inside_folder/a.jpg", "inside_folder/inside_file.jpg",
        "inside_folder/outside_file.jpg", "outside_folder/f.jpg"]
    assert [str(p.relative_to(tree)) for p in find(tree, "*/*.jpg")] == [str(p.relative_to(tree)) for p in find(tree, "**/*.jpg")]


@pytest.mark.parametrize("lister", sorted(LISTERS))
@pytest.mark.parametrize("link, target, why", [("gone.jpg", "missing.jpg", r"is broken \(its target does not exist\)"),
                                               ("gone_folder", "../nowhere", r"is broken"),
                                               ("self.jpg", "self.jpg", "is a loop of links"),
                                               ("up", ".", "is a cycle"), ("root", "/", "is a cycle")])
def test_a_broken_link_a_loop_or_a_cycle_is_an_error_naming_it_in_every_lister(tmp_path, lister, link, target, why):
    tree = linked_tree(tmp_path)
    os.symlink(target, tree / link)
    os.symlink("missing_too.png", tree / "class_a" / "also_gone.png")
    with pytest.raises(DatasetError, match=rf"{tree / link} -> {target} {why}.*restore their targets or remove them"):
        LISTERS[lister](tree)
    with pytest.raises(DatasetError, match=rf"^{tree / 'class_a'}: 1 symbolic link\(s\) cannot be followed: {tree / 'class_a' / 'also_gone.png'}"):
        scan(tree / "class_a")


def test_a_cycle_through_two_links_is_found_by_a_deep_walk(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    os.symlink("../b", tmp_path / "a" / "to_b")
    os.symlink("../a", tmp_path / "b" / "to_a")
    assert [p.name for p in scan(tmp_path / "a").folders] == ["to_b"]  # one level: no cycle yet
    with pytest.raises(DatasetError, match=rf"{tmp_path / 'a' / 'to_b' / 'to_a'} -> ../a is a cycle"):
        find(tmp_path, "**/*.jpg")  # from above both: only the way down knows that a was passed through


def test_a_broken_link_named_like_junk_is_junk(tmp_path):
    os.symlink("nowhere", tmp_path / "._photo.jpg")
    assert scan(tmp_path).skipped == {APPLEDOUBLE: 1}


def test_decoding_a_broken_link_says_so(tmp_path):
    os.symlink("moved.jpg", tmp_path / "photo.jpg")
    with pytest.raises(DatasetError, match=rf"^{tmp_path / 'photo.jpg'}: cannot be read \(No such file or directory, a broken link to moved\.jpg\)"):
        decode_image(tmp_path / "photo.jpg")


# --- names: one Unicode normal form ---------------------------------------------------------------


def test_listing_order_and_find_use_nfc_names_whatever_the_disk_spells(tmp_path):
    """NFD 'A + U+0308' sorts before 'B', NFC U+00C4 after it: the listing takes the NFC order, and an NFC pattern finds an NFD name."""
    for name in (NFD("Äpfel.jpg"), "Birnen.jpg", NFC("Öl.jpg")):
        (tmp_path / name).write_bytes(b"x")
    assert [NFC(p.name) for p in scan(tmp_path).files] == ["Birnen.jpg", NFC("Äpfel.jpg"), NFC("Öl.jpg")]
    assert [p.name for p in find(tmp_path, NFC("Äpfel.*"))] == [NFD("Äpfel.jpg")]
    assert [p.name for p in find(tmp_path, NFD("Öl.jpg"))] == [NFC("Öl.jpg")]


def test_on_disk_finds_a_path_spelled_in_the_other_normal_form_and_leaves_others_alone(tmp_path):
    (tmp_path / NFD("Citroën C4") / NFD("Élan")).mkdir(parents=True)
    (tmp_path / NFD("Citroën C4") / NFD("Élan") / NFD("Zoë.jpg")).write_bytes(b"x")
    asked = tmp_path / NFC("Citroën C4") / NFC("Élan") / NFC("Zoë.jpg")
    assert not asked.exists()
    got = on_disk(asked, {})
    assert got == tmp_path / NFD("Citroën C4") / NFD("Élan") / NFD("Zoë.jpg") and got.read_bytes() == b"x"
    assert on_disk(tmp_path / NFD("Citroën C4") / NFD("Élan") / NFC("Zoë.jpg")) == got  # and the other way round
    (tmp_path / NFC("Škoda")).mkdir()
    (tmp_path / NFC("Škoda") / "x.jpg").write_bytes(b"y")
    assert on_disk(tmp_path / NFD("Škoda") / "x.jpg") == tmp_path / NFC("Škoda") / "x.jpg"
    assert on_disk(tmp_path / "missing" / "x.jpg") == tmp_path / "missing" / "x.jpg"
    (tmp_path / NFC("Citroën C4")).mkdir()  # both spellings on disk: the asked one exists as given
    assert on_disk(tmp_path / NFC("Citroën C4")) == tmp_path / NFC("Citroën C4")
