"""Decode once: a verified uint8 tensor cache of cropped, resized images, one file per split.

``prepare`` reads every image of a split once (all cores), converts it to RGB, removes the rows a
record asks to trim from the bottom (FGVC-Aircraft's banner), crops it to its box
(1-based inclusive, clamped to the image: PIL box ``(x1 - 1, y1 - 1, x2, y2)``) and resizes the crop
to ``size x size`` (bilinear, antialiased). An image without a box follows the protocol of
torchvision's presets instead (:func:`fit`): in the train split it keeps all of its pixels (longer
side to ``size``, in the top-left of a ``size x size`` slot) so that RandomResizedCrop sees the whole
image; in the test split it is resized to ``size * 8 // 7`` on its shorter side and centre-cropped to
``size`` (Resize(256) + CenterCrop(224)). It writes ``<split>.pt`` (``images``: uint8 ``N x 3 x size
x size``, ``labels``: int64 ``N``, ``sizes``: int64 ``N x 2``, each image's valid height and width)
and then ``<split>.manifest.json``: the sources (path, bytes, mtime,
sha256, label, box), the parameters, the class names and counts, the image modes seen, the files
with an EXIF orientation other than 1 (not applied: boxes refer to the raw pixels) and the data
file's sha256. Both are written atomically (temporary file, fsync, ``os.replace``, fsync of the
folder), the manifest last, so a cache without a manifest is never taken for a finished one.

Every unreadable image (zero bytes, truncated, not an image, a decompression bomb) and every box
with no area inside its image is collected, and preparation fails with the complete list: nothing
is skipped or substituted. ``load_cache`` checks the data file's hash and, by default, that no
source image changed since (size and mtime, then the hash of any file whose size or mtime moved),
and refuses a tampered, stale or incomplete cache with a message saying what to do.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from fgvc_ref.data.records import Box, DatasetError, Record
from fgvc_ref.transforms import eval_resize, resize_centre_crop

FORMAT, VERSION = "fgvc_ref-cache", 2  # 2: per-image valid sizes; whole train images without boxes
EXIF_ORIENTATION = 0x0112


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


def decode(record: Record, size: int, whole: bool = False) -> tuple[np.ndarray, dict]:
    """One record -> (``size x size x 3`` uint8 slot, source facts with the valid ``size``). Raises on any bad input."""
    path = Path(record.path)
    data = path.read_bytes()
    stat = path.stat()
    facts = {"path": record.path, "bytes": len(data), "mtime_ns": stat.st_mtime_ns, "sha256": hashlib.sha256(data).hexdigest(),
             "label": record.label, "bbox": list(record.bbox) if record.bbox else None}
    if not data:
        raise DatasetError(f"{path}: empty file (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
            facts["mode"] = img.mode
            facts["exif_orientation"] = int(img.getexif().get(EXIF_ORIENTATION, 1) or 1)
            img.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise DatasetError(f"{path}: not a readable image ({type(e).__name__}: {e})") from e
    img = img.convert("RGB")
    if record.trim_bottom:  # e.g. FGVC-Aircraft's copyright banner; box coordinates keep their meaning
        if img.height <= record.trim_bottom:
            raise DatasetError(f"{path}: {img.width}x{img.height} image is not taller than the {record.trim_bottom}-row banner to remove")
        img = img.crop((0, 0, img.width, img.height - record.trim_bottom))
        facts["trim_bottom"] = record.trim_bottom
    if record.bbox is not None:
        img = crop_box(img, record.bbox, record.path)
    array, facts["size"] = fit(img, size, cropped=record.bbox is not None, whole=whole)
    return array, facts


def _decode_or_error(args: tuple[Record, int, bool]):
    try:
        return decode(*args)
    except (DatasetError, OSError) as e:
        return str(e)


def prepare(records: list[Record], out: Path | str, *, split: str, classes: list[str], size: int = 224,
            workers: int | None = None, progress: bool = True, dataset: str = "", params: dict | None = None) -> Path:
    """Decode, check, crop and resize every record; write the split's data file and manifest; return the manifest path."""
    if not records:
        raise DatasetError(f"split {split!r}: no records to prepare")
    if not (isinstance(size, int) and size >= 1):
        raise ValueError(f"size must be a positive integer, got {size!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    jobs = [(r, size, split == "train") for r in records]
    results = _run(jobs, workers, progress, f"prepare {split}")
    bad = [r for r in results if isinstance(r, str)]
    if bad:
        raise DatasetError(f"{len(bad)} of {len(records)} {split} image(s) cannot be used; nothing was written:\n  " + "\n  ".join(bad))
    arrays, facts = zip(*results)
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([r.label for r in records], dtype=torch.int64)
    sizes = torch.tensor([f["size"] for f in facts], dtype=torch.int64)
    data_path = out / f"{split}.pt"
    atomic_write(data_path, lambda f: torch.save({"images": images, "labels": labels, "sizes": sizes}, f))
    counts = Counter(labels.tolist())
    manifest = {
        "format": FORMAT, "version": VERSION, "dataset": dataset, "split": split, "data_file": data_path.name,
        "data_sha256": sha256_file(data_path), "num_images": len(records), "image_size": size,
        "protocol": "box crop resized to size x size; images without a box: " + (
            "longer side to size, aspect kept (whole image for RandomResizedCrop)" if split == "train" else
            f"shorter side to {eval_resize(size)}, centre crop {size} (torchvision's Resize + CenterCrop)"),
        "params": params or {}, "classes": list(classes), "class_counts": [counts[c] for c in range(len(classes))],
        "mode_counts": dict(Counter(f["mode"] for f in facts)),
        "exif_rotated": [f["path"] for f in facts if f["exif_orientation"] != 1],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "sources": [{k: v for k, v in f.items() if k not in ("mode", "exif_orientation", "size")} for f in facts],
    }
    manifest_path = out / f"{split}.manifest.json"
    atomic_write(manifest_path, lambda f: f.write(json.dumps(manifest, indent=1).encode()))
    if progress:
        modes = ", ".join(f"{m}: {n}" for m, n in sorted(manifest["mode_counts"].items()))
        print(f"prepared {split}: {len(records)} images at {size}px -> {data_path} (modes {modes}; "
              f"{len(manifest['exif_rotated'])} with an EXIF orientation tag, not applied)", file=sys.stderr)
    return manifest_path


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
    source_keys = {"path", "bytes", "mtime_ns", "sha256"}
    if not wrong and not all(isinstance(s, dict) and source_keys <= s.keys() for s in manifest["sources"]):
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
        _check_sources(manifest["sources"], manifest_path)
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
    changed, gone = [], []
    for s in sources:
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


def _run(jobs: list, workers: int, progress: bool, label: str) -> list:
    """``_decode_or_error`` over the jobs, in order, on ``workers`` processes, with a progress bar."""
    bar = _progress(len(jobs), label) if progress else None
    results = []
    if workers == 1:
        iterator = map(_decode_or_error, jobs)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        iterator = pool.map(_decode_or_error, jobs, chunksize=max(1, min(64, len(jobs) // (4 * workers))))
    try:
        for r in iterator:
            results.append(r)
            if bar:
                bar.update(1)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
        if bar:
            bar.close()
    return results


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
