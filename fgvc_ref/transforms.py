"""The training and evaluation pipelines: per-image (reference) and batched (device) versions.

Train (docs/recipe.md section 8): RandomResizedCrop(size, scale (0.08, 1), ratio (3/4, 4/3), bilinear,
antialias) -> horizontal flip (p 0.5) -> the policy's colour op -> float in [0, 1] -> [PCA lighting,
"standard" only] -> normalise (ImageNet mean/std) -> [RandomErasing(p)]. The policies:

    "standard"        colour jitter 0.4 + PCA lighting 0.1 (Bag of Tricks, section 2.1)
    "trivialaugment"  TrivialAugmentWide (bilinear, fill 0)
    "autoaugment"     torchvision's AutoAugment(IMAGENET), the not-adopted ablation (reference path only)

RandomResizedCrop: over 10 attempts draw an area fraction ``s ~ U(scale)`` and ``log r ~
U(log ratio)``; ``w = round(sqrt(s H W r))``, ``h = round(sqrt(s H W / r))``; accept iff ``0 < w <= W``
and ``0 < h <= H``, then draw the corner ``i ~ U{0..H-h}``, ``j ~ U{0..W-w}``. After 10 failures take
the centre crop with the aspect clamped into ``ratio``.

Eval: with the bounding-box protocol the (already cropped) image is resized to ``size x size``;
without boxes, resize the shorter side to ``resize`` (256) and centre-crop ``size`` (224).

Convention: :func:`rrc_params` is ``torchvision.transforms.RandomResizedCrop.get_params``, RNG-exact
(gotcha 11: ``w`` takes ``* r``, the bounds are non-strict). :class:`TrainTransform` is torchvision's
``ClassificationPresetTrain`` for the same policy, bit for bit for the same seed, on PIL images.
:class:`BatchAugment` runs the same policies on a uint8 ``N x C x H x W`` batch on its device:
per-image crop boxes (drawn with batched ops), one antialiased bilinear resample for the whole batch
(:func:`resized_crop_batch`), flips by mask, the batched colour ops, normalisation and erasing. It is
equal in distribution to the reference path, not in RNG stream.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from fgvc_ref import image_ops as K
from fgvc_ref.color import ColorJitter, Lighting, color_jitter_batch, lighting_noise
from fgvc_ref.random_erasing import RandomErasing, check_args, random_erasing_batch
from fgvc_ref.trivial_augment import TrivialAugmentWide, trivial_augment_batch

POLICIES = ("standard", "trivialaugment", "autoaugment")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SCALE = (0.08, 1.0)
RATIO = (3.0 / 4.0, 4.0 / 3.0)


# --- RandomResizedCrop -----------------------------------------------------------------------


def rrc_params(height: int, width: int, scale=SCALE, ratio=RATIO, generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
    """One crop box ``(i, j, h, w)`` (top, left, height, width), RNG-exact with torchvision."""
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=generator).item()
        r = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator)).item()
        w = int(round(math.sqrt(target_area * r)))
        h = int(round(math.sqrt(target_area / r)))
        if 0 < w <= width and 0 < h <= height:
            i = int(torch.randint(0, height - h + 1, size=(1,), generator=generator))
            j = int(torch.randint(0, width - w + 1, size=(1,), generator=generator))
            return i, j, h, w
    return _centre_fallback(height, width, ratio)


def _centre_fallback(height: int, width: int, ratio) -> tuple[int, int, int, int]:
    aspect = width / height
    if aspect < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif aspect > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def rrc_params_batch(n: int, height: int | Tensor, width: int | Tensor, scale=SCALE, ratio=RATIO, *, generator=None, device=None) -> Tensor:
    """``n`` independent crop boxes ``(i, j, h, w)`` as an ``(n, 4)`` int64 tensor, drawn with batched ops.

    ``height`` and ``width`` are one size for all images or one per image (``(n,)`` tensors): the valid
    region of each stored image, whose top-left corner is the slot's."""
    dev = dict(device=device)
    H, W = (torch.as_tensor(v, **dev).long().expand(n).unsqueeze(1) for v in (height, width))
    area = (H * W) * torch.empty(n, 10, **dev).uniform_(scale[0], scale[1], generator=generator)
    r = torch.exp(torch.empty(n, 10, **dev).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator))
    ws, hs = (area * r).sqrt().round().long(), (area / r).sqrt().round().long()
    ok = (ws > 0) & (ws <= W) & (hs > 0) & (hs <= H)
    first = ok.long().argmax(1, keepdim=True)
    h, w = hs.gather(1, first), ws.gather(1, first)
    i = torch.minimum((torch.rand(n, 1, generator=generator, **dev) * (H - h + 1)).long(), H - h)
    j = torch.minimum((torch.rand(n, 1, generator=generator, **dev) * (W - w + 1)).long(), W - w)
    return torch.where(ok.any(1, keepdim=True), torch.cat([i, j, h, w], 1), _centre_fallback_batch(H, W, ratio)).view(n, 4)


def _centre_fallback_batch(H: Tensor, W: Tensor, ratio) -> Tensor:
    """:func:`_centre_fallback` for ``(n, 1)`` sizes (float64, rounding half to even as Python's ``round``)."""
    Hf, Wf = H.double(), W.double()
    aspect = Wf / Hf
    w = torch.where(aspect > max(ratio), (Hf * max(ratio)).round(), Wf).long()
    h = torch.where(aspect < min(ratio), (Wf / min(ratio)).round(), Hf).long()
    return torch.cat([(H - h) // 2, (W - w) // 2, h, w], 1)


def whole_boxes(sizes: Tensor) -> Tensor:
    """``(n, 4)`` boxes ``(0, 0, h, w)`` covering each image's valid region ``sizes[n] = (h, w)``."""
    return torch.cat([torch.zeros_like(sizes), sizes], 1)


def centre_crop_boxes(sizes: Tensor, fraction: float = 7 / 8) -> Tensor:
    """The evaluation crop of whole images in their own pixels: ``Resize(R)`` + ``CenterCrop(R * fraction)``
    keeps the centred square of side ``fraction`` x the shorter side (224 / 256 = 7/8)."""
    side = (sizes.min(1).values.double() * fraction).round().long().clamp(min=1)
    top, left = ((sizes.double() - side.unsqueeze(1).double()) / 2).round().long().unbind(1)
    return torch.stack([top, left, side, side], 1)


def resize_weights(start: Tensor, length: Tensor, size: int, full: int) -> Tensor:
    """``(n, size, full)`` weights that resample ``length`` pixels from ``start`` to ``size`` pixels.

    Bilinear resampling with antialiasing, as PIL and torchvision's ``antialias=True`` do it: output
    pixel ``k`` is centred at ``c = (k + 0.5) s`` in crop coordinates, ``s = length / size``; source
    pixel ``x`` (centre ``x + 0.5``) gets the triangle weight ``max(0, 1 - |x + 0.5 - c| / max(s, 1))``,
    so a downscale widens the filter by ``s``; only pixels inside the crop count, and the weights of
    each output pixel are normalised to sum to 1 (which replicates the crop's edge when upscaling).
    """
    s = (length.double() / size).view(-1, 1, 1)
    c = (torch.arange(size, device=start.device, dtype=torch.float64).view(1, -1, 1) + 0.5) * s
    x = torch.arange(full, device=start.device, dtype=torch.float64).view(1, 1, -1) - start.view(-1, 1, 1)  # crop coordinates
    w = (1 - (x + 0.5 - c).abs() / s.clamp(min=1.0)).clamp_(min=0) * ((x >= 0) & (x < length.view(-1, 1, 1)))
    return (w / w.sum(-1, keepdim=True)).float()


def resized_crop_batch(x: Tensor, boxes: Tensor, size: int) -> Tensor:
    """Crop box ``boxes[n] = (i, j, h, w)`` of image ``n`` and resize it to ``size x size`` (uint8 out).

    Separable resampling as two batched matrix products, ``Wy @ x @ Wx^T`` with per-image weights
    (:func:`resize_weights`): it antialiases like the reference path's PIL resize and reads no pixel
    outside the crop. It differs from PIL by at most a grey level or two, because PIL rounds to uint8
    between its horizontal and vertical passes (bench/crop_fidelity.py, RESULTS.md).
    """
    n, _, height, width = x.shape
    i, j, h, w = boxes.unbind(1)
    wy, wx = resize_weights(i, h, size, height), resize_weights(j, w, size, width)
    out = wy.unsqueeze(1) @ (x.to(torch.float32) @ wx.transpose(1, 2).unsqueeze(1))
    return out.round_().clamp_(0, 255).to(torch.uint8)


# --- per-image reference pipelines -----------------------------------------------------------


def pil_to_float(img: Image.Image) -> Tensor:
    """PIL (RGB or L) -> float ``C x H x W`` in [0, 1] (torchvision's PILToTensor + ToDtype(float, scale))."""
    a = torch.from_numpy(np.array(img, dtype=np.uint8, copy=True))
    a = a.unsqueeze(-1) if a.dim() == 2 else a
    return a.permute(2, 0, 1).float().div_(255)


def normalize(x: Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> Tensor:
    """``(x - mean) / std`` per channel (``C x H x W`` or ``N x C x H x W``)."""
    m = K.constant(tuple(mean), x.device, x.dtype).view(-1, 1, 1)
    s = K.constant(tuple(std), x.device, x.dtype).view(-1, 1, 1)
    return x.sub(m).div_(s)


class TrainTransform:
    """The per-image training pipeline of one policy: PIL image in, normalised float tensor out."""

    def __init__(self, policy: str = "trivialaugment", size: int = 224, *, erasing_p: float = 0.0, jitter: float = 0.4,
                 lighting: float = 0.1, scale=SCALE, ratio=RATIO, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        _check_policy(policy, size, erasing_p)
        self.policy, self.size, self.scale, self.ratio, self.mean, self.std = policy, size, scale, ratio, mean, std
        self.erasing = RandomErasing(p=erasing_p, value=0) if erasing_p > 0 else None
        self.jitter, self.lighting = ColorJitter(jitter, jitter, jitter), Lighting(lighting)
        self.trivial_augment = TrivialAugmentWide()
        if policy == "autoaugment":
            import torchvision.transforms as T

            self.auto_augment = T.AutoAugment(T.AutoAugmentPolicy.IMAGENET, interpolation=T.InterpolationMode.BILINEAR)

    def __call__(self, img: Image.Image, generator: torch.Generator | None = None) -> Tensor:
        i, j, h, w = rrc_params(img.height, img.width, self.scale, self.ratio, generator)
        img = img.crop((j, i, j + w, i + h)).resize((self.size, self.size), Image.BILINEAR)
        if torch.rand(1, generator=generator) < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        if self.policy == "standard":
            img = self.jitter(img, generator)
        elif self.policy == "trivialaugment":
            img = self.trivial_augment(img, generator)
        else:
            img = _with_global_rng(generator, self.auto_augment, img)
        x = pil_to_float(img)
        if self.policy == "standard":
            x = self.lighting(x, generator)
        x = normalize(x, self.mean, self.std)
        return self.erasing(x, generator) if self.erasing is not None else x


def _with_global_rng(generator: torch.Generator | None, fn, *args):
    """Run ``fn`` (a torchvision transform that draws from the global generator) on ``generator``'s stream:
    its state is swapped in and read back, so the draws are those torchvision makes after ``manual_seed``."""
    if generator is None:
        return fn(*args)
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(generator.get_state())
        out = fn(*args)
        generator.set_state(torch.get_rng_state())
    return out


def resize_centre_crop(img: Image.Image, size: int, resize: int) -> Image.Image:
    """torchvision's ``Resize(resize)`` then ``CenterCrop(size)`` on a PIL image: the shorter side to ``resize``,
    the longer to ``int(resize * long / short)``; the crop's corner at ``int(round((H - size) / 2))``."""
    w, h = img.size
    short, long = min(w, h), max(w, h)
    new_long = int(resize * long / short)
    img = img.resize((resize, new_long) if w <= h else (new_long, resize), Image.BILINEAR)
    top, left = int(round((img.height - size) / 2.0)), int(round((img.width - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def eval_resize(size: int) -> int:
    """The evaluation resize for a crop of ``size``: 256 for 224 (crop fraction 0.875 = 7/8), ``size * 8 // 7``."""
    return size * 8 // 7


class EvalTransform:
    """Resize to ``size x size`` (bounding-box protocol), or shorter side to ``resize`` then centre crop."""

    def __init__(self, size: int = 224, resize: int | None = None, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        if resize is not None and resize < size:
            raise ValueError(f"resize must be >= size={size}, got {resize!r}")
        self.size, self.resize, self.mean, self.std = size, resize, mean, std

    def __call__(self, img: Image.Image) -> Tensor:
        if self.resize is None:
            img = img.resize((self.size, self.size), Image.BILINEAR)
        else:
            img = resize_centre_crop(img, self.size, self.resize)
        return normalize(pil_to_float(img), self.mean, self.std)


# --- batched device pipeline -----------------------------------------------------------------


class BatchAugment:
    """The same policies on a uint8 ``N x C x H x W`` batch, every image with its own draws."""

    def __init__(self, policy: str = "trivialaugment", size: int = 224, *, erasing_p: float = 0.0, jitter: float = 0.4,
                 lighting: float = 0.1, scale=SCALE, ratio=RATIO, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        _check_policy(policy, size, erasing_p)
        if policy == "autoaugment":
            raise ValueError("policy 'autoaugment' (the not-adopted ablation) runs on the reference path only; "
                             f"BatchAugment supports {POLICIES[:2]}")
        self.policy, self.size, self.erasing_p = policy, size, erasing_p
        self.jitter, self.lighting, self.scale, self.ratio, self.mean, self.std = jitter, lighting, scale, ratio, mean, std

    def __call__(self, x: Tensor, generator: torch.Generator | None = None, sizes: Tensor | None = None) -> Tensor:
        """``sizes``: the ``(N, 2)`` valid height and width of each stored image (top-left of its slot); default all of it."""
        K.check_images(x)
        n, _, height, width = x.shape
        height, width = (height, width) if sizes is None else sizes.to(x.device).unbind(1)
        boxes = rrc_params_batch(n, height, width, self.scale, self.ratio, generator=generator, device=x.device)
        x = resized_crop_batch(x, boxes, self.size)
        flip = torch.rand(n, generator=generator, device=x.device) < 0.5
        x = torch.where(K.per_image(flip, x), x.flip(-1), x)
        if self.policy == "standard":
            x = color_jitter_batch(x, self.jitter, generator=generator)
        else:
            x = trivial_augment_batch(x, generator=generator)
        y = x.to(torch.float32).div_(255)
        if self.policy == "standard" and self.lighting > 0:
            y += lighting_noise(n, self.lighting, generator=generator, device=x.device).view(n, 3, 1, 1)
        m = K.constant(tuple(self.mean), y.device).view(-1, 1, 1)
        s = K.constant(tuple(self.std), y.device).view(-1, 1, 1)
        y = y.sub_(m).div_(s)  # normalize(), in place on our own tensor
        if self.erasing_p > 0:
            y = random_erasing_batch(y, p=self.erasing_p, value=0, generator=generator, inplace=True)
        return y

    def __repr__(self) -> str:
        return f"{type(self).__name__}(policy={self.policy!r}, size={self.size}, erasing_p={self.erasing_p})"


def _check_policy(policy: str, size: int, erasing_p: float) -> None:
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    if not (isinstance(size, int) and size >= 1):
        raise ValueError(f"size must be a positive integer, got {size!r}")
    check_args(erasing_p, (0.02, 0.33), (0.3, 3.3), 0)
