"""fgvc_ref.losses: equivalence with F.cross_entropy(label_smoothing=...), properties, bad input."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from fgvc_ref.losses import LabelSmoothingCrossEntropy, label_smoothing_cross_entropy

# float64 inputs; the two implementations sum the same terms in a different order.
RTOL, ATOL = 1e-10, 1e-12

smoothings = st.floats(0.0, 0.99, allow_nan=False)
reductions = st.sampled_from(["mean", "sum", "none"])


@st.composite
def problems(draw, spatial=False):
    """Logits (N, K[, d]) and class targets, some of them ignore_index=-1."""
    n, k = draw(st.integers(1, 9)), draw(st.integers(2, 12))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    shape = (n, k, draw(st.integers(1, 3))) if spatial else (n, k)
    logits = torch.randn(shape, generator=g, dtype=torch.float64) * draw(st.floats(0.1, 10.0))
    target = torch.randint(0, k, (n,) + shape[2:], generator=g)
    ignored = torch.rand(target.shape, generator=g) < draw(st.floats(0.0, 0.5))
    ignored.view(-1)[0] = False  # keep at least one target so 'mean' is defined
    target = target.masked_fill(ignored, -1)
    weight = torch.rand(k, generator=g, dtype=torch.float64) + 0.1 if draw(st.booleans()) else None
    return logits, target, weight


# (a) equivalence with the torch twin ---------------------------------------------------------


@given(problems(), smoothings, reductions)
def test_equals_torch_cross_entropy_with_weights_and_ignore_index(problem, eps, reduction):
    """Default convention == F.cross_entropy(..., label_smoothing=eps) for class-index targets."""
    logits, target, weight = problem
    ours = label_smoothing_cross_entropy(logits, target, eps, weight=weight, ignore_index=-1, reduction=reduction)
    ref = F.cross_entropy(logits, target, weight=weight, ignore_index=-1, reduction=reduction, label_smoothing=eps)
    torch.testing.assert_close(ours, ref, rtol=RTOL, atol=ATOL)


@given(problems(spatial=True), smoothings, reductions)
def test_equals_torch_cross_entropy_with_spatial_dims(problem, eps, reduction):
    """Class dimension 1 with extra trailing dims (N, K, d) matches torch too."""
    logits, target, weight = problem
    ours = label_smoothing_cross_entropy(logits, target, eps, weight=weight, ignore_index=-1, reduction=reduction)
    ref = F.cross_entropy(logits, target, weight=weight, ignore_index=-1, reduction=reduction, label_smoothing=eps)
    torch.testing.assert_close(ours, ref, rtol=RTOL, atol=ATOL)


@given(problems(), smoothings, reductions, st.integers(0, 2**31 - 1))
def test_equals_torch_cross_entropy_with_soft_targets(problem, eps, reduction, seed):
    """Probability targets (mixup/cutmix) == torch: t*(1-eps)+eps/K, divided by the batch size."""
    logits, _, weight = problem
    g = torch.Generator().manual_seed(seed)
    soft = torch.rand(logits.shape, generator=g, dtype=torch.float64).softmax(1)
    ours = label_smoothing_cross_entropy(logits, soft, eps, weight=weight, reduction=reduction)
    ref = F.cross_entropy(logits, soft, weight=weight, reduction=reduction, label_smoothing=eps)
    torch.testing.assert_close(ours, ref, rtol=RTOL, atol=ATOL)


@given(problems(), smoothings)
def test_blog_convention_equals_its_formula_evaluated_literally(problem, eps):
    """convention='blog': q_k = (1-eps)[k==y] + eps/(K-1)[k!=y], L = -sum_k q_k log softmax(z)_k, batch mean."""
    logits, target, _ = problem
    target = target.clamp(min=0)
    n, k = logits.shape
    total = 0.0
    for i in range(n):
        zmax = max(logits[i].tolist())
        log_z = zmax + math.log(sum(math.exp(v - zmax) for v in logits[i].tolist()))
        for c in range(k):
            q = (1 - eps) if c == target[i] else eps / (k - 1)
            total -= q * (logits[i, c].item() - log_z)
    ours = label_smoothing_cross_entropy(logits, target, eps, convention="blog")
    assert ours.item() == pytest.approx(total / n, rel=1e-10, abs=1e-12)


@given(problems(), smoothings, st.integers(0, 2**31 - 1))
def test_blog_convention_with_soft_targets_equals_its_formula_evaluated_literally(problem, eps, seed):
    """convention='blog', probability targets t (MixUp/CutMix): q_k = (1-eps) t_k + eps/(K-1) (1 - t_k), batch mean."""
    logits, _, _ = problem
    n, k = logits.shape
    soft = torch.rand(logits.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).softmax(1)
    total = 0.0
    for i in range(n):
        zmax = max(logits[i].tolist())
        log_z = zmax + math.log(sum(math.exp(v - zmax) for v in logits[i].tolist()))
        for c in range(k):
            t = soft[i, c].item()
            total -= ((1 - eps) * t + eps / (k - 1) * (1 - t)) * (logits[i, c].item() - log_z)
    ours = label_smoothing_cross_entropy(logits, soft, eps, convention="blog")
    assert ours.item() == pytest.approx(total / n, rel=1e-9, abs=1e-12)


def test_module_wrapper_equals_function():
    logits, target = torch.randn(5, 7), torch.randint(0, 7, (5,))
    w = torch.rand(7)
    crit = LabelSmoothingCrossEntropy(0.1, weight=w, convention="blog")
    assert torch.equal(crit(logits, target), label_smoothing_cross_entropy(logits, target, 0.1, weight=w, convention="blog"))
    assert "weight" in dict(crit.named_buffers())


# (b) properties -------------------------------------------------------------------------------


@given(problems(), reductions, st.sampled_from(["torch", "blog"]))
def test_zero_smoothing_equals_plain_cross_entropy(problem, reduction, convention):
    """eps = 0 is ordinary cross-entropy in both conventions."""
    logits, target, weight = problem
    ours = label_smoothing_cross_entropy(logits, target, 0.0, weight=weight, ignore_index=-1, reduction=reduction, convention=convention)
    ref = F.cross_entropy(logits, target, weight=weight, ignore_index=-1, reduction=reduction)
    torch.testing.assert_close(ours, ref, rtol=RTOL, atol=ATOL)


@given(st.integers(2, 50), smoothings, st.sampled_from(["torch", "blog"]))
def test_smoothed_target_sums_to_one(k, eps, convention):
    """With uniform logits (log p_k = -log K) the loss is sum_k q_k * log K, so sum_k q_k = loss / log K = 1."""
    logits = torch.zeros(1, k, dtype=torch.float64)
    loss = label_smoothing_cross_entropy(logits, torch.tensor([0]), eps, convention=convention)
    assert loss.item() / math.log(k) == pytest.approx(1.0, rel=1e-12)


@given(st.integers(3, 20), st.floats(0.01, 0.99))
def test_blog_puts_one_minus_eps_on_the_target_and_torch_does_not(k, eps):
    """Gradient w.r.t. logits is softmax - q: read q back from it for both conventions."""
    logits = torch.zeros(1, k, dtype=torch.float64, requires_grad=True)
    for convention, q_target, q_other in (("torch", 1 - eps + eps / k, eps / k), ("blog", 1 - eps, eps / (k - 1))):
        (grad,) = torch.autograd.grad(label_smoothing_cross_entropy(logits, torch.tensor([0]), eps, convention=convention), logits)
        q = 1.0 / k - grad[0]
        assert q[0].item() == pytest.approx(q_target, rel=1e-12)
        assert q[1:].tolist() == pytest.approx([q_other] * (k - 1), rel=1e-12)


def test_ignored_rows_contribute_zero_and_leave_the_denominator():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 5.0, 1.0]])
    full = label_smoothing_cross_entropy(logits[:1], torch.tensor([0]), 0.2)
    with_ignored = label_smoothing_cross_entropy(logits, torch.tensor([0, -100]), 0.2)
    assert torch.equal(full, with_ignored)
    assert label_smoothing_cross_entropy(logits, torch.tensor([0, -100]), 0.2, reduction="none")[1].item() == 0.0


# (c) labelled examples and bad input ----------------------------------------------------------


def test_known_value_two_classes():
    """K=2, uniform logits: loss = log 2 whatever eps; confident correct logit: known closed form."""
    assert label_smoothing_cross_entropy(torch.zeros(1, 2), torch.tensor([1]), 0.1).item() == pytest.approx(math.log(2))
    z = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)  # p = (1/4, 3/4)
    expected = -((0.05) * math.log(0.25) + 0.95 * math.log(0.75))
    assert label_smoothing_cross_entropy(z, torch.tensor([1]), 0.1).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(smoothing=1.0), "smoothing"),
        (dict(smoothing=-0.1), "smoothing"),
        (dict(reduction="avg"), "reduction"),
        (dict(convention="timm"), "convention"),
        (dict(weight=torch.ones(3)), "weight"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        label_smoothing_cross_entropy(torch.randn(2, 4), torch.tensor([0, 1]), **kwargs)


@pytest.mark.parametrize(
    "target, match",
    [
        (torch.tensor([0, 4]), r"in \[0, 4\)"),
        (torch.tensor([0, -5]), r"in \[0, 4\)"),
        (torch.tensor([0, 1, 2]), "shape"),
        (torch.tensor([[0, 1]]), "shape"),
        (torch.tensor([True, False]), "integer"),
        (torch.rand(2, 3), "shape"),
    ],
)
def test_bad_targets_raise_value_error_naming_the_target(target, match):
    with pytest.raises(ValueError, match=match):
        label_smoothing_cross_entropy(torch.randn(2, 4), target, 0.1)


def test_bad_logits_and_blog_with_one_class_are_refused():
    with pytest.raises(ValueError, match="logits"):
        label_smoothing_cross_entropy(torch.randn(4), torch.tensor(0))
    with pytest.raises(ValueError, match="K=1"):
        label_smoothing_cross_entropy(torch.randn(2, 1), torch.tensor([0, 0]), 0.1, convention="blog")
    with pytest.raises(ValueError, match="smoothing"):
        LabelSmoothingCrossEntropy(1.5)
