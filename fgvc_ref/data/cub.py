"""CUB-200-2011 from its official text files: 200 bird species, 5,994 train and 5,794 test images.

Wah, Branson, Welinder, Perona, Belongie, "The Caltech-UCSD Birds-200-2011 Dataset", Caltech
technical report CNS-TR-2011-001, 2011. Layout (the official ``CUB_200_2011.tgz``; Kaggle copies
nest it once more, ``CUB_200_2011/CUB_200_2011/``)::

    images.txt               <image_id> <relative path under images/>
    image_class_labels.txt   <image_id> <class_id>
    train_test_split.txt     <image_id> <is_training_image: 1 train, 0 test>
    bounding_boxes.txt       <image_id> <x> <y> <width> <height>   (pixels, written as floats)
    classes.txt              <class_id> <class name>
    images/<class folder>/<image>.jpg

Convention: image and class ids are 1-based; the label is ``class_id - 1``, so classes are in class
id order, ids compared as integers (the official ``classes.txt``'s line order); records follow
``images.txt``. A box is the common crop ``(x, y, x + width, y + height)`` in PIL's edge coordinates
(``x``, ``y`` the top-left pixel's 0-based position), each edge rounded to the nearest pixel, half up:
``left = floor(x + 1/2)``, ``right = floor(x + width + 1/2)``, likewise for y. In the project's
1-based inclusive convention that is ``(left + 1, top + 1, right, bottom)``. The official values are
whole numbers, for which this is exact.
"""

from __future__ import annotations

from pathlib import Path

from fgvc_ref.data.images import located
from fgvc_ref.data.layouts import Layout, find_layout
from fgvc_ref.data.records import Box, DatasetError, LoadedSplit, Record, as_int, check_split, edges_box, read_table

FULL = {"classes": 200, "train": 5994, "test": 5794}
FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt", "classes.txt")


PLACES = {"root": "", "CUB_200_2011": "CUB_200_2011/", "kaggle": "CUB_200_2011/CUB_200_2011/"}  # where the files sit, by preference
LAYOUT_TABLE = tuple(Layout(name, tuple(prefix + f for f in (*FILES, "images/")), f"the files in {prefix or 'the root'}")
                     for name, prefix in PLACES.items())


def find_root(root: Path | str, layout: str | None = None) -> tuple[Path, str]:
    """The folder holding the official files (``root``, ``root/CUB_200_2011`` or Kaggle's ``root/CUB_200_2011/CUB_200_2011``),
    chosen by completeness (:mod:`fgvc_ref.data.layouts`), and the note saying so."""
    found = find_layout(root, LAYOUT_TABLE, what="CUB-200-2011", force=layout)
    return Path(root) / PLACES[found.layout], found.note


def cub_box(x: float, y: float, width: float, height: float) -> Box:
    """CUB's ``x y width height`` as a 1-based inclusive box (module docstring)."""
    return edges_box(x, y, x + width, y + height)


def load_cub(root: Path | str, split: str, *, expected: dict | None = FULL, boxes: bool = True, layout: str | None = None) -> LoadedSplit:
    """Records of one official split; ``boxes=False`` uses whole images (the usual literature protocol)."""
    if split not in ("train", "test"):
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    base, note = find_root(root, layout)
    table = lambda name, n, what: {as_int(r[0], base / name, "id"): r[1:] for r in read_table(base / name, n, what)}
    paths = table("images.txt", 2, "image_id path")
    labels = table("image_class_labels.txt", 2, "image_id class_id")
    is_train = table("train_test_split.txt", 2, "image_id is_training_image")
    bboxes = table("bounding_boxes.txt", 5, "image_id x y width height")
    classes = [name for _, (name,) in sorted(table("classes.txt", 2, "class_id name").items())]
    for name, ids in (("image_class_labels.txt", labels), ("train_test_split.txt", is_train), ("bounding_boxes.txt", bboxes)):
        if ids.keys() != paths.keys():
            odd = sorted(ids.keys() ^ paths.keys())[:5]
            raise DatasetError(f"{base / name}: its image ids differ from images.txt's (e.g. {odd})")
    want = "1" if split == "train" else "0"
    records = []
    for image_id, (path,) in paths.items():
        if is_train[image_id][0] != want:
            continue
        try:
            box = cub_box(*(float(v) for v in bboxes[image_id])) if boxes else None
        except ValueError:
            raise DatasetError(f"{base / 'bounding_boxes.txt'}: image {image_id}: box {bboxes[image_id]} is not four numbers") from None
        records.append(Record(str(base / "images" / path), as_int(labels[image_id][0], base / "image_class_labels.txt", "class_id") - 1, box))
    records = located(records, base, "CUB-200-2011")
    exp = expected or {}
    return check_split(LoadedSplit(records, classes, "cub", (note,)), base, split, expected_images=exp.get(split), expected_classes=exp.get("classes"))
