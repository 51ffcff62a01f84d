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

**Splits**: from the card's ``configs`` (the config marked default, else ``default``, else the only
one; ``config=`` picks another) or dataset_dict.json; without them, from file and folder names
(``train``/``training``, ``test``/``testing``/``eval``/``evaluation``, ``validation``/``valid``/
``val``/``dev``, as ``datasets`` resolves them). A split with no shard is an error naming the
splits found.

**Columns**: the image is the feature typed ``Image`` (a struct of ``bytes`` and ``path``; a plain
binary or string column is taken as bytes or path), the label the ``ClassLabel`` feature (else a
column named ``image`` / ``label``); ``image_column`` / ``label_column`` name them for mirrors that
differ, and a wrong name is an error listing the columns found. Extra columns (captions,
embeddings, ids) are never read.

**Class names**: from every source present (the card, each shard's schema metadata,
dataset_info.json), kept in Unicode NFC; where several are present they must agree (compared in
NFC), else an error names both and how they differ, with escapes. With none, classes are named by
their index (and said so). A label stored as a class name is matched in NFC too.

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

from fgvc_ref.data.images import find
from fgvc_ref.data.layouts import Layout, find_layout
from fgvc_ref.data.records import Box, DatasetError, LoadedSplit, Record, edges_box, names_differ, nfc

SPLIT_WORDS = {"train": ("train", "training"), "test": ("test", "testing", "eval", "evaluation"),
               "validation": ("validation", "valid", "val", "dev")}


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


def _config(header: dict, config: str | None, root: Path) -> dict | None:
    configs = header.get("configs") or []
    if not configs:
        if config is not None:
            raise DatasetError(f"{root / 'README.md'}: config {config!r} asked for, but the card lists no configs")
        return None
    names = [c.get("config_name", "default") for c in configs]
    if config is not None:
        if config not in names:
            raise DatasetError(f"{root / 'README.md'}: no config {config!r}; the card lists {names}")
        return configs[names.index(config)]
    chosen = next((c for c in configs if c.get("default")), None) or next((c for c in configs if c.get("config_name", "default") == "default"), None)
    if chosen is None and len(configs) > 1:
        raise DatasetError(f"{root / 'README.md'}: the card lists configs {names} and marks none default; choose one (--hub-config)")
    return chosen or configs[0]


def _glob(root: Path, patterns) -> list[Path]:
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    return sorted({p for pattern in patterns for p in find(root, pattern) if p.is_file()})


def _split_of(path: Path, root: Path) -> str | None:
    """The split a shard belongs to by its name or a folder's (``datasets``' keywords), or None."""
    words = [w for part in path.relative_to(root).parts for w in re.split(r"[-_.]", part.lower())]
    hits = [split for split, synonyms in SPLIT_WORDS.items() if any(w in synonyms for w in words)]
    return hits[0] if len(hits) == 1 else None


def repo_shards(root: Path, config: str | None = None) -> dict[str, list[Path]]:
    """Split -> Parquet shards of a dataset-repo snapshot (module docstring)."""
    chosen = _config(card(root), config, root)
    if chosen is not None and chosen.get("data_files"):
        files = chosen["data_files"]
        if isinstance(files, (str, list)) and not (isinstance(files, list) and files and isinstance(files[0], dict)):
            files = [{"split": "train", "path": files}]
        if isinstance(files, dict):
            files = [{"split": k, "path": v} for k, v in files.items()]
        return {entry["split"]: [p for p in _glob(root, entry["path"]) if p.suffix == ".parquet"] for entry in files}
    shards: dict[str, list[Path]] = {}
    for path in _glob(root, "**/*.parquet"):
        split = _split_of(path, root)
        if split is not None:
            shards.setdefault(split, []).append(path)
    return shards


def saved_shards(root: Path) -> dict[str, list[Path]]:
    """Split -> Arrow shards of a save_to_disk folder (module docstring)."""
    try:
        splits = json.loads((root / "dataset_dict.json").read_text())["splits"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{root / 'dataset_dict.json'}: not a readable save_to_disk index ({e})") from e
    shards = {}
    for split in splits:
        folder = root / split
        try:
            names = [f["filename"] for f in json.loads((folder / "state.json").read_text())["_data_files"]]
        except (OSError, ValueError, KeyError, TypeError):
            names = [p.name for p in _glob(folder, "data-*.arrow")] if folder.is_dir() else []
        shards[split] = [folder / n for n in names]
    return shards


def _features_from_card(header: dict, config: str | None) -> dict | None:
    """Feature name -> {"_type": ..., "names": [...]} from the card's dataset_info (None when absent)."""
    info = header.get("dataset_info")
    if isinstance(info, list):
        wanted = config or "default"
        info = next((i for i in info if i.get("config_name", "default") == wanted), info[0] if len(info) == 1 else None)
    if not isinstance(info, dict) or not isinstance(info.get("features"), list):
        return None
    features = {}
    for f in info["features"]:
        dtype = f.get("dtype")
        if isinstance(dtype, dict) and "class_label" in dtype:
            names = dtype["class_label"].get("names", {})
            names = [names[k] for k in sorted(names, key=int)] if isinstance(names, dict) else list(names)
            features[f["name"]] = {"_type": "ClassLabel", "names": [str(n) for n in names]}
        else:
            features[f["name"]] = {"_type": "Image" if dtype == "image" else str(dtype)}
    return features


def _features_from_json(obj) -> dict | None:
    """Feature name -> {"_type", "names"} from a ``datasets`` features dict (schema metadata, dataset_info.json)."""
    if not isinstance(obj, dict):
        return None
    out = {}
    for name, f in obj.items():
        if isinstance(f, dict):
            out[name] = {"_type": f.get("_type", ""), **({"names": [str(n) for n in f["names"]]} if "names" in f else {})}
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
        kind = "Parquet" if path.suffix == ".parquet" else "Arrow IPC stream"
        raise DatasetError(f"{path}: not a readable {kind} file ({type(e).__name__}: {e}); download it again") from e


def _schema_features(schema) -> dict | None:
    meta = schema.metadata or {}
    if b"huggingface" not in meta:
        return None
    try:
        return _features_from_json(json.loads(meta[b"huggingface"]).get("info", {}).get("features"))
    except ValueError:
        return None


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


def load_hub(root: Path | str, split: str, *, layout: str | None = None, config: str | None = None, image_column: str | None = None,
             label_column: str | None = None, box_column: str | None = None, box_format: str | None = None) -> LoadedSplit:
    """Records of one split of a Hugging Face copy in either form (module docstring): ``(shard, row)`` per image."""
    root = Path(root)
    found = find_layout(root, LAYOUT_TABLE, what="Hugging Face", force=layout)
    if (box_column is None) != (box_format is None):
        raise DatasetError(f"a box column needs its format and the other way round: --box-column and --box-format {'|'.join(BOX_FORMATS)}")
    if box_format is not None and box_format not in BOX_FORMATS:
        raise DatasetError(f"--box-format must be one of {BOX_FORMATS}, got {box_format!r}")
    header = card(root) if found.layout == "hf_repo" else {}
    shards = repo_shards(root, config) if found.layout == "hf_repo" else saved_shards(root)
    present = sorted(s for s, files in shards.items() if files)
    if not shards.get(split):
        raise DatasetError(f"{root}: no {split!r} split in this Hugging Face copy ({found.layout}); splits found: {present or 'none'}"
                           + ("" if present else " (no shard matched)"))
    files = shards[split]
    opened = [(path, *_open(path)) for path in files]
    columns = opened[0][1].names
    for path, schema, _ in opened[1:]:
        if schema.names != columns:
            raise DatasetError(f"{path}: its columns {schema.names} differ from {files[0].name}'s {columns}")
    names: list[tuple[str, list[str]]] = []
    features = (_features_from_card(header, config) or {}) if header else {}
    sources_of = {}  # feature dicts by where they came from, for the class names
    if features:
        sources_of[str(root / "README.md")] = features
    for path, schema, _ in opened:
        if (f := _schema_features(schema)) is not None:
            sources_of[f"{path} (schema metadata)"] = f
    if found.layout == "hf_save_to_disk":
        for s in sorted(shards):
            info = root / s / "dataset_info.json"
            if info.is_file():
                try:
                    f = _features_from_json(json.loads(info.read_text()).get("features"))
                except (OSError, ValueError) as e:
                    raise DatasetError(f"{info}: not readable JSON ({e})") from e
                if f is not None:
                    sources_of[str(info)] = f
    merged = {k: v for f in sources_of.values() for k, v in f.items()}
    image_col = _pick(merged, columns, image_column, "Image", ("image", "img"), "images", files[0])
    label_col = _pick(merged, columns, label_column, "ClassLabel", ("label", "labels"), "labels", files[0])
    for where, f in sources_of.items():
        if "names" in f.get(label_col, {}):
            names.append((where, f[label_col]["names"]))
    classes = _agree(names, label_col)
    notes = [found.note]
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
                    where = f"{path} (split {split}, row {row})"
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
            raise DatasetError(f"{root}: split {split!r} has labels that are not class names: {unknown[:5]}")
        records = [r._replace(label=index[r.label]) if isinstance(r.label, str) else r for r in records]
    if classes is None:
        k = max((r.label for r in records), default=-1) + 1
        classes = [str(c) for c in range(k)]
        notes.append(f"no class names in the card, the shards' schema or dataset_info.json: the {k} classes are named by their index")
    boxed = sum(r.bbox is not None for r in records)
    if box_column:
        notes.append(f"boxes from column {box_column!r} ({box_format}): {boxed} of {len(records)} {split} images")
    return LoadedSplit(records, classes, found.layout, tuple(notes))


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
