"""Batched image kernels with per-image parameters, for uint8 ``N x C x H x W`` tensors.

These are the pixel operations behind the batched augmentations (TrivialAugment, colour jitter,
RandomResizedCrop). Every function takes one parameter *per image* as a tensor of shape ``(N,)`` on
the images' device, works with batched tensor ops only (no Python loop over images, no host
sync), and reproduces the arithmetic of the matching ``torchvision.transforms.v2.functional``
tensor kernel for one image:

- point operations are per-image, per-channel 256-entry look-up tables (:func:`apply_lut`):
  brightness, contrast, posterize, solarize, autocontrast, equalize, identity. They are exact;
- blends ``r * x + (1 - r) * y`` (:func:`blend`), with the grey image for saturation and the 3x3
  smoothed image for sharpness, are exact: the factors are rounded to float32 as torch rounds a
  Python float, and ``+ (1 - r) * y`` is one fused multiply-add, as torch's ``add(alpha=)`` is;
- geometric ops (:func:`affine`) are one ``grid_sample`` with a per-image inverse affine matrix,
  on the same pixel-centre grid as torchvision. The matrix is built in float32 on the device
  (torchvision: float64 on the host), so a pixel may land on the other side of a rounding
  boundary: one grey level, on a small fraction of pixels (tested).

Convention: factors ``r`` are float64 tensors; a kernel rounds ``r`` and ``1 - r`` to float32
separately, as torch does when it multiplies a uint8 tensor by a Python float.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor


def check_images(x: Tensor, name: str = "images") -> None:
    """uint8, ``N x C x H x W`` with C in (1, 3): otherwise a ValueError naming what was found."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype != torch.uint8:
        raise ValueError(f"{name} must be uint8 (0-255), got dtype {x.dtype}")
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape N x C x H x W, got shape {tuple(x.shape)}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"{name} must have 1 or 3 channels (dim 1), got {x.shape[1]} in shape {tuple(x.shape)}")


@functools.lru_cache(maxsize=128)
def constant(values: tuple, device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """A small constant tensor, made once per device: building it from Python values on every call
    would copy host -> device each time, and that copy waits for the GPU. Callers must not modify it."""
    return torch.tensor(values, dtype=dtype, device=device)


def per_image(v: Tensor, like: Tensor) -> Tensor:
    """View a ``(N,)`` parameter so it broadcasts over ``like``'s non-batch dims."""
    return v.view(-1, *([1] * (like.dim() - 1)))


def f32(r: Tensor) -> Tensor:
    """Round float64 factors to float32, as torch rounds a Python float scalar."""
    return r.to(torch.float32)


# --- look-up tables ---------------------------------------------------------------------------


def apply_lut(x: Tensor, lut: Tensor) -> Tensor:
    """``out[n, c, h, w] = lut[n, c, x[n, c, h, w]]`` for uint8 ``x`` and a ``(N, C, 256)`` uint8 table."""
    n, c = x.shape[:2]
    return lut.reshape(n, c, 256).gather(2, x.reshape(n, c, -1).long()).view_as(x)


def levels(x: Tensor) -> Tensor:
    """The 256 grey levels as float32, shaped ``(1, 1, 256)`` to broadcast against ``(N, C, 1)``."""
    return torch.arange(256, dtype=torch.float32, device=x.device).view(1, 1, 256)


def to_uint8(v: Tensor) -> Tensor:
    """Clamp to [0, 255] and truncate, as torchvision's float -> uint8 ``.to()`` does after a clamp."""
    return v.clamp_(0, 255).to(torch.uint8)


def brightness_lut(x: Tensor, factor: Tensor) -> Tensor:
    """``v * r`` (torchvision ``adjust_brightness``)."""
    return to_uint8(levels(x) * per_image(f32(factor), levels(x)))


def contrast_lut(x: Tensor, factor: Tensor) -> Tensor:
    """``v * r + mean * (1 - r)`` with ``mean`` the image's mean floored grey (``adjust_contrast``)."""
    mean = grayscale(x).mean(dim=(-3, -2, -1)).view(-1, 1, 1)
    v = levels(x)
    return to_uint8(torch.addcmul(v * per_image(f32(factor), v), mean, per_image(f32(1.0 - factor), mean)))


def posterize_lut(x: Tensor, bits: Tensor) -> Tensor:
    """Keep the ``bits`` high bits: ``v & (255 << (8 - bits))``."""
    shift = 8 - per_image(bits.long(), levels(x))
    return ((levels(x).long() >> shift) << shift).to(torch.uint8)


def solarize_lut(x: Tensor, threshold: Tensor) -> Tensor:
    """Invert the levels ``v >= threshold``."""
    v = levels(x)
    return torch.where(v >= per_image(threshold.to(torch.float32), v), 255 - v, v).to(torch.uint8)


def autocontrast_lut(x: Tensor) -> Tensor:
    """Stretch each channel's [min, max] to [0, 255]; a flat channel is left as is."""
    lo = x.amin(dim=(-2, -1)).float().unsqueeze(-1)  # (N, C, 1)
    hi = x.amax(dim=(-2, -1)).float().unsqueeze(-1)
    flat = hi == lo
    inv_scale = torch.where(flat, 1.0, (hi - lo) * (1.0 / 255))
    lo = torch.where(flat, 0.0, lo)
    return to_uint8((levels(x) - lo) / inv_scale)


def equalize_lut(x: Tensor) -> Tensor:
    """Histogram equalisation per channel (PIL's ``ImageOps.equalize`` rule).

    With histogram ``h`` and ``step = (pixels - h[last non-empty level]) // 255``, level ``v`` maps to
    ``(sum_{u<v} h[u] + step // 2) // step``; a channel with ``step == 0`` is left as is.
    """
    n, c = x.shape[:2]
    flat = x.reshape(n * c, -1).long()
    hist = torch.zeros(n * c, 256, dtype=torch.int64, device=x.device).scatter_add_(1, flat, torch.ones_like(flat))
    cum = hist.cumsum(1)
    last = cum.argmax(1, keepdim=True)  # first level where the cumulative count is complete
    step = (flat.shape[1] - hist.gather(1, last)) // 255
    below = torch.cat([torch.zeros_like(cum[:, :1]), cum[:, :-1]], dim=1)  # sum_{u<v} h[u]
    lut = ((below + step // 2) // step.clamp(min=1)).clamp(0, 255)
    lut = torch.where(step == 0, torch.arange(256, device=x.device), lut)
    return lut.to(torch.uint8).view(n, c, 256)


# --- blends -----------------------------------------------------------------------------------


def grayscale(x: Tensor) -> Tensor:
    """ITU-R 601 luma, floored, float32 ``N x 1 x H x W`` (torchvision's uint8 grey image)."""
    if x.shape[1] == 1:
        return x.float()
    r, g, b = x.unbind(dim=1)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).floor_().unsqueeze(1)


def blend(x: Tensor, y: Tensor, factor: Tensor) -> Tensor:
    """``x * r + y * (1 - r)`` as float32, for uint8 ``x`` and a float32 degenerate image ``y``.

    The second product and the sum are one fused multiply-add, as in torch's ``add_(y, alpha=1 - r)``.
    """
    return torch.addcmul(x.mul(per_image(f32(factor), x)), y, per_image(f32(1.0 - factor), x))


def saturation(x: Tensor, factor: Tensor) -> Tensor:
    """Blend with the grey image (``adjust_saturation``); grey images are returned unchanged."""
    if x.shape[1] == 1:
        return x
    return to_uint8(blend(x, grayscale(x), factor))


def sharpness(x: Tensor, factor: Tensor) -> Tensor:
    """Blend the interior with a 3x3 smoothing (1s around a 5, over 13), borders kept (``adjust_sharpness``)."""
    if x.shape[-1] <= 2 or x.shape[-2] <= 2:
        return x
    c = x.shape[1]
    a, b = 1.0 / 13.0, 5.0 / 13.0
    kernel = constant(((a, a, a), (a, b, a), (a, a, a)), x.device).expand(c, 1, 3, 3)
    out = x.to(torch.float32)
    smooth = F.conv2d(out, kernel, groups=c).round_()
    inner = out[..., 1:-1, 1:-1]
    torch.addcmul(inner, smooth.sub_(inner), per_image(f32(1.0 - factor), inner), out=inner)  # x + (1 - r)(s - x)
    return to_uint8(out)


# --- geometry ---------------------------------------------------------------------------------


def inverse_affine_matrix(angle: Tensor, translate: Tensor, shear: Tensor, center: Tensor) -> Tensor:
    """Per-image ``(N, 2, 3)`` map from output to input pixel coordinates (origin at the image centre).

    The forward map is ``T(translate) C R(angle) Sh(shear) C^-1`` with ``C`` the translation to
    ``center``; angles are in degrees, clockwise positive in image coordinates (y down), the shear
    pair (x, y) is in degrees. ``translate`` and ``center`` are ``(N, 2)`` in pixels.
    """
    rot, sx, sy = torch.deg2rad(angle), torch.deg2rad(shear[:, 0]), torch.deg2rad(shear[:, 1])
    a = torch.cos(rot - sy) / torch.cos(sy)
    b = -torch.cos(rot - sy) * torch.tan(sx) / torch.cos(sy) - torch.sin(rot)
    c = torch.sin(rot - sy) / torch.cos(sy)
    d = -torch.sin(rot - sy) * torch.tan(sx) / torch.cos(sy) + torch.cos(rot)
    inv = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], 1)  # inverse of [[a, b], [c, d]] (det 1)
    offset = inv @ (-center - translate).unsqueeze(-1) + center.unsqueeze(-1)
    return torch.cat([inv, offset], dim=2)


def affine(x: Tensor, matrix: Tensor, *, fill: float | tuple[float, ...] = 0.0) -> Tensor:
    """Resample every image with its own inverse matrix (bilinear, pixel centres, ``fill`` outside)."""
    n, c, h, w = x.shape
    ys = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, h, device=x.device)
    xs = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, w, device=x.device)
    base = torch.stack([xs.expand(h, w), ys.unsqueeze(1).expand(h, w), torch.ones(h, w, device=x.device)], -1)
    theta = matrix.to(torch.float32).transpose(1, 2) / constant((0.5 * w, 0.5 * h), x.device)
    grid = (base.view(1, h * w, 3) @ theta).view(n, h, w, 2)
    fills = (fill,) if isinstance(fill, (int, float)) else tuple(fill)
    src = x.to(torch.float32)
    if all(f == 0 for f in fills):
        out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    else:  # carry a mask channel, then blend the fill in where the sample left the image
        out = F.grid_sample(torch.cat([src, torch.ones_like(src[:, :1])], 1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out, mask = out[:, :-1], out[:, -1:]
        fill_t = constant(fills, x.device).view(1, -1, 1, 1)
        out = out.sub_(fill_t).mul_(mask).add_(fill_t)
    return out.round_().to(torch.uint8)


def shear_matrix(x: Tensor, shear_deg_x: Tensor, shear_deg_y: Tensor) -> Tensor:
    """Shear about the top-left corner (TrivialAugment's ShearX / ShearY)."""
    n, _, h, w = x.shape
    zeros = torch.zeros(n, dtype=torch.float64, device=x.device)
    corner = constant((-0.5 * w, -0.5 * h), x.device, torch.float64).expand(n, 2)
    return inverse_affine_matrix(zeros, torch.zeros_like(corner), torch.stack([shear_deg_x, shear_deg_y], 1), corner)


def rotate_translate_matrix(x: Tensor, angle_deg: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
    """Rotation about the centre (counter-clockwise for positive ``angle_deg``, as PIL) and translation."""
    n = x.shape[0]
    zeros2 = torch.zeros(n, 2, dtype=torch.float64, device=x.device)
    return inverse_affine_matrix(-angle_deg, torch.stack([tx, ty], 1), zeros2, zeros2)
