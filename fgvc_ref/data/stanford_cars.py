"""Stanford Cars from any of the copies users hold, as records in the canonical class order.

Krause, Stark, Deng, Fei-Fei, "3D Object Representations for Fine-Grained Categorization",
ICCV Workshops (3dRR) 2013: 196 classes, 8,144 train and 8,041 test images, one bounding box each.

The original host is gone (torchvision's ``StanfordCars(download=True)`` raises), so users have one
of these layouts (docs/data.md), detected in this order:

    car_ims         car_ims/000001.jpg ..., cars_annos.mat (relative_im_path, bbox_*, class, test, class_names)
    kaggle_devkit   cars_{train,test}/cars_{train,test}/*.jpg, car_devkit/devkit/*.mat
    devkit          cars_{train,test}/*.jpg, devkit/cars_meta.mat, devkit/cars_train_annos.mat,
                    cars_test_annos_withlabels.mat (at the root or in devkit/)
    kaggle_folders  car_data/car_data/{train,test}/<class>/*.jpg, headerless anno_{train,test}.csv
                    (fname, x1, y1, x2, y2, class) and names.csv
    folders         {train,test}/<class>/*.jpg: no boxes (full images: a protocol change)

Convention: the label is the 0-based index in ``cars_meta.mat`` order (``class`` is 1-based in every
annotation file). ``.mat`` fields are read by name. Boxes stay 1-based and inclusive (see
:mod:`fgvc_ref.data.records`). The 6-digit ``car_ims`` names do not match the 5-digit per-split
names, so nothing is ever joined by file name across layouts. Folder names spell "/" as "-" ("Ram
C-V Cargo Van Minivan 2012" is "Ram C/V ..."). A folder-only copy is put in canonical order when a
class list is given or found (``names.csv`` or ``cars_meta.mat`` beside it), else alphabetically.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fgvc_ref.data.records import Box, DatasetError, LoadedSplit, Record, as_int, check_files_exist, check_split, load_mat, mat_variable

LAYOUTS = ("car_ims", "kaggle_devkit", "devkit", "kaggle_folders", "folders")
SPLITS = ("train", "test")
FULL = {"classes": 196, "train": 8144, "test": 8041}
BOX_FIELDS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")


def folder_name(class_name: str) -> str:
    """How a class-folder copy spells a class: "/" cannot be in a folder name and becomes "-"."""
    return class_name.replace("/", "-")


def detect_layout(root: Path | str) -> str:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset root not found (or not a directory)")
    if (root / "car_ims").is_dir() or (root / "cars_annos.mat").exists():
        return "car_ims"
    if (root / "car_devkit").is_dir() or (root / "cars_train" / "cars_train").is_dir():
        return "kaggle_devkit"
    if (root / "devkit").is_dir() or (root / "cars_train").is_dir():
        return "devkit"
    if (root / "car_data").is_dir() or (root / "anno_train.csv").exists():
        return "kaggle_folders"
    if (root / "train").is_dir() or (root / "test").is_dir():
        return "folders"
    found = sorted(p.name for p in root.iterdir())[:20]
    raise DatasetError(
        f"{root}: no Stanford Cars layout found. Expected one of {LAYOUTS} (see docs/data.md: e.g. devkit/ + "
        f"cars_train/, car_ims/ + cars_annos.mat, car_data/ + anno_train.csv, or train/ + test/ class folders); found {found}"
    )


def load_stanford_cars(root: Path | str, split: str, *, expected: dict | None = FULL, class_names: list[str] | None = None) -> LoadedSplit:
    """Records of one split, whatever the layout. ``expected``: counts to enforce (None: any size)."""
    if split not in SPLITS:
        raise DatasetError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    layout = detect_layout(root)
    loader = {"car_ims": _car_ims, "kaggle_devkit": _devkit, "devkit": _devkit, "kaggle_folders": _kaggle_folders, "folders": _folders}[layout]
    records, classes = loader(root, split, layout=layout, class_names=class_names)
    check_files_exist(records, root, layout)
    exp = expected or {}
    return check_split(LoadedSplit(records, classes, layout), root, split, expected_images=exp.get(split), expected_classes=exp.get("classes"))


# --- .mat layouts -----------------------------------------------------------------------------


def _mat_strings(path: Path, var: str) -> list[str]:
    return [str(s) for s in mat_variable(path, var)]


def _mat_rows(path: Path, var: str, fields: tuple[str, ...], m: dict | None = None) -> list[dict]:
    table = mat_variable(path, var, m)
    names = table.dtype.names or ()
    missing = [f for f in fields if f not in names]
    if missing:
        raise DatasetError(f"{path}: {var!r} lacks field(s) {missing}; it has {list(names)}")
    try:
        return [{f: row[f].item() if hasattr(row[f], "item") else row[f] for f in fields} for row in table]
    except (ValueError, TypeError) as e:
        raise DatasetError(f"{path}: {var!r} has a malformed row ({e})") from e


def _box(row: dict, path: Path) -> Box:
    return tuple(as_int(row[f], path, f) for f in BOX_FIELDS)  # type: ignore[return-value]


def _devkit(root: Path, split: str, *, layout: str, class_names=None) -> tuple[list[Record], list[str]]:
    nested = layout == "kaggle_devkit"
    devkit = root / "car_devkit" / "devkit" if nested else root / "devkit"
    images = root / f"cars_{split}" / f"cars_{split}" if nested else root / f"cars_{split}"
    classes = _mat_strings(devkit / "cars_meta.mat", "class_names")
    if split == "train":
        annos = devkit / "cars_train_annos.mat"
    else:
        name = "cars_test_annos_withlabels.mat"
        places = [root / name, devkit / name, devkit.parent / name]
        annos = next((p for p in places if p.is_file()), None)
        if annos is None:
            unlabeled = [str(p) for p in (devkit / "cars_test_annos.mat", root / "cars_test_annos.mat") if p.is_file()]
            raise DatasetError(
                f"{root}: {layout} layout without test labels: {name} not found in {[str(p.parent) for p in places]}"
                + (f"; {unlabeled[0]} has no 'class' field" if unlabeled else "")
                + ". Put the labelled test annotations (cars_test_annos_withlabels.mat, from the original devkit) in the root."
            )
    rows = _mat_rows(annos, "annotations", (*BOX_FIELDS, "class", "fname"))
    return [Record(str(images / str(r["fname"])), as_int(r["class"], annos, "class") - 1, _box(r, annos)) for r in rows], classes


def _car_ims(root: Path, split: str, *, layout: str, class_names=None) -> tuple[list[Record], list[str]]:
    path = root / "cars_annos.mat"
    m = load_mat(path)
    classes = [str(s) for s in np.atleast_1d(m["class_names"])] if "class_names" in m else None
    if classes is None:
        raise DatasetError(f"{path}: variable 'class_names' not found")
    rows = _mat_rows(path, "annotations", ("relative_im_path", *BOX_FIELDS, "class", "test"), m)
    want = int(split == "test")
    return [Record(str(root / str(r["relative_im_path"])), as_int(r["class"], path, "class") - 1, _box(r, path))
            for r in rows if as_int(r["test"], path, "test") == want], classes


# --- folder layouts ---------------------------------------------------------------------------


def _read_csv(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except (UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{path}: not a readable UTF-8 CSV file ({type(e).__name__}: {e})") from e


def _kaggle_folders(root: Path, split: str, *, layout: str, class_names=None) -> tuple[list[Record], list[str]]:
    base = root / "car_data" / "car_data" if (root / "car_data" / "car_data").is_dir() else root / "car_data"
    classes = [row[0].strip() for row in _read_csv(root / "names.csv")]
    annos = root / f"anno_{split}.csv"
    records = []
    for line, row in enumerate(_read_csv(annos), 1):
        if len(row) != 6:
            raise DatasetError(f"{annos}:{line}: expected 6 columns (fname, x1, y1, x2, y2, class), got {len(row)}: {row}")
        fname, *box, cls = (c.strip() for c in row)
        label = as_int(cls, annos, f"class (line {line})") - 1
        if not 0 <= label < len(classes):
            raise DatasetError(f"{annos}:{line}: class {label + 1} is outside 1..{len(classes)} (names.csv)")
        box = tuple(as_int(v, annos, f"box (line {line})") for v in box)
        records.append(Record(str(base / split / folder_name(classes[label]) / fname), label, box))  # type: ignore[arg-type]
    return records, classes


def _folders(root: Path, split: str, *, layout: str, class_names=None) -> tuple[list[Record], list[str]]:
    from fgvc_ref.data.folder import load_folder

    if class_names is None:
        if (root / "names.csv").is_file():
            class_names = [row[0].strip() for row in _read_csv(root / "names.csv")]
        elif (root / "cars_meta.mat").is_file():
            class_names = _mat_strings(root / "cars_meta.mat", "class_names")
    loaded = load_folder(root, split, class_names=class_names, folder_name=folder_name)
    return loaded.records, loaded.classes
