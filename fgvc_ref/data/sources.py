"""Training data from a spec string: a prepared cache folder, or ``fashion-mnist[:tops][@SIZE][,train=N][,test=M]``."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import NamedTuple

import torch

from fgvc_ref.data.records import DatasetError, names_differ

FASHION_SPEC = re.compile(r"fashion-mnist(?::(?P<subset>[a-z]+))?(?:@(?P<size>\d+))?(?P<options>(?:,(?:train|test)=\d+)*)")


class Data(NamedTuple):
    train_images: torch.Tensor  # uint8 N x 3 x S x S
    train_labels: torch.Tensor  # int64 N
    test_images: torch.Tensor | None  # None: the test split was not loaded (load_train)
    test_labels: torch.Tensor | None
    classes: list[str]
    fingerprint: str  # identity of the data (hash of the manifests), checked on resume
    name: str
    train_sizes: torch.Tensor | None = None  # int64 N x 2: valid (h, w) of each train image's slot; None: all of it
    train_cropped: torch.Tensor | None = None  # bool N: a box crop (evaluated whole) or a whole image (centre crop); None: crops
    protocol: str = ""  # "box crops (the blog's protocol)" or "whole images, not the blog's box-crop protocol" (recipe.json, report)
    open_set: dict | None = None  # the open-set split restricting it to its known classes (fgvc_ref.data.open_set.known_data), or None


def load_data(spec: str | Path, *, verify_sources: bool = True) -> Data:
    """``spec``: a folder written by ``prepare`` (train + test), or ``fashion-mnist`` / ``fashion-mnist:tops``
    with optional parts: ``@SIZE`` stores the images at SIZE px, ``,train=N`` / ``,test=M`` keep the first N / M
    images of every class (file order), e.g. ``fashion-mnist:tops@32,train=400,test=500``."""
    return _load(spec, ("train", "test"), verify_sources)


def load_train(spec: str | Path, *, verify_sources: bool = True) -> Data:
    """The train split alone (``test_images`` and ``test_labels`` None), for work that must never read the test split: a
    search selects on a validation split carved from train. A cache whose test split is missing loads fine. Its
    fingerprint is the train split's, not :func:`load_data`'s."""
    return _load(spec, ("train",), verify_sources)


def _load(spec: str | Path, splits: tuple[str, ...], verify_sources: bool) -> Data:
    text = str(spec)
    if text.startswith("fashion-mnist"):
        from fgvc_ref.data.fashion_mnist import load_fashion_mnist

        match = FASHION_SPEC.fullmatch(text)
        if not match:
            raise DatasetError(f"{text!r}: not a Fashion-MNIST spec; expected fashion-mnist[:tops][@SIZE][,train=N][,test=M]")
        keep = dict(option.split("=") for option in match["options"].split(",")[1:])
        if any(int(v) < 1 for v in keep.values()):
            raise DatasetError(f"{text!r}: train= and test= must be >= 1 images per class")
        kw = dict(subset=match["subset"], size=int(match["size"] or 28))
        loaded = {split: load_fashion_mnist(split, per_class=int(keep[split]) if split in keep else None, **kw) for split in splits}
    else:
        from fgvc_ref.data.cache import load_cache

        if not Path(text).is_dir():
            raise DatasetError(f"{text}: not a prepared cache folder (run `python -m fgvc_ref prepare`), nor 'fashion-mnist[:tops]', "
                               "nor (for evaluate --data) a folder of labelled photos")
        loaded = {split: load_cache(text, split, verify_sources=verify_sources) for split in splits}
    train, test = loaded["train"], loaded.get("test")
    if test is not None and (differ := names_differ(train.classes, test.classes, "train", "test")):
        raise DatasetError(f"{text}: train and test caches have different class lists: {differ}")
    fingerprint = _fingerprint(train.manifest, test.manifest if test else {"split": "not loaded"}, train.classes, text)
    name = text if text.startswith("fashion-mnist") else str(Path(text).resolve())  # recipe.json's data: found from any folder
    return Data(train.images, train.labels, test.images if test else None, test.labels if test else None, train.classes, fingerprint,
                name, train.sizes, train.cropped, protocol_of(*(m.manifest for m in loaded.values())))


def protocol_of(*manifests: dict) -> str:
    """Whether the splits' images are box crops (the blog's protocol) or not, from their manifests' sources."""
    sources = [s for m in manifests for s in m.get("sources", [])]
    boxed = sum(s.get("bbox") is not None for s in sources)
    if sources and boxed == len(sources):
        return "box crops (the blog's protocol)"
    return "whole images, not the blog's box-crop protocol" if boxed == 0 else f"box crops for {boxed} of {len(sources)} images, whole images for the rest"


class TestData(NamedTuple):
    test_images: torch.Tensor  # uint8 N x 3 x S x S
    test_labels: torch.Tensor
    classes: list[str]
    fingerprint: str  # the same as load_data's for the same spec
    name: str


def load_test(spec: str | Path, *, verify_sources: bool = True) -> TestData:
    """The test split alone, with the fingerprint :func:`load_data` gives the whole: of a prepared cache, the train
    split's manifest is read but not its images (evaluation; a Stanford Cars train split is about 1.6 GB)."""
    text = str(spec)
    if text.startswith("fashion-mnist") or not Path(text).is_dir():  # Fashion-MNIST is small; a bad spec gets load_data's error
        d = load_data(text, verify_sources=verify_sources)
        return TestData(d.test_images, d.test_labels, d.classes, d.fingerprint, d.name)
    from fgvc_ref.data.cache import load_cache

    test = load_cache(text, "test", verify_sources=verify_sources)
    try:
        train_manifest = json.loads((Path(text) / "train.manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise DatasetError(f"{text}: the train split's manifest is missing or unreadable ({e}); prepare the cache again") from e
    if differ := names_differ(list(train_manifest.get("classes") or []), test.classes, "train", "test"):
        raise DatasetError(f"{text}: train and test caches have different class lists: {differ}")
    return TestData(test.images, test.labels, test.classes, _fingerprint(train_manifest, test.manifest, test.classes, text), text)


def _fingerprint(train_manifest: dict, test_manifest: dict, classes: list[str], text: str) -> str:
    """The data's identity, checked on resume: the splits' data hashes (or sources) and the class list."""
    ident = json.dumps([train_manifest.get("data_sha256") or train_manifest.get("sources"),
                        test_manifest.get("data_sha256") or test_manifest.get("sources"), classes]
                       + ([text] if text.startswith("fashion-mnist") else []), sort_keys=True, default=str)
    return hashlib.sha256(ident.encode()).hexdigest()
