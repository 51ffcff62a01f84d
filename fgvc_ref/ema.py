"""Exponential moving average (EMA) of model weights, with torchvision's decay adjustment.

Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging", SIAM J. Control Optim.
1992; Tan & Le, "EfficientNet", ICML 2019, arXiv:1905.11946 (EMA of weights for image
classifiers); the decay adjustment comes from pycls (Radosavovic et al., "Designing Network Design
Spaces", CVPR 2020, arXiv:2003.13678) via torchvision's reference script.

For averaged weights ``a``, live weights ``m`` and decay ``d`` (``decay``), an update is

    a = d * a + (1 - d) * m          (the first update, and every update after a reset, copies: a = m)

applied to every parameter **and buffer** (BatchNorm running statistics included). The integer
``num_batches_tracked`` goes through the same formula in floating point and is truncated when copied
back. Updates happen after the optimizer step on the iterations ``i`` (batch index within the
epoch, from 0) with ``i % ema_steps == 0``; during warmup epochs the update counter is reset after
every update, so those updates are plain copies (:func:`should_update`, :func:`resets_after_update`).
torchvision scales the flag value ``ema_decay`` by the number of images between updates:

    d = 1 - min(1, (1 - ema_decay) * world_size * batch_size * ema_steps / epochs)

(the blog's 0.994, one GPU, batch 128, 32 steps, 600 epochs give d = 0.95904).

Convention: equals ``torch.optim.swa_utils.AveragedModel(model, avg_fn=lambda a, m, n: d * a +
(1 - d) * m, use_buffers=True)``, i.e. torchvision's ``ExponentialMovingAverage``, bit for bit,
including ``n_averaged.fill_(0)`` warmup resets. The expression is ``d * a + (1 - d) * m`` as
written, not ``torch.lerp``, which rounds differently. ``batch_size`` is per process, as in
torchvision. The EMA only reads the live model: it never writes back into it (that would be
Lookahead). Floating tensors are updated with ``torch._foreach_*`` kernels in the same three
roundings (two products, one sum), so the result is bit-identical and faster than the per-tensor
loop.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


def adjusted_ema_decay(decay: float, *, world_size: int, batch_size: int, ema_steps: int, epochs: int) -> float:
    """torchvision's per-update decay ``d`` from the flag value (module docstring)."""
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1], got {decay!r}")
    for name, value in dict(world_size=world_size, batch_size=batch_size, ema_steps=ema_steps, epochs=epochs).items():
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    alpha = min(1.0, (1.0 - decay) * (world_size * batch_size * ema_steps / epochs))
    return 1.0 - alpha


def should_update(step_in_epoch: int, ema_steps: int) -> bool:
    """Whether the EMA updates after the optimizer step of batch ``step_in_epoch`` (from 0 each epoch)."""
    return step_in_epoch % ema_steps == 0


def resets_after_update(epoch: int, warmup_epochs: int) -> bool:
    """Whether the update counter is reset after each update in ``epoch`` (warmup: keep copying)."""
    return epoch < warmup_epochs


@torch.no_grad()
def ema_update_(averaged: list[Tensor], live: list[Tensor], decay: float) -> None:
    """``a = d * a + (1 - d) * m`` for every pair, in place."""
    floats = [(a, m) for a, m in zip(averaged, live) if a.is_floating_point()]
    if floats:
        avg, cur = [a for a, _ in floats], [m.to(a.device) for a, m in floats]
        torch._foreach_mul_(avg, decay)
        torch._foreach_add_(avg, torch._foreach_mul(cur, 1.0 - decay))
    for a, m in zip(averaged, live):
        if not a.is_floating_point():  # e.g. num_batches_tracked: float math, truncated on copy
            a.copy_(decay * a + (1.0 - decay) * m.to(a.device))


class EMA(nn.Module):
    """An averaged copy ``.module`` of a model; see the module docstring for the rule."""

    def __init__(self, model: nn.Module, decay: float, *, device: torch.device | str | None = None) -> None:
        super().__init__()
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must be in [0, 1], got {decay!r}")
        self.decay = decay
        self.module = copy.deepcopy(model).requires_grad_(False)
        if device is not None:
            self.module.to(device)
        self.num_updates = 0  # updates since creation or the last reset; 0 means "copy next"

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        averaged, live = _tensors(self.module), _tensors(model)
        if len(averaged) != len(live):
            raise ValueError(f"model has {len(live)} parameters+buffers, the EMA copy has {len(averaged)}")
        if self.num_updates == 0:
            for a, m in zip(averaged, live):
                a.copy_(m)
        else:
            ema_update_(averaged, live, self.decay)
        self.num_updates += 1

    def reset_counter(self) -> None:
        """Make the next update a plain copy (torchvision: ``n_averaged.fill_(0)`` during warmup)."""
        self.num_updates = 0

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def state_dict(self, *args, **kwargs):
        return {"module": self.module.state_dict(), "num_updates": self.num_updates, "decay": self.decay}

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self.module.load_state_dict(state_dict["module"], strict=strict)
        self.num_updates = int(state_dict["num_updates"])
        self.decay = float(state_dict["decay"])


def _tensors(model: nn.Module) -> list[Tensor]:
    return [t.detach() for t in (*model.parameters(), *model.buffers())]
