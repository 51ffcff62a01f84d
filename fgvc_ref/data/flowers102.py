"""Oxford Flowers-102 from its official .mat files: 102 species, train + validation 2,040, test 6,149.

Nilsback, Zisserman, "Automated Flower Classification over a Large Number of Classes", ICVGIP 2008.
Layout (the official ``102flowers.tgz`` beside ``imagelabels.mat`` and ``setid.mat``; torchvision's
``Flowers102`` reads them under ``flowers-102/``)::

    jpg/image_00001.jpg ... image_08189.jpg
    imagelabels.mat     labels: the class (1..102) of image i at position i - 1
    setid.mat           trnid, valid, tstid: 1-based image ids of the three sets

Convention: train is ``trnid`` then ``valid`` (10 images per class each: 1,020 + 1,020), test is
``tstid`` (6,149: the large set, the one papers report); records follow those id lists, which is
torchvision's order within each set. The label is ``labels - 1``. The files carry no class names;
they are torchvision's ``Flowers102.classes``. No boxes.
"""

from __future__ import annotations

from pathlib import Path

from fgvc_ref.data.images import located
from fgvc_ref.data.layouts import Layout, find_layout
from fgvc_ref.data.records import DatasetError, LoadedSplit, Record, as_int, check_split, load_mat, mat_variable

FULL = {"classes": 102, "train": 2040, "test": 6149}
SETS = {"train": ("trnid", "valid"), "test": ("tstid",)}


PLACES = {"root": "", "torchvision": "flowers-102/"}  # torchvision's Flowers102 keeps them under flowers-102/


def find_root(root: Path | str, layout: str | None = None) -> tuple[Path, str]:
    """The folder holding setid.mat, imagelabels.mat and jpg/ (``root`` or ``root/flowers-102``), chosen by completeness
    (:mod:`fgvc_ref.data.layouts`), and the note saying so."""
    table = tuple(Layout(name, tuple(prefix + f for f in ("setid.mat", "imagelabels.mat", "jpg/")), f"the files in {prefix or 'the root'}")
                  for name, prefix in PLACES.items())
    found = find_layout(root, table, what="Flowers-102", force=layout)
    return Path(root) / PLACES[found.layout], found.note


def load_flowers102(root: Path | str, split: str, *, expected: dict | None = FULL, layout: str | None = None) -> LoadedSplit:
    """Records of train (trnid + valid) or test (tstid)."""
    from torchvision.datasets import Flowers102

    if split not in SETS:
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    base, note = find_root(root, layout)
    labels = [as_int(v, base / "imagelabels.mat", "labels") for v in mat_variable(base / "imagelabels.mat", "labels")]
    setid = load_mat(base / "setid.mat")
    records = []
    for name in SETS[split]:
        for image_id in (as_int(v, base / "setid.mat", name) for v in mat_variable(base / "setid.mat", name, setid)):
            if not 1 <= image_id <= len(labels):
                raise DatasetError(f"{base / 'setid.mat'}: {name} holds image id {image_id}, outside 1..{len(labels)} (imagelabels.mat)")
            records.append(Record(str(base / "jpg" / f"image_{image_id:05d}.jpg"), labels[image_id - 1] - 1, None))
    records = located(records, base, "Flowers-102")
    exp = expected or {}
    classes = list(Flowers102.classes)
    return check_split(LoadedSplit(records, classes, "flowers102", (note,)), base, split, expected_images=exp.get(split), expected_classes=exp.get("classes"))
