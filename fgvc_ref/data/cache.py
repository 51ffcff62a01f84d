"""Decode once: a verified uint8 tensor cache of cropped, resized images, one file per split.

``prepare`` reads every image of a split once (all cores), decodes it to 8-bit RGB with the package's
one decoder (:func:`fgvc_ref.data.images.decode_image`: every mode by one rule, EXIF orientation not
applied because boxes refer to the stored pixels, a warning per file whose tag asks for a turn), removes the rows a
record asks to trim from the bottom (FGVC-Aircraft's banner), crops it to its box
(1-based inclusive, clamped to the image: PIL box ``(x1 - 1, y1 - 1, x2, y2)``) and resizes the crop
to ``size x size`` (bilinear, antialiased). An image without a box follows the protocol of
torchvision's presets instead (:func:`fit`): in the train split it keeps all of its pixels (longer
side to ``size``, in the top-left of a ``size x size`` slot) so that RandomResizedCrop sees the whole
image; in the test split it is resized to ``size * 8 // 7`` on its shorter side and centre-cropped to
``size`` (Resize(256) + CenterCrop(224)). It writes ``<split>.pt`` (``images``: uint8 ``N x 3 x size
x size``, ``labels``: int64 ``N``, ``sizes``: int64 ``N x 2``, each image's valid height and width)
and then ``<split>.manifest.json``: the sources (path, bytes, mtime,
sha256, label, box; for an image read from an archive, the shard and its row, and the shard's own
size, mtime and sha256 under ``archives``), whether the images are box crops or whole images, the
parameters, the class names and counts, the image modes seen, the files with an EXIF orientation
other than 1 (not applied: boxes refer to the raw pixels) and the data file's sha256. Both are
written atomically (temporary file, fsync, ``os.replace``, fsync of the folder), the manifest last,
so a cache without a manifest is never taken for a finished one; nothing (not even the folder) is
written unless every image decodes, and :func:`prepare_dataset` publishes a dataset's splits only
once all of them have.

Every unreadable image (zero bytes, truncated, not an image, a decompression bomb) and every box
with no area inside its image is collected, and preparation fails with the complete list: nothing
is skipped or substituted. ``load_cache`` checks the data file's hash and, by default, that no
source image changed since (size and mtime, then the hash of any file whose size or mtime moved),
and refuses a tampered, stale or incomplete cache with a message saying what to do.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
import os
import shutil
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from fgvc_ref.data.images import OrientationNotApplied, decode_image
from fgvc_ref.data.records import Box, DatasetError, Record
from fgvc_ref.transforms import eval_resize, resize_centre_crop

FORMAT, VERSION = "fgvc_ref-cache", 2  # 2: per-image valid sizes; whole train images without boxes


class CachedSplit(NamedTuple):
    images: torch.Tensor  # uint8 N x 3 x S x S
    labels: torch.Tensor  # int64 N
    classes: list[str]
    manifest: dict
    sizes: torch.Tensor | None = None  # int64 N x 2: (h, w) of each image's valid top-left region; None: all S x S
    cropped: torch.Tensor | None = None  # bool N: cropped to a box (else a whole image, see fit); None: all cropped


def crop_box(img: Image.Image, bbox: Box, path: str) -> Image.Image:
    """Crop a 1-based inclusive box, clamped to the image; refuse a box with no area inside it."""
    x1, y1, x2, y2 = bbox
    left, top, right, bottom = max(0, x1 - 1), max(0, y1 - 1), min(img.width, x2), min(img.height, y2)
    if right <= left or bottom <= top:
        raise DatasetError(f"{path}: box {tuple(bbox)} has zero area inside the {img.width}x{img.height} image")
    return img.crop((left, top, right, bottom))


def fit(img: Image.Image, size: int, *, cropped: bool, whole: bool) -> tuple[np.ndarray, tuple[int, int]]:
    """An image as stored: a ``size x size x 3`` uint8 slot and the ``(h, w)`` of its valid top-left region.

    A box crop is resized to ``size x size``. An image without a box is, in the train split (``whole``),
    resized so that its longer side is ``size`` (aspect kept, the rest of the slot zero), so that
    RandomResizedCrop later sees all of it; in an evaluation split, resized and centre-cropped as
    torchvision's ``Resize(size * 8 // 7)`` + ``CenterCrop(size)`` (256 / 224).
    """
    if cropped:
        img = img.resize((size, size), Image.BILINEAR)
    elif whole:
        w, h = img.size
        img = img.resize((size, max(1, round(h * size / w))) if w >= h else (max(1, round(w * size / h)), size), Image.BILINEAR)
    else:
        img = resize_centre_crop(img, size, eval_resize(size))
    slot = np.zeros((size, size, 3), np.uint8)
    slot[: img.height, : img.width] = np.asarray(img)
    return slot, (img.height, img.width)


def source_name(record: Record, split: str, index: int) -> str:
    """How messages name a record's image: its path, or for an archived image the shard, the split and the rows."""
    if record.row is None:
        return record.path
    return f"{record.path} ({split} split, row {index}; row {record.row} of this shard)"


def decode(record: Record, size: int, whole: bool = False, data: bytes | None = None, name: str | None = None) -> tuple[np.ndarray, dict]:
    """One record -> (``size x size x 3`` uint8 slot, source facts with the valid ``size``). ``data``: the image's bytes
    (an archived image); None reads the file ``record.path``. Raises DatasetError naming ``name`` on any bad input."""
    name = name or record.path
    facts = {"path": record.path, **({"row": record.row} if record.row is not None else {})}
    if data is None:
        path = Path(record.path)
        try:
            data, facts["mtime_ns"] = path.read_bytes(), path.stat().st_mtime_ns
        except OSError as e:
            raise DatasetError(f"{name}: cannot be read ({e.strerror or e})") from e
    facts.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), label=record.label, bbox=list(record.bbox) if record.bbox else None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OrientationNotApplied)
        decoded = decode_image(data, name, orientation="keep")  # dataset path: boxes refer to the stored pixels
    facts.update(mode=decoded.mode, exif_orientation=decoded.orientation, warnings=[str(w.message) for w in caught])
    if record.trim_bottom:
        facts["trim_bottom"] = record.trim_bottom
    array, facts["size"] = stored_form(decoded.image, size, bbox=record.bbox, trim_bottom=record.trim_bottom, whole=whole, name=name)
    return array, facts


def stored_form(img: Image.Image, size: int, *, bbox: Box | None = None, trim_bottom: int = 0, whole: bool = False,
                name: str = "image") -> tuple[np.ndarray, tuple[int, int]]:
    """A decoded RGB image as the cache stores it: ``trim_bottom`` rows cut (FGVC-Aircraft's banner; box coordinates keep
    their meaning), the box cropped, then :func:`fit`. Used by ``prepare`` and by ``predict`` alike."""
    if trim_bottom:
        if img.height <= trim_bottom:
            raise DatasetError(f"{name}: {img.width}x{img.height} image is not taller than the {trim_bottom}-row banner to remove")
        img = img.crop((0, 0, img.width, img.height - trim_bottom))
    if bbox is not None:
        img = crop_box(img, bbox, name)
    return fit(img, size, cropped=bbox is not None, whole=whole)


def _decode_or_error(job: tuple):
    record, size, whole, data, name = job
    if isinstance(data, str):  # the archive could not give this image's bytes: the message says why
        return data
    try:
        return decode(record, size, whole, data, name)
    except (DatasetError, OSError) as e:
        return str(e)


def protocol_of(sources: list[dict]) -> str:
    """What a split's images are: box crops, whole images, or both."""
    boxed = sum(s.get("bbox") is not None for s in sources)
    return "box crops" if boxed == len(sources) else "whole images" if boxed == 0 else f"box crops ({boxed} images) and whole images"


def prepare(records: list[Record], out: Path | str, *, split: str, classes: list[str], size: int = 224,
            workers: int | None = None, progress: bool = True, dataset: str = "", params: dict | None = None) -> Path:
    """Decode, check, crop and resize every record; write the split's data file and manifest; return the manifest path.
    Nothing is written (not even ``out``) unless every image decodes."""
    if not records:
        raise DatasetError(f"split {split!r}: no records to prepare")
    if not (isinstance(size, int) and size >= 1):
        raise ValueError(f"size must be a positive integer, got {size!r}")
    archived = [r.row is not None for r in records]
    if any(archived) and not all(archived):
        raise ValueError(f"split {split!r}: records mix image files and archived rows")
    out = Path(out)
    names = [source_name(r, split, k) for k, r in enumerate(records)]
    if all(archived):
        from fgvc_ref.data.hub import iter_image_bytes

        data = iter_image_bytes(records, names)
    else:
        data = itertools.repeat(None)
    jobs = ((r, size, split == "train", d, n) for r, d, n in zip(records, data, names))
    results = _run(jobs, len(records), workers or os.cpu_count() or 1, progress, f"prepare {split}")
    bad = [r for r in results if isinstance(r, str)]
    if bad:
        raise DatasetError(f"{len(bad)} of {len(records)} {split} image(s) cannot be used; nothing was written:\n  " + "\n  ".join(bad))
    arrays, facts = zip(*results)
    for f in facts:
        for message in f["warnings"]:
            print(f"warning: {message}", file=sys.stderr)
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([r.label for r in records], dtype=torch.int64)
    sizes = torch.tensor([f["size"] for f in facts], dtype=torch.int64)
    out.mkdir(parents=True, exist_ok=True)
    data_path = out / f"{split}.pt"
    atomic_write(data_path, lambda f: torch.save({"images": images, "labels": labels, "sizes": sizes}, f))
    counts = collections.Counter(labels.tolist())
    sources = [{k: v for k, v in f.items() if k not in ("mode", "exif_orientation", "size", "warnings")} for f in facts]
    shards = sorted({r.path for r in records}) if all(archived) else []
    manifest = {
        "format": FORMAT, "version": VERSION, "dataset": dataset, "split": split, "data_file": data_path.name,
        "data_sha256": sha256_file(data_path), "num_images": len(records), "image_size": size,
        "images": protocol_of(sources),
        "protocol": "box crop resized to size x size; images without a box: " + (
            "longer side to size, aspect kept (whole image for RandomResizedCrop)" if split == "train" else
            f"shorter side to {eval_resize(size)}, centre crop {size} (torchvision's Resize + CenterCrop)"),
        "params": params or {}, "classes": list(classes), "class_counts": [counts[c] for c in range(len(classes))],
        "mode_counts": dict(collections.Counter(f["mode"] for f in facts)),
        "exif_rotated": [n for n, f in zip(names, facts) if f["exif_orientation"] != 1],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "archives": [{"path": p, "bytes": Path(p).stat().st_size, "mtime_ns": Path(p).stat().st_mtime_ns, "sha256": sha256_file(Path(p))}
                     for p in shards],
        "sources": sources,
    }
    manifest_path = out / f"{split}.manifest.json"
    atomic_write(manifest_path, lambda f: f.write(json.dumps(manifest, indent=1).encode()))
    if progress:
        modes = ", ".join(f"{m}: {n}" for m, n in sorted(manifest["mode_counts"].items()))
        print(f"prepared {split}: {len(records)} images ({manifest['images']}) at {size}px (modes {modes}; "
              f"{len(manifest['exif_rotated'])} with an EXIF orientation tag, not applied)", file=sys.stderr)
    return manifest_path


def prepare_dataset(splits: dict, out: Path | str, *, sizes: dict[str, int], workers: int | None = None, progress: bool = True,
                    dataset: str = "", params: dict | None = None) -> list[Path]:
    """:func:`prepare` every split (``{name: LoadedSplit}``) into a staging folder inside ``out``, then publish them all.
    Every split is decoded even when an earlier one has bad images, so that one error lists the bad files of all of
    them; if any split fails, nothing is published and a folder ``out`` made here is removed again."""
    out = Path(out)
    made = not out.exists()
    staging = out / f".staging-{os.getpid()}"
    try:
        written, failed = [], []
        for name, s in splits.items():
            try:
                written.append(prepare(s.records, staging, split=name, classes=s.classes, size=sizes[name], workers=workers, progress=progress,
                                       dataset=f"{dataset}:{s.layout}", params={**(params or {}), "size": sizes[name]}))
            except DatasetError as e:
                failed.append(str(e))
        if failed:
            raise DatasetError("\n".join(failed))
        for name in splits:  # data files first, each split's manifest last: a manifest always finds its data
            for suffix in (".pt", ".manifest.json"):
                os.replace(staging / f"{name}{suffix}", out / f"{name}{suffix}")
        return [out / p.name for p in written]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if made and out.is_dir() and not any(out.iterdir()):
            out.rmdir()


def prepared_with(out: Path | str) -> dict | None:
    """What a complete cache in ``out`` was prepared from, read from its two manifests: ``dataset``, ``layout``, ``sizes``
    and the train manifest's ``params`` but its ``size`` (``data_root``, ``boxes``, ``splits``, the reader's options);
    ``splits`` is the dataset's train and test (``{"train": ["train"], "test": ["test"]}``) for a cache from before it
    was recorded. None when there is no complete cache there."""
    try:
        manifests = {split: json.loads((Path(out) / f"{split}.manifest.json").read_text()) for split in ("train", "test")}
    except (OSError, ValueError):
        return None
    train = manifests["train"]
    dataset, _, layout = str(train.get("dataset", "")).rpartition(":")
    params = {k: v for k, v in train.get("params", {}).items() if k != "size"}
    return {"data_root": None, "boxes": None, "splits": {"train": ["train"], "test": ["test"]}, **params, "dataset": dataset, "layout": layout,
            "sizes": {s: m.get("image_size") for s, m in manifests.items()}}


def load_cache(out: Path | str, split: str, *, verify_sources: bool = True) -> CachedSplit:
    """Load one prepared split after checking its manifest, its data hash and (by default) its sources."""
    out = Path(out)
    manifest_path, data_path = out / f"{split}.manifest.json", out / f"{split}.pt"
    if not manifest_path.is_file():
        leftovers = sorted(p.name for p in out.glob(f"*{split}*")) if out.is_dir() else []
        state = f"incomplete (found {leftovers} but no manifest: preparation did not finish)" if leftovers else "missing"
        raise DatasetError(f"{out}: cache for split {split!r} is {state}; run `python -m fgvc_ref prepare` again")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DatasetError(f"{manifest_path}: unreadable manifest ({e}); prepare the cache again") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise DatasetError(f"{manifest_path}: not a {FORMAT} v{VERSION} manifest; prepare the cache again")
    kinds = {"data_sha256": str, "classes": list, "num_images": int, "image_size": int, "sources": list}
    wrong = [k for k, kind in kinds.items() if not isinstance(manifest.get(k), kind)]
    if not wrong and not all(isinstance(s, dict) and {"path", "bytes", "sha256"} <= s.keys() and ("row" in s or "mtime_ns" in s)
                             for s in manifest["sources"] + manifest.get("archives", [])):
        wrong.append("sources[]")
    if wrong:
        raise DatasetError(f"{manifest_path}: manifest fields missing or of the wrong type: {wrong}; prepare the cache again")
    if not data_path.is_file():
        raise DatasetError(f"{data_path}: data file missing; prepare the cache again")
    digest = sha256_file(data_path)
    if digest != manifest["data_sha256"]:
        raise DatasetError(f"{data_path}: data file changed or corrupted since preparation (sha256 {digest[:12]}... != "
                           f"manifest {str(manifest['data_sha256'])[:12]}...); prepare the cache again")
    if verify_sources:
        _check_sources(manifest["sources"] + manifest.get("archives", []), manifest_path)
    data = torch.load(data_path, weights_only=True)
    images, labels, sizes = data["images"], data["labels"], data["sizes"]
    n, s = manifest["num_images"], manifest["image_size"]
    if (images.dtype != torch.uint8 or tuple(images.shape) != (n, 3, s, s) or tuple(labels.shape) != (n,)
            or tuple(sizes.shape) != (n, 2) or not bool(((sizes >= 1) & (sizes <= s)).all())):
        raise DatasetError(f"{data_path}: tensors {tuple(images.shape)} {images.dtype} / {tuple(labels.shape)} / sizes "
                           f"{tuple(sizes.shape)} do not match the manifest ({n} x 3 x {s} x {s}, sizes in 1..{s})")
    cropped = torch.tensor([s.get("bbox") is not None for s in manifest["sources"]], dtype=torch.bool)
    return CachedSplit(images, labels, list(manifest["classes"]), manifest, sizes, cropped)


def _check_sources(sources: list[dict], manifest_path: Path) -> None:
    """Image files, and the archives (shards) that hold archived images: unchanged since preparation (size and mtime,
    then the hash of any file whose size or mtime moved)."""
    changed, gone = [], []
    for s in [s for s in sources if "row" not in s]:
        p = Path(s["path"])
        try:
            st = p.stat()
        except OSError:
            gone.append(s["path"])
            continue
        if (st.st_size, st.st_mtime_ns) != (s["bytes"], s["mtime_ns"]) and sha256_file(p) != s["sha256"]:
            changed.append(s["path"])
    if changed or gone:
        parts = ([f"{len(changed)} changed, e.g. {changed[:5]}"] if changed else []) + ([f"{len(gone)} missing, e.g. {gone[:5]}"] if gone else [])
        raise DatasetError(f"{manifest_path}: the cache is stale: source images {'; '.join(parts)}. Prepare it again, "
                           "or load with verify_sources=False (--no-verify-sources) if the raw images are elsewhere on purpose.")


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: Path, write) -> None:
    """Write via a temporary file in the same folder: fsync, ``os.replace``, fsync the folder."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _run(jobs, total: int, workers: int, progress: bool, label: str) -> list:
    """``_decode_or_error`` over the jobs (an iterator: archived images arrive as bytes), in order, on ``workers``
    processes, with a progress bar; at most ``4 * workers`` chunks are in flight, so the bytes are streamed."""
    bar = _progress(total, label) if progress else None
    results: list = []
    chunk = max(1, min(64, total // (4 * workers)))
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    pending: collections.deque = collections.deque()

    def collect(done: list) -> None:
        results.extend(done)
        if bar:
            bar.update(len(done))
    try:
        while batch := list(itertools.islice(jobs, chunk)):
            if pool is None:
                collect(list(map(_decode_or_error, batch)))
                continue
            pending.append(pool.submit(_decode_chunk, batch))
            if len(pending) >= 4 * workers:
                collect(pending.popleft().result())
        while pending:
            collect(pending.popleft().result())
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
        if bar:
            bar.close()
    return results


def _decode_chunk(jobs: list) -> list:
    return [_decode_or_error(job) for job in jobs]


def _progress(total: int, label: str):
    try:
        from tqdm import tqdm
    except ImportError:
        return _PlainProgress(total, label)
    return tqdm(total=total, desc=label, unit="img", file=sys.stderr)


class _PlainProgress:
    """A progress line every 10% when tqdm is not installed."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done, self.t0, self.next = total, label, 0, time.monotonic(), 0.1

    def update(self, n: int) -> None:
        self.done += n
        if self.done / self.total >= self.next or self.done == self.total:
            rate = self.done / max(time.monotonic() - self.t0, 1e-9)
            eta = (self.total - self.done) / max(rate, 1e-9)
            print(f"{self.label}: {self.done}/{self.total} ({rate:.0f} img/s, ETA {eta:.0f}s)", file=sys.stderr)
            self.next += 0.1

    def close(self) -> None:
        pass
