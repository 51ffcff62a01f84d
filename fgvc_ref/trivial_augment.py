"""TrivialAugment (wide): one random op at one random magnitude per image.

Muller & Hutter, "TrivialAugment: Tuning-free Yet State-of-the-Art Data Augmentation", ICCV 2021,
arXiv:2103.10158. The recipe's largest single gain (+3.45 points, docs/recipe.md section 1).

Per image: draw an op ``o`` uniformly from the 14 ops of :data:`OPS`; if ``o`` has magnitude bins,
draw a bin ``k`` uniformly from 0..30 and take ``m = OPS[o].magnitudes[k]``; if ``o`` is signed, draw
``s`` uniformly from {0, 1} and negate ``m`` when ``s == 1``. Apply ``o`` at ``m``:

    ShearX/Y       shear angle degrees(atan(m)) about the top-left corner
    TranslateX/Y   int(m) pixels
    Rotate         m degrees, counter-clockwise, about the centre
    Brightness, Color (saturation), Contrast, Sharpness: enhance with factor 1 + m
    Posterize      keep int(m) high bits;  Solarize: invert levels >= m
    AutoContrast, Equalize, Identity: no magnitude

Convention: torchvision's v1 ``transforms.TrivialAugmentWide`` (docs/recipe.md section 6, gotchas 8-9):
the RNG draws are ``randint(14)``, then ``randint(31)`` only for ops with bins, then ``randint(2)``
only for signed ops, all on the torch generator (v2 draws the sign with ``rand() <= 0.5``, another
stream). Magnitude tables are float32 ``linspace``\\ s, so translations are ``int()`` of float32 values:
bin 15 is 15.999999 -> 15 pixels, and shifts of 16 and 31 pixels never occur (docs/recipe.md,
gotcha 9: the specification this project started from said "15 and 31"; torch's table, which the
tests check, says 16). Two backends:

- :class:`TrivialAugmentWide` on a PIL image, bilinear, fill 0: equal to torchvision's, bit for bit,
  for the same seed, when torchvision's is built as ``TrivialAugmentWide(interpolation=InterpolationMode.BILINEAR)``,
  as the reference training script builds it. torchvision's own default is ``InterpolationMode.NEAREST``:
  checked against ``T.TrivialAugmentWide()`` with defaults, the geometric ops (shear, translate,
  rotate) differ, and that is the interpolation, not a bug. Its pixel kernels are Pillow's (``ImageEnhance``, ``ImageOps``,
  ``Image.transform``/``rotate``), as torchvision's are; the op table, the RNG order and the affine
  matrices are written here.
- :func:`trivial_augment_batch` on a uint8 ``N x C x H x W`` tensor (CPU or CUDA): every image draws
  its own op, bin and sign (:func:`sample_trivial_augment`, equal in distribution to v1 but drawn as
  three batched ``randint`` calls), and all ops run as batched kernels (:mod:`fgvc_ref.image_ops`)
  whose results are selected per image. It equals ``torchvision.transforms.v2.functional``'s tensor
  op for each image's draw: exactly for point ops and blends, within one grey level on a small
  fraction of pixels for the interpolated (geometric) ops.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from PIL import Image, ImageEnhance, ImageOps
from torch import Tensor

from fgvc_ref import image_ops as K

NUM_BINS = 31


class Op(NamedTuple):
    name: str
    magnitudes: tuple[float, ...]  # empty for ops without magnitude
    signed: bool


def _bins(start: float, end: float) -> tuple[float, ...]:
    return tuple(torch.linspace(start, end, NUM_BINS).tolist())  # float32 values, as torchvision's table


OPS: tuple[Op, ...] = (
    Op("Identity", (), False),
    Op("ShearX", _bins(0.0, 0.99), True),
    Op("ShearY", _bins(0.0, 0.99), True),
    Op("TranslateX", _bins(0.0, 32.0), True),
    Op("TranslateY", _bins(0.0, 32.0), True),
    Op("Rotate", _bins(0.0, 135.0), True),
    Op("Brightness", _bins(0.0, 0.99), True),
    Op("Color", _bins(0.0, 0.99), True),
    Op("Contrast", _bins(0.0, 0.99), True),
    Op("Sharpness", _bins(0.0, 0.99), True),
    Op("Posterize", tuple(float(8 - round(k / 5)) for k in range(NUM_BINS)), False),  # 8 bits down to 2
    Op("Solarize", _bins(255.0, 0.0), False),
    Op("AutoContrast", (), False),
    Op("Equalize", (), False),
)
OP_INDEX = {op.name: i for i, op in enumerate(OPS)}


# --- per image, PIL --------------------------------------------------------------------------


def draw_op(generator: torch.Generator | None = None) -> tuple[int, float]:
    """One v1 draw ``(op index, signed magnitude)`` from ``generator`` (the global one if None)."""
    op = int(torch.randint(len(OPS), (1,), generator=generator))
    magnitudes, signed = OPS[op].magnitudes, OPS[op].signed
    m = magnitudes[int(torch.randint(len(magnitudes), (1,), generator=generator))] if magnitudes else 0.0
    if signed and int(torch.randint(2, (1,), generator=generator)):
        m = -m
    return op, m


def apply_op_pil(img: Image.Image, op: int, m: float, *, resample=Image.BILINEAR, fill: int = 0) -> Image.Image:
    """Apply op ``op`` at signed magnitude ``m`` to a PIL image."""
    name = OPS[op].name
    fillcolor = tuple([fill] * len(img.getbands())) if len(img.getbands()) > 1 else fill
    if name in ("ShearX", "ShearY"):
        phi = math.radians(math.degrees(math.atan(m)))  # torchvision's round trip through degrees, kept for exactness
        # Inverse map about the top-left corner: x' = x + tan(phi) y (ShearX), y' = y + tan(phi) x (ShearY);
        # ShearY's coefficient comes out of the general matrix as sin/cos, which can differ from tan in the last bit.
        coeffs = (1.0, math.tan(phi), 0.0, 0.0, 1.0, 0.0) if name == "ShearX" else (1.0, 0.0, 0.0, math.sin(phi) / math.cos(phi), 1.0, 0.0)
        return img.transform(img.size, Image.AFFINE, coeffs, resample, fillcolor=fillcolor)
    if name in ("TranslateX", "TranslateY"):
        t = int(m)
        coeffs = (1.0, 0.0, -t, 0.0, 1.0, 0.0) if name == "TranslateX" else (1.0, 0.0, 0.0, 0.0, 1.0, -t)
        return img.transform(img.size, Image.AFFINE, coeffs, resample, fillcolor=fillcolor)
    if name == "Rotate":
        return img.rotate(m, resample, expand=False, center=None, fillcolor=fillcolor)
    if name in ("Brightness", "Color", "Contrast", "Sharpness"):
        return getattr(ImageEnhance, name)(img).enhance(1.0 + m)
    if name == "Posterize":
        return ImageOps.posterize(img, int(m))
    if name == "Solarize":
        return ImageOps.solarize(img, m)
    if name == "AutoContrast":
        return ImageOps.autocontrast(img)
    if name == "Equalize":
        return ImageOps.equalize(img)
    return img


class TrivialAugmentWide:
    """Per-image TrivialAugment on PIL images (RGB or L), bit-exact with torchvision v1 at the same interpolation.

    ``interpolation``: ``"bilinear"`` (default here, as torchvision's reference training script sets it) or
    ``"nearest"`` (torchvision's own default for ``TrivialAugmentWide()``). ``fill``: the grey level of pixels
    that geometric ops bring in (0, torchvision's default)."""

    def __init__(self, interpolation: str = "bilinear", fill: int = 0) -> None:
        resamples = {"bilinear": Image.BILINEAR, "nearest": Image.NEAREST}
        if interpolation not in resamples:
            raise ValueError(f"interpolation must be one of {sorted(resamples)}, got {interpolation!r}")
        if not (isinstance(fill, int) and 0 <= fill <= 255):
            raise ValueError(f"fill must be an integer grey level in [0, 255], got {fill!r}")
        self.interpolation, self.resample, self.fill = interpolation, resamples[interpolation], fill

    def __call__(self, img: Image.Image, generator: torch.Generator | None = None) -> Image.Image:
        if not isinstance(img, Image.Image) or img.mode not in ("RGB", "L"):
            raise ValueError(f"TrivialAugmentWide needs a PIL image in mode RGB or L, got {getattr(img, 'mode', type(img).__name__)!r}")
        op, m = draw_op(generator)
        return apply_op_pil(img, op, m, resample=self.resample, fill=self.fill)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(interpolation={self.interpolation!r}, fill={self.fill})"


# --- batched, tensors ------------------------------------------------------------------------


class TrivialAugmentDraw(NamedTuple):
    op: Tensor  # (N,) int64, index into OPS
    bin: Tensor  # (N,) int64, magnitude bin; 0 for ops without bins
    negate: Tensor  # (N,) bool, True only for signed ops whose sign draw was 1


def sample_trivial_augment(n: int, *, generator: torch.Generator | None = None, device=None) -> TrivialAugmentDraw:
    """``n`` independent v1 draws: op uniform over 14, bin uniform over 31, sign uniform (signed ops only)."""
    device = device if device is not None else (generator.device if generator is not None else "cpu")
    op = torch.randint(len(OPS), (n,), generator=generator, device=device)
    k = torch.randint(NUM_BINS, (n,), generator=generator, device=device)
    s = torch.randint(2, (n,), generator=generator, device=device)
    has_bins = K.constant(tuple(bool(o.magnitudes) for o in OPS), torch.device(device), torch.bool)[op]
    signed = K.constant(tuple(o.signed for o in OPS), torch.device(device), torch.bool)[op]
    return TrivialAugmentDraw(op, torch.where(has_bins, k, 0), signed & (s == 1))


def magnitude_table(device=None) -> Tensor:
    """``(14, 31)`` float64 table of :data:`OPS` magnitudes (0 for ops without bins)."""
    return K.constant(tuple(o.magnitudes or (0.0,) * NUM_BINS for o in OPS), torch.device(device or "cpu"), torch.float64)


def trivial_augment_batch(
    images: Tensor, *, generator: torch.Generator | None = None, draw: TrivialAugmentDraw | None = None, grouped: bool | None = None
) -> Tensor:
    """Give every image of a uint8 ``N x C x H x W`` batch its own TrivialAugment op (fill 0, bilinear).

    ``grouped`` (default: on the CPU) runs each op only on the images that drew it, which needs the
    group sizes on the host; otherwise every op runs on the whole batch and each image keeps its own
    result, which never syncs with the host (the GPU default). Both give identical images.
    """
    K.check_images(images)
    if draw is None:
        draw = sample_trivial_augment(images.shape[0], generator=generator, device=images.device)
    m = magnitude_table(images.device)[draw.op, draw.bin]
    grouped = images.device.type == "cpu" if grouped is None else grouped
    return apply_ops_batch(images, draw.op, torch.where(draw.negate, -m, m), grouped=grouped)


def _lut(x: Tensor, op: Tensor, m: Tensor) -> Tensor:
    """The per-image table of the point ops (identity for the other ops), ``(N, C, 256)`` uint8."""
    n, c = x.shape[:2]
    lut = torch.arange(256, device=x.device, dtype=torch.uint8).expand(n, c, 256)
    tables = {
        "Brightness": lambda: K.brightness_lut(x, 1.0 + m),
        "Contrast": lambda: K.contrast_lut(x, 1.0 + m),
        "Posterize": lambda: K.posterize_lut(x, torch.where(op == OP_INDEX["Posterize"], m, 8.0).long()),
        "Solarize": lambda: K.solarize_lut(x, m),
        "AutoContrast": lambda: K.autocontrast_lut(x),
        "Equalize": lambda: K.equalize_lut(x),
    }
    for name, make in tables.items():
        lut = torch.where((op == OP_INDEX[name]).view(n, 1, 1), make().expand(n, c, 256), lut)
    return lut


def _geometry(x: Tensor, op: Tensor, m: Tensor) -> Tensor:
    """One bilinear resample with each image's shear, translation or rotation matrix."""
    zero = torch.zeros_like(m)
    pick = lambda name, v: torch.where(op == OP_INDEX[name], v, zero)
    shear = torch.rad2deg(torch.atan(m))  # shear angle degrees(atan(m))
    t = m.trunc()  # int(m) pixels
    sheared = K.shear_matrix(x, pick("ShearX", shear), pick("ShearY", shear))
    moved = K.rotate_translate_matrix(x, pick("Rotate", m), pick("TranslateX", t), pick("TranslateY", t))
    is_shear = (op == OP_INDEX["ShearX"]) | (op == OP_INDEX["ShearY"])
    return K.affine(x, torch.where(is_shear.view(-1, 1, 1), sheared, moved))


# Families of ops that share one kernel, and the kernel: (images, op, magnitude) -> images.
FAMILIES = (
    (("Identity", "Brightness", "Contrast", "Posterize", "Solarize", "AutoContrast", "Equalize"), lambda x, op, m: K.apply_lut(x, _lut(x, op, m))),
    (("Color",), lambda x, op, m: K.saturation(x, 1.0 + m)),
    (("Sharpness",), lambda x, op, m: K.sharpness(x, 1.0 + m)),
    (("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"), _geometry),
)


def apply_ops_batch(x: Tensor, op: Tensor, m: Tensor, *, grouped: bool = False) -> Tensor:
    """Apply op ``op[n]`` at signed magnitude ``m[n]`` (float64) to image ``n``, for all ``n`` at once."""
    out = x
    for names, kernel in FAMILIES:
        member = torch.isin(op, K.constant(tuple(OP_INDEX[k] for k in names), op.device, torch.int64))
        if grouped:
            idx = member.nonzero().squeeze(1)
            if idx.numel():
                out = out.index_copy(0, idx, kernel(x[idx], op[idx], m[idx]))
        else:
            out = torch.where(K.per_image(member, out), kernel(x, op, m), out)
    return out
