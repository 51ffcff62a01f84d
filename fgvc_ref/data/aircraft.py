"""FGVC-Aircraft (2013b) from its official text files, at the variant, family or manufacturer level.

Maji, Kannala, Rahtu, Blaschko, Vedaldi, "Fine-Grained Visual Classification of Aircraft",
arXiv:1306.5151, 2013. 10,000 images: ``trainval`` 6,667 and ``test`` 3,333; 100 variants, 70
families, 30 manufacturers. Layout (``fgvc-aircraft-2013b.tar.gz``; torchvision's ``FGVCAircraft``
reads the same files)::

    fgvc-aircraft-2013b/data/{variants,families,manufacturers}.txt       one class name per line
    fgvc-aircraft-2013b/data/images_{variant,family,manufacturer}_{trainval,test}.txt
                                                                          <7-digit image id> <class name, may hold spaces>
    fgvc-aircraft-2013b/data/images_box.txt                              <image id> <xmin> <ymin> <xmax> <ymax>
    fgvc-aircraft-2013b/data/images/<image id>.jpg

Convention: train = ``trainval``, test = ``test``; labels index the level's class file, records
follow the split file (torchvision's order). Every image carries a 20-pixel copyright banner at the
bottom which the dataset's README says to remove: each record trims those rows first
(``trim_bottom``). Boxes are 1-based with the top-left pixel at (1, 1) (the README), which is the
project's convention as is; a box reaching into the banner is clipped by the trim.
"""

from __future__ import annotations

from pathlib import Path

from fgvc_ref.data.images import located
from fgvc_ref.data.layouts import Layout, find_layout
from fgvc_ref.data.records import DatasetError, LoadedSplit, Record, as_int, check_split, nfc, read_table

LEVELS = {"variant": "variants.txt", "family": "families.txt", "manufacturer": "manufacturers.txt"}
FULL = {"variant": {"classes": 100, "train": 6667, "test": 3333}, "family": {"classes": 70, "train": 6667, "test": 3333},
        "manufacturer": {"classes": 30, "train": 6667, "test": 3333}}
BANNER = 20  # pixel rows of copyright text at the bottom of every image
SPLIT_FILE = {"train": "trainval", "test": "test"}


PLACES = {"official": "fgvc-aircraft-2013b/data/", "data": "data/", "root": ""}  # where the data folder sits, by preference


def find_data(root: Path | str, level: str = "variant", boxes: bool = True, layout: str | None = None) -> tuple[Path, str]:
    """The ``data`` folder (``root/fgvc-aircraft-2013b/data``, ``root/data`` or ``root`` itself) holding every file the level
    needs, chosen by completeness (:mod:`fgvc_ref.data.layouts`), and the note saying so."""
    files = (LEVELS[level], f"images_{level}_trainval.txt", f"images_{level}_test.txt", *(("images_box.txt",) if boxes else ()), "images/")
    table = tuple(Layout(name, tuple(prefix + f for f in files), f"the data folder at {prefix or 'the root'}") for name, prefix in PLACES.items())
    found = find_layout(root, table, what="FGVC-Aircraft", force=layout)
    return Path(root) / PLACES[found.layout], found.note


def load_aircraft(root: Path | str, split: str, *, level: str = "variant", expected: dict | None = None, boxes: bool = True,
                  layout: str | None = None) -> LoadedSplit:
    """Records of one split at one level (module docstring); ``expected`` defaults to no count check."""
    if split not in SPLIT_FILE:
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    if level not in LEVELS:
        raise DatasetError(f"aircraft level must be one of {sorted(LEVELS)}, got {level!r}")
    data, note = find_data(root, level, boxes, layout)
    class_file = data / LEVELS[level]
    classes = [nfc(line.strip()) for line in class_file.read_text(encoding="utf-8").splitlines() if line.strip()]  # as read_table's
    index = {name: i for i, name in enumerate(classes)}
    split_file = data / f"images_{level}_{SPLIT_FILE[split]}.txt"
    box_of = {}
    if boxes:
        for image, *corners in read_table(data / "images_box.txt", 5, "image xmin ymin xmax ymax"):
            box_of[image] = tuple(as_int(v, data / "images_box.txt", f"box of {image}") for v in corners)
    records = []
    for number, (image, name) in enumerate(read_table(split_file, 2, "image class"), 1):
        if name not in index:
            raise DatasetError(f"{split_file}:{number}: class {name!r} is not in {class_file.name}")
        if boxes and image not in box_of:
            raise DatasetError(f"{data / 'images_box.txt'}: no box for image {image} (listed in {split_file.name})")
        records.append(Record(str(data / "images" / f"{image}.jpg"), index[name], box_of.get(image), BANNER))
    records = located(records, data, "FGVC-Aircraft")
    exp = expected or {}
    return check_split(LoadedSplit(records, classes, f"aircraft:{level}", (note,)), data, split, expected_images=exp.get(split),
                       expected_classes=exp.get("classes"))
