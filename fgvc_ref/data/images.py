"""Image files in, 8-bit RGB out: the package's one decoder and its one file lister.

Every path that reads an image (``prepare`` and each loader, ``predict``, ``evaluate`` on a folder,
the gallery, the Hugging Face reader) calls :func:`decode_image`, and every path that lists a folder
calls :func:`scan`, so a rule fixed here holds everywhere.

**Decoding** (:func:`decode_image`): the bytes are opened with Pillow (its decompression-bomb limit
kept, ``LOAD_TRUNCATED_IMAGES`` off), the first frame is loaded, and :func:`to_rgb8` maps the mode to
8-bit RGB by one rule:

- 8-bit modes, palette and alpha (``1 L P PA LA La RGB RGBA RGBa RGBX CMYK YCbCr LAB HSV``): Pillow's
  ``convert("RGB")``, as torchvision and timm do it: the palette is looked up, alpha is dropped (not
  composited), ``1`` becomes 0 / 255, CMYK / YCbCr / LAB / HSV go through Pillow's colour conversions.
- integer modes above 8 bits (``I;16 I;16B I;16L I;16N``, and ``I`` stated at <= 16 bits):
  ``v -> round(v * 255 / (2**b - 1))``, with ``b`` the file's stated bits per sample (TIFF's
  BitsPerSample; 16 for PNG, whose greyscale goes up to 16 bits). A sample above ``2**b - 1`` is
  refused, never clipped. (``convert("RGB")`` would clip every value above 255 to white.)
- float (``F``): ``v -> round(255 * (v - lo) / (hi - lo))`` over the stated range ``[lo, hi]`` (TIFF's
  SMinSampleValue / SMaxSampleValue), ``[0, 1]`` when none is stated; a sample outside the range, or
  not finite, is refused.
- anything else (``I`` with 32-bit or unstated depth, a negative integer sample, a mode this list
  does not name) is refused with its mode named.

A 16-bit picture ``v = 257 g`` of an 8-bit picture ``g`` maps back to ``g`` exactly, and so does a
float picture ``g / 255``. (Pillow reads 16-bit RGB PNGs as ``RGB`` already, keeping the high byte.)

**Orientation** (EXIF tag 0x0112, values 2-8: flips and quarter turns, as ``ImageOps.exif_transpose``):
``orientation="apply"`` turns the pixels to what a viewer shows (user-facing paths: ``predict``,
``evaluate`` on a folder of photos, the gallery; a ``--box`` there is in the displayed frame);
``"keep"`` leaves them as stored, because dataset boxes refer to the stored pixels, and warns
(:class:`OrientationNotApplied`) for each file whose tag asks for a turn.

**Listing** (:func:`scan`): the entries of one folder in a stable (sorted) order: its image files by
extension, its sub-folders, and what was skipped, counted by kind: the files that operating systems
and tools leave in dataset trees (:data:`JUNK`) and other dot-files, and files without an image
extension. :func:`junk_note` turns the counts into one line that says how to delete them.

Every error is a :class:`~fgvc_ref.data.records.DatasetError` whose message starts with the name
given (the file's path, or ``shard, split, row`` for an image read from an archive), never an
in-memory object.
"""

from __future__ import annotations

import io
import warnings
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from fgvc_ref.data.records import DatasetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
EXIF_ORIENTATION = 0x0112
# EXIF orientation -> the transpose that shows the picture upright (the EXIF 2.3 table; ImageOps.exif_transpose's)
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}
EIGHT_BIT = ("1", "L", "P", "PA", "LA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")
WIDE_INT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
ORIENTATIONS = ("keep", "apply")


class OrientationNotApplied(UserWarning):
    """A file's EXIF orientation asks for a turn that a dataset path does not apply (its boxes refer to the stored pixels)."""


class Decoded(NamedTuple):
    image: Image.Image  # mode "RGB", 8 bits per channel, loaded
    mode: str  # the mode the file decoded to, before conversion (e.g. "I;16", "CMYK")
    orientation: int  # the EXIF orientation tag, 1 when absent or out of 1..8
    oriented: bool  # True when the pixels were turned to the displayed frame


def decode_image(source: bytes | str | Path, name: str | None = None, *, orientation: str = "keep") -> Decoded:
    """Decode one image file to 8-bit RGB by the module's rules.

    ``source``: the file's bytes, or its path. ``name``: how errors and warnings name it (default: the
    path; required for bytes). ``orientation``: ``"keep"`` (dataset paths: stored pixels, warn when a
    turn is asked) or ``"apply"`` (user-facing paths: the displayed picture).
    Raises DatasetError for an empty, unreadable, truncated or oversized file and for a refused mode.
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}")
    if isinstance(source, (str, Path)):
        name = name or str(source)
        try:
            source = Path(source).read_bytes()
        except OSError as e:
            raise DatasetError(f"{name}: cannot be read ({e.strerror or e})") from e
    if name is None:
        raise ValueError("decode_image needs a name to report for bytes")
    if not source:
        raise DatasetError(f"{name}: empty file (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(source))
            tag = int(img.getexif().get(EXIF_ORIENTATION, 1) or 1)
            img.load()
        except UnidentifiedImageError:
            raise DatasetError(f"{name}: not a readable image (no image format recognised in its {len(source)} bytes)") from None
        except (OSError, SyntaxError, ValueError, TypeError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise DatasetError(f"{name}: not a readable image ({type(e).__name__}: {e})") from e
    tag = tag if tag in range(1, 9) else 1
    mode = img.mode
    rgb = to_rgb8(img, name)
    turn = orientation == "apply" and tag in UPRIGHT
    if turn:
        rgb = rgb.transpose(UPRIGHT[tag])
    elif tag in UPRIGHT:
        warnings.warn(f"{name}: EXIF orientation {tag} not applied (dataset boxes refer to the stored pixels)", OrientationNotApplied, stacklevel=2)
    return Decoded(rgb, mode, tag, turn)


def to_rgb8(img: Image.Image, name: str = "image") -> Image.Image:
    """The module's mode rule: any mode Pillow opens -> 8-bit RGB, or DatasetError naming the mode."""
    mode = img.mode
    if mode in EIGHT_BIT:
        return img.convert("RGB")
    if mode == "La":  # premultiplied grey + alpha: Pillow converts it only to LA
        return img.convert("LA").convert("RGB")
    if mode in WIDE_INT:
        bits = _stated_bits(img)
        if bits is None or not 1 <= bits <= 16:
            raise DatasetError(f"{name}: image mode {mode} with {bits or 'no stated'} bits per sample has no 8-bit rule "
                               "(integer images are scaled from at most 16 stated bits); save it as 8- or 16-bit")
        v = np.asarray(img).astype(np.int64)
        top = (1 << bits) - 1
        if v.size and (v.min() < 0 or v.max() > top):
            raise DatasetError(f"{name}: image mode {mode} holds samples in [{v.min()}, {v.max()}], outside its stated "
                               f"{bits}-bit range [0, {top}]")
        return _grey((v * 255 + top // 2) // top)
    if mode == "F":
        lo, hi = _stated_range(img)
        v = np.asarray(img).astype(np.float64)
        if v.size and not np.isfinite(v).all():
            raise DatasetError(f"{name}: image mode F holds non-finite samples (NaN or infinity)")
        if v.size and (v.min() < lo or v.max() > hi):
            raise DatasetError(f"{name}: image mode F holds samples in [{v.min():g}, {v.max():g}], outside its stated "
                               f"range [{lo:g}, {hi:g}] ([0, 1] when the file states none)")
        return _grey(np.floor(255 * (v - lo) / (hi - lo) + 0.5))
    raise DatasetError(f"{name}: image mode {mode} is not supported (8-bit, palette, alpha, CMYK, YCbCr, LAB, HSV, "
                       "16-bit integer and float images are)")


def _grey(v: np.ndarray) -> Image.Image:
    return Image.fromarray(v.astype(np.uint8), "L").convert("RGB")


def _stated_bits(img: Image.Image) -> int | None:
    """Bits per sample the file states: TIFF's BitsPerSample, 16 for PNG (its deepest greyscale), else None."""
    tags = getattr(img, "tag_v2", None)
    if tags is not None and 258 in tags:
        bits = tags[258]
        return int(bits[0] if isinstance(bits, tuple) else bits)
    if img.format == "PNG" or img.mode.startswith("I;16"):
        return 16
    return None


def _stated_range(img: Image.Image) -> tuple[float, float]:
    """A float image's sample range: TIFF's SMinSampleValue / SMaxSampleValue (tags 340 / 341), else [0, 1]."""
    tags = getattr(img, "tag_v2", None)
    first = lambda t: float(t[0] if isinstance(t, tuple) else t)
    if tags is not None and 340 in tags and 341 in tags and first(tags[341]) > first(tags[340]):
        return first(tags[340]), first(tags[341])
    return 0.0, 1.0


# --- listing ----------------------------------------------------------------------------------

# name -> kind, for files and folders that operating systems and tools leave in dataset trees
JUNK = {".DS_Store": ".DS_Store (macOS Finder)", "Thumbs.db": "Thumbs.db (Windows thumbnails)",
        "desktop.ini": "desktop.ini (Windows folder settings)", "__MACOSX": "__MACOSX/ (macOS zip metadata)",
        "@eaDir": "@eaDir/ (Synology thumbnails)", ".ipynb_checkpoints": ".ipynb_checkpoints/ (Jupyter)",
        "$RECYCLE.BIN": "$RECYCLE.BIN/ (Windows)", "System Volume Information": "System Volume Information/ (Windows)"}
APPLEDOUBLE = "._* (macOS AppleDouble)"
DOTFILE = "other dot-files"
NOT_IMAGE = "files without an image extension"
_DELETE = {APPLEDOUBLE: "-name '._*'", ".DS_Store (macOS Finder)": "-name .DS_Store", "Thumbs.db (Windows thumbnails)": "-iname Thumbs.db",
           "desktop.ini (Windows folder settings)": "-iname desktop.ini"}
_DELETE_DIRS = {"__MACOSX/ (macOS zip metadata)": "__MACOSX", "@eaDir/ (Synology thumbnails)": "@eaDir",
                ".ipynb_checkpoints/ (Jupyter)": ".ipynb_checkpoints"}


class Scan(NamedTuple):
    files: list[Path]  # files with one of the extensions asked for, sorted by name
    folders: list[Path]  # sub-folders that are not junk, sorted by name
    skipped: Counter  # kind -> how many entries were skipped (JUNK kinds, APPLEDOUBLE, DOTFILE, NOT_IMAGE)
    examples: dict  # kind -> the first path skipped of that kind


def junk_kind(name: str) -> str | None:
    """The kind of junk a file or folder name is (:data:`JUNK`, AppleDouble, another dot-file), or None."""
    kind = JUNK.get(name) or JUNK.get({"thumbs.db": "Thumbs.db", "desktop.ini": "desktop.ini"}.get(name.lower(), ""))
    if kind:
        return kind
    if name.startswith("._"):
        return APPLEDOUBLE
    if name.startswith("."):
        return DOTFILE
    return None


def find(root: Path | str, pattern: str) -> list[Path]:
    """The paths under ``root`` that match the glob ``pattern``, sorted, except those whose path below ``root`` passes
    through junk (:func:`junk_kind`): what a layout's or an archive's file patterns mean."""
    root = Path(root)
    return sorted(p for p in root.glob(pattern) if all(junk_kind(part) is None for part in p.relative_to(root).parts))


def scan(folder: Path | str, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> Scan:
    """One folder's entries (module docstring): files with ``extensions`` (case-insensitive), sub-folders, and the
    skipped entries counted by kind. Raises DatasetError when ``folder`` is not a readable folder."""
    folder = Path(folder)
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as e:
        raise DatasetError(f"{folder}: not a readable folder ({e.strerror or e})") from e
    files, folders, skipped, examples = [], [], Counter(), {}
    for path in entries:
        kind = junk_kind(path.name)
        if kind is None and path.is_file() and path.suffix.lower() not in extensions:
            kind = NOT_IMAGE
        if kind is not None:
            skipped[kind] += 1
            examples.setdefault(kind, path)
        elif path.is_dir():
            folders.append(path)
        elif path.is_file():
            files.append(path)
    return Scan(files, folders, skipped, examples)


def junk_note(skipped: Counter, examples: dict, root: Path | str) -> str | None:
    """One line for everything a listing skipped under ``root``: how many of each kind, and how to delete the junk."""
    if not skipped:
        return None
    parts = [f"{n:,} {kind} (e.g. {examples[kind]})" for kind, n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0]))]
    note = f"skipped {sum(skipped.values()):,} entries that are not dataset images under {root}: " + "; ".join(parts)
    files = [_DELETE[k] for k in skipped if k in _DELETE]
    dirs = [_DELETE_DIRS[k] for k in skipped if k in _DELETE_DIRS]
    if files:
        note += f". Delete the OS files with: find '{root}' -type f \\( {' -o '.join(files)} \\) -delete"
    if dirs:
        note += f"; the folders with: find '{root}' -type d \\( {' -o '.join(f'-name {d!r}' for d in dirs)} \\) -prune -exec rm -rf {{}} +"
    return note
