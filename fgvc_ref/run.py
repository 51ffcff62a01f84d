"""A finished run, rebuilt for use: its network (EMA or raw weights), recipe and class names.

:func:`load_run` reads ``RUN_DIR/final.pt`` (``weights_only=True``) and ``recipe.json`` and builds
the network without downloading anything; :func:`preprocessing_of` reads how the run's images were
prepared, from its data spec. ``evaluate``, ``export`` and ``deploy`` start here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from fgvc_ref.checkpoint import list_checkpoints
from fgvc_ref.train import FINAL


class Run(NamedTuple):
    model: nn.Module  # in eval mode, on the CPU
    weights: str  # "ema" or "raw"
    recipe: dict  # the run's recipe.json
    classes: list[str] | None  # names in label order, when final.pt records them
    path: Path


def load_run(run_dir: Path | str, weights: str | None = None) -> Run:
    """A finished run's network with its EMA weights (``weights="ema"``, the default when the run has an EMA)
    or its raw weights (``"raw"``)."""
    from fgvc_ref.model import build_model

    run_dir = Path(run_dir)
    if not (run_dir / FINAL).is_file():
        if not run_dir.is_dir():
            raise ValueError(f"{run_dir}: no such run folder")
        unfinished = [p.name for p in list_checkpoints(run_dir)]
        raise ValueError(f"{run_dir}: not a finished run (no {FINAL}" + (f"; checkpoint {unfinished[-1]} says it is unfinished: run "
                         "its train command again to finish it)" if unfinished else ")"))
    if weights not in (None, "ema", "raw"):
        raise ValueError(f"weights must be 'ema' or 'raw', got {weights!r}")
    final = torch.load(run_dir / FINAL, map_location="cpu", weights_only=True)
    recipe = json.loads((run_dir / "recipe.json").read_text())
    weights = weights or ("ema" if final.get("ema") is not None else "raw")
    if weights == "ema" and final.get("ema") is None:
        raise ValueError(f"{run_dir}: this run has no EMA (stage {recipe.get('name')!r}); use weights 'raw'")
    state = final["ema"]["module"] if weights == "ema" else final["model"]
    model = build_model(recipe["model"], num_classes(state), "none")
    model.load_state_dict(state)
    return Run(model.eval(), weights, recipe, final.get("classes"), run_dir)


def num_classes(state: dict) -> int:
    """K, the rows of the last 2-D weight of a classification state dict (its head)."""
    return [v for v in state.values() if v.dim() == 2][-1].shape[0]


def preprocessing_of(spec: str, image_size: int) -> tuple[dict, list[str]]:
    """The preprocessing and class names of a run's data spec, read without loading its images."""
    from fgvc_ref.data.sources import FASHION_SPEC
    from fgvc_ref.transforms import IMAGENET_MEAN, IMAGENET_STD

    common = {"image_size": image_size, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    match = FASHION_SPEC.fullmatch(spec)
    if match:
        from fgvc_ref.data.fashion_mnist import CLASSES, TOPS

        classes = [CLASSES[c] for c in TOPS] if match["subset"] == "tops" else list(CLASSES)
        return {"kind": "fashion-mnist", "stored_size": int(match["size"] or 28), **common}, classes
    manifest_path = Path(spec) / "test.manifest.json"
    if not manifest_path.is_file():
        raise ValueError(f"{manifest_path}: not found, so the run's preprocessing and class names cannot be read; "
                         "give --data with the prepared cache (or fashion-mnist spec) the run was trained on")
    manifest = json.loads(manifest_path.read_text())
    boxes = any(s.get("bbox") is not None for s in manifest["sources"])
    trims = {int(s.get("trim_bottom", 0)) for s in manifest["sources"]}
    trim = trims.pop() if len(trims) == 1 else 0  # FGVC-Aircraft: every image loses its 20-row banner
    return ({"kind": "cache", "stored_size": int(manifest["image_size"]), "trim_bottom": trim, "test_images_had_boxes": boxes, **common},
            list(manifest["classes"]))


def run_logits(run: Run, images: torch.Tensor, device: torch.device, boxes: torch.Tensor | None = None) -> torch.Tensor:
    """A run's float32 logits for cache images (each ``boxes`` row, default all of it), exactly as its training evaluated them."""
    from fgvc_ref.train import predict_logits

    memory_format = torch.channels_last if run.recipe.get("channels_last") else torch.contiguous_format
    return predict_logits(run.model.to(device=device, memory_format=memory_format), images, size=run.recipe["image_size"],
                          batch=run.recipe.get("eval_batch_size", 256), device=device, amp=device.type == "cuda",
                          memory_format=memory_format, boxes=boxes).cpu()
