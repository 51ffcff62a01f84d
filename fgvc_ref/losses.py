"""Label-smoothed cross-entropy.

Szegedy, Vanhoucke, Ioffe, Shlens, Wojna, "Rethinking the Inception Architecture for Computer
Vision", CVPR 2016, arXiv:1512.00567 (section 7); He et al., "Bag of Tricks for Image Classification
with Convolutional Neural Networks", CVPR 2019, arXiv:1812.01187 (section 5.2).

For logits ``z`` over ``K`` classes, true class ``y`` and smoothing ``eps`` (``smoothing``), the
target distribution ``q`` is one of

    q_k = (1 - eps) * [k == y] + eps / K                     convention="torch" (default)
    q_k = (1 - eps) * [k == y] + eps / (K - 1) * [k != y]    convention="blog"

and, with optional class weights ``w`` (all ones by default), the per-sample loss is

    L = - sum_k w_k * q_k * log softmax(z)_k.

Soft (probability) targets ``t`` replace the indicator: ``q = (1 - eps) * t + eps / K`` (torch) or
``q = (1 - eps) * t + eps / (K - 1) * (1 - t)`` (blog), which reduce to the lines above for one-hot
``t``.

Convention: the default equals ``torch.nn.functional.cross_entropy(z, y, weight=w,
ignore_index=i, reduction=r, label_smoothing=eps)``. Under ``reduction="mean"`` class-index losses
divide by ``sum_n w_{y_n}`` over the non-ignored samples (the number of them when unweighted);
samples whose target is ``ignore_index`` contribute zero and leave the denominator. Soft-target
losses divide by the number of samples, as torch does, and ignore ``ignore_index``. The blog's
formula (eps/(K-1) on the other classes, 1 - eps on the target) is ``convention="blog"``; docs/recipe.md
section 4 pins torch's as the default. Class dimension is 1: logits are ``(N, K)`` or
``(N, K, d1, ...)``. Out-of-range class indices are reported with a ``ValueError`` on the CPU;
on an accelerator the check would cost a host sync per step, so the device-side bounds check of
``gather`` reports them instead.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

CONVENTIONS = ("torch", "blog")
REDUCTIONS = ("mean", "sum", "none")


def label_smoothing_cross_entropy(
    logits: Tensor,
    target: Tensor,
    smoothing: float = 0.0,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    convention: str = "torch",
) -> Tensor:
    """Cross-entropy against the label-smoothed target ``q`` of the module docstring."""
    _check_args(logits, target, smoothing, weight, ignore_index, reduction, convention)
    num_classes = logits.shape[1]
    logp = logits.log_softmax(dim=1)
    class_shape = (1, num_classes) + (1,) * (logits.dim() - 2)
    w = torch.ones(class_shape, dtype=logp.dtype, device=logp.device) if weight is None else weight.to(logp.dtype).view(class_shape)
    off = smoothing / num_classes if convention == "torch" else smoothing / (num_classes - 1)

    if target.is_floating_point():  # probability targets
        t = target.to(logp.dtype)
        q = (1 - smoothing) * t + (off if convention == "torch" else off * (1 - t))
        loss = -(w * q * logp).sum(dim=1)
        return _reduce(loss, reduction, denominator=loss.numel())

    keep = target != ignore_index
    y = target.where(keep, 0).unsqueeze(1)
    onehot = torch.zeros_like(logp).scatter_(1, y, 1.0)
    q = (1 - smoothing) * onehot + (off if convention == "torch" else off * (1 - onehot))
    loss = -(w * q * logp).sum(dim=1) * keep
    if reduction != "mean":
        return _reduce(loss, reduction)
    w_y = w.expand_as(logp).gather(1, y).squeeze(1) * keep  # w_{y_n}, zero where ignored
    return _reduce(loss, reduction, denominator=w_y.sum())


class LabelSmoothingCrossEntropy(nn.Module):
    """``nn.Module`` wrapper of :func:`label_smoothing_cross_entropy` (same arguments)."""

    def __init__(
        self,
        smoothing: float = 0.0,
        *,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        convention: str = "torch",
    ) -> None:
        super().__init__()
        _check_scalars(smoothing, reduction, convention)
        self.smoothing, self.ignore_index = smoothing, ignore_index
        self.reduction, self.convention = reduction, convention
        self.register_buffer("weight", weight)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return label_smoothing_cross_entropy(
            logits, target, self.smoothing, weight=self.weight, ignore_index=self.ignore_index,
            reduction=self.reduction, convention=self.convention,
        )

    def extra_repr(self) -> str:
        return f"smoothing={self.smoothing}, convention={self.convention!r}, reduction={self.reduction!r}"


def _reduce(loss: Tensor, reduction: str, denominator: Tensor | int = 1) -> Tensor:
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / denominator


def _check_scalars(smoothing: float, reduction: str, convention: str) -> None:
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")


def _check_args(logits, target, smoothing, weight, ignore_index, reduction, convention) -> None:
    _check_scalars(smoothing, reduction, convention)
    if not logits.is_floating_point() or logits.dim() < 2:
        raise ValueError(
            f"logits must be a floating tensor of shape (N, K, ...), got dtype {logits.dtype} and shape {tuple(logits.shape)}"
        )
    num_classes = logits.shape[1]
    if convention == "blog" and num_classes < 2:
        raise ValueError(f"convention='blog' needs at least 2 classes (eps/(K-1)), got K={num_classes}")
    if weight is not None and tuple(weight.shape) != (num_classes,):
        raise ValueError(f"weight must have shape ({num_classes},), got {tuple(weight.shape)}")
    if target.is_floating_point():
        if target.shape != logits.shape:
            raise ValueError(
                f"probability target must have the logits' shape {tuple(logits.shape)}, got {tuple(target.shape)}"
            )
        return
    if target.dtype in (torch.bool, torch.uint8) or target.is_complex():
        raise ValueError(f"class-index target must be an integer (int64) tensor, got {target.dtype}")
    expected = logits.shape[:1] + logits.shape[2:]
    if target.shape != expected:
        raise ValueError(
            f"class-index target must have shape {tuple(expected)} for logits {tuple(logits.shape)}, got {tuple(target.shape)}"
        )
    if target.device.type == "cpu":
        bad = ((target < 0) | (target >= num_classes)) & (target != ignore_index)
        if bad.any():
            raise ValueError(
                f"class-index target must be in [0, {num_classes}) or ignore_index={ignore_index}, "
                f"got {target[bad].unique()[:10].tolist()}"
            )
