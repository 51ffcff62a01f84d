"""How far the fast path's batched crop-and-resize is from the reference path's PIL crop + resize.

For every real photo bundled with scikit-image, stored as the cache stores a box crop (256 x 256),
draw 256 RandomResizedCrop boxes and resize each to 224 px both ways: ``resized_crop_batch`` (one
batched call) and PIL ``crop(...).resize(..., BILINEAR)`` (antialiased, as torchvision's reference
pipeline). Prints JSON: grey-level differences (mean, 99.9th percentile, max, share of pixels off by
more than 1), split into downscaling boxes (the crop larger than 224 px) and the rest. Run from the
repo root:

    .venv/bin/python bench/crop_fidelity.py > results/crop_fidelity.json
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from photos import real_photos  # noqa: E402

from fgvc_ref.bench import environment  # noqa: E402
from fgvc_ref.transforms import resized_crop_batch, rrc_params_batch  # noqa: E402


def main(size: int = 224, stored: int = 256, n: int = 256) -> dict:
    diffs = {"downscale": [], "upscale": []}
    for k, photo in enumerate(real_photos(400)):
        img = photo.convert("RGB").resize((stored, stored), Image.BILINEAR)
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1).contiguous()
        boxes = rrc_params_batch(n, stored, stored, generator=torch.Generator().manual_seed(k))
        fast = resized_crop_batch(x[None].expand(n, -1, -1, -1).contiguous(), boxes, size)
        for b, (i, j, h, w) in enumerate(boxes.tolist()):
            ref = np.asarray(img.crop((j, i, j + w, i + h)).resize((size, size), Image.BILINEAR)).astype(np.int16)
            d = np.abs(fast[b].permute(1, 2, 0).numpy().astype(np.int16) - ref)
            diffs["downscale" if max(h, w) > size else "upscale"].append(d.ravel())
    out = {}
    for kind, parts in diffs.items():
        d = np.concatenate(parts) if parts else np.zeros(1)
        out[kind] = {"boxes": len(parts), "mean_abs": float(d.mean()), "p99_9": float(np.percentile(d, 99.9)),
                     "max": int(d.max()), "share_off_by_more_than_1": float((d > 1).mean())}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"what": f"resized_crop_batch vs PIL crop+resize (bilinear, antialiased), {stored} px store, {size} px out",
            "code": commit, "results": out, "environment": environment()}


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
