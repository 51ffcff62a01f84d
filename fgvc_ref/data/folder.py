"""Any class-folder dataset (CUB, Aircraft, your own): ``ROOT/<split>/<class>/<image>``, optional boxes.

Classes are the sub-folders of the split folder, in alphabetical order unless ``class_names`` gives
the canonical order (``folder_name`` maps a class name to its folder's spelling). Images are the
files with an image extension, sorted. An optional headerless box CSV has rows
``path, x1, y1, x2, y2`` with ``path`` relative to the split folder (``<class>/<image>``) and a
1-based inclusive box (:mod:`fgvc_ref.data.records`); images without a row use the whole image.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from fgvc_ref.data.records import DatasetError, LoadedSplit, Record, check_split

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def load_folder(root: Path | str, split: str, *, class_names: list[str] | None = None,
                folder_name: Callable[[str], str] = str, bbox_csv: Path | str | None = None,
                expected_classes: int | None = None) -> LoadedSplit:
    """Records of ``ROOT/<split>`` (see the module docstring)."""
    split_dir = Path(root) / split
    if not split_dir.is_dir():
        present = sorted(p.name for p in Path(root).iterdir()) if Path(root).is_dir() else []
        raise DatasetError(f"{split_dir}: split folder {split!r} not found; {root} has {present}")
    folders = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if class_names is None:
        classes, index = folders, {name: i for i, name in enumerate(folders)}
    else:
        classes = list(class_names)
        index = {folder_name(name): i for i, name in enumerate(classes)}
        unknown = [f for f in folders if f not in index]
        if unknown:
            raise DatasetError(f"{split_dir}: {len(unknown)} folder(s) match no class name, e.g. {unknown[:5]}")
    boxes = _read_boxes(Path(bbox_csv)) if bbox_csv is not None else {}
    records = []
    for name in folders:
        for path in sorted((split_dir / name).iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
                records.append(Record(str(path), index[name], boxes.get(f"{name}/{path.name}")))
    layout = "folders" + (" + box CSV" if boxes else "")
    return check_split(LoadedSplit(records, classes, layout), split_dir, split, expected_classes=expected_classes)


def _read_boxes(path: Path) -> dict[str, tuple[int, int, int, int]]:
    if not path.is_file():
        raise DatasetError(f"{path}: box CSV not found")
    boxes = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{path}: not a readable UTF-8 CSV file ({type(e).__name__}: {e})") from e
    for line, row in enumerate(rows, 1):
        if not row:
            continue
        if len(row) != 5:
            raise DatasetError(f"{path}:{line}: expected 5 columns (path, x1, y1, x2, y2), got {len(row)}: {row}")
        try:
            boxes[row[0].strip()] = tuple(int(v) for v in row[1:])
        except ValueError as e:
            raise DatasetError(f"{path}:{line}: box coordinates must be integers, got {row[1:]}") from e
    return boxes  # type: ignore[return-value]
