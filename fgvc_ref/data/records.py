"""What every loader returns: records of (path, label, box), with the checks they share.

A box is ``(x1, y1, x2, y2)`` in Stanford Cars' convention: 1-based, inclusive pixel indices, so
the pixels it covers are columns ``x1-1 .. x2-1`` and rows ``y1-1 .. y2-1`` (the PIL crop box
``(x1 - 1, y1 - 1, x2, y2)``, docs/recipe.md, gotcha 12).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import NamedTuple

Box = tuple[int, int, int, int]


class DatasetError(ValueError):
    """A dataset that cannot be used as it is; the message names the path and what differs."""


class Record(NamedTuple):
    path: str  # image file
    label: int  # 0-based class index in the dataset's canonical class order
    bbox: Box | None  # 1-based inclusive (x1, y1, x2, y2), or None: use the whole image


class LoadedSplit(NamedTuple):
    records: list[Record]
    classes: list[str]  # class names, index = label
    layout: str  # which layout was found


def check_split(split: LoadedSplit, root: Path | str, name: str, *, expected_images: int | None = None,
                expected_classes: int | None = None) -> LoadedSplit:
    """Refuse a split with a wrong class count, an empty class or a wrong image count."""
    k = len(split.classes)
    if expected_classes is not None and k != expected_classes:
        raise DatasetError(f"{root}: expected {expected_classes} classes, found {k} ({split.layout} layout)")
    if expected_images is not None and len(split.records) != expected_images:
        raise DatasetError(f"{root}: split {name!r} should have {expected_images} images, found {len(split.records)} ({split.layout} layout)")
    counts = Counter(r.label for r in split.records)
    bad = [lab for lab in counts if not 0 <= lab < k]
    if bad:
        raise DatasetError(f"{root}: split {name!r} has labels outside 0..{k - 1}: {sorted(bad)[:10]}")
    empty = [split.classes[c] for c in range(k) if counts[c] == 0]
    if empty:
        raise DatasetError(f"{root}: split {name!r} has {len(empty)} empty class(es), expected >= 1 image each: {empty[:10]}")
    return split
