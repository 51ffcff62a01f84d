"""Training data from a spec string: a prepared cache folder, or ``fashion-mnist[:tops][@size]``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import NamedTuple

import torch

from fgvc_ref.data.records import DatasetError


class Data(NamedTuple):
    train_images: torch.Tensor  # uint8 N x 3 x S x S
    train_labels: torch.Tensor  # int64 N
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]
    fingerprint: str  # identity of the data (hash of the manifests), checked on resume
    name: str


def load_data(spec: str | Path, *, verify_sources: bool = True) -> Data:
    """``spec``: a folder written by ``prepare`` (train + test), or ``fashion-mnist``, ``fashion-mnist:tops``,
    optionally with ``@SIZE`` (e.g. ``fashion-mnist:tops@32``) to store the images at SIZE px."""
    text = str(spec)
    if text.startswith("fashion-mnist"):
        from fgvc_ref.data.fashion_mnist import load_fashion_mnist

        name, _, size = text.partition("@")
        subset = name.partition(":")[2] or None
        kw = dict(subset=subset, size=int(size) if size else 28)
        train, test = load_fashion_mnist("train", **kw), load_fashion_mnist("test", **kw)
    else:
        from fgvc_ref.data.cache import load_cache

        if not Path(text).is_dir():
            raise DatasetError(f"{text}: not a prepared cache folder (run `python -m fgvc_ref prepare`), nor 'fashion-mnist[:tops]'")
        train, test = load_cache(text, "train", verify_sources=verify_sources), load_cache(text, "test", verify_sources=verify_sources)
        if train.classes != test.classes:
            raise DatasetError(f"{text}: train and test caches have different class lists ({len(train.classes)} vs {len(test.classes)})")
    ident = json.dumps([train.manifest.get("data_sha256") or train.manifest.get("sources"),
                        test.manifest.get("data_sha256") or test.manifest.get("sources"), train.classes], sort_keys=True, default=str)
    fingerprint = hashlib.sha256(ident.encode()).hexdigest()
    return Data(train.images, train.labels, test.images, test.labels, train.classes, fingerprint, text)
