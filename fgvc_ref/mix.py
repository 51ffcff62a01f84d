"""MixUp and CutMix, one of the two per batch (the not-adopted variant).

Zhang, Cisse, Dauphin, Lopez-Paz, "mixup: Beyond Empirical Risk Minimization", ICLR 2018,
arXiv:1710.09412; Yun, Han, Oh, Chun, Choe, Yoo, "CutMix: Regularization Strategy to Train Strong
Classifiers with Localizable Features", ICCV 2019, arXiv:1905.04899.

With ``lam ~ Beta(alpha, alpha)`` and the batch rolled by one as partner: MixUp gives
``x = lam x + (1 - lam) x'``; CutMix pastes a box of area ``(1 - lam) H W`` from ``x'`` and sets
``lam`` to the kept area. Targets become ``lam y + (1 - lam) y'`` (probabilities).

Convention: torchvision's reference ``RandomMixUp(alpha=0.2)`` / ``RandomCutMix(alpha=1.0)`` behind
``RandomChoice`` (equal probability), applied to the whole batch; the partner is the batch rolled by
one, as there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def mix_batch(x: Tensor, y: Tensor, num_classes: int, *, mixup_alpha: float, cutmix_alpha: float,
              generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Float images ``N x C x H x W`` and class indices -> mixed images and probability targets."""
    target = F.one_hot(y, num_classes).to(x.dtype)
    choices = [a for a in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if a[1] > 0]
    if not choices:
        return x, target
    kind, alpha = choices[int(torch.randint(len(choices), (1,), generator=generator))]
    lam = _beta(alpha, generator)
    x2, t2 = x.roll(1, 0), target.roll(1, 0)
    if kind == "mixup":
        return x.mul(lam).add_(x2, alpha=1 - lam), target.mul(lam).add_(t2, alpha=1 - lam)
    h, w = x.shape[-2:]
    r = math.sqrt(1 - lam)
    cy, cx = (int(torch.randint(n, (1,), generator=generator)) for n in (h, w))
    y0, y1 = max(cy - int(r * h / 2), 0), min(cy + int(r * h / 2), h)
    x0, x1 = max(cx - int(r * w / 2), 0), min(cx + int(r * w / 2), w)
    out = x.clone()
    out[..., y0:y1, x0:x1] = x2[..., y0:y1, x0:x1]
    lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    return out, target.mul(lam).add_(t2, alpha=1 - lam)


def _beta(alpha: float, generator: torch.Generator | None) -> float:
    """Beta(alpha, alpha) as X / (X + Y), X, Y ~ Gamma(alpha, 1), drawn from ``generator`` (CPU)."""
    g = torch._standard_gamma(torch.full((2,), alpha, dtype=torch.float64), generator=generator)
    total = float(g.sum())
    return float(g[0]) / total if total > 0 else 0.5
