"""The training loop: one step path, two data paths, exact resume.

Per epoch ``e``: set the LR ``recipe.lrs()[e]``; for each batch ``i``: augment, forward -> loss ->
backward -> NAG step -> EMA update when ``i % ema_steps == 0`` (counter reset during warmup); then
evaluate the raw model and the EMA, apply early stopping, log one JSON line and publish a checkpoint.

Data paths, both fed by the same prepared uint8 cache and the same ``Recipe``:
- **fast** (the default): the cache lives on the device, batches are index gathers and
  :class:`~fgvc_ref.transforms.BatchAugment` runs there; no DataLoader, no host sync inside an epoch
  (losses, accuracy and the first non-finite step accumulate in device tensors, read once per epoch);
- **reference** (an option; used for AutoAugment): torchvision-style per-image PIL transforms
  (:class:`~fgvc_ref.transforms.TrainTransform`) in DataLoader workers with persistent workers.
The two are equal in distribution (tests/test_transforms.py), not in random stream.

Randomness never depends on history: epoch ``e``'s order comes from a generator seeded with
``(seed, e)``, batch ``i``'s augmentation (fast path) from ``(seed, e, i)`` and image ``p``'s
(reference path) from ``(seed, e, p)``. So a run resumed from any checkpoint, at an epoch boundary
or mid-epoch after Ctrl-C/SIGTERM, replays exactly what an uninterrupted run does. Under ``torchrun``
each of W processes takes its contiguous 1/W of every global batch (``batch_size * W``), gradients
are averaged by DDP, and the EMA decay adjustment uses W, as torchvision's does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
from PIL import Image

from fgvc_ref import checkpoint as ckpt
from fgvc_ref.data.cache import atomic_write
from fgvc_ref.data.sources import Data
from fgvc_ref.ema import EMA, resets_after_update, should_update
from fgvc_ref.losses import LabelSmoothingCrossEntropy
from fgvc_ref.mix import mix_batch
from fgvc_ref.model import build_model
from fgvc_ref.optim import NAG
from fgvc_ref.recipe import Recipe, as_dict
from fgvc_ref.schedules import set_lr
from fgvc_ref.transforms import (BatchAugment, TrainTransform, centre_crop_boxes, normalize, pil_to_float, resized_crop_batch,
                                 whole_boxes)

EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
FINAL = "final.pt"  # a finished run's weights: {"model": state dict, "ema": EMA state or None, "identity": ..., "classes": [...]}


class NonFiniteLoss(RuntimeError):
    pass


class OutOfMemory(RuntimeError):
    pass


class RunInUse(RuntimeError):
    pass


def lock_run(out: Path):
    """Hold an exclusive ``fcntl.flock`` on ``out/.lock`` for the life of the returned file: a second trainer on the
    same folder is refused at once, naming the holder's pid. The kernel drops the lock when the holder dies, even by
    SIGKILL, so a stale lock file never blocks a rerun."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    handle = open(out / ".lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise RunInUse(f"{out} is in use by another trainer (pid {holder}); wait for it to finish or stop it, "
                       "or give this run another --out folder") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


class Interrupted(Exception):
    def __init__(self, signum: int, checkpoint: Path) -> None:
        super().__init__(f"stopped by signal {signum}; checkpoint {checkpoint}")
        self.exit_code, self.checkpoint = EXIT_SIGNAL.get(signum, 1), checkpoint


def subseed(*parts: int) -> int:
    """A 63-bit seed from integers, independent of Python's hash randomisation."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") >> 1


# --- data -------------------------------------------------------------------------------------


def split_validation(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified hold-out: ``round(fraction * n_c)`` (>= 1 when n_c > 1) images of each class c."""
    g = torch.Generator().manual_seed(subseed(seed, -1))
    train, val = [], []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = min(len(idx) - 1, max(1, round(fraction * len(idx)))) if len(idx) > 1 else 0
        val.append(idx[:k]), train.append(idx[k:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def eval_batches(images: torch.Tensor, size: int, batch: int, device, boxes: torch.Tensor | None = None):
    """Normalised float batches at ``size`` px, made on the device from uint8 cache images: each image's
    ``boxes`` row ``(i, j, h, w)`` (default: all of it) resized to ``size x size`` (an identity when it is)."""
    as_stored = boxes is None and tuple(images.shape[-2:]) == (size, size)  # the usual case: nothing to resample
    boxes = whole_boxes(torch.tensor(images.shape[-2:]).expand(len(images), 2)) if boxes is None else boxes
    for start in range(0, len(images), batch):
        x = images[start : start + batch].to(device, non_blocking=True)
        if not as_stored:
            x = resized_crop_batch(x, boxes[start : start + batch].to(device), size)
        yield normalize(x.to(torch.float32).div_(255)), start


class _ReferenceDataset(torch.utils.data.Dataset):
    """uint8 cache -> PIL (each image's valid region) -> TrainTransform, seeded from (seed, epoch, image index)."""

    def __init__(self, images, sizes, labels, transform, seed):
        self.images, self.sizes, self.labels, self.transform, self.seed = images, sizes, labels, transform, seed

    def __len__(self):
        return len(self.images)

    def __getitem__(self, key):
        epoch, index = key
        h, w = self.sizes[index].tolist()
        img = Image.fromarray(self.images[index, :, :h, :w].permute(1, 2, 0).numpy())
        return self.transform(img, torch.Generator().manual_seed(subseed(self.seed, epoch, index))), self.labels[index]


class _NoAugment:
    """policy 'none': resize each image (its valid region) to the training size and normalise (deterministic)."""

    def __init__(self, size):
        self.size = size

    def __call__(self, x, generator=None, sizes=None):
        if isinstance(x, Image.Image):
            return normalize(pil_to_float(x.resize((self.size, self.size), Image.BILINEAR)))
        sizes = torch.tensor(x.shape[-2:]).expand(len(x), 2) if sizes is None else sizes
        return normalize(resized_crop_batch(x, whole_boxes(sizes).to(x.device), self.size).to(torch.float32).div_(255))


# --- one step ---------------------------------------------------------------------------------


def train_step(model, optimizer, criterion, x, target, *, amp_device: str, amp: bool):
    """forward -> loss -> backward -> optimizer step; returns the detached loss and logits."""
    with torch.autocast(device_type=amp_device, dtype=torch.bfloat16, enabled=amp):
        logits = model(x)
    loss = criterion(logits.float(), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), logits.detach()


@torch.no_grad()
def predict_logits(model, images, *, size, batch, device, amp, memory_format=torch.contiguous_format, boxes=None) -> torch.Tensor:
    """float32 logits ``N x K`` of uint8 cache images (prepared as :func:`eval_batches` says), in eval mode."""
    training = model.training
    model.eval()
    out = []
    for x, _ in eval_batches(images, size, batch, device, boxes):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            out.append(model(x.contiguous(memory_format=memory_format)).float())
    model.train(training)
    return torch.cat(out)


def evaluate(model, criterion, images, labels, *, size, batch, device, amp, memory_format=torch.contiguous_format, boxes=None) -> dict:
    """Mean loss and top-1 (%) over the images; the loss is summed batch by batch."""
    logits = predict_logits(model, images, size=size, batch=batch, device=device, amp=amp, memory_format=memory_format, boxes=boxes)
    labels = labels.to(logits.device)
    loss_sum = sum(criterion(logits[s : s + batch], labels[s : s + batch]) * len(labels[s : s + batch]) for s in range(0, len(labels), batch))
    n = len(images)
    return {"loss": loss_sum.item() / n, "acc": 100.0 * (logits.argmax(1) == labels).sum().item() / n}


# --- the run ----------------------------------------------------------------------------------


def environment(device: torch.device, deterministic: bool) -> dict:
    import torchvision

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "deterministic": deterministic, "date": time.strftime("%Y-%m-%d"),
    }


def train(recipe: Recipe, data: Data, out: Path | str, *, seed: int, device: str | None = None, progress: bool = True,
          stop_after_epochs: int | None = None, keep_checkpoints: bool = False, sync_debug: bool = False,
          threads: int | str | None = None, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Run (or resume) one training run in ``out``; returns the summary written to ``out/summary.json``.

    A finished run keeps ``final.pt`` (the raw and EMA weights as plain state dicts, and the run's
    identity), ``summary.json``, ``metrics.jsonl``, ``recipe.json`` and ``env.json``; its checkpoints
    (the training state) are deleted unless ``keep_checkpoints``. Running a finished run again
    returns its summary. ``stop_after_epochs``: leave after that many more epochs as if interrupted
    (tests, time slicing). ``sync_debug`` (CUDA): run each epoch's steps under ``torch.cuda.set_sync_debug_mode("error")``,
    so that any host-device synchronisation inside an epoch raises (the fast path promises none; tests check it).

    ``threads``, torch's compute threads: an integer; ``"free"``, the cores other work leaves free at the start
    (:func:`fgvc_ref.threads.free_cores`; the CLI's default); or None, torch's current setting. Float sums split
    over another thread count round differently, so a run records its count and a resume computes with it, whatever
    the machine's load; an explicit integer that differs wins, with a line saying the resume is no longer bit-exact.

    A run that fails before its first checkpoint (bad weights, no network for them, an error in its first epoch)
    leaves no folder behind that it made (the run folder, and any parent it had to create).

    ``data`` without a test split (``test_images`` None, :func:`fgvc_ref.data.sources.load_train`) trains and selects
    on the validation split alone (``recipe.val_fraction`` > 0, or ``patience`` 0): a search never reads the test
    split. ``on_epoch(row)`` is called after each epoch's checkpoint is published, with its log row; an exception
    it raises (a search pruning the trial) ends the run there, resumable from that checkpoint.
    """
    out = Path(out)
    rank0 = int(os.environ.get("RANK", 0)) == 0
    made = next((f for f in reversed([out, *out.parents]) if not f.exists()), None)  # the first folder this call creates
    lock = lock_run(out) if rank0 else None  # one trainer per run folder
    try:
        return _train(recipe, data, out, seed=seed, device=device, progress=progress, stop_after_epochs=stop_after_epochs,
                      keep_checkpoints=keep_checkpoints, sync_debug=sync_debug, threads=threads, on_epoch=on_epoch)
    except BaseException:
        if rank0 and made and not ckpt.list_checkpoints(out) and not (out / FINAL).exists():
            shutil.rmtree(made, ignore_errors=True)  # only what this call wrote: its folders, recipe.json, env.json, .lock
        raise
    finally:
        if lock is not None:
            lock.close()


class _Place(NamedTuple):
    """Where a run computes: the device, bf16 autocast (CUDA), the memory format, and this process among ``world``."""

    device: torch.device
    amp: bool
    memory_format: torch.memory_format
    rank: int
    world: int


class _Trainee(NamedTuple):
    """What the steps update: the network (``step_model`` is its DDP and/or compiled form), the optimiser, the loss and the EMA."""

    model: torch.nn.Module
    step_model: torch.nn.Module
    optimizer: NAG
    criterion: LabelSmoothingCrossEntropy
    ema: EMA | None


class _Splits(NamedTuple):
    """The run's images: train (on the device for the fast path), validation (carved from train; may be empty) and test."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    train_sizes: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    val_boxes: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def _train(recipe: Recipe, data: Data, out: Path, *, seed: int, device: str | None, progress: bool, stop_after_epochs: int | None,
           keep_checkpoints: bool, sync_debug: bool, threads: int | str | None, on_epoch: Callable[[dict], None] | None) -> dict:
    place = _place(recipe, device)
    # "auto": the fast path, measured faster than the reference path on the CPU too (RESULTS.md, bench --only train)
    path = recipe.path if recipe.path != "auto" else ("reference" if recipe.policy == "autoaugment" else "fast")
    splits = _split(data, recipe, seed, place.device if path == "fast" else None)
    trainee = _build(recipe, len(data.classes), seed, place)
    identity = {"recipe": as_dict(recipe), "data": data.fingerprint, "seed": seed, "world_size": place.world,
                "open_set": data.open_set["sha256"] if data.open_set else None}
    if (out / FINAL).exists():
        return _finished_already(out, identity, rank=place.rank, keep_checkpoints=keep_checkpoints, progress=progress)
    state = _resume(out, identity, trainee, place.rank)
    state["threads"] = _set_threads(threads, state.get("threads"), say=progress and place.rank == 0)
    if place.rank == 0:
        _write_run_files(out, recipe, data, seed, path, place, trainee, progress)
    augment, loader = _augmentation(recipe, path, splits, seed)
    lrs, epochs_done_here = recipe.lrs(), 0
    with _stop_requests(sync_debug and place.device.type == "cuda") as stop, contextlib.closing(loader if loader is not None else _NoLoader()):
        while state["epoch"] < recipe.epochs:
            epoch = state["epoch"]
            set_lr(trainee.optimizer, lrs[epoch])
            t0 = time.perf_counter()
            acc, stopped_at = _train_epoch(recipe, trainee, splits, augment, loader, epoch=epoch, state=state, seed=seed, place=place,
                                           out=out, stop=stop, sync_debug=sync_debug, num_classes=len(data.classes))
            if stopped_at is not None:  # a signal: publish the mid-epoch state, then leave
                state.update(step=stopped_at, acc=acc.state())
                acc.check_finite(epoch, seed, out)
                raise Interrupted(stop["signum"], _save(out, place.rank, trainee, state, identity, epoch, stopped_at))
            acc.check_finite(epoch, seed, out)
            row = _epoch_row(recipe, trainee, epoch, seed, acc.result(place.world), time.perf_counter() - t0, place.world)
            row.update(_evaluate_epoch(recipe, trainee, splits, place))
            _select(row, state, recipe, has_ema=trainee.ema is not None, has_val=len(splits.val_y) > 0)
            _save(out, place.rank, trainee, state, identity, state["epoch"], 0)
            if progress and place.rank == 0:
                _print_epoch(row, recipe.epochs, state["history"])
            if row.get("early_stop") and place.rank == 0:  # always said, --quiet or not
                print(_early_stop_note(row, state, recipe, trainee.ema is not None, len(splits.val_y) > 0), file=sys.stderr)
            if on_epoch is not None:
                on_epoch(row)
            epochs_done_here += 1
            if stop_after_epochs is not None and epochs_done_here >= stop_after_epochs and state["epoch"] < recipe.epochs:
                return {"interrupted": True, "epoch": state["epoch"]}
            if stop["signum"] is not None:
                raise Interrupted(stop["signum"], ckpt.list_checkpoints(out)[-1])
    return _finish(out, recipe, state, seed, data, path, place, trainee, identity, keep_checkpoints)


# --- the run's steps ------------------------------------------------------------------------------


def _place(recipe: Recipe, device: str | None) -> _Place:
    """The device (under torchrun, this process's GPU), the process group, and the determinism settings."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if recipe.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = device.type == "cuda" and not recipe.deterministic
    memory_format = torch.channels_last if recipe.channels_last else torch.contiguous_format
    return _Place(device, device.type == "cuda", memory_format, rank, world)


def carve_validation(data: Data, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The run's split of ``data``'s train images: the indices it trains on, the indices it holds out for validation
    (``fraction`` of each class, :func:`split_validation`; none when 0) and the box ``(i, j, h, w)`` each validation image
    is evaluated by. Validation images are stored as train images: a box crop is evaluated whole, a whole image by its
    centre crop (7/8). An open-set evaluation fits its temperature and threshold on exactly these images."""
    train_idx, val_idx = (split_validation(data.train_labels, fraction, seed) if fraction > 0
                          else (torch.arange(len(data.train_labels)), torch.arange(0)))
    n, S = len(data.train_labels), data.train_images.shape[-1]
    sizes = data.train_sizes if data.train_sizes is not None else torch.tensor([S, S]).expand(n, 2)
    cropped = data.train_cropped if data.train_cropped is not None else torch.ones(n, dtype=torch.bool)
    return train_idx, val_idx, torch.where(cropped[val_idx].unsqueeze(1), whole_boxes(sizes[val_idx]), centre_crop_boxes(sizes[val_idx]))


def _split(data: Data, recipe: Recipe, seed: int, device: torch.device | None) -> _Splits:
    """Train / validation (:func:`carve_validation`) / test; the train part moved to ``device`` (the fast path) when given."""
    train_idx, val_idx, val_boxes = carve_validation(data, recipe.val_fraction, seed)
    if data.open_set is not None and not len(val_idx):
        raise ValueError(f"{data.name}: an open-set run needs validation images to fit its temperature and rejection threshold on "
                         f"(never the test split), and val_fraction {recipe.val_fraction} holds out none: set val_fraction > 0 "
                         "(the CLI's --open-set sets 0.1) with at least 2 train images per class")
    n, S = len(data.train_labels), data.train_images.shape[-1]
    sizes = data.train_sizes if data.train_sizes is not None else torch.tensor([S, S]).expand(n, 2)
    train_x, train_y, train_sizes = data.train_images[train_idx], data.train_labels[train_idx], sizes[train_idx]
    val_x, val_y = data.train_images[val_idx], data.train_labels[val_idx]
    world = int(os.environ.get("WORLD_SIZE", 1))
    if data.test_images is None and not len(val_y) and recipe.patience:
        raise ValueError(f"{data.name}: no test split is loaded and val_fraction is 0, so early stopping (patience {recipe.patience}) "
                         "has nothing to select on: set val_fraction > 0, or patience=0")
    if len(train_y) < 2 * world:
        raise ValueError(f"{data.name}: {len(train_y)} training image(s) for {world} process(es) after the validation split "
                         f"(val_fraction {recipe.val_fraction}); a step needs at least 2 images per process (global_batches)")
    if device is not None:
        train_x, train_y, train_sizes = train_x.to(device), train_y.to(device), train_sizes.to(device)
    return _Splits(train_x, train_y, train_sizes, val_x, val_y, val_boxes, data.test_images, data.test_labels)


def _build(recipe: Recipe, num_classes: int, seed: int, place: _Place) -> _Trainee:
    """The network (initialised from ``seed``), its DDP / compiled form, NAG, the loss and the EMA."""
    torch.manual_seed(seed)
    model = build_model(recipe.model, num_classes, recipe.weights).to(place.device).to(memory_format=place.memory_format)
    net = torch.nn.parallel.DistributedDataParallel(model) if place.world > 1 else model
    optimizer = NAG(model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    criterion = LabelSmoothingCrossEntropy(recipe.label_smoothing, convention=recipe.smoothing_convention)
    ema_decay = recipe.ema_update_decay(place.world)
    ema = EMA(model, ema_decay) if recipe.ema else None
    return _Trainee(model, torch.compile(net) if recipe.compile else net, optimizer, criterion, ema)


def _finished_already(out: Path, identity: dict, *, rank: int, keep_checkpoints: bool, progress: bool) -> dict:
    """A finished run asked again: check that it is this run, and return its summary."""
    _check_compatible(torch.load(out / FINAL, map_location="cpu", weights_only=True)["identity"], identity, out / FINAL)
    if rank == 0 and not keep_checkpoints:
        ckpt.remove_checkpoints(out)
    if progress and rank == 0:
        print(f"{out}: finished already (summary.json); nothing to do", file=sys.stderr)
    return json.loads((out / "summary.json").read_text())


def _resume(out: Path, identity: dict, trainee: _Trainee, rank: int) -> dict:
    """The loop's state: a fresh one, or the latest valid checkpoint's, loaded into ``trainee`` (refused if another run's)."""
    state = {"epoch": 0, "step": 0, "history": [], "best": -1.0, "best_epoch": -1, "since_best": 0, "acc": None}
    found = ckpt.load_checkpoint(out) if out.exists() else None
    if found is None:
        return state
    saved, where = found
    _check_compatible(saved["identity"], identity, where)
    trainee.model.load_state_dict(saved["model"])
    trainee.optimizer.load_state_dict(saved["optimizer"])
    if trainee.ema is not None:
        trainee.ema.load_state_dict(saved["ema"])
    state = saved["state"]
    if rank == 0:  # always said, --quiet or not
        print(f"resuming {out} at epoch {state['epoch']}, step {state['step']} ({where.name})", file=sys.stderr)
    return state


def _write_run_files(out: Path, recipe: Recipe, data: Data, seed: int, path: str, place: _Place, trainee: _Trainee, progress: bool) -> None:
    """``recipe.json`` (the resolved recipe and what the run derived from it) and ``env.json`` (the software and hardware)."""
    ema = trainee.ema
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "recipe.json", {**as_dict(recipe), "seed": seed, "data": data.name, "data_fingerprint": data.fingerprint,
                                      "protocol": data.protocol, "num_classes": len(data.classes), **({"open_set": data.open_set} if data.open_set else {}),
                                      "path": path, "world_size": place.world, "ema_update_decay": recipe.ema_update_decay(place.world),
                                      "batch_norm_momentum": next((m.momentum for m in trainee.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)), None)})
    _write_json(out / "env.json", environment(place.device, recipe.deterministic))
    if progress:
        print(f"{recipe.name}: {path} path on {place.device}, world {place.world}, " + (f"EMA decay per update {ema.decay:.6g}" if ema else "no EMA"),
              file=sys.stderr)
    if ema is not None and ema.decay == 0 and recipe.ema_decay_reading == "adjusted":  # always said, --quiet or not
        print(f"warning: EMA decay per update is 0, so the EMA is a copy of the weights at its last update, not an average: "
              f"torchvision's adjustment 1 - min(1, (1 - ema_decay) x world x batch_size x ema_steps / epochs) = 1 - min(1, "
              f"{1 - recipe.ema_decay:.6g} x {place.world} x {recipe.batch_size} x {recipe.ema_steps} / {recipe.epochs}) clamps at 0 for "
              f"this short a run. Give more epochs, fewer ema_steps, or --set ema_decay_reading=per_update", file=sys.stderr)


def _augmentation(recipe: Recipe, path: str, splits: _Splits, seed: int):
    """The train transform (``augment``) and, on the reference path, the DataLoader that runs it per image (else None)."""
    if recipe.policy == "none":
        augment = _NoAugment(recipe.image_size)
    elif path == "fast":
        augment = BatchAugment(recipe.policy, recipe.image_size, erasing_p=recipe.erasing_p, jitter=recipe.jitter, lighting=recipe.lighting)
    else:
        augment = TrainTransform(recipe.policy, recipe.image_size, erasing_p=recipe.erasing_p, jitter=recipe.jitter, lighting=recipe.lighting)
    if path != "reference":
        return augment, None
    return augment, _EpochLoader(_ReferenceDataset(splits.train_x, splits.train_sizes, splits.train_y, augment, seed), workers=recipe.workers)


@contextlib.contextmanager
def _stop_requests(sync_armed: bool):
    """``{"signum": None}``, set by SIGINT / SIGTERM while the block runs (the loop stops at the next step); the previous
    handlers come back after it, and CUDA's sync debug mode is disarmed whatever happens."""
    stop = {"signum": None}
    previous = {s: signal.signal(s, lambda signum, frame: stop.update(signum=signum)) for s in EXIT_SIGNAL} if _main_thread() else {}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if sync_armed:
            torch.cuda.set_sync_debug_mode("default")


def _train_epoch(recipe: Recipe, trainee: _Trainee, splits: _Splits, augment, loader, *, epoch: int, state: dict, seed: int, place: _Place,
                 out: Path, stop: dict, sync_debug: bool, num_classes: int):
    """Epoch ``epoch``'s steps from ``state["step"]`` on: batch -> forward -> loss -> backward -> NAG step -> EMA update.
    Returns the epoch's accumulator and, when a signal arrived, the step to resume at (else None)."""
    acc = _EpochAccumulator(place.device, state.get("acc"))
    perm, slices = _epoch_order(len(splits.train_y), epoch, seed, recipe.batch_size, place.world, place.rank)
    batches = loader.batches(epoch, perm, slices, state["step"]) if loader is not None else None
    perm = perm.to(place.device)  # one copy per epoch; batches are slices of it
    watch = sync_debug and place.device.type == "cuda"
    if watch:
        torch.cuda.synchronize(place.device)
        torch.cuda.set_sync_debug_mode("error")
    try:
        for i in range(state["step"], len(slices)):
            if loader is not None:
                x, y = next(batches)
                x, y = x.to(place.device, non_blocking=True), y.to(place.device, non_blocking=True)
            else:
                idx = perm[slices[i][0] : slices[i][1]]
                g = torch.Generator(device=place.device).manual_seed(subseed(seed, epoch, i, place.rank))
                x, y = augment(splits.train_x[idx], g, splits.train_sizes[idx]), splits.train_y[idx]
            target = y
            if recipe.mixup_alpha > 0 or recipe.cutmix_alpha > 0:
                x, target = mix_batch(x, y, num_classes, mixup_alpha=recipe.mixup_alpha, cutmix_alpha=recipe.cutmix_alpha,
                                      generator=torch.Generator().manual_seed(subseed(seed, epoch, i, 1)))
            x = x.contiguous(memory_format=place.memory_format)
            try:
                loss, logits = train_step(trainee.step_model, trainee.optimizer, trainee.criterion, x, target, amp_device=place.device.type, amp=place.amp)
            except ValueError as e:
                if "Expected more than 1 value per channel" not in str(e):
                    raise
                raise ValueError(f"epoch {epoch}, step {i}: {recipe.model} at {recipe.image_size} px cannot train on {len(y)} image(s) "
                                 "per process: its BatchNorm sees 1 x 1 feature maps there and needs 2 values per channel. Use "
                                 "batch_size >= 2 (global_batches never leaves a single image for a step of its own)") from e
            except torch.OutOfMemoryError as e:
                last = ckpt.list_checkpoints(out)
                raise OutOfMemory(f"out of memory at epoch {epoch}, step {i} (batch_size {recipe.batch_size}, image_size "
                                  f"{recipe.image_size} on {place.device}); lower them with --set, or free the device. Last "
                                  f"checkpoint, intact: {last[-1] if last else 'none yet'}") from e
            if trainee.ema is not None and should_update(i, recipe.ema_steps):
                trainee.ema.update(trainee.model)
                if resets_after_update(epoch, recipe.warmup_epochs):
                    trainee.ema.reset_counter()
            acc.add(loss, logits, y, i)
            if stop["signum"] is not None:
                return acc, i + 1
    finally:
        if watch:
            torch.cuda.set_sync_debug_mode("default")
    return acc, None


def _epoch_row(recipe: Recipe, trainee: _Trainee, epoch: int, seed: int, train_metrics: dict, seconds: float, world: int) -> dict:
    """The epoch's log line so far: LR, EMA decay, training loss and accuracy, throughput."""
    return {"epoch": epoch, "lr": trainee.optimizer.param_groups[0]["lr"], "ema_decay": trainee.ema.decay if trainee.ema else None,
            "policy": recipe.policy, "seed": seed, "train_loss": train_metrics["loss"], "train_acc": train_metrics["acc"],
            "img_per_s": train_metrics["n"] * world / max(seconds, 1e-9), "epoch_s": seconds}


def _evaluate_epoch(recipe: Recipe, trainee: _Trainee, splits: _Splits, place: _Place) -> dict:
    """Test loss and top-1 of the raw model and the EMA, and their validation top-1 when there is a validation split."""
    model, ema, criterion = trainee.model, trainee.ema, trainee.criterion
    ev = dict(size=recipe.image_size, batch=recipe.eval_batch_size, device=place.device, amp=place.amp, memory_format=place.memory_format)
    row = {}
    if splits.test_x is not None:
        test = evaluate(model, criterion, splits.test_x, splits.test_y, **ev)
        row.update(test_loss=test["loss"], test_acc=test["acc"])
        if ema is not None:
            ema_test = evaluate(ema.module, criterion, splits.test_x, splits.test_y, **ev)
            row.update(ema_test_loss=ema_test["loss"], ema_test_acc=ema_test["acc"])
    if len(splits.val_y):
        row["val_acc"] = evaluate(model, criterion, splits.val_x, splits.val_y, boxes=splits.val_boxes, **ev)["acc"]
        if ema is not None:
            row["ema_val_acc"] = evaluate(ema.module, criterion, splits.val_x, splits.val_y, boxes=splits.val_boxes, **ev)["acc"]
    return row


def _select(row: dict, state: dict, recipe: Recipe, *, has_ema: bool, has_val: bool) -> None:
    """Early stopping's bookkeeping: the best selection accuracy (the EMA's when there is one, on the validation split
    when there is one, :func:`improved`), the epoch done, and the end of the run when patience runs out."""
    selected = row.get(("ema_" if has_ema else "") + ("val_acc" if has_val else "test_acc"), -1.0)  # -1: nothing to select on
    if improved(selected, state["best"]):
        state.update(best=selected, best_epoch=row["epoch"], since_best=0)
    else:
        state["since_best"] += 1
    row["wall_time"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    row["recipe"] = as_dict(recipe)
    state["history"].append(row)
    state.update(epoch=row["epoch"] + 1, step=0, acc=None)
    if recipe.patience and state["since_best"] >= recipe.patience:
        state["epoch"] = recipe.epochs  # early stop: nothing left to run
        row["early_stop"] = True


def _finish(out: Path, recipe: Recipe, state: dict, seed: int, data: Data, path: str, place: _Place, trainee: _Trainee, identity: dict,
            keep_checkpoints: bool) -> dict:
    """The end of a run: final weights, then the summary (what marks a run finished), then the training state goes."""
    ema = trainee.ema
    summary = _summary(recipe, state, seed, data, path, place.world, ema is not None)
    if place.rank == 0:
        final = {"model": trainee.model.state_dict(), "ema": ema.state_dict() if ema else None, "identity": identity, "classes": list(data.classes)}
        atomic_write(out / FINAL, lambda f: torch.save(final, f))
        _write_json(out / "summary.json", summary)
        if not keep_checkpoints:
            ckpt.remove_checkpoints(out)
    return summary


# --- helpers ----------------------------------------------------------------------------------


def improved(accuracy: float, best: float) -> bool:
    """Early stopping's rule: an epoch improves only if it is strictly better than every earlier one. A tie is not an
    improvement, so the selected epoch is the first to reach the best accuracy and patience keeps counting through ties
    (Keras' EarlyStopping and ModelCheckpoint(save_best_only=True) compare so with min_delta 0); the accuracy selected on is the EMA's when the run has one, on the validation split when there is one."""
    return accuracy > best


def global_batches(total: int, batch: int, world: int) -> list[tuple[int, int]]:
    """An epoch's global batches as ``(start, end)`` positions in its order of ``total`` images (a multiple of ``world``):
    ``batch * world`` images each, and the last, partial one is kept, as torchvision's reference keeps it (timm drops it).
    One exception: a last, partial batch that would give each process a single image joins the batch before it, which then holds
    ``world`` more. BatchNorm cannot take batch statistics of one image whose feature map is 1 x 1 (ResNet or
    EfficientNet at 32 px: "Expected more than 1 value per channel when training"), and a one-image step is the noisiest
    gradient there is. Every image is still seen once per epoch."""
    step = batch * world
    starts = list(range(0, total, step))
    if len(starts) > 1 and total - starts[-1] == world < step:  # a partial batch of one image per process
        starts.pop()
    return list(zip(starts, starts[1:] + [total]))


def _epoch_order(n: int, epoch: int, seed: int, batch: int, world: int, rank: int) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """The epoch's permutation from (seed, epoch), padded by wrapping to a multiple of ``world``, and this process's
    ``(start, end)`` slices of it: the :func:`global_batches`, each cut into ``world`` equal contiguous parts."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(subseed(seed, epoch)))
    total = math.ceil(n / world) * world
    perm = torch.cat([perm, perm[: total - n]])
    slices = []
    for start, end in global_batches(total, batch, world):
        part = (end - start) // world
        slices.append((start + rank * part, start + (rank + 1) * part))
    return perm, slices


def _set_threads(asked: int | str | None, recorded: int | None, *, say: bool) -> int:
    """Set torch's compute threads for a run (:func:`train`'s ``threads``) and return the count; ``recorded``: the count
    a resumed run started with (None for a new run)."""
    if asked is not None and not (asked == "free" or (type(asked) is int and asked >= 1)):
        raise ValueError(f"threads must be an integer >= 1, 'free' or None, got {asked!r}")
    if type(asked) is int:
        n = asked
    elif recorded:
        n = recorded
    else:
        from fgvc_ref.threads import free_cores

        n = min(torch.get_num_threads(), free_cores()) if asked == "free" else torch.get_num_threads()
    torch.set_num_threads(n)
    if recorded and n != recorded:  # always said: the promise of an exact resume no longer holds
        print(f"warning: resuming with {n} compute thread(s) where the run started with {recorded}: float sums are split "
              "otherwise, so the result is no longer bit-exact with an uninterrupted run's", file=sys.stderr)
    elif say:
        how = ("the count the run started with, so the resume is bit-exact" if recorded else "as asked" if type(asked) is int
               else "the cores free of other work at the start; --threads N to choose" if asked == "free" else "torch's setting")
        print(f"{n} compute thread(s) ({how})", file=sys.stderr)
    return n


def _early_stop_note(row: dict, state: dict, recipe: Recipe, has_ema: bool, has_val: bool) -> str:
    what = ("the EMA's " if has_ema else "") + ("validation" if has_val else "test") + " top-1"
    return (f"stopped early after epoch {row['epoch'] + 1} of {recipe.epochs}: {what} has not improved for {recipe.patience} epoch(s) "
            f"(patience; best {state['best']:.2f}% at epoch {state['best_epoch'] + 1}). --set patience=0 turns early stopping off; "
            "--epochs scales patience with the other epoch counts")


class _EpochLoader:
    """Reference path: one persistent DataLoader; each epoch feeds it the (epoch, index) keys of its batches."""

    def __init__(self, dataset, *, workers: int):
        self.keys: list[list[tuple[int, int]]] = []
        self.loader = torch.utils.data.DataLoader(dataset, batch_sampler=self, num_workers=workers, persistent_workers=workers > 0)

    def __iter__(self):  # the batch sampler: read when an epoch's iterator starts
        return iter(list(self.keys))

    def __len__(self):
        return len(self.keys)

    def batches(self, epoch: int, perm: torch.Tensor, slices, start_step: int):
        self.keys = [[(epoch, int(i)) for i in perm[a:b]] for a, b in slices[start_step:]]
        return iter(self.loader)

    def close(self) -> None:
        """Stop the persistent workers now (a run that ends, is pruned or fails leaves no process behind)."""
        iterator, self.loader._iterator = getattr(self.loader, "_iterator", None), None
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()


class _NoLoader:
    def close(self) -> None:
        pass


class _EpochAccumulator:
    """Training loss, accuracy and the first non-finite step, kept on the device until the epoch ends."""

    def __init__(self, device, saved: dict | None):
        saved = saved or {}
        self.loss = torch.tensor(saved.get("loss", 0.0), device=device, dtype=torch.float64)
        self.correct = torch.tensor(saved.get("correct", 0), device=device)
        self.n = torch.tensor(saved.get("n", 0), device=device)
        self.first_bad = torch.tensor(saved.get("first_bad", -1), device=device)

    def add(self, loss, logits, y, step):
        bad = ~torch.isfinite(loss)
        self.first_bad = torch.where(bad & (self.first_bad < 0), step, self.first_bad)
        self.loss += loss.double() * len(y)
        self.correct += (logits.argmax(1) == y).sum()
        self.n += len(y)

    def state(self) -> dict:
        return {"loss": self.loss.item(), "correct": int(self.correct), "n": int(self.n), "first_bad": int(self.first_bad)}

    def check_finite(self, epoch, seed, out):
        step = int(self.first_bad)
        if step >= 0:
            last = ckpt.list_checkpoints(out)
            raise NonFiniteLoss(f"non-finite loss at epoch {epoch}, step {step}, seed {seed}; stopped. "
                                f"Last good checkpoint: {last[-1] if last else 'none (this was the first epoch)'}")

    def result(self, world) -> dict:
        t = torch.stack([self.loss, self.correct.double(), self.n.double()])
        if world > 1:
            torch.distributed.all_reduce(t)
        loss, correct, n = t.tolist()
        return {"loss": loss / max(n, 1), "acc": 100.0 * correct / max(n, 1), "n": n / world}


def _save(out, rank, trainee: _Trainee, state, identity, epoch, step) -> Path:
    if rank != 0:
        return out / ckpt.checkpoint_name(epoch, step)
    payload = {"model": trainee.model.state_dict(), "optimizer": trainee.optimizer.state_dict(),
               "ema": trainee.ema.state_dict() if trainee.ema else None,
               "state": state, "identity": identity, "rng": {"torch": torch.get_rng_state()}}
    where = ckpt.save_checkpoint(out, payload, epoch=epoch, step=step)
    lines = "".join(json.dumps(r) + "\n" for r in state["history"])
    atomic_write(out / "metrics.jsonl", lambda f: f.write(lines.encode()))
    return where


def _check_compatible(saved: dict, current: dict, where: Path) -> None:
    diff = [f"{k}: checkpoint {saved.get(k)!r} != now {current.get(k)!r}" for k in ("data", "seed", "world_size", "open_set")
            if saved.get(k) != current.get(k)]  # open_set: the split's content hash (None: all classes)
    old, new = saved.get("recipe", {}), current["recipe"]
    ignorable = {"path", "workers", "compile", "eval_batch_size"}  # execution choices that do not change the result's definition
    diff += [f"recipe.{k}: checkpoint {old.get(k)!r} != now {new.get(k)!r}" for k in sorted(set(old) | set(new)) if k not in ignorable and old.get(k) != new.get(k)]
    if diff:
        raise ValueError(f"{where}: refusing to resume a different run:\n  " + "\n  ".join(diff) + "\nUse another --out folder for a new run.")


def _summary(recipe, state, seed, data, path, world, has_ema) -> dict:
    last = state["history"][-1] if state["history"] else {}
    key = ("ema_" if has_ema else "") + "test_acc"
    best = max(state["history"], key=lambda r: r[key]) if state["history"] and key in last else {}
    return {"stage": recipe.name, "seed": seed, "data": data.name, "path": path, "world_size": world,
            "reported": "ema" if has_ema else "raw", "last_test_acc": last.get(key), "last_epoch": last.get("epoch"),
            "last_val_acc": last.get(("ema_" if has_ema else "") + "val_acc"),
            "best_test_acc_test_selected": best.get(key), "best_epoch": best.get("epoch"),
            "selected_epoch": state["best_epoch"], "epochs_run": len(state["history"]),
            "early_stopped": bool(last.get("early_stop")), "train_s": sum(r["epoch_s"] for r in state["history"]),
            "mean_img_per_s": float(np.mean([r["img_per_s"] for r in state["history"]])) if state["history"] else None}


def _print_epoch(row: dict, epochs: int, history: list[dict]) -> None:
    accuracies = "".join(f" {name} {row[key]:.2f}" for name, key in (("test", "test_acc"), ("ema", "ema_test_acc"), ("val", "val_acc"),
                                                                     ("ema val", "ema_val_acc")) if key in row)
    eta = (epochs - row["epoch"] - 1) * float(np.mean([r["epoch_s"] for r in history[-5:]]))
    print(f"epoch {row['epoch'] + 1}/{epochs}: lr {row['lr']:.5f} loss {row['train_loss']:.4f}{accuracies} "
          f"({row['img_per_s']:.0f} img/s, {row['epoch_s']:.1f}s, ETA {eta / 60:.1f} min)", file=sys.stderr)


def _write_json(path: Path, obj) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=1, default=str).encode()))


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
