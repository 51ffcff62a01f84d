"""Any class-folder dataset (CUB, Aircraft, your own): ``ROOT/<split>/<class>/<image>``, optional boxes.

Classes are the sub-folders of the split folder, named in Unicode NFC whatever form the disk
spells them in (macOS writes NFD), in alphabetical order of those names unless ``class_names`` gives
the canonical order (``folder_name`` maps a class name to its folder's spelling; matched in NFC).
Images are the files with an image extension, sorted; both levels are listed by
:func:`fgvc_ref.data.images.scan`, so the files and folders that operating systems leave in copies
(``._*``, ``.DS_Store``, ``__MACOSX/``, ...), files of other extensions and sub-folders of a class
folder are skipped and counted in one note, and symbolic links are followed by its rule. A class
folder that holds files or sub-folders but no image file is an error naming what it holds. An
optional headerless box CSV has rows ``path, x1, y1, x2, y2`` with ``path`` relative to the split
folder (``<class>/<image>``, matched in NFC) and a 1-based inclusive box
(:mod:`fgvc_ref.data.records`); images without a row use the whole image.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from fgvc_ref.data.images import junk_note, scan, what_it_holds
from fgvc_ref.data.records import DatasetError, LoadedSplit, Record, check_split, nfc

NESTED = "sub-folders of a class folder (not read: images sit in the class folder itself)"


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
    folders = {nfc(p.name): p for p in top.folders}  # class name (NFC) -> its folder as the disk spells it
    if len(folders) < len(top.folders):
        twins = [ascii(p.name) for p in top.folders if sum(nfc(q.name) == nfc(p.name) for q in top.folders) > 1]
        raise DatasetError(f"{split_dir}: folders {', '.join(twins)} are one name in two Unicode normal forms (NFC and NFD); "
                           "merge them into one class folder")
    if class_names is None:
        classes = sorted(folders)
        index = {name: i for i, name in enumerate(classes)}
    else:
        classes = list(class_names)
        index = {nfc(folder_name(name)): i for i, name in enumerate(classes)}
        unknown = [ascii(f) for f in folders if f not in index]
        if unknown:
            raise DatasetError(f"{split_dir}: {len(unknown)} folder(s) match no class name, e.g. {', '.join(unknown[:5])}")
    boxes = _read_boxes(Path(bbox_csv)) if bbox_csv is not None else {}
    records, errors, unread = [], [], []
    for name in folders:  # sorted by name (NFC)
        try:
            inside = scan(folders[name])
        except DatasetError as e:  # a link that cannot be followed: every class folder's are listed in one error
            errors.append(str(e))
            continue
        skipped.update(inside.skipped)
        for kind, path in inside.examples.items():
            examples.setdefault(kind, path)
        if inside.folders:
            skipped[NESTED] += len(inside.folders)
            examples.setdefault(NESTED, inside.folders[0])
        if (held := what_it_holds(inside)) is not None:
            unread.append(f"{folders[name]} holds {held}")
        records += [Record(str(path), index[name], boxes.get(nfc(f"{name}/{path.name}"))) for path in inside.files]
    if errors:
        raise DatasetError("\n".join(errors))
    if unread:
        raise DatasetError(f"{split_dir}: {len(unread)} class folder(s) hold no image file that is read here:\n  " + "\n  ".join(unread))
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
            boxes[nfc(row[0].strip())] = tuple(int(v) for v in row[1:])
        except ValueError as e:
            raise DatasetError(f"{path}:{line}: box coordinates must be integers, got {row[1:]}") from e
    return boxes  # type: ignore[return-value]
