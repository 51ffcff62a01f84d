"""Test images: real photos bundled in the scikit-image wheel (offline), plus synthetic ones."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "camera.png", "hubble_deep_field.jpg", "retina.jpg")


def photo_dir() -> Path:
    skimage = pytest.importorskip("skimage", reason="scikit-image (test extra) bundles the real photos")
    return Path(skimage.__file__).parent / "data"


def real_photos(max_side: int = 96) -> list[Image.Image]:
    """The bundled photos, downsized (odd sizes kept), RGB and greyscale ones converted as a loader would."""
    out = []
    for name in PHOTOS:
        img = Image.open(photo_dir() / name)
        img.draft("RGB", (max_side, max_side))  # JPEG: decode small
        img = img.convert("RGB") if img.mode not in ("RGB", "L") else img
        img.thumbnail((max_side, max_side - 7))
        out.append(img)
    out.append(out[0].convert("L"))  # a greyscale-converted photo
    return out


def synthetic_images() -> list[Image.Image]:
    """Odd-sized synthetic RGB and L images: gradients, noise, a flat image, a two-level image."""
    g = np.random.default_rng(0)
    yy, xx = np.mgrid[0:37, 0:53]
    grad = np.stack([xx * 4, yy * 6, (xx + yy) * 2], -1).clip(0, 255).astype(np.uint8)
    return [
        Image.fromarray(grad),
        Image.fromarray(g.integers(0, 256, (31, 45, 3), dtype=np.uint8)),
        Image.fromarray(np.full((20, 21, 3), 77, np.uint8)),
        Image.fromarray(np.where(xx[:29, :33] > 15, 200, 10).astype(np.uint8)),  # L, two levels
    ]


def to_tensor(img: Image.Image) -> torch.Tensor:
    """uint8 C x H x W."""
    a = torch.from_numpy(np.array(img))
    return (a.unsqueeze(0) if a.dim() == 2 else a.permute(2, 0, 1)).contiguous()
