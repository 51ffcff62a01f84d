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

from fgvc_ref.data.records import DatasetError, LoadedSplit, Record, as_int, check_files_exist, check_split, load_mat, mat_variable

FULL = {"classes": 102, "train": 2040, "test": 6149}
SETS = {"train": ("trnid", "valid"), "test": ("tstid",)}


def find_root(root: Path | str) -> Path:
    """The folder holding setid.mat: ``root`` or ``root/flowers-102`` (torchvision's)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset root not found (or not a directory)")
    for base in (root, root / "flowers-102"):
        if (base / "setid.mat").is_file() or (base / "imagelabels.mat").is_file():
            missing = [n for n in ("setid.mat", "imagelabels.mat", "jpg/") if not (base / n.rstrip("/")).exists()]
            if missing:
                raise DatasetError(f"{base}: Flowers-102 layout without {missing}")
            return base
    raise DatasetError(f"{root}: no Flowers-102 layout found: expected jpg/, imagelabels.mat and setid.mat in it or in flowers-102/; "
                       f"found {sorted(p.name for p in root.iterdir())[:20]}")


def load_flowers102(root: Path | str, split: str, *, expected: dict | None = FULL) -> LoadedSplit:
    """Records of train (trnid + valid) or test (tstid)."""
    from torchvision.datasets import Flowers102

    if split not in SETS:
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    base = find_root(root)
    labels = [as_int(v, base / "imagelabels.mat", "labels") for v in mat_variable(base / "imagelabels.mat", "labels")]
    setid = load_mat(base / "setid.mat")
    records = []
    for name in SETS[split]:
        for image_id in (as_int(v, base / "setid.mat", name) for v in mat_variable(base / "setid.mat", name, setid)):
            if not 1 <= image_id <= len(labels):
                raise DatasetError(f"{base / 'setid.mat'}: {name} holds image id {image_id}, outside 1..{len(labels)} (imagelabels.mat)")
            records.append(Record(str(base / "jpg" / f"image_{image_id:05d}.jpg"), labels[image_id - 1] - 1, None))
    check_files_exist(records, base, "Flowers-102")
    exp = expected or {}
    classes = list(Flowers102.classes)
    return check_split(LoadedSplit(records, classes, "flowers102"), base, split, expected_images=exp.get(split), expected_classes=exp.get("classes"))
