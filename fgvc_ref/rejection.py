"""Open-set rejection and selective classification: scores, AUROC, FPR at 95% TPR, OSCR, AURC.

A score says how likely an image is to be of a known class, **higher = more likely known**; an image
is accepted iff its score >= a threshold t. For logits ``z`` (K classes) and temperature ``T``:

    msp(z)       = max_k softmax(z / T)_k    Hendrycks & Gimpel, "A Baseline for Detecting Misclassified and
                                             Out-of-Distribution Examples in Neural Networks", ICLR 2017, arXiv:1610.02136
    max_logit(z) = max_k z_k                 MLS: Vaze, Han, Vedaldi & Zisserman, "Open-Set Recognition: a Good
                                             Closed-Set Classifier is All You Need?", ICLR 2022, arXiv:2110.06207
    energy(z)    = logsumexp_k z_k = -E(z)   Liu, Wang, Owens & Li, "Energy-based Out-of-distribution Detection",
                                             NeurIPS 2020, arXiv:2010.03759, with E(z) = -logsumexp(z) (their T = 1)

``energy`` is minus the free energy, so that like the others it is higher for known images. Adding c
to every logit leaves ``msp`` as it is and adds c to ``max_logit`` and ``energy``.

Known scores ``a_1..a_N`` are the positives, unknown ``b_1..b_M`` the negatives (OpenOOD v1.5's
AUROC, Zhang et al., arXiv:2306.09301); ``correct_i`` says known image i is top-1 correct; q = ``tpr``:

    AUROC  = (1/NM) sum_i sum_j ([a_i > b_j] + 1/2 [a_i = b_j])          Mann-Whitney U / NM
    TPR(t) = #{i : a_i >= t}/N,   FPR(t) = #{j : b_j >= t}/M,   CCR(t) = #{i : correct_i and a_i >= t}/N
    t_q    = max {a_i : TPR(a_i) >= q}        the highest threshold keeping at least q of the known
    FPR@q  = FPR(t_q)
    OSCR   = area under the points (FPR(t), CCR(t)) over every t, joined by straight lines
           = (1/NM) sum_{i : correct_i} sum_j ([a_i > b_j] + 1/2 [a_i = b_j])

(OSCR: Dhamija, Günther & Boult, "Reducing Network Agnostophobia", NeurIPS 2018, arXiv:1811.04110.)
Selective classification of n images, sorted by score descending, E_k = errors among the first k:

    risk(k/n) = E_k / k,    AURC = (1/n) sum_{k=1..n} risk(k/n),    accuracy at coverage c = 1 - E_k / k, k = ceil(c n)

(Geifman & El-Yaniv, "Selective Classification for Deep Neural Networks", NeurIPS 2017,
arXiv:1705.08500; Geifman, Uziel & El-Yaniv, "Bias-Reduced Uncertainty Estimation for Deep Neural
Classifiers", ICLR 2019, arXiv:1805.08206.)

Convention: ties never depend on the order of the images; each metric takes the mean over every
order of the tied ones. So a tied known/unknown pair counts 1/2 in AUROC and OSCR (the curve crosses
a tie as a straight diagonal; equals ``sklearn.metrics.roc_auc_score``), and OSCR is exactly AUROC
when every known image is correct (OSCR <= AUROC always; OSCR <= accuracy). Where k cuts through a
group of tied scores, E_k counts that group's errors in proportion to the share of it inside the
first k (linear between the group's ends). At t_q every image scoring exactly t_q is accepted, known
and unknown alike, so the TPR reached may exceed q; t_q is what ``sklearn.metrics.roc_curve`` (known
= 1, ``drop_intermediate=False``) gives at the first TPR >= q. This FPR@95 is Hendrycks & Gimpel's
and Liu et al.'s (known positive); OpenOOD v1.5's evaluator takes unknown as positive for it (the
share of known rejected when 95% of unknown are), a different number. Vaze et al.'s ``compute_oscr``
breaks ties by sort order. ``ceil(c n)`` is computed as the smallest k with k/n >= c, as t_q is, so
a product such as 0.07 * 100 = 7.000000000000001 does not add an image. Scores are float64 on the CPU.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return temperature


def _logits(logits: Tensor) -> Tensor:
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[1] == 0:
        raise ValueError(f"logits must be a 2-D tensor (images, classes) with at least one class, got "
                         f"{tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__}")
    return logits


def msp(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Maximum softmax probability of ``logits / temperature``, per image."""
    return torch.softmax(_logits(logits) / _temperature(temperature), 1).amax(1)


def max_logit(logits: Tensor) -> Tensor:
    """The largest logit, per image (MLS)."""
    return _logits(logits).amax(1)


def energy(logits: Tensor) -> Tensor:
    """``logsumexp(logits)`` per image: minus the free energy ``E = -logsumexp``, higher for known images."""
    return torch.logsumexp(_logits(logits), 1)


SCORES = {"msp": msp, "max_logit": max_logit, "energy": energy}


def _scores(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor) or x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D tensor of scores, one per image, got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if len(x) == 0:
        raise ValueError(f"{name} is empty: the metric needs at least one {name} image")
    x = x.detach().to("cpu", torch.float64)
    if bool(x.isnan().any()):
        raise ValueError(f"{name} holds NaN scores")
    return x


def _flags(x: Tensor, name: str, n: int, of: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dtype != torch.bool or x.shape != (n,):
        raise ValueError(f"{name} must be a 1-D bool tensor with one flag per image of {of} ({n}), got "
                         f"{(x.dtype, tuple(x.shape)) if isinstance(x, Tensor) else type(x).__name__}")
    return x.detach().cpu()


def _smallest_count(n: int, share: float, name: str) -> int:
    """The smallest k with k / n >= share: ``ceil(share n)`` without the rounding of the product."""
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {share!r}")
    return int(torch.searchsorted(torch.arange(1, n + 1, dtype=torch.float64) / n, float(share))) + 1


def _twice_wins(known: Tensor, unknown: Tensor) -> Tensor:
    """Per known image, ``2 #{b_j < a_i} + 2 * 1/2 #{b_j = a_i}``: integers, so sums are exact."""
    b = unknown.sort().values
    return torch.searchsorted(b, known, right=False) + torch.searchsorted(b, known, right=True)


def auroc(known: Tensor, unknown: Tensor) -> float:
    """P(a known image scores above an unknown one), ties 1/2: Mann-Whitney U / (N M)."""
    a, b = _scores(known, "known"), _scores(unknown, "unknown")
    return int(_twice_wins(a, b).sum()) / (2 * len(a) * len(b))


def threshold_at_tpr(known: Tensor, tpr: float = 0.95) -> float:
    """``t_q``: the largest known score ``t`` with ``#{a_i >= t} / N >= tpr``; accept iff score >= t."""
    a = _scores(known, "known").sort(descending=True).values
    return float(a[_smallest_count(len(a), tpr, "tpr") - 1])


def fpr_at_tpr(known: Tensor, unknown: Tensor, tpr: float = 0.95) -> float:
    """Share of unknown images accepted (score >= t_q) at the threshold keeping ``tpr`` of the known."""
    t = threshold_at_tpr(known, tpr)
    return float((_scores(unknown, "unknown") >= t).double().mean())


def oscr(known: Tensor, known_correct: Tensor, unknown: Tensor) -> float:
    """Open-Set Classification Rate: the area under CCR(t) against FPR(t), ties 1/2 as in :func:`auroc`."""
    a, b = _scores(known, "known"), _scores(unknown, "unknown")
    correct = _flags(known_correct, "known_correct", len(a), "known")
    return int(_twice_wins(a, b)[correct].sum()) / (2 * len(a) * len(b))


def _expected_errors(scores: Tensor, correct: Tensor) -> Tensor:
    """``E_k`` for k = 0..n: errors among the k highest scores, a tied group cut by k counted pro rata."""
    values, group, size = torch.unique(scores, return_inverse=True, return_counts=True)  # ascending values
    wrong = torch.zeros(len(values), dtype=torch.float64).index_add_(0, group, (~correct).double())
    zero = torch.zeros(1, dtype=torch.float64)
    ends = torch.cat([zero, size.flip(0).cumsum(0).double()])  # images up to each group's end, highest first
    errors = torch.cat([zero, wrong.flip(0).cumsum(0)])
    k = torch.arange(len(scores) + 1, dtype=torch.float64)
    g = torch.searchsorted(ends, k, right=False).clamp(min=1)  # ends[g-1] < k <= ends[g]: image k is in group g
    return errors[g - 1] + (k - ends[g - 1]) * (errors[g] - errors[g - 1]) / (ends[g] - ends[g - 1])


def aurc(scores: Tensor, correct: Tensor) -> float:
    """Area under the risk-coverage curve: the mean over k = 1..n of the error rate among the k most confident."""
    s = _scores(scores, "scores")
    e = _expected_errors(s, _flags(correct, "correct", len(s), "scores"))
    return float((e[1:] / torch.arange(1, len(s) + 1, dtype=torch.float64)).mean())


def accuracy_at_coverage(scores: Tensor, correct: Tensor, coverage: float = 0.9) -> float:
    """Accuracy on the ``ceil(coverage n)`` most confident images (a cut tie group counted pro rata)."""
    s = _scores(scores, "scores")
    e = _expected_errors(s, _flags(correct, "correct", len(s), "scores"))
    k = _smallest_count(len(s), coverage, "coverage")
    return float(1.0 - e[k] / k)
