"""Stanford Cars from any of the copies users hold, as records in the canonical class order.

Krause, Stark, Deng, Fei-Fei, "3D Object Representations for Fine-Grained Categorization",
ICCV Workshops (3dRR) 2013: 196 classes, 8,144 train and 8,041 test images, one bounding box each.

The original host is gone (torchvision's ``StanfordCars(download=True)`` raises), so users have one
of these layouts (docs/data.md). Real downloads put several side by side, so the layout is chosen by
completeness (:mod:`fgvc_ref.data.layouts`): the first layout of this list whose files are all
present (devkit first: torchvision's layout with the original per-split annotations), or the one
``layout=`` names (``prepare --layout``):

    devkit          cars_{train,test}/*.jpg, devkit/cars_meta.mat, devkit/cars_train_annos.mat,
                    cars_test_annos_withlabels.mat (at the root or in devkit/)
    kaggle_devkit   cars_{train,test}/cars_{train,test}/*.jpg, car_devkit/devkit/*.mat
    car_ims         car_ims/000001.jpg ..., cars_annos.mat (relative_im_path, bbox_*, class, test, class_names)
    kaggle_folders  car_data/car_data/{train,test}/<class>/*.jpg, headerless anno_{train,test}.csv
                    (fname, x1, y1, x2, y2, class) and names.csv
    folders         {train,test}/<class>/<image>: any image extension, any case; no boxes (full images: a protocol change)
    hf_repo         a Hugging Face dataset-repo snapshot: train and test Parquet shards named as the Hub names
                    them (``data/train-*.parquet``, ...; :mod:`fgvc_ref.data.hub`); no boxes
    hf_save_to_disk a ``datasets`` save_to_disk folder (dataset_dict.json, Arrow shards); no boxes

Convention: the label is the 0-based index in ``cars_meta.mat`` order (``class`` is 1-based in every
annotation file). ``.mat`` fields are read by name. Boxes stay 1-based and inclusive (see
:mod:`fgvc_ref.data.records`). The 6-digit ``car_ims`` names do not match the 5-digit per-split
names, so nothing is ever joined by file name across layouts. Folder names spell "/" as "-" ("Ram
C-V Cargo Van Minivan 2012" is "Ram C/V ..."). A copy that holds class names but not in canonical
order (a class-folder copy sorts them alphabetically, a Hugging Face copy has its own order) is
relabelled to the canonical order when its names are the official 196 (:data:`CLASS_NAMES_FILE`,
the ``class_names`` of ``cars_meta.mat``), and which order it had is said. Names read from ``.mat``
and CSV files are kept in Unicode NFC, and a file they name is found on disk in either normal form
(:func:`~fgvc_ref.data.images.located`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fgvc_ref.data.hub import shard_globs
from fgvc_ref.data.images import IMAGE, located
from fgvc_ref.data.layouts import Layout, find_layout
from fgvc_ref.data.records import Box, DatasetError, LoadedSplit, Record, as_int, check_split, load_mat, mat_variable, nfc

SPLITS = ("train", "test")
WITH_LABELS = "cars_test_annos_withlabels.mat"
NO_TEST_LABELS = (f"the test labels are in {WITH_LABELS}, from the original devkit: Kaggle's cars_test_annos.mat has no 'class' "
                  "field; put the labelled file in the root")
LAYOUT_TABLE = (  # in order of preference
    Layout("devkit", ("devkit/cars_meta.mat", "devkit/cars_train_annos.mat", (WITH_LABELS, f"devkit/{WITH_LABELS}"), "cars_train/*.jpg", "cars_test/*.jpg"),
           "the original devkit download, torchvision's layout", NO_TEST_LABELS, WITH_LABELS),
    Layout("kaggle_devkit", ("car_devkit/devkit/cars_meta.mat", "car_devkit/devkit/cars_train_annos.mat",
                             (WITH_LABELS, f"car_devkit/devkit/{WITH_LABELS}", f"car_devkit/{WITH_LABELS}"),
                             "cars_train/cars_train/*.jpg", "cars_test/cars_test/*.jpg"), "Kaggle's nested devkit copy", NO_TEST_LABELS, WITH_LABELS),
    Layout("car_ims", ("cars_annos.mat", "car_ims/*.jpg"), "the car_ims.tgz download"),
    Layout("kaggle_folders", ("names.csv", "anno_train.csv", "anno_test.csv", ("car_data/car_data/train/", "car_data/train/"),
                              ("car_data/car_data/test/", "car_data/test/")), "Kaggle's class folders with CSV boxes"),
    Layout("folders", tuple(f"{split}/*/*{IMAGE}" for split in SPLITS), "class folders, no boxes"),
    Layout("hf_repo", (shard_globs("train"), shard_globs("test")), "a Hugging Face dataset-repo snapshot: train and test Parquet shards"),
    Layout("hf_save_to_disk", ("dataset_dict.json", "train/", "test/"), "a `datasets` save_to_disk folder"),
)
LAYOUTS = tuple(layout.name for layout in LAYOUT_TABLE)
FULL = {"classes": 196, "train": 8144, "test": 8041}
CLASS_NAMES_FILE = Path(__file__).with_name("stanford_cars_classes.txt")
BOX_FIELDS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")


def folder_name(class_name: str) -> str:
    """How a class-folder copy spells a class: "/" cannot be in a folder name and becomes "-"."""
    return class_name.replace("/", "-")


def detect_layout(root: Path | str, layout: str | None = None):
    """The layout of ``root`` (see the module docstring): a :class:`~fgvc_ref.data.layouts.Found` with the note to show."""
    return find_layout(root, LAYOUT_TABLE, what="Stanford Cars", force=layout)


def load_stanford_cars(root: Path | str, split: str, *, expected: dict | None = FULL, class_names: list[str] | None = None,
                       layout: str | None = None, **hub_options) -> LoadedSplit:
    """Records of one split, whatever the layout. ``expected``: counts to enforce (None: any size); ``layout``: force
    one (:data:`LAYOUTS`); ``hub_options``: passed to :func:`fgvc_ref.data.hub.load_hub` for a Hugging Face copy."""
    if split not in SPLITS:
        raise DatasetError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    found = detect_layout(root, layout)
    notes: list[str] = [found.note]
    available: tuple = ()
    if hub_options and not found.layout.startswith("hf_"):
        raise DatasetError(f"{sorted(hub_options)} are options of the Hugging Face copies; {root} is a {found.layout} copy")
    if found.layout.startswith("hf_"):
        from fgvc_ref.data.hub import load_hub

        hub = load_hub(root, split, layout=found.layout, **hub_options)
        records, classes, available = hub.records, hub.classes, hub.available
        notes += hub.notes[1:]
    else:
        loader = {"car_ims": _car_ims, "kaggle_devkit": _devkit, "devkit": _devkit, "kaggle_folders": _kaggle_folders, "folders": _folders}[found.layout]
        records, classes, more = loader(root, split, layout=found.layout, class_names=class_names)
        notes += more
    if found.layout in ("folders", "hf_repo", "hf_save_to_disk") and class_names is None:
        records, classes, note = canonical_order(records, classes)
        notes.append(note)
    records = located(records, root, found.layout)
    exp = expected or {}
    return check_split(LoadedSplit(records, classes, found.layout, tuple(notes), available), root, split, expected_images=exp.get(split),
                       expected_classes=exp.get("classes"))


def official_classes() -> list[str]:
    """The 196 class names in ``cars_meta.mat`` order (:data:`CLASS_NAMES_FILE`)."""
    lines = CLASS_NAMES_FILE.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def canonical_order(records: list[Record], classes: list[str]) -> tuple[list[Record], list[str], str]:
    """Relabel a copy whose class names are the official 196 (up to the folder spelling of "/") to the canonical order,
    and say which order it had; any other class list is kept as it is."""
    official = official_classes()
    if classes == official:
        return records, classes, "class names in the canonical cars_meta.mat order (torchvision's)"
    index = {folder_name(name): k for k, name in enumerate(official)}
    if len(classes) != len(official) or {folder_name(c) for c in classes} != index.keys():
        return records, classes, (f"class names are not Stanford Cars' official {len(official)}: kept in this copy's order "
                                  f"({len(classes)} classes, first {classes[:1]})")
    order = "alphabetical order" if classes == sorted(classes) else "an order of its own"
    to = [index[folder_name(c)] for c in classes]
    return ([r._replace(label=to[r.label]) for r in records], official,
            f"class names in {order} (first {classes[0]!r}), relabelled to the canonical cars_meta.mat order")


# --- .mat layouts -----------------------------------------------------------------------------


def _mat_strings(path: Path, var: str) -> list[str]:
    return [nfc(str(s)) for s in mat_variable(path, var)]


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


def _devkit(root: Path, split: str, *, layout: str, class_names=None) -> tuple[list[Record], list[str], list[str]]:
    nested = layout == "kaggle_devkit"
    devkit = root / "car_devkit" / "devkit" if nested else root / "devkit"
    images = root / f"cars_{split}" / f"cars_{split}" if nested else root / f"cars_{split}"
    classes = _mat_strings(devkit / "cars_meta.mat", "class_names")
    if split == "train":
        annos = devkit / "cars_train_annos.mat"
    else:  # the layout is complete (detect_layout), so one of these exists
        annos = next(p for p in (root / WITH_LABELS, devkit / WITH_LABELS, devkit.parent / WITH_LABELS) if p.is_file())
    rows = _mat_rows(annos, "annotations", (*BOX_FIELDS, "class", "fname"))
    return [Record(str(images / str(r["fname"])), as_int(r["class"], annos, "class") - 1, _box(r, annos)) for r in rows], classes, []


def _car_ims(root: Path, split: str, *, layout: str, class_names=None) -> tuple[list[Record], list[str], list[str]]:
    path = root / "cars_annos.mat"
    m = load_mat(path)
    classes = [nfc(str(s)) for s in np.atleast_1d(m["class_names"])] if "class_names" in m else None
    if classes is None:
        raise DatasetError(f"{path}: variable 'class_names' not found")
    rows = _mat_rows(path, "annotations", ("relative_im_path", *BOX_FIELDS, "class", "test"), m)
    want = int(split == "test")
    return [Record(str(root / str(r["relative_im_path"])), as_int(r["class"], path, "class") - 1, _box(r, path))
            for r in rows if as_int(r["test"], path, "test") == want], classes, []


# --- folder layouts ---------------------------------------------------------------------------


def _read_csv(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [[nfc(cell) for cell in row] for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except (UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{path}: not a readable UTF-8 CSV file ({type(e).__name__}: {e})") from e


def _kaggle_folders(root: Path, split: str, *, layout: str, class_names=None) -> tuple[list[Record], list[str], list[str]]:
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
    return records, classes, []


def _folders(root: Path, split: str, *, layout: str, class_names=None) -> tuple[list[Record], list[str], list[str]]:
    from fgvc_ref.data.folder import load_folder

    if class_names is None:
        if (root / "names.csv").is_file():
            class_names = [row[0].strip() for row in _read_csv(root / "names.csv")]
        elif (root / "cars_meta.mat").is_file():
            class_names = _mat_strings(root / "cars_meta.mat", "class_names")
    loaded = load_folder(root, split, class_names=class_names, folder_name=folder_name)
    return loaded.records, loaded.classes, list(loaded.notes)
