"""MixUp and CutMix, one of the two per batch (the not-adopted variant).

Zhang, Cisse, Dauphin, Lopez-Paz, "mixup: Beyond Empirical Risk Minimization", ICLR 2018,
arXiv:1710.09412; Yun, Han, Oh, Chun, Choe, Yoo, "CutMix: Regularization Strategy to Train Strong
Classifiers with Localizable Features", ICCV 2019, arXiv:1905.04899.

With ``lam ~ Beta(alpha, alpha)`` and the batch rolled by one as partner ``x'``:

    MixUp:  x = (1 - lam) x' + lam x
    CutMix: a box centred at (r_x, r_y) ~ U{0..W-1} x U{0..H-1}, half-sides int(r W), int(r H) with
            r = sqrt(1 - lam) / 2, clipped to the image, is pasted from x'; lam becomes the kept area
            1 - (x2 - x1)(y2 - y1) / (W H)
    targets: t = (1 - lam) t' + lam t   (one-hot t)

Convention: ``torchvision.transforms.v2.RandomChoice([MixUp(alpha=mixup_alpha),
CutMix(alpha=cutmix_alpha)])``, torchvision's reference ``--mixup-alpha 0.2 --cutmix-alpha 1.0``:
the same draws in the same order (the choice by ``multinomial`` over equal weights; ``lam`` as
``Beta(alpha, alpha)`` samples it, through ``_sample_dirichlet``; CutMix's ``r_x`` before ``r_y``)
and the same expressions, so for the same seed the result equals v2's bit for bit
(tests/test_mix.py). The draws come from ``generator`` (CPU) instead of the global generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def mix_batch(x: Tensor, y: Tensor, num_classes: int, *, mixup_alpha: float, cutmix_alpha: float,
              generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Float images ``N x C x H x W`` and class indices -> mixed images and probability targets."""
    target = F.one_hot(y, num_classes).float()
    choices = [(kind, alpha) for kind, alpha in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if alpha > 0]
    if not choices:
        return x, target
    kind, alpha = choices[int(torch.multinomial(torch.tensor([1 / len(choices)] * len(choices)), 1, generator=generator))]
    lam = float(torch._sample_dirichlet(torch.tensor([[alpha, alpha]]), generator=generator)[..., 0])  # Beta(alpha, alpha)
    if kind == "mixup":
        return x.roll(1, 0).mul_(1.0 - lam).add_(x.mul(lam)), _mix_targets(target, lam)
    h, w = x.shape[-2:]
    r_x = int(torch.randint(w, (1,), generator=generator))
    r_y = int(torch.randint(h, (1,), generator=generator))
    r = 0.5 * math.sqrt(1.0 - lam)
    x1, x2 = max(r_x - int(r * w), 0), min(r_x + int(r * w), w)
    y1, y2 = max(r_y - int(r * h), 0), min(r_y + int(r * h), h)
    out = x.clone()
    out[..., y1:y2, x1:x2] = x.roll(1, 0)[..., y1:y2, x1:x2]
    return out, _mix_targets(target, 1.0 - (x2 - x1) * (y2 - y1) / (w * h))


def _mix_targets(target: Tensor, lam: float) -> Tensor:
    return target.roll(1, 0).mul_(1.0 - lam).add_(target.mul(lam))
