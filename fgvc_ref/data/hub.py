"""Image-classification sets as saved from the Hugging Face Hub, in either of their two forms.

Most fine-grained sets are fetched from the Hub today (Stanford Cars' original host is gone). A
copy comes in one of two forms, each read here with ``pyarrow`` (Parquet and Arrow IPC) and
``pyyaml`` (the dataset card):

    hf_repo          a snapshot of the dataset repository (``huggingface-cli download --repo-type dataset``
                     or ``git clone``): README.md whose YAML header has ``configs`` (split -> file
                     patterns, e.g. ``data/train-*``) and ``dataset_info`` (features), and Parquet shards
                     such as ``data/train-00000-of-00002.parquet``; each shard's schema carries the
                     features again under the metadata key ``huggingface``.
    hf_save_to_disk  ``datasets``' ``save_to_disk`` folder: dataset_dict.json (``{"splits": [...]}``) and
                     one folder per split with Arrow IPC stream shards ``data-0000k-of-0000N.arrow``
                     (listed in its state.json), dataset_info.json (features) and state.json.

**Configs** (a snapshot): the card's ``configs`` entry is chosen as ``datasets`` chooses it: by name with
``config=`` (``--hub-config``), else the only one, else the one named ``default`` or marked ``default: true``
(several such, or none: an error asking for ``--hub-config``). Exactly that config's files are read, never
another's and never every Parquet file in the tree: its ``data_files`` in each form the card format allows (a
pattern or a list of them, for ``train``; a mapping split -> pattern(s); a list of ``{split, path}`` whose path is
a pattern or a list), globs relative to the root or to the config's ``data_dir``, by fsspec's rules (``**`` only
as a whole path component). What cannot be resolved here is an error naming the config: another form, a split
named twice, a URL or a path outside the copy, a data_dir that is not a folder, files that are not Parquet, one
pattern matching nothing while the split's others match. A config with a ``data_dir`` and no ``data_files``, the
only config with neither, or a card with no configs has its splits from file names, as ``datasets`` infers them:
``data/{split}-0000k-of-0000N*.parquet`` names any split; else the keywords of :data:`SPLIT_WORDS` (as
``datasets`` has them) as words of a folder's name, then of a file's; a note names the files that fit no split.
Without configs, shards of one split in several top folders (the Hub's Parquet conversion, one folder per config)
are refused until ``--hub-config NAME`` names the folder to read, and a conversion's ``partial-{split}`` folder
(the first part of a large split) is refused. A save_to_disk folder: dataset_dict.json's splits, each with the
shards its state.json lists.

**Completeness**: every split with files here must be whole: no shard of a ``name-k-of-N`` series missing (each
missing one is named), no series of one name found with two N (two downloads mixed), every shard a state.json
lists present, and, in a snapshot, as many rows in the shards (from Parquet metadata: no image read) as the card's
``dataset_info`` of that config states in ``splits`` (``num_examples``), else both counts are named. A
save_to_disk folder's dataset_info.json count is only said when it differs: ``datasets`` keeps it from before a
filter or select. A Git LFS pointer in place of a shard says to fetch the objects. A split none of whose files is
here (not downloaded) is an error only when it is read.

**Splits read**: ``splits`` (``prepare --train-splits``, ``--test-split``) names the copy's splits read into one
(default: the one named ``split``); a split the copy lacks is an error listing those it has, with their rows, and
the option that reads another. Every split of the copy is returned with its rows (``LoadedSplit.available``), so
that ``prepare`` names those it leaves out.

**Columns**: the image is the feature typed ``Image`` (a struct of ``bytes`` and ``path``; a plain
binary or string column is taken as bytes or path), the label the ``ClassLabel`` feature (else a
column named ``image`` / ``label``); ``image_column`` / ``label_column`` name them for mirrors that
differ, and a wrong name is an error listing the columns found. Extra columns (captions,
embeddings, ids) are never read.

**Class names**: from every source present (the card, each shard's schema metadata,
dataset_info.json), kept in Unicode NFC; where several are present they must agree (compared in
NFC), else an error names both and how they differ, with escapes. A source may list them or map
index -> name (the card's YAML ``'0': name``): the keys are indices, in integer order ("10" after
"9"). With none, classes are named by their index (and said so); a mirror whose labels are the class
names themselves (a string column) has those names as classes in alphabetical order (``sorted``),
whatever order the rows give them in; a label stored as a class name is matched in NFC too.

**Boxes**: most copies have none, and then every image is used whole (the blog's box-crop protocol
cannot be run: ``prepare`` says so, and so do the run's recipe.json and report). A box column is used
only when named (``box_column``) with its convention (``box_format``): ``xyxy`` pixel edges, 0-based
(PIL's crop box); ``xywh`` left, top, width, height (COCO); ``voc`` 1-based inclusive corners (the
project's own). A column that looks like a box but was not named is reported, not used.

**Images** are never loaded here: records name ``(shard, row)`` and :func:`iter_image_bytes` streams
the stored bytes batch by batch (or reads the file at ``path``, relative to the root, when ``bytes``
is null) for :mod:`fgvc_ref.data.cache` to decode with the package's one decoder
(:func:`fgvc_ref.data.images.decode_image`). A truncated or unreadable shard, a null label, a row with
neither bytes nor a path: an error naming the shard, the split and the row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from fgvc_ref.data.images import find
from fgvc_ref.data.layouts import Layout, find_layout
from fgvc_ref.data.records import Box, DatasetError, LoadedSplit, Record, edges_box, names_differ, nfc

SPLIT_WORDS = {"train": ("train", "training"), "validation": ("validation", "valid", "val", "dev"),
               "test": ("test", "testing", "eval", "evaluation")}  # datasets' keywords, in its order of splits
SHARDED = re.compile(r"data/(?P<split>\w+(?:\.\w+)*)-\d{5}-of-\d{5}[^/]*")  # push_to_hub's names: data/{split}-0000k-of-0000N*
SERIES = re.compile(r"(?P<stem>.+?)-(?P<k>\d+)-of-(?P<n>\d+)(?P<tail>.*)")  # a shard k of a series of N


def shard_globs(split: str) -> tuple[str, ...]:
    """Where Hub snapshots keep a split's Parquet shards: ``data/train-0000k-of-0000N.parquet`` (push_to_hub), a config
    folder (``default/train-*.parquet``), the parquet-conversion branch's ``default/train/0000.parquet``, or the root."""
    forms = ("data/{}-*.parquet", "data/{}/*.parquet", "{}-*.parquet", "{}/*.parquet", "*/{}-*.parquet", "*/{}/*.parquet")
    return tuple(form.format(word) for word in SPLIT_WORDS[split] for form in forms)


LAYOUT_TABLE = (  # --dataset hub: the user says it is a Hub copy, so any Parquet shard will do to look further
    Layout("hf_repo", (("*.parquet", "*/*.parquet", "*/*/*.parquet"),), "a Hugging Face dataset-repo snapshot"),
    Layout("hf_save_to_disk", ("dataset_dict.json",), "a `datasets` save_to_disk folder"),
)
BOX_FORMATS = ("xyxy", "xywh", "voc")
BOX_LIKE = re.compile(r"^(bbox|bboxes|box|boxes|bounding_box|bounding_boxes)$", re.I)
BATCH = 256  # rows per record batch streamed from a shard


def _arrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError("reading Hugging Face copies needs pyarrow: pip install 'fgvc_ref[hub]'") from None
    return pa, pq


# --- the two forms: splits, shards and features ----------------------------------------------


def card(root: Path) -> dict:
    """The YAML header of the dataset card, the README.md in ``root`` ({} when there is none)."""
    path = root / "README.md"
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8", errors="replace")
    match = re.match(r"---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
    if not match:
        return {}
    try:
        import yaml
    except ImportError:
        raise DatasetError("reading a Hugging Face dataset card needs pyyaml: pip install 'fgvc_ref[hub]'") from None
    try:
        header = yaml.safe_load(match.group(1))
    except yaml.YAMLError as e:
        raise DatasetError(f"{path}: the card's YAML header is not readable ({e})") from e
    return header if isinstance(header, dict) else {}


class Split(NamedTuple):
    """One split of a copy: its shards, how the copy names them, and the rows they hold."""

    shards: tuple[Path, ...]  # sorted; () when none of its files is here
    named_by: str  # how the copy names its files, for messages: the card's patterns, "file names under ...", state.json
    rows: int | None  # rows in its shards, from their metadata; None when none of its files is here


class Copy(NamedTuple):
    """Every split a Hugging Face copy describes, from the config read."""

    config: str | None  # the card's config read; None for a save_to_disk folder
    header: dict  # the card's YAML header ({} for a save_to_disk folder or a snapshot without a card)
    splits: dict[str, Split]  # split name -> its files, in the copy's order
    notes: tuple[str, ...]  # the config read and why, its splits and rows, files that belong to no split, stale counts


def choose_config(header: dict, config: str | None, root: Path) -> tuple[str, dict | None, str]:
    """The config of a snapshot to read, by ``datasets``' rule (module docstring): its name, its ``configs`` entry (None
    when the card lists none) and why it was chosen. ``config``: ``--hub-config``."""
    where = root / "README.md"
    configs = header.get("configs") or []
    if not (isinstance(configs, list) and all(isinstance(c, dict) for c in configs)):
        raise DatasetError(f"{where}: the card's configs must be a list of {{config_name, data_files}} entries, got {configs!r}")
    names = [str(c.get("config_name", "default")) for c in configs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DatasetError(f"{where}: the card lists config {twice[0]!r} more than once; fix the card")
    if not configs:
        if config is None:
            return "default", None, "the card lists no configs: splits from file names"
        if not (root / config).is_dir():
            raise DatasetError(f"{root}: --hub-config {config!r}: the card lists no configs and there is no folder {config!r} (a Parquet "
                               "conversion keeps one folder per config)")
        return config, {"config_name": config, "data_dir": config}, f"--hub-config: the folder {config}/, splits from file names"
    if config is not None:
        if config not in names:
            raise DatasetError(f"{where}: no config {config!r}; the card lists {names}")
        return config, configs[names.index(config)], "asked for with --hub-config"
    defaults = [n for n, c in zip(names, configs) if len(configs) == 1 or n == "default" or c.get("default")]
    if len(defaults) > 1:
        raise DatasetError(f"{where}: the card makes several configs the default ({defaults}); choose one with --hub-config NAME")
    if not defaults:
        raise DatasetError(f"{where}: the card lists configs {names} and marks none default; choose one with --hub-config NAME")
    entry = configs[names.index(defaults[0])]
    return defaults[0], entry, "the card's only config" if len(configs) == 1 else "marked default" if entry.get("default") else "named default"


def config_patterns(entry: dict, name: str, where: Path) -> dict[str, list[str]] | None:
    """A config's ``data_files`` as split -> patterns, from each form the card format allows: a pattern or a list of
    patterns (the ``train`` split), a mapping split -> pattern(s), a list of ``{split, path}`` whose path is a pattern or
    a list. None when the config names no data_files; DatasetError naming the config for anything else."""
    files = entry.get("data_files")
    if files is None:
        return None
    unresolvable = DatasetError(f"{where}: config {name!r}: cannot resolve its data_files {files!r}: the card format takes a "
                                "pattern, a list of patterns, a mapping split -> pattern(s), or a list of {split, path}; fix the card")

    def patterns(value) -> list[str]:
        value = [value] if isinstance(value, str) else value
        if not (isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)):
            raise unresolvable
        return value
    if isinstance(files, (str, list)) and all(isinstance(f, str) for f in ([files] if isinstance(files, str) else files)):
        return {"train": patterns(files)}
    if isinstance(files, dict):
        return {str(split): patterns(value) for split, value in files.items()}
    if not (isinstance(files, list) and all(isinstance(f, dict) and set(f) == {"split", "path"} for f in files)):
        raise unresolvable
    splits = [str(f["split"]) for f in files]
    if len(set(splits)) < len(splits):
        raise DatasetError(f"{where}: config {name!r}: its data_files name split {next(s for s in splits if splits.count(s) > 1)!r} twice; fix the card")
    return {str(f["split"]): patterns(f["path"]) for f in files}


def card_glob(base: Path, pattern: str) -> list[Path]:
    """The files a card's pattern names under ``base``, by the glob rules ``datasets`` resolves data_files with (fsspec's):
    ``*`` within a name, ``**`` across folders (a trailing ``**``: every file below); paths through junk or hidden
    folders skipped (:func:`~fgvc_ref.data.images.find`). ``pattern`` is one :func:`pattern_problem` accepts."""
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    if parts and parts[-1] == "**":
        parts.append("*")
    return [p for p in find(base, "/".join(parts)) if p.is_file()] if parts else []


def pattern_problem(pattern) -> str | None:
    """Why a card's pattern (or data_dir) cannot be resolved in a local copy; None when it can."""
    if not isinstance(pattern, str) or not pattern or "://" in pattern or pattern.startswith(("/", "~")) or ".." in pattern.split("/"):
        return "it is not a path inside the repository"
    if any("**" in part and part != "**" for part in pattern.split("/")):
        return "'**' can only be a whole path component (as datasets resolves it)"
    return None


def infer_splits(base: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    """Split -> Parquet shards under ``base`` by the file-name rules of ``datasets``, and the shards that belong to no
    split (or to several). First ``data/{split}-0000k-of-0000N*.parquet``, which names any split; else the keywords of
    :data:`SPLIT_WORDS` as words of a folder's name, else of a file's name. Never "every file is train": that is how
    other configs' files would be read."""
    files = card_glob(base, "**/*.parquet")
    partial = next((p for p in files if any(part.lower().startswith("partial-") for part in p.relative_to(base).parts[:-1])), None)
    if partial is not None:
        raise DatasetError(f"{partial.parent}: a partial-<split> folder of the Hub's Parquet conversion holds only the first part of a "
                           "large split; download the dataset's own files (its main branch) instead")
    sharded: dict[str, list[Path]] = {}
    for p in files:
        if (m := SHARDED.fullmatch(p.relative_to(base).as_posix())) is not None:
            sharded.setdefault(m["split"], []).append(p)
    if sharded:
        return _in_order(sharded), [p for p in files if not any(p in v for v in sharded.values())]
    for names_of in (lambda rel: rel.parts[:-1], lambda rel: rel.parts[-1:]):  # folder names first, then file names
        splits, stray = {}, []
        for p in files:
            words = {w for name in names_of(p.relative_to(base)) for w in re.split(r"[-._ 0-9]+", name.lower())}
            hits = [split for split, synonyms in SPLIT_WORDS.items() if words & set(synonyms)]
            splits.setdefault(hits[0], []).append(p) if len(hits) == 1 else stray.append(p)
        if splits:
            return _in_order(splits), stray
    return {}, files


def _in_order(splits: dict[str, list[Path]]) -> dict[str, list[Path]]:
    """train, validation, test, then the others by name (``datasets``' order)."""
    known = [s for s in SPLIT_WORDS if s in splits]
    return {s: sorted(splits[s]) for s in known + sorted(set(splits) - set(known))}


def repo_files(root: Path, name: str, entry: dict | None, alone: bool) -> tuple[dict[str, tuple[list[Path], str]], tuple[str, ...]]:
    """Split -> (Parquet shards, how the card names them) of the config ``name`` of a snapshot, and notes. Patterns are
    relative to the root, or to the config's data_dir; a config with no data_files has its splits inferred
    (:func:`infer_splits`) under its data_dir, or under the root when the card lists no other config (``alone``)."""
    where = root / "README.md"
    entry = entry or {}
    data_dir = entry.get("data_dir")
    if data_dir is not None and (pattern_problem(data_dir) or not (root / data_dir).is_dir()):
        raise DatasetError(f"{where}: config {name!r}: its data_dir {data_dir!r} is not a folder under {root}")
    base = root / data_dir if data_dir else root
    patterns = config_patterns(entry, name, where)
    if patterns is None:
        if not (data_dir or alone):
            raise DatasetError(f"{where}: config {name!r} names neither data_files nor data_dir, so its files cannot be told apart "
                               "from the other configs'; fix the card, or choose another config with --hub-config")
        splits, stray = infer_splits(base)
        for split, shards in splits.items():
            tops = sorted({p.relative_to(base).parts[0] if len(p.relative_to(base).parts) > 1 else "." for p in shards})
            if len(tops) > 1:
                raise DatasetError(f"{base}: shards of split {split!r} lie in {len(tops)} folders ({', '.join(t + '/' for t in tops)}), "
                                   "as a Parquet conversion keeps one folder per config: read one with --hub-config NAME")
        notes = (f"{len(stray)} Parquet file(s) under {base} belong to no split by their names and are not read, e.g. {stray[0]}",) if stray else ()
        return {split: (shards, f"file names under {base}") for split, shards in splits.items()}, notes
    out = {}
    for split, wanted in patterns.items():
        for pattern in wanted:
            if (problem := pattern_problem(pattern)) is not None:
                raise DatasetError(f"{where}: config {name!r}, split {split!r}: cannot resolve {pattern!r}: {problem}; fix the card, or "
                                   "choose another config with --hub-config")
        matched = {pattern: card_glob(base, pattern) for pattern in wanted}
        files = sorted({p for found in matched.values() for p in found})
        shards = [p for p in files if p.suffix == ".parquet"]
        if files and not shards:
            raise DatasetError(f"{where}: config {name!r}, split {split!r}: its files are not Parquet shards (e.g. {files[0]}); this "
                               "reader reads Parquet snapshots and save_to_disk folders")
        unmatched = [pattern for pattern, found in matched.items() if not found]
        if shards and unmatched:
            raise DatasetError(f"{where}: config {name!r}, split {split!r}: {unmatched[0]!r} matches no file under {base}, while its "
                               "other patterns do: a partial download; download it again")
        out[split] = (shards, " ".join(wanted) + (f" under {data_dir}/" if data_dir else ""))
    return out, ()


def saved_files(root: Path) -> tuple[dict[str, tuple[list[Path], str]], dict[str, int]]:
    """Split -> (Arrow shards, how the folder names them) of a save_to_disk folder: the shards each split's state.json
    lists (every one must be here), else its ``data-*.arrow``; and split -> the rows its dataset_info.json states."""
    try:
        splits = json.loads((root / "dataset_dict.json").read_text())["splits"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{root / 'dataset_dict.json'}: not a readable save_to_disk index ({e})") from e
    out, stated = {}, {}
    for split in map(str, splits):
        folder = root / split
        try:
            listed = [folder / f["filename"] for f in json.loads((folder / "state.json").read_text())["_data_files"]]
            named_by = f"{folder / 'state.json'}"
        except (OSError, ValueError, KeyError, TypeError):
            listed, named_by = card_glob(folder, "data-*.arrow") if folder.is_dir() else [], f"{folder}/data-*.arrow"
        missing = [p for p in listed if not p.is_file()]
        if missing and len(missing) < len(listed):
            raise DatasetError(f"{folder / 'state.json'}: {len(missing)} of the {len(listed)} shards it lists for split {split!r} are "
                               f"missing: {[p.name for p in missing[:5]]}: a partial copy; copy the folder again")
        out[split] = ([p for p in listed if p.is_file()], named_by)
        try:
            stated.update({k: v for k, v in stated_rows(json.loads((folder / "dataset_info.json").read_text())).items() if k == split})
        except (OSError, ValueError):
            pass
    return out, stated


def _names_by_index(names, where: str) -> list[str]:
    """A ClassLabel's names in label order: a list as it is, or a mapping index -> name (the card's YAML writes
    ``'0': name``, string keys: ordered as integers, so that "10" comes after "9", not after "1")."""
    if isinstance(names, dict):
        bad = [k for k in names if not re.fullmatch(r"\s*\d+\s*", str(k))]
        if bad:
            raise DatasetError(f"{where}: class names must be keyed by their index (0, 1, ...); found the key {bad[0]!r}")
        names = [names[k] for k in sorted(names, key=int)]
    return [str(n) for n in names]


def stated_rows(info: dict | None) -> dict[str, int]:
    """Split -> ``num_examples`` as a dataset_info states it (a list of splits in a card, a mapping in dataset_info.json)."""
    splits = (info or {}).get("splits")
    items = splits.values() if isinstance(splits, dict) else splits if isinstance(splits, list) else []
    return {str(s["name"]): s["num_examples"] for s in items if isinstance(s, dict) and "name" in s and isinstance(s.get("num_examples"), int)}


def card_info(header: dict, config: str) -> dict | None:
    """The card's ``dataset_info`` of config ``config``: the entry with its config_name ("default" when it has none), or a
    lone unnamed entry when the card lists at most one config."""
    info = header.get("dataset_info")
    entries = [e for e in (info if isinstance(info, list) else [info]) if isinstance(e, dict)]
    named = [e for e in entries if str(e.get("config_name", "default")) == config]
    if named:
        return named[0]
    lone = len(entries) == 1 and "config_name" not in entries[0] and len(header.get("configs") or []) <= 1
    return entries[0] if lone else None


def shard_gaps(shards: list[Path] | tuple[Path, ...]) -> list[str]:
    """What the ``name-k-of-N`` series among ``shards`` lack: each missing shard's path (``*`` for the hash some writers
    append), and each series found with two counts N (files of two downloads mixed); [] when every series is whole."""
    series: dict[tuple, dict[str, dict[int, tuple[str, str]]]] = {}
    for p in shards:
        if (m := SERIES.fullmatch(p.name)) is not None:
            series.setdefault((p.parent, m["stem"], p.suffix), {}).setdefault(m["n"], {})[int(m["k"])] = (m["k"], m["tail"])
    gaps = []
    for (folder, stem, ext), counts in series.items():
        if len(counts) > 1:
            gaps.append(f"{folder / stem}-*-of-N{ext} with N = {' and '.join(sorted(counts))} side by side (files of two downloads)")
            continue
        (n, present), = counts.items()
        width = len(next(iter(present.values()))[0])
        tails = {tail for _, tail in present.values()}
        tail = ext if tails == {ext} else f"*{ext}"
        gaps += [f"missing {folder / f'{stem}-{k:0{width}d}-of-{n}{tail}'}" for k in range(int(n)) if k not in present]
    return gaps


def shard_rows(path: Path) -> int:
    """Rows in one shard, from its metadata (a Parquet footer, an Arrow stream's batch headers): no image is read."""
    pa, pq = _arrow()
    if path.suffix == ".parquet":
        try:
            return pq.read_metadata(path).num_rows
        except (OSError, pa.ArrowException) as e:
            raise DatasetError(_unreadable(path, "Parquet file", e)) from e
    rows = 0
    try:
        for batch in pa.ipc.open_stream(pa.memory_map(str(path))):
            rows += batch.num_rows
    except (OSError, pa.ArrowException) as e:
        raise DatasetError(f"{path}: not readable at row {rows} ({type(e).__name__}: {e}); download it again") from e
    return rows


def _unreadable(path: Path, kind: str, e: Exception) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        head = b""
    if head.startswith(b"version https://git-lfs"):
        return (f"{path}: a Git LFS pointer, not the {kind} itself (the repository was cloned without Git LFS): run `git lfs pull` "
                "in the copy, or download it with huggingface-cli")
    return f"{path}: not a readable {kind} ({type(e).__name__}: {e}); download it again"


def copy_splits(root: Path, layout: str, config: str | None = None) -> Copy:
    """Every split of a copy in ``layout`` (module docstring), each checked whole: no shard of a ``-k-of-N`` series
    missing, none of two series mixed, and (a snapshot) the rows its card's dataset_info states. A split none of whose
    files is here is kept with no shards: refused by :func:`load_hub` only when it is read."""
    root = Path(root)
    if layout == "hf_repo":
        header = card(root)
        name, entry, why = choose_config(header, config, root)
        files, notes = repo_files(root, name, entry, alone=len(header.get("configs") or []) <= 1)
        stated, by = stated_rows(card_info(header, name)), f"the card's dataset_info ({root / 'README.md'}, config {name!r})"
    else:
        if config is not None:
            raise DatasetError(f"{root}: --hub-config {config!r}: a save_to_disk folder has no configs (the option is for dataset-repo snapshots)")
        header, name, why, notes = {}, None, "", ()
        files, stated = saved_files(root)
        by = "its dataset_info.json"
    splits, stale = {}, []
    for split, (shards, named_by) in files.items():
        gaps = shard_gaps(shards)
        if gaps:
            raise DatasetError(f"{root}: split {split!r} ({named_by}) is not whole: {'; '.join(gaps)}. A partial download, or files of "
                               "two downloads mixed: download the split again into an empty folder")
        rows = sum(shard_rows(p) for p in shards) if shards else None
        if rows is not None and split in stated and rows != stated[split]:
            said = f"split {split!r} has {rows:,} rows in its {len(shards)} shard(s) ({named_by}), but {by} says {stated[split]:,}"
            if layout == "hf_save_to_disk":  # datasets keeps the count from before a filter or a select: said, not refused
                stale.append(f"{said}: datasets keeps that count from before a filter or select; state.json's shards, all here, are read")
            elif rows < stated[split]:
                raise DatasetError(f"{root}: {said}: a partial download; download it again")
            else:
                raise DatasetError(f"{root}: {said}: shards of an older download beside the new ones, or a card out of date; download the "
                                   "copy again into an empty folder")
        splits[split] = Split(tuple(shards), named_by, rows)
    listed = ", ".join(f"{s} ({v.rows:,} rows)" if v.rows is not None else f"{s} (no files here)" for s, v in splits.items())
    read = f"Hugging Face config {name!r} ({why})" if name is not None else "save_to_disk splits"
    return Copy(name, header, splits, (f"{read}: {listed or 'none'}", *notes, *stale))


def _features_from_card(header: dict, config: str, where: str) -> dict | None:
    """Feature name -> {"_type": ..., "names": [...]} from the card's dataset_info of ``config`` (None when absent)."""
    info = card_info(header, config)
    if not isinstance(info, dict) or not isinstance(info.get("features"), list):
        return None
    features = {}
    for f in info["features"]:
        dtype = f.get("dtype")
        if isinstance(dtype, dict) and "class_label" in dtype:
            features[f["name"]] = {"_type": "ClassLabel", "names": _names_by_index(dtype["class_label"].get("names", {}), where)}
        else:
            features[f["name"]] = {"_type": "Image" if dtype == "image" else str(dtype)}
    return features


def _features_from_json(obj, where: str) -> dict | None:
    """Feature name -> {"_type", "names"} from a ``datasets`` features dict (schema metadata, dataset_info.json)."""
    if not isinstance(obj, dict):
        return None
    out = {}
    for name, f in obj.items():
        if isinstance(f, dict):
            out[name] = {"_type": f.get("_type", ""), **({"names": _names_by_index(f["names"], where)} if "names" in f else {})}
    return out


# --- one split --------------------------------------------------------------------------------


def _open(path: Path):
    """A shard's schema and a function that streams its record batches (columns given)."""
    pa, pq = _arrow()
    try:
        if path.suffix == ".parquet":
            parquet = pq.ParquetFile(path)
            return parquet.schema_arrow, lambda columns: parquet.iter_batches(batch_size=BATCH, columns=columns)
        reader = pa.ipc.open_stream(pa.memory_map(str(path)))
        schema = reader.schema

        def batches(columns):
            for batch in pa.ipc.open_stream(pa.memory_map(str(path))):
                yield batch.select(columns)
        return schema, batches
    except (OSError, pa.ArrowException) as e:
        raise DatasetError(_unreadable(path, "Parquet file" if path.suffix == ".parquet" else "Arrow IPC stream file", e)) from e


def _schema_features(schema, where: str) -> dict | None:
    meta = schema.metadata or {}
    if b"huggingface" not in meta:
        return None
    try:
        features = json.loads(meta[b"huggingface"]).get("info", {}).get("features")
    except ValueError:
        return None
    return _features_from_json(features, where)


def _agree(sources: list[tuple[str, list[str]]], label_column: str) -> list[str] | None:
    """The class names all sources give (in NFC), or a DatasetError naming two that differ and how."""
    if not sources:
        return None
    (first_where, first), *rest = sources
    for where, names in rest:
        if differ := names_differ(first, names, first_where, where):
            raise DatasetError(f"class names of column {label_column!r} disagree: {differ}; fix or remove one of them")
    return [nfc(n) for n in first]


def _pick(features: dict, columns: list[str], wanted: str | None, kind: str, fallback: tuple[str, ...], what: str, where: Path) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise DatasetError(f"{where}: no column {wanted!r} ({what}); the columns are {columns}")
        return wanted
    typed = [c for c in columns if features.get(c, {}).get("_type") == kind]
    if len(typed) == 1:
        return typed[0]
    named = [c for c in fallback if c in columns]
    if named:
        return named[0]
    flag = "--image-column" if kind == "Image" else "--label-column"
    raise DatasetError(f"{where}: cannot tell which column holds the {what}: {len(typed)} typed {kind}, none named "
                       f"{' or '.join(fallback)}; the columns are {columns} ({flag} NAME)")


def load_hub(root: Path | str, split: str, *, splits: tuple[str, ...] | None = None, layout: str | None = None, config: str | None = None,
             image_column: str | None = None, label_column: str | None = None, box_column: str | None = None,
             box_format: str | None = None) -> LoadedSplit:
    """Records of one split of a Hugging Face copy in either form (module docstring): ``(shard, row)`` per image.
    ``split``: the part it plays (``train``, ``test``); ``splits``: the copy's splits read into it, in order (default
    ``(split,)``). The result's ``available`` lists every split of the copy with its rows."""
    root = Path(root)
    found = find_layout(root, LAYOUT_TABLE, what="Hugging Face", force=layout)
    if (box_column is None) != (box_format is None):
        raise DatasetError(f"a box column needs its format and the other way round: --box-column and --box-format {'|'.join(BOX_FORMATS)}")
    if box_format is not None and box_format not in BOX_FORMATS:
        raise DatasetError(f"--box-format must be one of {BOX_FORMATS}, got {box_format!r}")
    copy = copy_splits(root, found.layout, config)
    read = _read_splits(copy, split, tuple(splits or (split,)), root, found.layout)
    split_of = {path: s for s in read for path in copy.splits[s].shards}
    files = list(split_of)
    opened = [(path, *_open(path)) for path in files]
    columns = opened[0][1].names
    for path, schema, _ in opened[1:]:
        if schema.names != columns:
            raise DatasetError(f"{path}: its columns {schema.names} differ from {files[0].name}'s {columns}")
    names: list[tuple[str, list[str]]] = []
    features = (_features_from_card(copy.header, copy.config, str(root / "README.md")) or {}) if copy.header else {}
    sources_of = {}  # feature dicts by where they came from, for the class names
    if features:
        sources_of[str(root / "README.md")] = features
    for path, schema, _ in opened:
        if (f := _schema_features(schema, f"{path} (schema metadata)")) is not None:
            sources_of[f"{path} (schema metadata)"] = f
    if found.layout == "hf_save_to_disk":
        for s in copy.splits:
            info = root / s / "dataset_info.json"
            if info.is_file():
                try:
                    features = json.loads(info.read_text()).get("features")
                except (OSError, ValueError) as e:
                    raise DatasetError(f"{info}: not readable JSON ({e})") from e
                f = _features_from_json(features, str(info))
                if f is not None:
                    sources_of[str(info)] = f
    merged = {k: v for f in sources_of.values() for k, v in f.items()}
    image_col = _pick(merged, columns, image_column, "Image", ("image", "img"), "images", files[0])
    label_col = _pick(merged, columns, label_column, "ClassLabel", ("label", "labels"), "labels", files[0])
    for where, f in sources_of.items():
        if "names" in f.get(label_col, {}):
            names.append((where, f[label_col]["names"]))
    classes = _agree(names, label_col)
    notes = [found.note, *copy.notes]
    boxy = [c for c in columns if BOX_LIKE.match(c) and c != box_column]
    if boxy:
        notes.append(f"column {boxy[0]!r} looks like a bounding box and is not used: to use it, check its convention in the "
                     f"dataset's card and pass --box-column {boxy[0]} --box-format {'|'.join(BOX_FORMATS)}")
    records, string_labels = [], set()
    for path, schema, batches in opened:
        wanted = [label_col] + ([box_column] if box_column else [])
        if box_column and box_column not in schema.names:
            raise DatasetError(f"{path}: no column {box_column!r} (boxes); the columns are {schema.names}")
        row = 0
        try:
            for batch in batches(wanted):
                labels = batch.column(0).to_pylist()
                boxes = batch.column(1).to_pylist() if box_column else [None] * len(labels)
                for label, box in zip(labels, boxes):
                    where = f"{path} (split {split_of[path]}, row {row})"
                    if label is None:
                        raise DatasetError(f"{where}: null label")
                    if isinstance(label, str):
                        label = nfc(label)
                        string_labels.add(label)
                    elif not isinstance(label, int):
                        raise DatasetError(f"{where}: label {label!r} is not an integer nor a class name")
                    records.append(Record(str(path), label, _box(box, box_format, where), row=row, column=image_col, root=str(root)))
                    row += 1
        except (OSError, _arrow()[0].ArrowException) as e:
            raise DatasetError(f"{path}: not readable at row {row} ({type(e).__name__}: {e}); download it again") from e
    if string_labels:  # a mirror that stores class names as strings: they are the classes, sorted
        if classes is None:
            classes = sorted(string_labels)
            notes.append(f"labels are class names (column {label_col!r}); classes in alphabetical order")
        index = {name: k for k, name in enumerate(classes)}
        unknown = sorted(string_labels - index.keys())
        if unknown:
            raise DatasetError(f"{root}: split(s) {', '.join(read)} have labels that are not class names: {unknown[:5]}")
        records = [r._replace(label=index[r.label]) if isinstance(r.label, str) else r for r in records]
    if classes is None:
        k = max((r.label for r in records), default=-1) + 1
        classes = [str(c) for c in range(k)]
        notes.append(f"no class names in the card, the shards' schema or dataset_info.json: the {k} classes are named by their index")
    boxed = sum(r.bbox is not None for r in records)
    if box_column:
        notes.append(f"boxes from column {box_column!r} ({box_format}): {boxed} of {len(records)} {split} images")
    return LoadedSplit(records, classes, found.layout, tuple(notes), tuple((s, v.rows) for s, v in copy.splits.items()))


def _read_splits(copy: Copy, part: str, names: tuple[str, ...], root: Path, layout: str) -> tuple[str, ...]:
    """The splits of ``copy`` to read for ``part`` (train, test), each present with its files, none twice; DatasetError
    naming the splits found and the option that reads others."""
    option = {"train": "--train-splits A,B reads others", "test": "--test-split NAME tests on another"}.get(part, "")
    found = ", ".join(f"{s} ({v.rows:,} rows)" if v.rows is not None else f"{s} (no files here)" for s, v in copy.splits.items())
    where = f"{layout}" + (f", config {copy.config!r}" if copy.config is not None else "")
    for name in names:
        if name not in copy.splits:
            raise DatasetError(f"{root}: no {name!r} split in this Hugging Face copy ({where}); splits found: {found or 'none'}"
                               + (f"; {option}" if option and found else ""))
        if not copy.splits[name].shards:
            raise DatasetError(f"{root}: split {name!r} has no files here: {copy.splits[name].named_by} matches none (not downloaded?); "
                               f"download it{', or ' + option if option else ''}")
    if len(set(names)) < len(names):
        raise DatasetError(f"{root}: split {next(n for n in names if names.count(n) > 1)!r} is named twice for {part}")
    return names


def _box(value, box_format: str | None, where: str) -> Box | None:
    if box_format is None or value is None:
        return None
    try:
        a, b, c, d = (float(v) for v in value)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: box {value!r} is not four numbers") from None
    if box_format == "voc":
        return round(a), round(b), round(c), round(d)
    return edges_box(a, b, a + c, b + d) if box_format == "xywh" else edges_box(a, b, c, d)


# --- streaming the images -----------------------------------------------------------------------


def iter_image_bytes(records: list[Record], names: list[str]) -> Iterator[bytes | str]:
    """For each row record, in order: its image's bytes, or an error message naming ``names[k]``. Rows of one shard are
    read in one pass, a batch at a time; a null ``bytes`` falls back to the file at ``path`` under the record's root."""
    k = 0
    while k < len(records):
        shard, column = records[k].path, records[k].column
        end = k
        while end < len(records) and records[end].path == shard:
            end += 1
        rows = {records[i].row: i for i in range(k, end)}
        yielded = 0
        try:
            _, batches = _open(Path(shard))
            row = 0
            for batch in batches([column]):
                for value in batch.column(0).to_pylist():
                    if row in rows:
                        yield _bytes_of(value, records[rows[row]], names[rows[row]])
                        yielded += 1
                    row += 1
                    if yielded == len(rows):
                        break
                if yielded == len(rows):
                    break
        except (DatasetError, OSError, _arrow()[0].ArrowException) as e:
            message = str(e) if isinstance(e, DatasetError) else f"{shard}: not readable ({type(e).__name__}: {e})"
            for i in range(k + yielded, end):
                yield f"{names[i]}: {message}"
            yielded = len(rows)
        for i in range(k + yielded, end):
            yield f"{names[i]}: row not found in {shard}"
        k = end


def _bytes_of(value, record: Record, name: str) -> bytes | str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    data, path = (value.get("bytes"), value.get("path")) if isinstance(value, dict) else (None, value)
    if data is not None:
        return bytes(data)
    if not path:
        return f"{name}: neither image bytes nor a path in column {record.column!r}"
    file = Path(record.root) / path
    try:
        return file.read_bytes()
    except OSError as e:
        return f"{name}: its bytes are null and its path {path!r} cannot be read under {record.root} ({e.strerror or e})"
