"""Stanford Dogs from its official .mat lists and per-image XML boxes: 120 breeds, 12,000 / 8,580 images.

Khosla, Jayadevaprakash, Yao, Fei-Fei, "Novel Dataset for Fine-Grained Image Categorization:
Stanford Dogs", CVPR Workshop on Fine-Grained Visual Categorization (FGVC), 2011. Layout (the
official ``images.tar``, ``annotation.tar`` and ``lists.tar``; Kaggle's copy nests the first two as
``images/Images`` and ``annotations/Annotation``)::

    train_list.mat, test_list.mat     (at the root or in lists/) file_list: <synset>-<breed>/<image>.jpg,
                                      annotation_list: the same without extension, labels: 1..120
    Images/<synset>-<breed>/<image>.jpg
    Annotation/<synset>-<breed>/<image>          PASCAL VOC XML: one <object> per dog, each with a <bndbox>

Convention: the label is ``labels - 1``; class ``k`` is named by the folder of its images with the
WordNet synset id removed (``n02085620-Chihuahua`` -> ``Chihuahua``), and the lists must agree on
that folder. Records follow the list. A box is the VOC ``xmin ymin xmax ymax`` taken as 1-based
inclusive pixels, as VOC defines them, so it is the project's convention as is. An image with
several dogs (all of the one breed) gets the union of their boxes, so that no dog is cut away.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from fgvc_ref.data.images import located, on_disk
from fgvc_ref.data.layouts import Layout, find_layout, locate
from fgvc_ref.data.records import Box, DatasetError, LoadedSplit, Record, as_int, check_split, load_mat, mat_variable, nfc

FULL = {"classes": 120, "train": 12000, "test": 8580}


def _text(value) -> str:
    """A MATLAB cell entry (a string, possibly wrapped in 1-element arrays) as a Python string, in NFC."""
    while isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"expected one string, got an array of shape {value.shape}")
        value = value.reshape(-1)[0]
    return nfc(str(value))


def voc_box(path: Path) -> Box:
    """The union of every ``<object><bndbox>`` in a VOC XML file (module docstring)."""
    try:
        objects = ET.parse(path).getroot().findall("object")
    except (ET.ParseError, OSError) as e:
        raise DatasetError(f"{path}: not a readable annotation XML ({type(e).__name__}: {e})") from e
    boxes = []
    for obj in objects:
        box = obj.find("bndbox")
        if box is None:
            continue
        try:
            boxes.append(tuple(int(float(box.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax")))
        except (TypeError, ValueError):
            raise DatasetError(f"{path}: a <bndbox> lacks a numeric xmin, ymin, xmax or ymax") from None
    if not boxes:
        raise DatasetError(f"{path}: no <object> with a <bndbox>")
    x1, y1, x2, y2 = zip(*boxes)
    return min(x1), min(y1), max(x2), max(y2)


def load_dogs(root: Path | str, split: str, *, expected: dict | None = FULL, boxes: bool = True, layout: str | None = None) -> LoadedSplit:
    """Records of one official split (module docstring); ``boxes=False`` uses whole images."""
    if split not in ("train", "test"):
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    needs = ((f"{split}_list.mat", f"lists/{split}_list.mat"), ("Images/", "images/Images/"),
             *((("Annotation/", "annotations/Annotation/"),) if boxes else ()))
    table = (Layout("dogs", needs, "the official images.tar, annotation.tar and lists.tar, or Kaggle's nesting",
                    "the split lists come from the official lists.tar (Kaggle's copy has none)"),)
    found = find_layout(root, table, what="Stanford Dogs", force=layout)
    lists, images = locate(root, needs[0]), locate(root, needs[1])
    annotations = locate(root, needs[2]) if boxes else None
    m = load_mat(lists)
    try:
        files = [_text(v) for v in mat_variable(lists, "file_list", m)]
        notes = [_text(v) for v in mat_variable(lists, "annotation_list", m)]
    except ValueError as e:
        raise DatasetError(f"{lists}: file_list / annotation_list entries must be strings ({e})") from e
    labels = [as_int(v, lists, "labels") - 1 for v in mat_variable(lists, "labels", m)]
    if not len(files) == len(notes) == len(labels):
        raise DatasetError(f"{lists}: file_list ({len(files)}), annotation_list ({len(notes)}) and labels ({len(labels)}) differ in length")
    folder_of: dict[int, str] = {}
    for f, label in zip(files, labels):
        folder = f.split("/")[0]
        if folder_of.setdefault(label, folder) != folder:
            raise DatasetError(f"{lists}: label {label + 1} is given to images of two folders, {folder_of[label]!r} and {folder!r}")
    k = max(labels) + 1 if labels else 0
    classes = [folder_of[c].split("-", 1)[-1] if c in folder_of else f"class {c + 1} (no image in this split)" for c in range(k)]
    listings: dict = {}  # an annotation named in NFC may be on disk in NFD (a copy from macOS)
    records = [Record(str(images / f), label, voc_box(on_disk(annotations / note, listings)) if boxes else None)
               for f, note, label in zip(files, notes, labels)]
    records = located(records, root, "Stanford Dogs")
    exp = expected or {}
    return check_split(LoadedSplit(records, classes, "dogs", (found.note,)), root, split, expected_images=exp.get(split), expected_classes=exp.get("classes"))
