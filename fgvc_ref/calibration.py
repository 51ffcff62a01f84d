"""Calibration of a classifier's probabilities: NLL, expected calibration error, reliability bins, temperature scaling.

Guo, Pleiss, Sun & Weinberger, "On Calibration of Modern Neural Networks", ICML 2017, arXiv:1706.04599
(ECE from Naeini, Cooper & Hauskrecht, "Obtaining Well Calibrated Probabilities Using Bayesian
Binning", AAAI 2015). For n images with logits ``z_i`` (K classes), labels ``y_i``, temperature
``T > 0`` (``temperature``) and ``M`` bins (``bins``), with ``p_i = softmax(z_i / T)``:

    NLL(T)    = -(1/n) sum_i log p_i[y_i]                              natural log
    conf_i    = max_k p_i[k],      hit_i = [argmax_k z_i[k] = y_i]      top-1 correct
    B_m       = {i : (m-1)/M < conf_i <= m/M},   m = 1..M
    acc(B_m)  = mean of hit_i over B_m,      conf(B_m) = mean of conf_i over B_m
    ECE       = sum_m |B_m|/n * |acc(B_m) - conf(B_m)|                 a fraction in [0, 1]
    T*        = argmin_{T > 0} NLL(T)                                  fitted on validation logits

Convention: ``nll`` equals ``torch.nn.functional.cross_entropy(logits / T, labels)``. Bins are Guo's
(and gpleiss/temperature_scaling's): open below, closed above, so a confidence exactly on an edge m/M
falls in bin m, the lower one, and 1.0 in the top bin (no confidence is 0: conf >= 1/K). The edges
are ``m / M`` in float64, not gpleiss's float32 ``torch.linspace``; everything is computed in float64
whatever the input's dtype. An empty bin has count 0 and accuracy = confidence = None (JSON null);
it adds nothing to ECE. The prediction is the argmax of the logits themselves (the first index on
ties), so a temperature never changes it, not even by rounding ``z / T``: temperature scaling
leaves top-1 accuracy as it was and moves only the confidences.

``fit_temperature``: NLL is convex in ``beta = 1/T`` (a mean of ``logsumexp(beta z) - beta z[y]``),
hence unimodal in ``u = log T``. A golden-section search on ``u`` over ``T in [0.05, 20]``, until the
bracket is narrower than 1e-6 in ``u`` (T to a relative 1e-6; 35 NLL evaluations), finds the minimum
with no gradient, step size or starting point, cannot leave ``T > 0`` and gives the same T on every
machine; gpleiss's L-BFGS on T itself (lr 0.01, 50 iterations from 1.5) has all three. When the
minimum lies outside the bracket (every validation image right by a wide margin: NLL falls as
T -> 0), the result is within the tolerance of that end, and a T at 0.05 or 20 says so. It reads
only the logits and labels it is given (the validation split's).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_T_BRACKET = (math.log(0.05), math.log(20.0))  # the search interval for u = log T
LOG_T_TOLERANCE = 1e-6  # final bracket width in u
INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0  # golden-section ratio, 0.618...


def _checked(logits: Tensor, labels: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """``(logits, labels)`` as float64 and int64 on the CPU, or a ValueError naming the bad argument."""
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(f"logits must be a 2-D tensor (images, classes) with at least one of each, got "
                         f"{tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__}")
    n, k = logits.shape
    if not isinstance(labels, Tensor) or labels.shape != (n,) or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be a 1-D integer tensor of {n} class indices, one per row of logits, got "
                         f"{(labels.dtype, tuple(labels.shape)) if isinstance(labels, Tensor) else type(labels).__name__}")
    if bool(((labels < 0) | (labels >= k)).any()):
        raise ValueError(f"labels must lie in [0, {k}) for {k} classes, found {sorted(set(labels[(labels < 0) | (labels >= k)].tolist()))}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    z = logits.detach().to("cpu", torch.float64)
    if bool(z.isnan().any()):
        raise ValueError("logits hold NaN")
    return z, labels.detach().to("cpu", torch.int64)


def _nll(z: Tensor, y: Tensor, temperature: float) -> float:
    s = z / temperature
    return float((torch.logsumexp(s, 1) - s.gather(1, y[:, None])[:, 0]).mean())  # -log p[y] = logsumexp(s) - s[y]


def nll(logits: Tensor, labels: Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (natural log) of ``softmax(logits / temperature)`` at the labels."""
    return _nll(*_checked(logits, labels, temperature), temperature)


def reliability(logits: Tensor, labels: Tensor, bins: int = 15, temperature: float = 1.0) -> list[dict]:
    """Per confidence bin ``((m-1)/M, m/M]``: lower, upper, count, accuracy and mean confidence (None when empty)."""
    z, y = _checked(logits, labels, temperature)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    conf = torch.softmax(z / temperature, 1).amax(1)
    hit = (z.argmax(1) == y).double()  # the unscaled logits' argmax: T cannot change it
    edges = torch.tensor([m / bins for m in range(bins + 1)], dtype=torch.float64)
    m = torch.bucketize(conf, edges, right=False) - 1  # edges[m] < conf <= edges[m + 1]
    count = torch.bincount(m, minlength=bins)
    hits, confs = torch.bincount(m, hit, minlength=bins), torch.bincount(m, conf, minlength=bins)
    return [{"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": int(count[b]),
             "accuracy": float(hits[b] / count[b]) if count[b] else None,
             "confidence": float(confs[b] / count[b]) if count[b] else None} for b in range(bins)]


def ece(logits: Tensor, labels: Tensor, bins: int = 15, temperature: float = 1.0) -> float:
    """Expected calibration error ``sum_m |B_m|/n |acc(B_m) - conf(B_m)|``, a fraction in [0, 1]."""
    table = reliability(logits, labels, bins, temperature)
    n = sum(b["count"] for b in table)
    return sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in table if b["count"])


def fit_temperature(logits: Tensor, labels: Tensor) -> float:
    """The ``T`` in [0.05, 20] minimising NLL on these (validation) logits: golden section on ``log T``."""
    z, y = _checked(logits, labels, 1.0)

    def f(u: float) -> float:
        return _nll(z, y, math.exp(u))

    a, b = LOG_T_BRACKET
    c, d = b - INV_PHI * (b - a), a + INV_PHI * (b - a)
    fc, fd = f(c), f(d)
    while b - a > LOG_T_TOLERANCE:
        if fc <= fd:  # the minimum is in [a, d] (NLL is unimodal in u)
            b, d, fd = d, c, fc
            c = b - INV_PHI * (b - a)
            fc = f(c)
        else:  # the minimum is in [c, b]
            a, c, fc = c, d, fd
            d = a + INV_PHI * (b - a)
            fd = f(d)
    return math.exp((a + b) / 2.0)
