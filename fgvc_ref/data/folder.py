"""Any class-folder dataset (CUB, Aircraft, your own): ``ROOT/<split>/<class>/<image>``, optional boxes.

Classes are the sub-folders of the split folder, in alphabetical order unless ``class_names`` gives
the canonical order (``folder_name`` maps a class name to its folder's spelling). Images are the
files with an image extension, sorted; both levels are listed by :func:`fgvc_ref.data.images.scan`,
so the files and folders that operating systems leave in copies (``._*``, ``.DS_Store``,
``__MACOSX/``, ...) are skipped and counted in one note. An optional headerless box CSV has rows
``path, x1, y1, x2, y2`` with ``path`` relative to the split folder (``<class>/<image>``) and a
1-based inclusive box (:mod:`fgvc_ref.data.records`); images without a row use the whole image.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from collections import Counter

from fgvc_ref.data.images import junk_note, scan
from fgvc_ref.data.records import DatasetError, LoadedSplit, Record, check_split


def load_folder(root: Path | str, split: str, *, class_names: list[str] | None = None,
                folder_name: Callable[[str], str] = str, bbox_csv: Path | str | None = None,
                expected_classes: int | None = None, allow_empty: bool = False) -> LoadedSplit:
    """Records of ``ROOT/<split>`` (see the module docstring); ``allow_empty``: classes of ``class_names`` may have no
    folder or no image (a test set of some of a model's classes)."""
    split_dir = Path(root) / split
    if not split_dir.is_dir():
        present = [p.name for p in (scan(root).folders + scan(root).files)] if Path(root).is_dir() else []
        raise DatasetError(f"{split_dir}: split folder {split!r} not found; {root} has {sorted(present)}")
    top = scan(split_dir)
    skipped, examples = Counter(top.skipped), dict(top.examples)
    if top.files:
        skipped["image files outside a class folder"] += len(top.files)
        examples.setdefault("image files outside a class folder", top.files[0])
    folders = [p.name for p in top.folders]
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
        inside = scan(split_dir / name)
        skipped.update(inside.skipped)
        for kind, path in inside.examples.items():
            examples.setdefault(kind, path)
        records += [Record(str(path), index[name], boxes.get(f"{name}/{path.name}")) for path in inside.files]
    layout = "folders" + (" + box CSV" if boxes else "")
    note = junk_note(skipped, examples, split_dir)
    loaded = LoadedSplit(records, classes, layout, (note,) if note else ())
    return loaded if allow_empty else check_split(loaded, split_dir, split, expected_classes=expected_classes)


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
