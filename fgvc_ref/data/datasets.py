"""The datasets ``prepare --dataset`` reads, each in its native layout, and their expected sizes.

| name | loader | classes | train / test images | boxes |
|---|---|---|---|---|
| ``stanford_cars`` | :mod:`fgvc_ref.data.stanford_cars` (five layouts) | 196 | 8,144 / 8,041 | yes |
| ``cub`` | :mod:`fgvc_ref.data.cub` | 200 | 5,994 / 5,794 | yes |
| ``aircraft[:variant|family|manufacturer]`` | :mod:`fgvc_ref.data.aircraft` (banner removed) | 100 / 70 / 30 | 6,667 / 3,333 | yes |
| ``dogs`` | :mod:`fgvc_ref.data.dogs` | 120 | 12,000 / 8,580 | yes (union of the dogs) |
| ``flowers102`` | :mod:`fgvc_ref.data.flowers102` | 102 | 2,040 (train + val) / 6,149 | no |
| ``folder`` | :mod:`fgvc_ref.data.folder` (any class folders, optional box CSV) | any | any | optional |

The expected counts are enforced unless ``any_size``; ``boxes=False`` drops the boxes (whole
images, the protocol of most published numbers on these sets; docs/datasets/).
"""

from __future__ import annotations

from pathlib import Path

from fgvc_ref.data.records import DatasetError, LoadedSplit

NAMES = ("stanford_cars", "cub", "aircraft", "aircraft:variant", "aircraft:family", "aircraft:manufacturer", "dogs", "flowers102", "folder")


def load_dataset(name: str, root: Path | str, split: str, *, any_size: bool = False, boxes: bool = True,
                 bbox_csv: Path | str | None = None) -> LoadedSplit:
    """One split of dataset ``name`` (one of :data:`NAMES`) from ``root``."""
    kind, _, level = name.partition(":")
    if name not in NAMES:
        raise DatasetError(f"unknown dataset {name!r}; use one of {', '.join(NAMES)}")
    if kind == "stanford_cars":
        from fgvc_ref.data.stanford_cars import FULL, load_stanford_cars

        loaded = load_stanford_cars(root, split, expected=None if any_size else FULL)
    elif kind == "cub":
        from fgvc_ref.data.cub import FULL, load_cub

        loaded = load_cub(root, split, expected=None if any_size else FULL, boxes=boxes)
    elif kind == "aircraft":
        from fgvc_ref.data.aircraft import FULL, load_aircraft

        level = level or "variant"
        loaded = load_aircraft(root, split, level=level, expected=None if any_size else FULL[level], boxes=boxes)
    elif kind == "dogs":
        from fgvc_ref.data.dogs import FULL, load_dogs

        loaded = load_dogs(root, split, expected=None if any_size else FULL, boxes=boxes)
    elif kind == "flowers102":
        from fgvc_ref.data.flowers102 import FULL, load_flowers102

        loaded = load_flowers102(root, split, expected=None if any_size else FULL)
    else:
        from fgvc_ref.data.folder import load_folder

        loaded = load_folder(root, split, bbox_csv=bbox_csv)
    if not boxes:
        loaded = loaded._replace(records=[r._replace(bbox=None) for r in loaded.records])
    return loaded
