"""Per-epoch learning-rate schedules: linear warmup, then cosine, step or constant.

Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", arXiv:1706.02677
(linear warmup); Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
ICLR 2017, arXiv:1608.03983 (cosine annealing); He et al., "Bag of Tricks", CVPR 2019,
arXiv:1812.01187 (both, for ResNet-50).

With base rate ``eta`` (``base_lr``), ``E`` epochs, ``W`` warmup epochs, warmup decay ``a``
(``warmup_decay``), minimum ``eta_min`` (``min_lr``), ``T = E - W``, step size ``s`` and factor
``gamma``, the LR of epoch ``e`` (constant within the epoch) is, in closed form,

    e < W:    eta * (a + (1 - a) * e / W)                                  linear warmup
    e >= W:   eta_min + (eta - eta_min) * (1 + cos(pi * (e - W) / T)) / 2  "cosine"
              eta * gamma ** ((e - W) // s)                                "step"
              eta                                                          "constant"

Convention: torchvision's reference script, i.e. ``SequentialLR([LinearLR(start_factor=a,
total_iters=W), main], milestones=[W])`` stepped once per epoch, with ``main`` =
``CosineAnnealingLR(T_max=T, eta_min=eta_min)`` or ``StepLR(s, gamma)``; with ``W = 0`` the main
scheduler runs alone. Warmup never reaches ``eta`` by itself (W=5, a=0.01: factors 0.01, 0.208, 0.406,
0.604, 0.802); the main schedule starts at ``eta`` at the milestone. Step drops therefore come at
epochs ``W + s, W + 2s, ...``. :func:`epoch_lrs` reproduces torch bit for bit, which requires torch's
recursions: LinearLR multiplies the previous LR by ``1 + (1 - a) / (W * a + (e - 1) * (1 - a))``,
CosineAnnealingLR maps ``lr -> eta_min + (lr - eta_min) * (1 + cos(pi t / T)) / (1 + cos(pi (t-1) / T))``,
and StepLR multiplies by ``gamma`` every ``s`` epochs; the milestone value is closed form. The
recursion and :func:`lr_at` agree to about 1e-15 relative (docs/recipe.md section 2). ``min_lr`` only has
a meaning for the cosine schedule; it must be 0 for the others.
"""

from __future__ import annotations

import math

import torch

SCHEDULES = ("cosine", "step", "constant")


def epoch_lrs(
    base_lr: float,
    epochs: int,
    *,
    schedule: str = "cosine",
    warmup_epochs: int = 0,
    warmup_decay: float = 0.01,
    step_size: int = 30,
    gamma: float = 0.1,
    min_lr: float = 0.0,
) -> list[float]:
    """The LR of every epoch, bit-exact with torch's schedulers (see the module docstring)."""
    _check(base_lr, epochs, schedule, warmup_epochs, warmup_decay, step_size, gamma, min_lr)
    W, a, T = warmup_epochs, warmup_decay, epochs - warmup_epochs
    lrs: list[float] = []
    for e in range(epochs):
        t = e - W  # epochs since the milestone
        if e == 0 and W > 0:
            lr = base_lr * a
        elif t < 0:  # LinearLR's recursion
            lr = lrs[-1] * (1.0 + (1.0 - a) / (W * a + (e - 1) * (1.0 - a)))
        elif t == 0:  # milestone (or plain start): the main schedule's closed form at 0
            lr = min_lr + (base_lr - min_lr) * (1 + math.cos(0.0)) / 2 if schedule == "cosine" and W > 0 else base_lr
        elif schedule == "cosine":  # CosineAnnealingLR's recursion
            lr = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T)) * (lrs[-1] - min_lr) + min_lr
        elif schedule == "step":  # StepLR's recursion
            lr = lrs[-1] * gamma if t % step_size == 0 else lrs[-1]
        else:
            lr = lrs[-1]
        lrs.append(lr)
    return lrs


def lr_at(
    epoch: int,
    base_lr: float,
    epochs: int,
    *,
    schedule: str = "cosine",
    warmup_epochs: int = 0,
    warmup_decay: float = 0.01,
    step_size: int = 30,
    gamma: float = 0.1,
    min_lr: float = 0.0,
) -> float:
    """The closed form of the module docstring; defined for ``0 <= epoch <= epochs``
    (``epoch == epochs`` is where the schedule ends: ``min_lr`` for cosine)."""
    _check(base_lr, epochs, schedule, warmup_epochs, warmup_decay, step_size, gamma, min_lr)
    if not 0 <= epoch <= epochs:
        raise ValueError(f"epoch must be in [0, {epochs}], got {epoch!r}")
    W, a, T = warmup_epochs, warmup_decay, epochs - warmup_epochs
    if epoch < W:
        return base_lr * (a + (1 - a) * epoch / W)
    if schedule == "cosine":
        return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * (epoch - W) / T)) / 2
    if schedule == "step":
        return base_lr * gamma ** ((epoch - W) // step_size)
    return base_lr


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Apply one epoch's LR to every parameter group (call it before the epoch's first step)."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def _check(base_lr, epochs, schedule, warmup_epochs, warmup_decay, step_size, gamma, min_lr) -> None:
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if not base_lr >= 0:
        raise ValueError(f"base_lr must be >= 0, got {base_lr!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if not (isinstance(warmup_epochs, int) and 0 <= warmup_epochs < epochs):
        raise ValueError(f"warmup_epochs must be an integer in [0, epochs={epochs}), got {warmup_epochs!r}")
    if not 0 < warmup_decay <= 1:
        raise ValueError(f"warmup_decay must be in (0, 1], got {warmup_decay!r}")
    if not (isinstance(step_size, int) and step_size >= 1):
        raise ValueError(f"step_size must be an integer >= 1, got {step_size!r}")
    if not 0 < gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
    if schedule == "cosine" and not 0 <= min_lr <= base_lr:
        raise ValueError(f"min_lr must be in [0, base_lr={base_lr}], got {min_lr!r}")
    if schedule != "cosine" and min_lr != 0:
        raise ValueError(f"min_lr is the cosine schedule's floor; schedule={schedule!r} needs min_lr=0, got {min_lr!r}")
