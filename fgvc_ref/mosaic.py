"""Labelled image grids drawn with PIL: every cell holds an image's exact pixels, with a caption below.

A mosaic is a list of sections; a section is a title and rows of ``(caption, image)`` cells, every
image ``cell x cell`` pixels (uint8 ``H x W x 3`` arrays or ``3 x H x W`` tensors). Cells are pasted,
not plotted, so a test can crop a cell back out of the saved PNG (:func:`cell_box`) and compare it
with the transform that made it, pixel for pixel. Captions and titles too long for their space are
cut from the middle (:func:`abbreviate`), never at the end.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, ImageDraw

PAD, CAPTION, TITLE = 4, 12, 18  # pixels: between cells, under each cell for its caption, above a section for its title
CHAR = 6  # pixels per character of PIL's default font


def abbreviate(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, cut from the middle ("Chevrolet Si..Cab 2012"): fine-grained class names
    differ at their ends (model, body, year) as often as at their starts, so neither end is ever dropped."""
    if len(text) <= limit:
        return text
    keep = max(limit - 2, 2)
    return text[: (keep + 1) // 2] + ".." + text[len(text) - keep // 2 :]


class Section(NamedTuple):
    title: str
    rows: list[list[tuple[str, np.ndarray]]]


def as_array(image) -> np.ndarray:
    """A ``3 x H x W`` uint8 tensor or an ``H x W x 3`` array as an ``H x W x 3`` uint8 array."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().permute(1, 2, 0).numpy()
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"mosaic cells must be uint8 H x W x 3 (or 3 x H x W tensors), got {image.dtype} {image.shape}")
    return image


def cell_box(sections: list[Section], cell: int, section: int, row: int, column: int) -> tuple[int, int, int, int]:
    """The ``(left, top, right, bottom)`` pixels of one cell's image in :func:`draw`'s output."""
    top = PAD + sum(TITLE + len(s.rows) * (cell + CAPTION + PAD) for s in sections[:section]) + TITLE + row * (cell + CAPTION + PAD)
    left = PAD + column * (cell + PAD)
    return left, top, left + cell, top + cell


def draw(sections: list[Section], cell: int) -> Image.Image:
    """The mosaic as one RGB image on white."""
    columns = max(len(r) for s in sections for r in s.rows)
    width = PAD + columns * (cell + PAD)
    height = PAD + sum(TITLE + len(s.rows) * (cell + CAPTION + PAD) for s in sections)
    canvas = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(canvas)
    for k, s in enumerate(sections):
        left, top, _, _ = cell_box(sections, cell, k, 0, 0)
        pen.text((left, top - TITLE + 3), abbreviate(s.title, (width - 2 * PAD) // CHAR), fill="black")
        for i, row in enumerate(s.rows):
            for j, (caption, image) in enumerate(row):
                image = as_array(image)
                if image.shape[:2] != (cell, cell):
                    raise ValueError(f"cell {caption!r} is {image.shape[1]}x{image.shape[0]}, expected {cell}x{cell}")
                left, top, right, bottom = cell_box(sections, cell, k, i, j)
                canvas.paste(Image.fromarray(image), (left, top))
                pen.text((left, bottom + 1), abbreviate(caption, max(4, cell // CHAR)), fill="black")
    return canvas
