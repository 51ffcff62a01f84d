"""What every loader returns: records of (path, label, box), with the checks they share.

A record names its image by a file path, or, for an image stored inside an archive (a Hugging Face
Parquet or Arrow shard, :mod:`fgvc_ref.data.hub`), by the shard's path and the row that holds it.

A box is ``(x1, y1, x2, y2)`` in Stanford Cars' convention: 1-based, inclusive pixel indices, so
the pixels it covers are columns ``x1-1 .. x2-1`` and rows ``y1-1 .. y2-1`` (the PIL crop box
``(x1 - 1, y1 - 1, x2, y2)``, docs/recipe.md, gotcha 12).

**Names** (class names, and the file names annotations join on) are compared in Unicode normal form
C (:func:`nfc`): macOS writes file names decomposed (NFD: ``e`` + U+0308), most tools and annotation
files composed (NFC: U+00EB), and the two spell the same name. Class names are kept in NFC. Where
two class lists still differ, :func:`names_differ` writes every name with escapes (``ascii()``), so
that two lists that look identical show how they differ.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

Box = tuple[int, int, int, int]


class DatasetError(ValueError):
    """A dataset that cannot be used as it is; the message names the path and what differs."""


class Record(NamedTuple):
    path: str  # image file, or the shard (Parquet / Arrow IPC file) that holds the image in row ``row``
    label: int  # 0-based class index in the dataset's canonical class order
    bbox: Box | None  # 1-based inclusive (x1, y1, x2, y2), or None: use the whole image
    trim_bottom: int = 0  # pixel rows cut from the bottom before anything else (FGVC-Aircraft's copyright banner)
    row: int | None = None  # the image's 0-based row in the shard ``path``; None: ``path`` is the image file
    column: str = ""  # the shard's image column (rows only)
    root: str = ""  # the folder a row's relative image ``path`` is read from when its bytes are null (rows only)


class LoadedSplit(NamedTuple):
    records: list[Record]
    classes: list[str]  # class names, index = label
    layout: str  # which layout was found
    notes: tuple[str, ...] = ()  # what the user should read: the layout chosen and why, files skipped, the class order found
    available: tuple[tuple[str, int | None], ...] = ()  # every split the copy holds and its images (None: no files here), so
    # that the splits no cache split is made of can be named (Hugging Face copies; () for loaders with one official split)


def nfc(name: str) -> str:
    """``name`` in Unicode normal form C (composed), the one form names are compared and kept in."""
    return unicodedata.normalize("NFC", name)


def names_differ(a: list[str], b: list[str], a_is: str, b_is: str) -> str | None:
    """None when two class lists hold the same names in the same order (compared in NFC); else what differs: the names
    only one holds, or the first position where the order differs, each name with escapes (``ascii()``)."""
    x, y = [nfc(n) for n in a], [nfc(n) for n in b]
    if x == y:
        return None
    shown = lambda names: ", ".join(ascii(n) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    only_a, only_b = [n for n in x if n not in set(y)], [n for n in y if n not in set(x)]
    parts = [f"{len(x)} classes in {a_is}, {len(y)} in {b_is}"]
    parts += [f"only in {a_is}: {shown(only_a)}"] if only_a else []
    parts += [f"only in {b_is}: {shown(only_b)}"] if only_b else []
    if not only_a and not only_b:
        k = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
        parts.append(f"the same names in another order: class {k} is {ascii(x[k]) if k < len(x) else 'none'} in {a_is}, "
                     f"{ascii(y[k]) if k < len(y) else 'none'} in {b_is}")
    return "; ".join(parts)


def edges_box(left: float, top: float, right: float, bottom: float) -> Box:
    """A box given by its pixel edges (0-based, PIL's crop box; floats allowed) as the project's 1-based inclusive box,
    each edge rounded to the nearest pixel, half up: ``(floor(left + 1/2) + 1, floor(top + 1/2) + 1, floor(right + 1/2),
    floor(bottom + 1/2))``. Exact for whole numbers: the crop equals PIL's ``crop((left, top, right, bottom))``."""
    return math.floor(left + 0.5) + 1, math.floor(top + 0.5) + 1, math.floor(right + 0.5), math.floor(bottom + 0.5)


def check_split(split: LoadedSplit, root: Path | str, name: str, *, expected_images: int | None = None,
                expected_classes: int | None = None) -> LoadedSplit:
    """Refuse a split with a wrong class count, an empty class or a wrong image count."""
    k = len(split.classes)
    hint = " (the dataset's official count; prepare --any-size accepts a subset or a copy of another size)"
    if expected_classes is not None and k != expected_classes:
        raise DatasetError(f"{root}: expected {expected_classes} classes, found {k} ({split.layout} layout){hint}")
    if expected_images is not None and len(split.records) != expected_images:
        raise DatasetError(f"{root}: split {name!r} should have {expected_images} images, found {len(split.records)} ({split.layout} layout){hint}")
    counts = Counter(r.label for r in split.records)
    bad = [lab for lab in counts if not 0 <= lab < k]
    if bad:
        raise DatasetError(f"{root}: split {name!r} has labels outside 0..{k - 1}: {sorted(bad)[:10]}")
    empty = [split.classes[c] for c in range(k) if counts[c] == 0]
    if empty:
        raise DatasetError(f"{root}: split {name!r} has {len(empty)} empty class(es), expected >= 1 image each: {empty[:10]}")
    return split


def as_int(value, path: Path, field: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError) as e:
        raise DatasetError(f"{path}: field {field!r} must be an integer, got {value!r}") from e


def load_mat(path: Path) -> dict:
    """A MATLAB .mat file's variables (scipy, ``squeeze_me``); DatasetError naming the file otherwise."""
    try:
        from scipy.io import loadmat
    except ImportError as e:  # pragma: no cover - scipy is in the 'cars' extra
        raise DatasetError(f"{path}: reading .mat files needs scipy: pip install 'fgvc_ref[cars]'") from e
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        return loadmat(str(path), squeeze_me=True)
    except Exception as e:  # scipy raises several types for a corrupt file
        raise DatasetError(f"{path}: not a readable MATLAB .mat file ({type(e).__name__}: {e})") from e


def mat_variable(path: Path, var: str, m: dict | None = None) -> np.ndarray:
    """One variable of a .mat file as a 1-D array; DatasetError listing the variables there when it is absent."""
    m = load_mat(path) if m is None else m
    if var not in m:
        raise DatasetError(f"{path}: variable {var!r} not found; it has {sorted(k for k in m if not k.startswith('__'))}")
    return np.atleast_1d(m[var])


def read_table(path: Path, columns: int, what: str) -> list[list[str]]:
    """A whitespace-separated text file as rows of exactly ``columns`` fields (the last one keeps its spaces), in NFC;
    blank lines are skipped; DatasetError naming ``file:line`` for a short row."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not a UTF-8 text file ({e})") from e
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row = nfc(line).strip().split(maxsplit=columns - 1)
        if len(row) != columns:
            raise DatasetError(f"{path}:{number}: expected {columns} fields ({what}), got {len(row)}: {line.strip()!r}")
        rows.append(row)
    return rows
