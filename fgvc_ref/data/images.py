"""Image files in, 8-bit RGB out: the package's one decoder and its one file lister.

Every path that reads an image (``prepare`` and each loader, ``predict``, ``evaluate`` on a folder,
the gallery, the Hugging Face reader) calls :func:`decode_image`, and every path that lists a folder
calls :func:`scan` (one folder) or :func:`find` (a glob pattern), so a rule fixed here holds everywhere.

**Decoding** (:func:`decode_image`): the bytes are opened with Pillow (``LOAD_TRUNCATED_IMAGES``
off), the first frame is loaded, and :func:`to_rgb8` maps the mode to 8-bit RGB by one rule:

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

**Size**: Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, 89,478,485 pixels by default,
about 9,459 x 9,459) holds on every path. Dataset paths refuse a file over it, naming its size. A
user-facing path says how far a picture may be reduced and still give it the pixels it needs
(``max_reduction``): a JPEG over the limit is then decoded at 1/2, 1/4 or 1/8 of its width and
height by JPEG draft mode (the decoder's DCT scaling, which never builds the full picture: a
108-megapixel phone photo is read as 12,000 x 9,000 / 8 = 1,500 x 1,125 for a 224-pixel model), the
largest of these the caller can afford, less its last row and column of reduced pixels when they
cover only part of a block (so that the picture is exactly ``1/r`` of the file's); Pillow's limit then
applies to the reduced picture. Any other
file over the limit, or a JPEG that cannot be reduced below it, is refused with its size and how to
allow it: ``max_pixels`` (``--max-image-pixels N`` of ``predict``, ``evaluate`` and ``gallery``) raises
the limit for that decode, and :func:`pixel_limit` for the crops that follow (Pillow's limit is a
module global, checked by ``crop`` too: it is set for that work and put back; not for threads).

**Listing** (:func:`scan`: one folder; :func:`find`: a glob pattern, any depth):

- *image files* are those whose extension, in any case, Pillow registers for a picture format of
  :data:`PICTURE_FORMATS` whose decoder this Pillow has (:func:`image_extensions`: ``.jpg .jpeg .jpe
  .jfif`` JPEG, ``.png .apng``, ``.webp`` and ``.avif`` when Pillow was built with them, ...). Other
  files are skipped and counted by extension, and the note says which extensions are read.
- *junk*, the files and folders that operating systems and tools leave in dataset trees
  (:data:`JUNK`, AppleDouble ``._*``, other dot-files), is skipped and counted; :func:`junk_note`
  turns the counts into one line that says how to delete it. Entries that are neither files nor
  folders (sockets, pipes) are counted too: nothing is dropped without a count.
- *symbolic links* are followed, to files and to folders, inside or outside the tree: a link lists
  as what it points to, under its own name. A broken link, and a link to a folder the listing is
  already inside (the folder holding it, one above it, or one a deep walk came down through: a
  cycle), are a DatasetError naming each such link and its target.
- *names* are compared in Unicode NFC (:func:`~fgvc_ref.data.records.nfc`): entries are sorted by their
  NFC name, :func:`find` matches patterns against NFC names, and :func:`on_disk` finds the file an
  annotation names when the disk spells it in another normal form (a tree copied from macOS).

Every error is a :class:`~fgvc_ref.data.records.DatasetError` whose message starts with the name
given (the file's path, or ``shard, split, row`` for an image read from an archive), never an
in-memory object.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from fgvc_ref.data.records import DatasetError, Record, nfc

# Pillow's picture formats that hold photos and dataset images -> the Pillow feature their decoder needs (None: built in).
# HEIF (.heic, iPhones) is read only where a Pillow plugin registers it (pillow-heif's register_heif_opener()).
PICTURE_FORMATS = {"JPEG": "jpg", "PNG": "zlib", "GIF": None, "BMP": None, "DIB": None, "TIFF": None, "PPM": None,
                   "WEBP": "webp", "AVIF": "avif", "JPEG2000": "jpg_2000", "HEIF": None}
JPEG_START = b"\xff\xd8\xff"  # a JPEG's first bytes (start-of-image marker, then a segment marker)
REDUCTIONS = (8, 4, 2)  # JPEG draft mode decodes at 1/8, 1/4 or 1/2 of the width and height
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
    reduced: int = 1  # 1, or 2, 4, 8: a JPEG over the pixel limit decoded at 1/reduced of its width and height (draft mode)


def decode_image(source: bytes | str | Path, name: str | None = None, *, orientation: str = "keep",
                 max_reduction: Callable[[int, int], float] | None = None, max_pixels: int | None = None) -> Decoded:
    """Decode one image file to 8-bit RGB by the module's rules.

    ``source``: the file's bytes, or its path. ``name``: how errors and warnings name it (default: the
    path; required for bytes). ``orientation``: ``"keep"`` (dataset paths: stored pixels, warn when a
    turn is asked) or ``"apply"`` (user-facing paths: the displayed picture). ``max_reduction`` (user-facing
    paths): given a picture's displayed width and height, the largest factor by which the caller can afford to
    have it reduced; a JPEG over the pixel limit is then read reduced (module docstring). ``max_pixels``: a pixel
    limit above Pillow's, for a file the user trusts.
    Raises DatasetError for an empty, unreadable, truncated or oversized file and for a refused mode.
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}")
    if isinstance(source, (str, Path)):
        name = name or str(source)
        try:
            source = Path(source).read_bytes()
        except OSError as e:
            link = f", a broken link to {os.readlink(source)}" if Path(source).is_symlink() and not Path(source).exists() else ""
            raise DatasetError(f"{name}: cannot be read ({e.strerror or e}{link})") from e
    if name is None:
        raise ValueError("decode_image needs a name to report for bytes")
    if not source:
        raise DatasetError(f"{name}: empty file (0 bytes)")
    try:
        img, tag, reduced = _load(source, name, max_reduction, max_pixels)
    except UnidentifiedImageError:
        raise DatasetError(f"{name}: not a readable image (no image format recognised in its {len(source)} bytes)") from None
    except DatasetError:
        raise
    except (OSError, SyntaxError, ValueError, TypeError) as e:
        raise DatasetError(f"{name}: not a readable image ({type(e).__name__}: {e})") from e
    mode = img.mode
    rgb = to_rgb8(img, name)
    turn = orientation == "apply" and tag in UPRIGHT
    if turn:
        rgb = rgb.transpose(UPRIGHT[tag])
    elif tag in UPRIGHT:
        warnings.warn(f"{name}: EXIF orientation {tag} not applied (dataset boxes refer to the stored pixels)", OrientationNotApplied, stacklevel=2)
    return Decoded(rgb, mode, tag, turn, reduced)


def _orientation(img: Image.Image) -> int:
    tag = int(img.getexif().get(EXIF_ORIENTATION, 1) or 1)
    return tag if tag in range(1, 9) else 1


@contextlib.contextmanager
def pixel_limit(max_pixels: int | None):
    """Pillow's decompression-bomb limit raised to ``max_pixels`` for the work inside, then put back (None, or a value not
    above the limit: untouched). Pillow checks the size of a crop too, so a caller that allowed a large file decodes it
    and crops it inside this."""
    saved = Image.MAX_IMAGE_PIXELS
    if max_pixels is None or saved is None or max_pixels <= saved:
        yield
        return
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _load(data: bytes, name: str, max_reduction, max_pixels: int | None) -> tuple[Image.Image, int, int]:
    """The first frame, loaded, within the pixel limit (module docstring): (image, EXIF orientation, reduction)."""
    limit = Image.MAX_IMAGE_PIXELS
    if max_pixels is not None and limit is not None:
        limit = max(limit, max_pixels)
    try:
        with pixel_limit(max_pixels), warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            tag = _orientation(img)
            img.load()
        return img, tag, 1
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        found = re.search(r"\((\d+) pixels\)", str(e))
        pixels = int(found.group(1)) if found else None
    if max_reduction is not None and data.startswith(JPEG_START):
        from PIL import JpegImagePlugin

        img = JpegImagePlugin.jpeg_factory(io.BytesIO(data))  # Pillow's open without its size check: checked below, once reduced
        tag = _orientation(img)
        w, h = img.size
        pixels = w * h
        shown = (h, w) if tag in (5, 6, 7, 8) else (w, h)
        factor = next((f for f in REDUCTIONS if f <= max_reduction(*shown)), 1)
        drafted = img.draft(img.mode, (w // factor, h // factor)) if factor > 1 else None
        reduced = round(w / drafted[1][2]) if drafted else 1
        if img.width * img.height <= limit:
            img.load()
            if reduced > 1:  # the last row and column hold a partial block: cut, so that the picture is exactly 1/reduced of the file's
                img = img.crop((0, 0, w // reduced, h // reduced))
            return img, tag, reduced
        raise DatasetError(_too_large(name, pixels, limit, user=True, why=f"even read at 1/{reduced} (JPEG draft mode) it has "
                                      f"{img.width * img.height:,} pixels" if reduced > 1 else "read at 1/2 it would lose pixels the model uses"))
    user = max_reduction is not None or max_pixels is not None
    raise DatasetError(_too_large(name, pixels, limit, user=user, why="only a JPEG can be read reduced" if user else ""))


def _too_large(name: str, pixels: int | None, limit: int, *, user: bool, why: str) -> str:
    size = f"{pixels:,} pixels" if pixels else "its size"
    text = f"{name}: {size} is over the {limit:,}-pixel limit that guards against decompression bombs (Pillow's Image.MAX_IMAGE_PIXELS)"
    if not user:
        return text + "; dataset preparation keeps it: downscale the file, or check that it is the picture it should be"
    return text + f" ({why}); if you trust the file, allow it: --max-image-pixels {pixels or 'N'} (max_pixels={pixels or 'N'})"


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
NOT_IMAGE = "files without an image extension"  # counted per extension: "files without an image extension (.heic)"
SPECIAL = "entries that are neither files nor folders (sockets, pipes, devices)"
FILE, FOLDER = "file", "folder"
IMAGE = ".<image>"  # in a find pattern, at the end of the last name: any image extension, in any case
_DELETE = {APPLEDOUBLE: "-name '._*'", ".DS_Store (macOS Finder)": "-name .DS_Store", "Thumbs.db (Windows thumbnails)": "-iname Thumbs.db",
           "desktop.ini (Windows folder settings)": "-iname desktop.ini"}
_DELETE_DIRS = {"__MACOSX/ (macOS zip metadata)": "__MACOSX", "@eaDir/ (Synology thumbnails)": "@eaDir",
                ".ipynb_checkpoints/ (Jupyter)": ".ipynb_checkpoints"}


class Scan(NamedTuple):
    files: list[Path]  # image files, sorted by (NFC) name
    folders: list[Path]  # sub-folders that are not junk, sorted by (NFC) name
    skipped: Counter  # kind -> how many entries were skipped (JUNK kinds, APPLEDOUBLE, DOTFILE, NOT_IMAGE (.ext), SPECIAL)
    examples: dict  # kind -> the first path skipped of that kind
    others: list[tuple[Path, str]]  # every entry skipped, with its kind, sorted by name


def image_extensions() -> tuple[str, ...]:
    """The image extensions read here, lower case with the dot, sorted: every extension Pillow registers an opener for,
    of a format in :data:`PICTURE_FORMATS` whose decoder this Pillow was built with."""
    from PIL import features

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a feature this Pillow does not know is one it does not have
        return tuple(sorted(ext for ext, fmt in Image.registered_extensions().items()
                            if fmt in PICTURE_FORMATS and fmt in Image.OPEN and (PICTURE_FORMATS[fmt] is None or features.check(PICTURE_FORMATS[fmt]))))


def not_image_kind(path: Path) -> str:
    """The skip kind of a file whose extension is not an image extension: :data:`NOT_IMAGE` with the extension."""
    return f"{NOT_IMAGE} ({path.suffix.lower() or 'none'})"


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


def _entries(folder: Path, inside: frozenset = frozenset()) -> list[tuple[Path, str]]:
    """``(path, what)`` for every entry of ``folder``, sorted by NFC name: what is FILE, FOLDER, a junk kind or SPECIAL.
    Links are followed; broken links and cycles are one DatasetError naming each (module docstring). ``inside``: the real
    folders a deep walk came down through."""
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: (nfc(e.name), e.name))
    except OSError as e:
        raise DatasetError(f"{folder}: not a readable folder ({e.strerror or e})") from e
    real = folder.resolve()
    above = inside | {real, *real.parents}
    out, bad = [], []
    for entry in entries:
        path = folder / entry.name
        kind = junk_kind(entry.name)
        if kind is None and entry.is_symlink():
            problem = _link_problem(path, above)
            if problem:
                bad.append(problem)
                continue
        if kind is None:
            kind = FOLDER if entry.is_dir() else FILE if entry.is_file() else SPECIAL
        out.append((path, kind))
    if bad:
        raise DatasetError(f"{folder}: {len(bad)} symbolic link(s) cannot be followed: {'; '.join(bad)}. Links are followed "
                           "wherever they point (docs/data.md): restore their targets or remove them")
    return out


def _link_problem(link: Path, above: frozenset) -> str | None:
    """Why a link cannot be followed (broken, a loop, a folder the listing is inside), or None."""
    target = os.readlink(link)
    try:
        real = link.resolve(strict=True)
    except RuntimeError:  # Python < 3.13: a symlink loop
        return f"{link} -> {target} is a loop of links"
    except OSError as e:
        return f"{link} -> {target} is " + ("a loop of links" if e.errno == errno.ELOOP else "broken (its target does not exist)")
    if real in above and real.is_dir():
        return f"{link} -> {target} is a cycle (it leads back to {real}, a folder the listing is inside)"
    return None


def scan(folder: Path | str, extensions: tuple[str, ...] | None = None) -> Scan:
    """One folder's entries (module docstring): files with ``extensions`` (default :func:`image_extensions`; any case),
    sub-folders, and the skipped entries counted by kind. Raises DatasetError when ``folder`` is not a readable folder,
    or holds a link that cannot be followed."""
    extensions = image_extensions() if extensions is None else extensions
    files, folders, skipped, examples, others = [], [], Counter(), {}, []
    for path, kind in _entries(Path(folder)):
        if kind == FILE and path.suffix.lower() not in extensions:
            kind = not_image_kind(path)
        if kind == FILE:
            files.append(path)
        elif kind == FOLDER:
            folders.append(path)
        else:
            skipped[kind] += 1
            examples.setdefault(kind, path)
            others.append((path, kind))
    return Scan(files, folders, skipped, examples, others)


def find(root: Path | str, pattern: str) -> list[Path]:
    """The paths under ``root`` that match the glob ``pattern``, sorted: ``*``, ``?`` and ``[...]`` within a name, ``**``
    for any number of folders, and :data:`IMAGE` ending the last name for an image extension in any case
    (``"train/*/*.<image>"``). Names match in NFC; no path passes through junk; links are followed, and a broken link
    or a cycle on the way is a DatasetError (module docstring)."""
    root = Path(root)
    parts = [part for part in pattern.split("/") if part]
    extensions = image_extensions()
    found: set[Path] = set()

    def walk(folder: Path, rest: list[str], inside: frozenset) -> None:
        head, tail = rest[0], rest[1:]
        listed = [(p, kind) for p, kind in _entries(folder, inside) if kind in (FILE, FOLDER)]
        if head == "**":
            if tail:
                walk(folder, tail, inside)
            else:
                found.add(folder)
            for path, kind in listed:
                if kind == FOLDER:
                    walk(path, rest, inside | {path.resolve()})
            return
        for path, kind in listed:
            if not _matches(path.name, head, extensions):
                continue
            if not tail:
                found.add(path)
            elif kind == FOLDER:
                walk(path, tail, inside | {path.resolve()})

    if parts and root.is_dir():
        walk(root, parts, frozenset({root.resolve()}))
    return sorted(found - {root})


def _matches(name: str, part: str, extensions: tuple[str, ...]) -> bool:
    name, part = nfc(name), nfc(part)
    if part.endswith(IMAGE):
        suffix = Path(name).suffix
        return suffix.lower() in extensions and fnmatchcase(name[: len(name) - len(suffix)], part[: -len(IMAGE)])
    return fnmatchcase(name, part)


def on_disk(path: Path, listings: dict | None = None) -> Path:
    """``path`` as the disk spells it when it is there only under names in another Unicode normal form (a tree copied from
    macOS names files in NFD, annotation files name them in NFC); ``path`` itself when it exists as given or no single
    spelling matches. ``listings``: a cache of folder listings, shared by the calls of one loader."""
    if os.path.lexists(path):
        return path
    listings = {} if listings is None else listings
    base, rest = path, []
    while not os.path.lexists(base) and base != base.parent:
        rest.insert(0, base.name)
        base = base.parent
    for name in rest:
        if not os.path.lexists(base / name):
            if base not in listings:
                try:
                    names = os.listdir(base)
                except OSError:
                    names = []
                listings[base] = {}
                for n in names:
                    listings[base].setdefault(nfc(n), []).append(n)
            spellings = listings[base].get(nfc(name), [])
            if len(spellings) != 1:
                return path
            name = spellings[0]
        base = base / name
    return base


def located(records: list[Record], root: Path | str, layout: str) -> list[Record]:
    """The records with each image file as it is spelled on disk (a name an annotation file writes in NFC may be on
    disk in NFD: :func:`on_disk`); refuse records whose file is missing, naming how many and a
    few of them, a broken symbolic link as such."""
    listings: dict = {}
    records = [r._replace(path=str(on_disk(Path(r.path), listings))) for r in records]
    missing = [r.path for r in records if not Path(r.path).is_file()]
    if missing:
        named = [f"{p} (a broken link to {os.readlink(p)})" if Path(p).is_symlink() else p for p in missing[:5]]
        raise DatasetError(f"{root}: {len(missing)} image file(s) named by the {layout} annotations are missing, e.g. {named}")
    return records


def what_it_holds(found: Scan, limit: int = 8) -> str | None:
    """For a folder with no image file: the files and sub-folders it does hold instead, named (junk alone does not count),
    with the image extensions read; None when it holds images, or nothing but junk."""
    if found.files:
        return None
    others = [p for p, kind in found.others if kind.startswith(NOT_IMAGE) or kind == SPECIAL]
    named = [p.name for p in others] + [f"{p.name}/" for p in found.folders]
    if not named:
        return None
    more = f" and {len(named) - limit} more" if len(named) > limit else ""
    return (f"{', '.join(ascii(n) for n in named[:limit])}{more}, but no image file (image extensions read here: "
            f"{' '.join(image_extensions())}; sub-folders are not read)")


def junk_note(skipped: Counter, examples: dict, root: Path | str) -> str | None:
    """One line for everything a listing skipped under ``root``: how many of each kind, how to delete the junk, and which
    extensions are read when files were skipped for theirs."""
    if not skipped:
        return None
    parts = [f"{n:,} {kind} (e.g. {examples[kind]})" for kind, n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0]))]
    note = f"skipped {sum(skipped.values()):,} entries that are not dataset images under {root}: " + "; ".join(parts)
    if any(kind.startswith(NOT_IMAGE) for kind in skipped):
        note += f". Image extensions read here (any case): {' '.join(image_extensions())}"
    files = [_DELETE[k] for k in skipped if k in _DELETE]
    dirs = [_DELETE_DIRS[k] for k in skipped if k in _DELETE_DIRS]
    if files:
        note += f". Delete the OS files with: find '{root}' -type f \\( {' -o '.join(files)} \\) -delete"
    if dirs:
        note += f"; the folders with: find '{root}' -type d \\( {' -o '.join(f'-name {d!r}' for d in dirs)} \\) -prune -exec rm -rf {{}} +"
    return note
