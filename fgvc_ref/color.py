"""Colour jitter and PCA lighting noise: the colour half of the "standard" augmentation.

He, Zhang, Zhang, Zhang, Xie, Li, "Bag of Tricks for Image Classification with Convolutional Neural
Networks", CVPR 2019, arXiv:1812.01187, section 2.1; the lighting noise is from Krizhevsky,
Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural Networks", NeurIPS 2012.

Colour jitter: draw factors ``f_b, f_c, f_s ~ U[1 - j, 1 + j]`` (``j = 0.4``: [0.6, 1.4]) and apply,
in a uniformly random order, brightness ``x * f_b``, contrast ``f_c x + (1 - f_c) mean(grey x)`` and
saturation ``f_s x + (1 - f_s) grey(x)``.

PCA lighting: with the ImageNet RGB eigenvalues ``lambda`` and eigenvectors ``V`` (columns), draw
``alpha ~ N(0, sigma^2 I)`` (``sigma = 0.1``) and add ``V (alpha * lambda)`` to every pixel of the
float image in [0, 1], before normalisation.

Convention: the jitter equals ``torchvision.transforms.ColorJitter(brightness=j, contrast=j,
saturation=j)`` on PIL images bit for bit (same RNG order: ``randperm(4)``, then one ``uniform_``
per factor in the order b, c, s; hue is off). The lighting constants are fb.resnet.torch's, as in
GluonCV's and timm's ``Lighting``; no clamp afterwards. The batched versions draw per image (the
order as ``argsort`` of uniforms, which is a uniform permutation) and use the tensor kernels of
:mod:`fgvc_ref.image_ops`, equal to torchvision's tensor ops; Pillow rounds where those truncate,
so the two backends differ by at most one grey level per op.
"""

from __future__ import annotations

import torch
from PIL import Image, ImageEnhance
from torch import Tensor

from fgvc_ref import image_ops as K

EIGVAL = (0.2175, 0.0188, 0.0045)
EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
ENHANCERS = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)


def _check_strength(name: str, value: float, upper: float | None = None) -> None:
    if not (value >= 0 and (upper is None or value <= upper)):
        raise ValueError(f"{name} must be in [0, {upper if upper is not None else 'inf'}), got {value!r}")


class ColorJitter:
    """Brightness, contrast and saturation jitter in random order on a PIL image."""

    def __init__(self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4) -> None:
        for name, v in dict(brightness=brightness, contrast=contrast, saturation=saturation).items():
            _check_strength(name, v, 1.0)
        self.strengths = (brightness, contrast, saturation)

    def __call__(self, img: Image.Image, generator: torch.Generator | None = None) -> Image.Image:
        order = torch.randperm(4, generator=generator).tolist()  # slot 3 (hue) is drawn but off
        factors = [float(torch.empty(1).uniform_(1 - j, 1 + j, generator=generator)) if j > 0 else None for j in self.strengths]
        for k in order:
            if k < 3 and factors[k] is not None:
                img = ENHANCERS[k](img).enhance(factors[k])
        return img

    def __repr__(self) -> str:
        b, c, s = self.strengths
        return f"{type(self).__name__}(brightness={b}, contrast={c}, saturation={s})"


def color_jitter_batch(x: Tensor, strength: float = 0.4, *, generator: torch.Generator | None = None) -> Tensor:
    """Per-image colour jitter of a uint8 ``N x C x H x W`` batch (same strength for b, c, s)."""
    K.check_images(x)
    _check_strength("strength", strength, 1.0)
    n, dev = x.shape[0], x.device
    order = torch.rand(n, 3, generator=generator, device=dev).argsort(1)
    factors = torch.empty(n, 3, dtype=torch.float64, device=dev).uniform_(1 - strength, 1 + strength, generator=generator)
    for slot in range(3):
        which = order[:, slot]
        f = factors.gather(1, which.unsqueeze(1)).squeeze(1)
        lut = torch.where((which == 0).view(n, 1, 1), K.brightness_lut(x, f), K.contrast_lut(x, f))  # (N, 1, 256)
        lut = torch.where((which == 2).view(n, 1, 1), torch.arange(256, device=dev, dtype=torch.uint8), lut)
        x = K.apply_lut(x, lut.expand(n, x.shape[1], 256))
        x = torch.where(K.per_image(which == 2, x), K.saturation(x, f), x)
    return x


def lighting_noise(n: int, std: float = 0.1, *, generator: torch.Generator | None = None, device=None) -> Tensor:
    """Per-image RGB offsets ``V (alpha * lambda)``, ``alpha ~ N(0, std^2)``: shape ``(n, 3)``."""
    alpha = torch.randn(n, 3, generator=generator, device=device) * std
    device = torch.device(device or "cpu")
    eigval, eigvec = K.constant(EIGVAL, device), K.constant(EIGVEC, device)
    return (alpha * eigval) @ eigvec.T


class Lighting:
    """PCA lighting noise on a float ``3 x H x W`` image in [0, 1] (before normalisation)."""

    def __init__(self, std: float = 0.1) -> None:
        _check_strength("std", std)
        self.std = std

    def __call__(self, img: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if not (isinstance(img, Tensor) and img.is_floating_point() and img.dim() == 3 and img.shape[0] == 3):
            raise ValueError(f"Lighting needs a float 3 x H x W tensor, got {getattr(img, 'dtype', type(img).__name__)} {tuple(getattr(img, 'shape', ()))}")
        if self.std == 0:
            return img
        return img + lighting_noise(1, self.std, generator=generator)[0].view(3, 1, 1).to(img.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(std={self.std})"
