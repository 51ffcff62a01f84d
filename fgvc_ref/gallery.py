"""The augmentation gallery: what each augmentation does to a real photo, drawn by the code that trains.

Two sections, every cell the exact output of a training transform (:mod:`fgvc_ref.mosaic` pastes
pixels, it does not plot them):

1. the 14 TrivialAugment ops (:data:`fgvc_ref.trivial_augment.OPS`) on the photo, each at magnitude
   bins 10, 20 and 30 of 0..30 (low, middle, high; positive sign; signed ops are negated half of the
   time in training), through the fast path's batched kernels
   (:func:`~fgvc_ref.trivial_augment.apply_ops_batch`); ops without magnitude get one cell;
2. full training samples of each policy (``standard``, ``trivialaugment``, and ``trivialaugment`` with
   random erasing, drawn here with p = 0.5 so that erasing shows; the recipe uses 0.1), from the
   per-image reference path (:class:`~fgvc_ref.transforms.TrainTransform`, sample k seeded with
   ``(seed, k)``) and, on the row below, from the batched fast path
   (:class:`~fgvc_ref.transforms.BatchAugment`, one batch seeded with ``seed``). The two paths are equal
   in distribution, not in random stream, so the rows differ image by image.

Normalised outputs are shown as ``round(255 * (x * std + mean))``, clipped to 0..255 (:func:`to_display`);
erased pixels (0 after normalisation) therefore show the ImageNet mean colour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fgvc_ref.data.images import decode_image, pixel_limit
from fgvc_ref.mosaic import Section, draw
from fgvc_ref.transforms import IMAGENET_MEAN, IMAGENET_STD, BatchAugment, TrainTransform
from fgvc_ref.trivial_augment import OPS, apply_ops_batch

BINS = (10, 20, 30)
POLICIES = (("standard", 0.0, "std"), ("trivialaugment", 0.0, "TA"), ("trivialaugment", 0.5, "TA+RE"))  # policy, erasing p, caption
SAMPLES = 6


def default_photo() -> Image.Image:
    """scikit-image's bundled cat photo ("chelsea"), offline."""
    try:
        import skimage
    except ImportError:
        raise ValueError("the default photo comes with scikit-image (pip install scikit-image); or give --image PATH") from None
    return decode_image(Path(skimage.__file__).parent / "data" / "chelsea.png", orientation="apply").image


def square(img: Image.Image, size: int) -> torch.Tensor:
    """The photo's centre square resized to ``size`` (bilinear, antialiased): uint8 ``3 x size x size``."""
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.convert("RGB").crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).contiguous()


def to_display(x: torch.Tensor) -> torch.Tensor:
    """A normalised float ``3 x H x W`` image as uint8 for display."""
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x * std + mean).mul(255).round().clamp(0, 255).to(torch.uint8)


def op_cell(x: torch.Tensor, op: int, k: int | None) -> tuple[str, torch.Tensor]:
    """Op ``op`` at magnitude bin ``k`` (None: no magnitude) on one uint8 image, with its caption."""
    m = OPS[op].magnitudes[k] if k is not None else 0.0
    out = apply_ops_batch(x.unsqueeze(0), torch.tensor([op]), torch.tensor([m], dtype=torch.float32))[0]
    return (f"{OPS[op].name} {m:.3g}" if k is not None else OPS[op].name), out


def sections(photo: Image.Image, size: int = 96, seed: int = 0) -> list[Section]:
    """The gallery's sections (see the module docstring)."""
    x = square(photo, size)
    cells = [[op_cell(x, op, k) for k in (BINS if OPS[op].magnitudes else (None,))] for op in range(len(OPS))]
    op_rows = [cells[i] + cells[i + 1] for i in range(0, len(cells), 2)]
    pil = Image.fromarray(x.permute(1, 2, 0).numpy())
    sample_rows = []
    for policy, erasing, name in POLICIES:
        reference = TrainTransform(policy, size, erasing_p=erasing)
        sample_rows.append([(f"{name} ref", to_display(reference(pil, torch.Generator().manual_seed(seed * 1000 + k)))) for k in range(SAMPLES)])
        fast = BatchAugment(policy, size, erasing_p=erasing)(x.expand(SAMPLES, -1, -1, -1).contiguous(), torch.Generator().manual_seed(seed))
        sample_rows.append([(f"{name} fast", to_display(y)) for y in fast])
    return [Section("TrivialAugment ops at magnitude bins 10, 20, 30 of 0..30 (fast-path kernels)", op_rows),
            Section("training samples, reference (ref) and fast path: std(ard), TA, TA+RE (erasing at p=0.5)", sample_rows)]


def write_gallery(out: Path | str, image: Path | str | None = None, *, size: int = 96, seed: int = 0, max_pixels: int | None = None) -> Path:
    """Draw the gallery of ``image`` (default :func:`default_photo`) into ``out``. A JPEG over Pillow's pixel limit is read
    reduced, keeping its shorter side at least ``size`` (:func:`~fgvc_ref.data.images.decode_image`); ``max_pixels``: a
    higher limit, for other large files."""
    out = Path(out)
    with pixel_limit(max_pixels):  # an allowed large file: its centre square is cropped under the same limit
        photo = (decode_image(image, orientation="apply", max_reduction=lambda w, h: min(w, h) / size, max_pixels=max_pixels).image
                 if image else default_photo())
        picture = draw(sections(photo, size, seed), size)
    out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(out)
    return out
