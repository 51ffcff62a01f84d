"""Fashion-MNIST from Debian's ``dataset-fashion-mnist`` files: the offline real-image proxy.

Xiao, Rasul, Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning
Algorithms", arXiv:1708.07747. 60,000 train / 10,000 test 28x28 greyscale images, 10 classes.

The files are ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` under
``/usr/share/datasets/fashion-mnist/`` (``apt-get install dataset-fashion-mnist``), or under the folder
the environment variable ``FGVC_FASHION_MNIST`` names (a machine without the Debian package, such as
the GPU machine ``bench/gpu.sh`` runs on, with a subset written by ``bench/gpu_prepare.sh``), in the IDX format:
a big-endian header (magic 2051 for images with count, rows, columns; 2049 for labels with count)
followed by uint8 data. The ``"tops"`` subset keeps the four look-alike upper-body classes
(T-shirt/top 0, Pullover 2, Coat 4, Shirt 6), relabelled 0..3: the most fine-grained-like part.

The result is a :class:`~fgvc_ref.data.cache.CachedSplit` like a prepared Stanford Cars split
(uint8 ``N x 3 x S x S``, grey replicated to RGB, resized to ``size`` with antialiased bilinear),
so the same training code runs on it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fgvc_ref.data.cache import CachedSplit
from fgvc_ref.data.records import DatasetError

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
ROOT_VARIABLE = "FGVC_FASHION_MNIST"


def default_root() -> Path:
    """Where the files are: ``$FGVC_FASHION_MNIST`` when it is set, else Debian's folder."""
    return Path(os.environ.get(ROOT_VARIABLE) or DEFAULT_ROOT)
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
TOPS = (0, 2, 4, 6)
SUBSETS = (None, "tops")


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file (optionally gzipped) as a uint8 array; checks the magic number and the sizes."""
    if not path.is_file():
        raise DatasetError(f"{path}: not found (install Debian's dataset-fashion-mnist, or set {ROOT_VARIABLE} to the folder of the files)")
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = {2049: 1, 2051: 3}[magic]
    header = np.frombuffer(raw[: 4 * (1 + ndim)], dtype=">u4") if len(raw) >= 4 * (1 + ndim) else np.zeros(0)
    if len(header) != 1 + ndim or header[0] != magic:
        raise DatasetError(f"{path}: not an IDX file with magic {magic}")
    shape = tuple(int(v) for v in header[1:])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 * (1 + ndim))
    if data.size != int(np.prod(shape)):
        raise DatasetError(f"{path}: header says {shape} = {int(np.prod(shape))} values, file has {data.size}")
    return data.reshape(shape)


def resize_grey(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``N x 1 x h x w`` -> ``N x 1 x size x size``: bilinear, antialiased, rounded (unchanged when already that size)."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    return F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False).round_().clamp_(0, 255).to(torch.uint8)


def first_per_class(labels: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the first ``k`` images of every class, in file order (a fixed, seed-independent subset)."""
    order = torch.argsort(labels, stable=True)  # by class, file order within a class
    starts = torch.searchsorted(labels[order], labels[order])  # where each image's class begins
    rank = torch.arange(len(labels)) - starts
    return order[rank < k].sort().values


def load_fashion_mnist(split: str, *, root: Path | str | None = None, subset: str | None = None, size: int = 28,
                       per_class: int | None = None) -> CachedSplit:
    """One split as uint8 ``N x 3 x size x size`` images and int64 labels; ``per_class`` keeps the first that many
    images of every class, in file order (selected before the resize, which treats every image alone)."""
    if split not in ("train", "test"):
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    if subset not in SUBSETS:
        raise DatasetError(f"subset must be one of {SUBSETS}, got {subset!r}")
    root, prefix = Path(root or default_root()), {"train": "train", "test": "t10k"}[split]
    image_file, label_file = root / f"{prefix}-images-idx3-ubyte.gz", root / f"{prefix}-labels-idx1-ubyte.gz"
    images, labels = read_idx(image_file, 2051), read_idx(label_file, 2049)
    if len(images) != len(labels):
        raise DatasetError(f"{root}: {len(images)} images but {len(labels)} labels in split {split!r}")
    classes = list(CLASSES)
    if subset == "tops":
        keep = np.isin(labels, TOPS)
        images, labels = images[keep], np.searchsorted(np.array(TOPS), labels[keep])
        classes = [CLASSES[c] for c in TOPS]
    if per_class is not None:
        keep = first_per_class(torch.from_numpy(labels.astype(np.int64)), per_class).numpy()
        images, labels = images[keep], labels[keep]
    x = resize_grey(torch.from_numpy(images.copy()).unsqueeze(1), size)
    manifest = {"dataset": "fashion-mnist" + (f"/{subset}" if subset else ""), "split": split, "image_size": size,
                "num_images": len(labels), "classes": classes, **({"per_class": per_class} if per_class is not None else {}),
                "sources": [{"path": str(p), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in (image_file, label_file)]}
    return CachedSplit(x.expand(-1, 3, -1, -1).contiguous(), torch.from_numpy(labels.astype(np.int64)), classes, manifest)
