"""Open-set class splits: the classes a model is trained on (known) and those it must reject (unknown, easy and hard).

Vaze, Han, Vedaldi & Zisserman, "Open-Set Recognition: a Good Closed-Set Classifier is All You Need?",
ICLR 2022, arXiv:2110.06207, define the Semantic Shift Benchmark (SSB) this way: a fine-grained set's
classes split into known ones (trained on) and unknown ones, graded by how far they are from the
known (easy) or how close (hard). A split is a small JSON file::

    {"known": [...], "unknown_easy": [...], "unknown_hard": [...],          required; one unknown list may be empty
     "source": "...", "licence": "...", "note": "...", "dataset": "..."}    optional

Entries are class names, exactly as the dataset's loader names them. An integer ``i`` stands for
class ``i`` of the dataset's canonical order, accepted only when ``dataset`` names a set whose order
is fixed and the data's classes are in that order (:data:`CANONICAL`): ``stanford_cars``
(``cars_meta.mat``), ``cub`` (``classes.txt``: label = class_id - 1, each name starts with its id),
``fashion-mnist`` (the IDX label order). A folder's sorted order is nobody's canonical order, and
the SSB warns that it does not match its indices.

Refused with one line naming the file and the entry: text that is not JSON, a missing or unknown
key, an entry that is neither a name nor an index, a name the dataset lacks (closest names
suggested), an index out of range or without a canonical order, a class listed twice, an empty
known list, both unknown lists empty. A class in no list is *unused*: neither trained on nor
tested, and said so. A split is named by its file, by a shipped name (:func:`shipped`:
``fgvc_ref/data/splits/NAME.json``), or ``seeded:SEED[:KNOWN]`` (:func:`seeded_split`).

Convention: the known classes keep the dataset's class order and are renumbered 0..K-1 in it
(:func:`known_data`), so label k of an open-set run is the k-th known class in that order, and the
class names are kept. A split's identity is the SHA-256 of its canonical JSON (keys sorted, no
whitespace), so a re-indented file is the same split.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import NamedTuple

import torch

from fgvc_ref.data.records import DatasetError

LISTS = ("known", "unknown_easy", "unknown_hard")
OPTIONAL = ("source", "licence", "note", "dataset")
SPLITS_DIR = Path(__file__).with_name("splits")
SEEDED = re.compile(r"seeded:(?P<seed>\d+)(?::(?P<known>[0-9.]+))?")
DEFAULT_VAL_FRACTION = 0.1  # the validation share an open-set run carves from the known train images when val_fraction is 0


def _cars(classes: list[str]) -> bool:
    from fgvc_ref.data.stanford_cars import official_classes

    return list(classes) == official_classes()


def _cub(classes: list[str]) -> bool:
    return len(classes) == 200 and all(c.startswith(f"{i + 1:03d}.") for i, c in enumerate(classes))


def _fashion(classes: list[str]) -> bool:
    from fgvc_ref.data.fashion_mnist import CLASSES

    return list(classes) == list(CLASSES)


CANONICAL = {  # dataset -> (its canonical order, in words; whether a class list is in that order)
    "stanford_cars": ("cars_meta.mat's class_names order", _cars),
    "cub": ("classes.txt order (label = class_id - 1)", _cub),
    "fashion-mnist": ("the IDX files' label order", _fashion),
}


class SplitError(DatasetError):
    """A split file or spec that cannot be used; the message names it and the entry."""


class OpenSet(NamedTuple):
    name: str  # as given: a file, a shipped name, or seeded:SEED[:KNOWN]
    sha256: str  # of the canonical JSON content
    content: dict  # the split as written (names or indices)
    classes: list[str]  # the dataset's class names, in its order
    known: tuple[int, ...]  # dataset class indices, ascending
    unknown_easy: tuple[int, ...]
    unknown_hard: tuple[int, ...]

    def names(self, which: str) -> list[str]:
        return [self.classes[c] for c in getattr(self, which)]

    @property
    def unused(self) -> list[str]:
        listed = set(self.known) | set(self.unknown_easy) | set(self.unknown_hard)
        return [c for i, c in enumerate(self.classes) if i not in listed]

    def record(self) -> dict:
        """What a run records (recipe.json) and an export carries: enough to apply the split again without its file."""
        return {"split": self.name, "sha256": self.sha256, "content": self.content, **{k: self.names(k) for k in LISTS},
                "unused": self.unused}

    def summary(self) -> str:
        unused = f"; {len(self.unused)} class(es) in no list, neither trained on nor tested" if self.unused else ""
        return (f"open-set split {self.name}: {len(self.known)} known, {len(self.unknown_easy)} easy and {len(self.unknown_hard)} hard "
                f"unknown classes{unused}")


def shipped() -> list[str]:
    """The splits shipped with the package, by name."""
    return sorted(p.stem for p in SPLITS_DIR.glob("*.json"))


def canonical_sha256(content: dict) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def read_split(spec: str | Path) -> tuple[dict, str]:
    """The JSON content of a split file or shipped name, checked for form (not yet against a dataset), and its name."""
    text = str(spec)
    path = Path(text)
    if not path.is_file():
        if text not in shipped():
            raise SplitError(f"--open-set {text}: no such split file, and not a shipped split ({', '.join(shipped())}) nor "
                             "seeded:SEED[:KNOWN]")
        path = SPLITS_DIR / f"{text}.json"
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise SplitError(f"{text}: not a JSON split file (not UTF-8 text)") from None
    except json.JSONDecodeError as e:
        raise SplitError(f"{text}: not a JSON split file ({e.msg} at line {e.lineno}, column {e.colno}); a split is "
                         '{"known": [...], "unknown_easy": [...], "unknown_hard": [...]}') from None
    return check_form(content, text), text


def check_form(content, where: str) -> dict:
    """``content`` if it has the split's form: the three lists of names or indices, and only the known optional keys."""
    if not isinstance(content, dict):
        raise SplitError(f"{where}: a split is a JSON object with keys {', '.join(LISTS)}, got a {type(content).__name__}")
    missing = [k for k in LISTS if k not in content]
    if missing:
        raise SplitError(f"{where}: missing key(s) {', '.join(missing)} (an unknown list may be empty, [], but must be there)")
    extra = sorted(set(content) - set(LISTS) - set(OPTIONAL))
    if extra:
        raise SplitError(f"{where}: unknown key(s) {', '.join(extra)}; a split has {', '.join(LISTS)} and optionally {', '.join(OPTIONAL)}")
    for key in OPTIONAL:
        if key in content and not isinstance(content[key], str):
            raise SplitError(f"{where}: {key} must be a string, got {type(content[key]).__name__}")
    for key in LISTS:
        entries = content[key]
        if not isinstance(entries, list):
            raise SplitError(f"{where}: {key} must be a list of class names or indices, got {type(entries).__name__}")
        for e in entries:
            if isinstance(e, bool) or not isinstance(e, (str, int)):
                raise SplitError(f"{where}: {key} holds {e!r}, neither a class name nor an integer index")
    if not content["known"]:
        raise SplitError(f"{where}: the known list is empty; a model needs classes to know")
    if not content["unknown_easy"] and not content["unknown_hard"]:
        raise SplitError(f"{where}: unknown_easy and unknown_hard are both empty; rejection needs unknown classes to reject")
    return content


def resolve(content: dict, classes: list[str], name: str) -> OpenSet:
    """The split ``content`` applied to a dataset's ``classes``: every entry a class of it, no class in two lists."""
    content = check_form(content, name)
    dataset = content.get("dataset")
    where: dict[int, str] = {}
    resolved = {}
    for key in LISTS:
        indices = []
        for e in content[key]:
            if isinstance(e, int):
                c = _index(e, key, dataset, classes, name)
            elif e in classes:
                c = classes.index(e)
            else:
                close = difflib.get_close_matches(e, classes, n=2)
                raise SplitError(f"{name}: {key} names {e!r}, which is not a class of this dataset ({len(classes)} classes"
                                 + (f"; closest: {', '.join(map(repr, close))}" if close else f", e.g. {classes[0]!r}") + ")")
            if c in where:
                said = "twice in " + key if where[c] == key else f"in both {where[c]} and {key}"
                raise SplitError(f"{name}: class {classes[c]!r} is listed {said}; the lists must not overlap")
            where[c] = key
            indices.append(c)
        resolved[key] = tuple(sorted(indices))
    return OpenSet(name, canonical_sha256(content), content, list(classes), resolved["known"], resolved["unknown_easy"],
                   resolved["unknown_hard"])


def _index(i: int, key: str, dataset: str | None, classes: list[str], name: str) -> int:
    if dataset not in CANONICAL:
        raise SplitError(f"{name}: {key} holds the index {i}, but indices need \"dataset\" naming a set with a fixed class order "
                         f"({', '.join(CANONICAL)}); got {dataset!r}. Give class names instead")
    order, is_canonical = CANONICAL[dataset]
    if not is_canonical(classes):
        raise SplitError(f"{name}: indices are in {dataset}'s {order}, but this data's classes are not in that order (first "
                         f"{classes[0]!r}); give class names, or use a copy read by the {dataset} loader")
    if not 0 <= i < len(classes):
        raise SplitError(f"{name}: {key} holds the index {i}, outside 0..{len(classes) - 1}")
    return i


def seeded_split(classes: list[str], seed: int, known: float = 0.5) -> dict:
    """A random split of any dataset: ``round(known * K)`` known classes (at least 1, at most K - 1) drawn by a permutation
    seeded with ``seed``; the others are unknown, not graded by difficulty, all listed under unknown_easy."""
    if not 0 < known < 1:
        raise SplitError(f"seeded:{seed}:{known}: the known share must be in (0, 1)")
    k = len(classes)
    if k < 2:
        raise SplitError(f"seeded:{seed}: a split needs at least 2 classes, the data has {k}")
    n = min(k - 1, max(1, round(known * k)))
    perm = torch.randperm(k, generator=torch.Generator().manual_seed(seed)).tolist()
    chosen = set(perm[:n])
    return {"known": [c for i, c in enumerate(classes) if i in chosen], "unknown_easy": [c for i, c in enumerate(classes) if i not in chosen],
            "unknown_hard": [], "source": f"seeded:{seed}:{known} (fgvc_ref.data.open_set.seeded_split: torch.randperm(K) with "
            f"torch.Generator().manual_seed({seed}), the first {n} known)",
            "note": "random, not graded by difficulty: every unknown class is listed under unknown_easy and unknown_hard is empty, "
                    "so read the AUROC over all unknowns"}


def load_split(spec: str | Path, classes: list[str]) -> OpenSet:
    """A split by file, shipped name or ``seeded:SEED[:KNOWN]``, resolved against a dataset's ``classes``."""
    match = SEEDED.fullmatch(str(spec))
    if match:
        try:
            known = float(match["known"]) if match["known"] else 0.5
        except ValueError:
            raise SplitError(f"--open-set {spec}: KNOWN must be a number in (0, 1)") from None
        return resolve(seeded_split(classes, int(match["seed"]), known), classes, str(spec))
    content, name = read_split(spec)
    return resolve(content, classes, name)


def from_record(record: dict, classes: list[str]) -> OpenSet:
    """The split a run or an export recorded (:meth:`OpenSet.record`), applied again to ``classes``."""
    split = resolve(record["content"], classes, record["split"])
    if split.sha256 != record["sha256"]:  # the recorded content is what was hashed; a change is corruption
        raise SplitError(f"{record['split']}: the recorded split's content does not match its recorded hash; record damaged")
    return split


# --- applying a split to data ------------------------------------------------------------------------


def relabel(labels: torch.Tensor, split: OpenSet) -> torch.Tensor:
    """Dataset labels -> 0..K-1 over the known classes in the dataset's order (-1 for any other class)."""
    table = torch.full((len(split.classes),), -1, dtype=torch.int64)
    table[list(split.known)] = torch.arange(len(split.known))
    return table[labels]


def known_fingerprint(fingerprint: str, split: OpenSet) -> str:
    """The identity of a dataset's known part under a split (what a run trained on it records as its data fingerprint)."""
    return hashlib.sha256(json.dumps([fingerprint, split.sha256]).encode()).hexdigest()


def known_data(data, split: OpenSet):
    """``data`` (a :class:`~fgvc_ref.data.sources.Data`) restricted to the known classes, labels renumbered, names kept;
    its fingerprint covers the split, and ``open_set`` records it."""
    if list(data.classes) != split.classes:
        raise SplitError(f"{split.name}: resolved against other classes than {data.name}'s")
    train = relabel(data.train_labels, split) >= 0
    fields = {"train_images": data.train_images[train], "train_labels": relabel(data.train_labels[train], split),
              "classes": split.names("known"),
              "fingerprint": known_fingerprint(data.fingerprint, split),
              "train_sizes": data.train_sizes[train] if data.train_sizes is not None else None,
              "train_cropped": data.train_cropped[train] if data.train_cropped is not None else None, "open_set": split.record()}
    if data.test_labels is not None:
        test = relabel(data.test_labels, split) >= 0
        fields.update(test_images=data.test_images[test], test_labels=relabel(data.test_labels[test], split))
    return data._replace(**fields)


class TestPartition(NamedTuple):
    known: torch.Tensor  # indices of the known test images, in data order
    known_labels: torch.Tensor  # their labels renumbered 0..K-1
    unknown: torch.Tensor  # indices of the unknown test images (easy and hard), in data order
    hard: torch.Tensor  # bool, per unknown image: of an unknown_hard class


def partition(labels: torch.Tensor, split: OpenSet) -> TestPartition:
    """A test split's images by the split: known (relabelled), unknown with easy / hard membership; unused classes left out."""
    new = relabel(labels, split)
    easy, hard = torch.isin(labels, torch.tensor(split.unknown_easy, dtype=torch.int64)), torch.isin(labels, torch.tensor(split.unknown_hard, dtype=torch.int64))
    known = (new >= 0).nonzero().squeeze(1)
    unknown = (easy | hard).nonzero().squeeze(1)
    return TestPartition(known, new[known], unknown, hard[unknown])
