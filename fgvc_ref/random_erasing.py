"""Random Erasing: replace one random rectangle of the (normalised) image.

Zhong, Zheng, Kang, Li, Yang, "Random Erasing Data Augmentation", AAAI 2020, arXiv:1708.04896.

Per image of size ``C x H x W``, with probability ``p``: draw an area fraction ``s ~ U(scale)`` and a
log aspect ``log r ~ U(log ratio)``; take ``h = round(sqrt(s H W r))``, ``w = round(sqrt(s H W / r))``
and accept iff ``h < H`` and ``w < W``; on acceptance draw the top-left corner ``i ~ U{0..H-h}``,
``j ~ U{0..W-w}`` and set ``x[:, i:i+h, j:j+w] = v``. After 10 rejected attempts nothing is erased.
``v`` is a number, one value per channel, or ``"random"`` (standard normal noise per pixel).

Convention: ``torchvision.transforms.RandomErasing`` (docs/recipe.md section 7, gotcha 10): one ``rand(1)``
always (erase iff ``< p``); each attempt draws ``uniform_(scale)`` then ``uniform_(log ratio)`` in
float32; ``h`` takes ``* r``; acceptance is strict; for ``"random"`` the ``(C, h, w)`` normal draw
comes before ``i`` and ``j``. :class:`RandomErasing` is bit-exact with torchvision for the same
seed. :func:`random_erasing_batch` draws every image's parameters with batched ops (all 10
attempts at once, the first accepted one wins): equal in distribution, not in RNG stream. The recipe
applies it after normalisation with ``value=0``, so erased pixels become the dataset mean colour.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

Value = float | tuple[float, ...] | str
ATTEMPTS = 10


def check_args(p: float, scale: tuple[float, float], ratio: tuple[float, float], value: Value) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    if not (len(scale) == 2 and 0.0 <= scale[0] <= scale[1] <= 1.0):
        raise ValueError(f"scale must be (min, max) with 0 <= min <= max <= 1, got {scale!r}")
    if not (len(ratio) == 2 and 0.0 < ratio[0] <= ratio[1]):
        raise ValueError(f"ratio must be (min, max) with 0 < min <= max, got {ratio!r}")
    if isinstance(value, str) and value != "random":
        raise ValueError(f"value must be a number, a tuple of per-channel numbers, or 'random', got {value!r}")


def _values(value: Value, c: int) -> list[float] | None:
    """The fill as one number per channel, or None for ``"random"``."""
    if isinstance(value, str):
        return None
    values = [float(value)] if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(values) not in (1, c):
        raise ValueError(f"value must have 1 or {c} (channel) entries, got {len(values)}")
    return values * c if len(values) == 1 else values


def _value_tensor(value: Value, c: int, like: Tensor) -> Tensor | None:
    """The fill as a ``(C, 1, 1)`` tensor, or None for ``"random"``."""
    values = _values(value, c)
    return None if values is None else torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, 1, 1)


def erasing_params(img: Tensor, scale, ratio, value: Value, generator: torch.Generator | None = None):
    """torchvision's draw for one image: ``(i, j, h, w, v)``, or None after 10 rejections."""
    c, height, width = img.shape[-3:]
    log_ratio = torch.log(torch.tensor(ratio))
    v = _value_tensor(value, c, img)
    for _ in range(ATTEMPTS):
        area = height * width * torch.empty(1).uniform_(scale[0], scale[1], generator=generator).item()
        r = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator)).item()
        h, w = int(round(math.sqrt(area * r))), int(round(math.sqrt(area / r)))
        if not (h < height and w < width):
            continue
        if v is None:
            v = torch.empty((c, h, w), dtype=torch.float32).normal_(generator=generator)
        i = int(torch.randint(0, height - h + 1, (1,), generator=generator))
        j = int(torch.randint(0, width - w + 1, (1,), generator=generator))
        return i, j, h, w, v
    return None


class RandomErasing:
    """Per-image Random Erasing on a ``C x H x W`` (or ``... x C x H x W``) tensor, bit-exact with torchvision."""

    def __init__(self, p: float = 0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value: Value = 0, inplace: bool = False):
        check_args(p, scale, ratio, value)
        self.p, self.scale, self.ratio, self.value, self.inplace = p, tuple(scale), tuple(ratio), value, inplace

    def __call__(self, img: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if not isinstance(img, Tensor) or img.dim() < 3:
            raise ValueError(f"RandomErasing needs a C x H x W tensor, got {getattr(img, 'shape', type(img).__name__)}")
        if not torch.rand(1, generator=generator) < self.p:
            return img
        params = erasing_params(img, self.scale, self.ratio, self.value, generator)
        if params is None:
            return img
        i, j, h, w, v = params
        out = img if self.inplace else img.clone()
        out[..., i : i + h, j : j + w] = v.to(img.dtype)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p}, scale={self.scale}, ratio={self.ratio}, value={self.value!r})"


def random_erasing_batch(
    x: Tensor, *, p: float, scale=(0.02, 0.33), ratio=(0.3, 3.3), value: Value = 0,
    generator: torch.Generator | None = None, inplace: bool = False,
) -> Tensor:
    """Erase one rectangle per image of an ``N x C x H x W`` batch, each image with its own draw."""
    check_args(p, scale, ratio, value)
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f"random_erasing_batch needs an N x C x H x W tensor, got {getattr(x, 'shape', type(x).__name__)}")
    n, c, height, width = x.shape
    dev = dict(device=x.device)
    erase = torch.rand(n, generator=generator, **dev) < p
    area = height * width * torch.empty(n, ATTEMPTS, **dev).uniform_(scale[0], scale[1], generator=generator)
    r = torch.exp(torch.empty(n, ATTEMPTS, **dev).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator))
    hs, ws = (area * r).sqrt().round().long(), (area / r).sqrt().round().long()
    ok = (hs < height) & (ws < width)
    first = ok.long().argmax(1, keepdim=True)  # first accepted attempt (0 if none: masked out below)
    h, w = hs.gather(1, first).squeeze(1), ws.gather(1, first).squeeze(1)
    erase &= ok.any(1)
    i = torch.minimum((torch.rand(n, generator=generator, **dev) * (height - h + 1)).long(), height - h)  # U{0..H-h}
    j = torch.minimum((torch.rand(n, generator=generator, **dev) * (width - w + 1)).long(), width - w)
    rows = torch.arange(height, **dev).view(1, -1)
    cols = torch.arange(width, **dev).view(1, -1)
    in_rows = erase.view(-1, 1) & (rows >= i.view(-1, 1)) & (rows < (i + h).view(-1, 1))  # (N, H)
    in_cols = (cols >= j.view(-1, 1)) & (cols < (j + w).view(-1, 1))  # (N, W)
    mask = (in_rows.unsqueeze(2) & in_cols.unsqueeze(1)).unsqueeze(1)  # (N, 1, H, W)
    fills = _values(value, c)
    if fills is None:
        return torch.where(mask, torch.randn(x.shape, generator=generator, dtype=x.dtype, **dev), x, **({"out": x} if inplace else {}))
    out = x if inplace else x.clone()
    for k, fill in enumerate(fills):  # a constant per channel: fill in place
        out[:, k : k + 1].masked_fill_(mask, fill)
    return out
