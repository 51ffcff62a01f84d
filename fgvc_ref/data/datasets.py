"""The datasets ``prepare --dataset`` reads, each in its native layout, and their expected sizes.

| name | loader | classes | train / test images | boxes |
|---|---|---|---|---|
| ``stanford_cars`` | :mod:`fgvc_ref.data.stanford_cars` (five layouts) | 196 | 8,144 / 8,041 | yes |
| ``cub`` | :mod:`fgvc_ref.data.cub` | 200 | 5,994 / 5,794 | yes |
| ``aircraft[:variant|family|manufacturer]`` | :mod:`fgvc_ref.data.aircraft` (banner removed) | 100 / 70 / 30 | 6,667 / 3,333 | yes |
| ``dogs`` | :mod:`fgvc_ref.data.dogs` | 120 | 12,000 / 8,580 | yes (union of the dogs) |
| ``flowers102`` | :mod:`fgvc_ref.data.flowers102` | 102 | 2,040 (train + val) / 6,149 | no |
| ``folder`` | :mod:`fgvc_ref.data.folder` (any class folders, optional box CSV) | any | any | optional |
| ``hub`` | :mod:`fgvc_ref.data.hub` (a Hugging Face dataset-repo snapshot or save_to_disk folder) | any | any | only a named box column |

The expected counts are enforced unless ``any_size``; ``boxes=False`` drops the boxes (whole
images, the protocol of most published numbers on these sets; docs/datasets/). ``layout`` forces a
layout where a loader detects one (Stanford Cars' layouts, or where the files sit); ``hub``
options (``image_column``, ``label_column``, ``box_column``, ``box_format``, ``config``, ``splits``) go
to the Hugging Face reader, including a Hugging Face copy of Stanford Cars.

**Splits.** Each loader above gives the official train and test splits (Flowers-102 and FGVC-Aircraft
train on train + val). A Hugging Face copy names its own splits: ``splits`` (``prepare
--train-splits A,B`` and ``--test-split NAME``, :func:`split_parts`) says which of them make the
cache's train and test, and :func:`unused_splits` names the ones left out, with their sizes.
"""

from __future__ import annotations

from pathlib import Path

from fgvc_ref.data.records import DatasetError, LoadedSplit

NAMES = ("stanford_cars", "cub", "aircraft", "aircraft:variant", "aircraft:family", "aircraft:manufacturer", "dogs", "flowers102",
         "folder", "hub")
HUB_OPTIONS = ("image_column", "label_column", "box_column", "box_format", "config", "splits")
FLAGS = {"image_column": "--image-column", "label_column": "--label-column", "box_column": "--box-column", "box_format": "--box-format",
         "config": "--hub-config", "splits": "--train-splits / --test-split"}  # the prepare options that set them


def split_parts(train_splits: str = "train", test_split: str = "test") -> dict[str, tuple[str, ...]]:
    """``--train-splits A,B`` and ``--test-split NAME`` as ``{"train": (A, B), "test": (NAME,)}``: the dataset's splits
    that each split of the cache is made of. Refuses an empty name, a name given twice, and a split both trained and
    tested on."""
    train, test = tuple(s.strip() for s in train_splits.split(",")), test_split.strip()
    if not all(train) or not test or "," in test:
        raise DatasetError(f"--train-splits {train_splits!r} --test-split {test_split!r}: give split names, e.g. --train-splits "
                           "train,validation --test-split test (one test split)")
    if len(set(train)) < len(train):
        raise DatasetError(f"--train-splits {train_splits!r} names a split twice")
    if test in train:
        raise DatasetError(f"split {test!r} is in --train-splits and is the --test-split: a model would be tested on images it trained on")
    return {"train": train, "test": (test,)}


def check_disjoint(loaded: dict[str, LoadedSplit]) -> None:
    """Refuse a test image that is also a train image (the same file, or the same row of the same shard): a Hugging Face
    card whose patterns name one shard in two splits would have the model tested on images it trained on."""
    train = {(r.path, r.row) for r in loaded["train"].records}
    shared = [r for r in loaded["test"].records if (r.path, r.row) in train]
    if shared:
        first = shared[0].path + ("" if shared[0].row is None else f" (row {shared[0].row})")
        raise DatasetError(f"{len(shared)} of the {len(loaded['test'].records)} test images are also train images, e.g. {first}: the "
                           "splits' files overlap (a card whose patterns name a shard in two splits?); fix the card, or choose other splits")


def unused_splits(loaded: dict[str, LoadedSplit], parts: dict[str, tuple[str, ...]]) -> str | None:
    """One line naming each split the copy holds that no part of the cache is made of (``parts``, from
    :func:`split_parts`), with its images, and the options that use it; None when every split is used or the loader
    does not list its copy's splits (``LoadedSplit.available``)."""
    used = {s for names in parts.values() for s in names}
    unused = {s: n for split in loaded.values() for s, n in split.available if s not in used}
    if not unused:
        return None
    said = ", ".join(f"{s!r} ({n:,} images)" if n is not None else f"{s!r} (no files here)" for s, n in unused.items())
    line = f"not used: split{'s' if len(unused) > 1 else ''} {said} of this copy"
    here = [s for s, n in unused.items() if n]
    if here:
        line += (f"; to train on {'it' if len(here) == 1 else 'them'} too, as the Flowers-102 and FGVC-Aircraft loaders train on train + "
                 f"val: --train-splits {','.join(parts['train'] + tuple(here))}; to test on {here[0]!r} instead: --test-split {here[0]}")
    return line


def load_dataset(name: str, root: Path | str, split: str, *, any_size: bool = False, boxes: bool = True,
                 bbox_csv: Path | str | None = None, layout: str | None = None, **hub_options) -> LoadedSplit:
    """One split of dataset ``name`` (one of :data:`NAMES`) from ``root``."""
    kind, _, level = name.partition(":")
    if name not in NAMES:
        raise DatasetError(f"unknown dataset {name!r}; use one of {', '.join(NAMES)}")
    unknown = sorted(set(hub_options) - set(HUB_OPTIONS))
    if unknown:
        raise TypeError(f"unknown option(s) {unknown}; the Hugging Face reader takes {HUB_OPTIONS}")
    hub_options = {k: v for k, v in hub_options.items() if v is not None and not (k == "splits" and tuple(v) == (split,))}
    if hub_options and kind not in ("stanford_cars", "hub"):
        raise DatasetError(f"{', '.join(FLAGS[k] for k in sorted(hub_options))}: options of the Hugging Face reader (--dataset hub, or a "
                           f"Hugging Face copy of stanford_cars), not of {name!r}"
                           + (", which has its official train and test splits" if "splits" in hub_options else ""))
    if kind == "stanford_cars":
        from fgvc_ref.data.stanford_cars import FULL, load_stanford_cars

        loaded = load_stanford_cars(root, split, expected=None if any_size else FULL, layout=layout, **hub_options)
    elif kind == "cub":
        from fgvc_ref.data.cub import FULL, load_cub

        loaded = load_cub(root, split, expected=None if any_size else FULL, boxes=boxes, layout=layout)
    elif kind == "aircraft":
        from fgvc_ref.data.aircraft import FULL, load_aircraft

        level = level or "variant"
        loaded = load_aircraft(root, split, level=level, expected=None if any_size else FULL[level], boxes=boxes, layout=layout)
    elif kind == "dogs":
        from fgvc_ref.data.dogs import FULL, load_dogs

        loaded = load_dogs(root, split, expected=None if any_size else FULL, boxes=boxes, layout=layout)
    elif kind == "flowers102":
        from fgvc_ref.data.flowers102 import FULL, load_flowers102

        loaded = load_flowers102(root, split, expected=None if any_size else FULL, layout=layout)
    elif kind == "hub":
        from fgvc_ref.data.hub import load_hub
        from fgvc_ref.data.records import check_split

        loaded = check_split(load_hub(root, split, layout=layout, **hub_options), root, split)
    else:
        from fgvc_ref.data.folder import load_folder

        if layout not in (None, "folders"):
            raise DatasetError(f"--layout {layout!r}: the folder dataset has one layout, folders")
        loaded = load_folder(root, split, bbox_csv=bbox_csv)
    if not boxes:
        loaded = loaded._replace(records=[r._replace(bbox=None) for r in loaded.records])
    return loaded
