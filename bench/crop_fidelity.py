"""The fast path's batched crop-and-resize against the reference path's PIL crop + resize: fidelity and speed.

For every real photo bundled with scikit-image, stored as the cache stores a box crop (256 x 256),
draw 256 RandomResizedCrop boxes and resize each to 224 px three ways: ``resized_crop_batch`` (the
fast path: separable antialiased resampling), the earlier fast path (one bilinear ``grid_sample``,
no antialiasing, kept below for the comparison) and PIL ``crop(...).resize(..., BILINEAR)`` (the
reference path, antialiased, as torchvision's pipeline). Prints JSON: grey-level differences from
PIL (mean, 99.9th percentile, max, share off by more than 1), for downscaling boxes (the crop larger
than 224 px) and the rest; and the median time of one batch of 128 (min-max over repeats) at
256 -> 224 and 72 -> 64 px. Run from the repo root:

    .venv/bin/python bench/crop_fidelity.py > results/crop_fidelity.json
"""

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from photos import real_photos  # noqa: E402

from fgvc_ref.bench import environment  # noqa: E402
from fgvc_ref.transforms import resized_crop_batch, rrc_params_batch  # noqa: E402


def grid_sample_crop(x, boxes, size):
    """The fast path's crop before it antialiased: bilinear grid_sample at the output pixel centres."""
    n, _, height, width = x.shape
    i, j, h, w = boxes.to(torch.float32).unbind(1)
    u = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    gx = (j.unsqueeze(1) + u * w.unsqueeze(1)) * (2.0 / width) - 1
    gy = (i.unsqueeze(1) + u * h.unsqueeze(1)) * (2.0 / height) - 1
    grid = torch.stack([gx.unsqueeze(1).expand(n, size, size), gy.unsqueeze(2).expand(n, size, size)], -1)
    out = F.grid_sample(x.to(torch.float32), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


METHODS = {"resized_crop_batch (antialiased, current)": resized_crop_batch, "grid_sample (earlier, no antialiasing)": grid_sample_crop}


def fidelity(method, size=224, stored=256, n=256) -> dict:
    diffs = {"downscale": [], "upscale": []}
    for k, photo in enumerate(real_photos(400)):
        img = photo.convert("RGB").resize((stored, stored), Image.BILINEAR)
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1).contiguous()
        boxes = rrc_params_batch(n, stored, stored, generator=torch.Generator().manual_seed(k))
        fast = method(x[None].expand(n, -1, -1, -1).contiguous(), boxes, size)
        for b, (i, j, h, w) in enumerate(boxes.tolist()):
            ref = np.asarray(img.crop((j, i, j + w, i + h)).resize((size, size), Image.BILINEAR)).astype(np.int16)
            d = np.abs(fast[b].permute(1, 2, 0).numpy().astype(np.int16) - ref)
            diffs["downscale" if max(h, w) > size else "upscale"].append(d.ravel())
    out = {}
    for kind, parts in diffs.items():
        d = np.concatenate(parts)
        out[kind] = {"boxes": len(parts), "mean_abs": round(float(d.mean()), 4), "p99_9": float(np.percentile(d, 99.9)),
                     "max": int(d.max()), "share_off_by_more_than_1": round(float((d > 1).mean()), 5)}
    return out


def speed(method, stored, size, batch=128, repeats=7) -> dict:
    x = torch.randint(0, 256, (batch, 3, stored, stored), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    boxes = rrc_params_batch(batch, stored, stored, generator=torch.Generator().manual_seed(0))
    method(x, boxes, size)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        method(x, boxes, size)
        times.append(time.perf_counter() - t)
    return {"img_per_s_median": round(batch / statistics.median(times)), "img_per_s_min_max": [round(batch / max(times)), round(batch / min(times))]}


def main() -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"what": "batched crop+resize vs PIL crop+resize (bilinear, antialiased): grey-level differences; and speed",
            "command": "python bench/crop_fidelity.py", "code": commit,
            "results": {name: {"vs_pil_256_to_224": fidelity(m), "speed_256_to_224": speed(m, 256, 224), "speed_72_to_64": speed(m, 72, 64)}
                        for name, m in METHODS.items()},
            "environment": environment()}


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
