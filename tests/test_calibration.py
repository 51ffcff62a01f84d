"""fgvc_ref.calibration: NLL against torch's cross-entropy, ECE and its bins against a literal loop and a hand
computation, the fitted temperature against scipy's bounded minimiser and a planted temperature."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from fgvc_ref.calibration import LOG_T_BRACKET, LOG_T_TOLERANCE, ece, fit_temperature, nll, reliability

RTOL = 1e-12  # float64 throughout; the oracles differ only in the order of a few additions
temperatures = st.sampled_from([0.25, 0.5, 1.0, 2.0, 3.0])
bin_counts = st.sampled_from([1, 2, 3, 4, 5, 6, 10, 15])


@st.composite
def logits_and_labels(draw, max_images=12, max_classes=5):
    """Logits from a small integer set (ties in the argmax, confidences such as 1/2 and 1/3 exactly on bin edges)."""
    n, k = draw(st.integers(1, max_images)), draw(st.integers(1, max_classes))
    z = draw(st.lists(st.integers(-3, 3), min_size=n * k, max_size=n * k))
    y = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    return torch.tensor(z, dtype=dtype).view(n, k), torch.tensor(y)


def literal_bins(z, y, bins, temperature):
    """B_m = {i : (m-1)/M < conf_i <= m/M}, as the docstring writes it, with per-bin hit and confidence lists."""
    conf = torch.softmax(z.double() / temperature, 1).amax(1).tolist()
    hit = (z.argmax(1) == y).tolist()
    return [[(hit[i], conf[i]) for i in range(len(conf)) if (m - 1) / bins < conf[i] <= m / bins] for m in range(1, bins + 1)]


# --- equivalence ---------------------------------------------------------------------------------


@given(logits_and_labels(), temperatures)
def test_nll_equals_torch_cross_entropy_of_scaled_logits(data, t):
    z, y = data
    assert nll(z, y, t) == pytest.approx(float(F.cross_entropy(z.double() / t, y)), rel=RTOL, abs=RTOL)
    assert nll(z, y, t) == pytest.approx(-float(torch.log_softmax(z.double() / t, 1)[range(len(y)), y].mean()), rel=RTOL, abs=RTOL)


@given(logits_and_labels(), bin_counts, temperatures)
def test_ece_and_bins_equal_a_literal_loop_over_guos_half_open_bins(data, bins, t):
    """count, accuracy and confidence of every bin, and ECE = sum_m |B_m|/n |acc - conf|, by the docstring's loop."""
    z, y = data
    literal = literal_bins(z, y, bins, t)
    table = reliability(z, y, bins, t)
    assert [(b["lower"], b["upper"]) for b in table] == [((m - 1) / bins, m / bins) for m in range(1, bins + 1)]
    assert [b["count"] for b in table] == [len(members) for members in literal]
    expected = 0.0
    for b, members in zip(table, literal):
        if not members:
            assert b["accuracy"] is None and b["confidence"] is None
            continue
        acc, conf = sum(h for h, _ in members) / len(members), sum(c for _, c in members) / len(members)
        assert (b["accuracy"], b["confidence"]) == pytest.approx((acc, conf), rel=RTOL)
        expected += len(members) / len(y) * abs(acc - conf)
    assert ece(z, y, bins, t) == pytest.approx(expected, rel=RTOL, abs=RTOL)
    assert 0.0 <= ece(z, y, bins, t) <= 1.0


@given(logits_and_labels(max_images=8, max_classes=4))
def test_fitted_temperature_minimises_nll_as_scipy_bounded_search_does(data):
    optimize = pytest.importorskip("scipy.optimize")
    z, y = data
    t = fit_temperature(z, y)
    ref = optimize.minimize_scalar(lambda u: nll(z, y, math.exp(u)), bounds=LOG_T_BRACKET, method="bounded", options={"xatol": 1e-10})
    assert math.exp(LOG_T_BRACKET[0]) * (1 - 1e-6) <= t <= math.exp(LOG_T_BRACKET[1]) * (1 + 1e-6)
    # the search ends within LOG_T_TOLERANCE of the minimiser in u = log T: NLL is above the minimum by at most the
    # slope there (0 inside the bracket, not at an end) times that tolerance
    h = 1e-6
    slack = abs(nll(z, y, t * math.exp(h)) - nll(z, y, t * math.exp(-h))) / (2 * h) * LOG_T_TOLERANCE + 1e-9
    assert nll(z, y, t) <= nll(z, y, math.exp(ref.x)) + slack
    assert nll(z, y, t) <= nll(z, y, 1.0) + slack


# --- properties ----------------------------------------------------------------------------------


@given(logits_and_labels(), st.lists(temperatures, min_size=2, max_size=3))
def test_temperature_never_changes_which_images_are_top1_correct(data, ts):
    """sum_m |B_m| acc(B_m) is the number of images whose logits' argmax is the label, whatever T."""
    z, y = data
    right = int((z.argmax(1) == y).sum())
    for t in ts:
        assert round(sum(b["count"] * b["accuracy"] for b in reliability(z, y, 10, t) if b["count"])) == right
        assert torch.equal((z.double() / t).argmax(1), z.argmax(1))


@given(logits_and_labels())
def test_nll_is_convex_in_the_inverse_temperature(data):
    """The premise of the golden-section search: second differences of NLL(1/beta) on a grid of beta are >= 0."""
    z, y = data
    betas = [0.05 * 1.5**i for i in range(12)]
    f = [nll(z, y, 1.0 / b) for b in betas]
    for i in range(1, len(betas) - 1):  # convexity on an uneven grid: f(mid) <= the chord between its neighbours
        w = (betas[i] - betas[i - 1]) / (betas[i + 1] - betas[i - 1])
        assert f[i] <= (1 - w) * f[i - 1] + w * f[i + 1] + 1e-9


TEMPERATURE_RTOL = 0.03  # the MLE's relative standard error here is ~0.6% (computed below): 3% is ~5 of them


@pytest.mark.parametrize("planted", [0.5, 2.0])
def test_fitted_temperature_recovers_a_planted_one_and_keeps_top1(planted):
    """Labels drawn from softmax(z / T0): the fit finds T0 within 3%, lowers NLL from T = 1, changes no prediction."""
    g = torch.Generator().manual_seed(0)
    z = 2.0 * torch.randn(40_000, 10, generator=g, dtype=torch.float64)
    y = torch.multinomial(torch.softmax(z / planted, 1), 1, generator=g)[:, 0]
    p = torch.softmax(z / planted, 1)  # Fisher information for beta = 1/T: sum_i Var_{p_i}(z_i)
    relative_se = float(planted / (p * z * z - p * z * (p * z).sum(1, keepdim=True)).sum().sqrt())
    assert relative_se < TEMPERATURE_RTOL / 4
    t = fit_temperature(z, y)
    assert t == pytest.approx(planted, rel=TEMPERATURE_RTOL)
    assert nll(z, y, t) < nll(z, y, 1.0)
    assert torch.equal((z / t).argmax(1), z.argmax(1))
    assert ece(z, y, temperature=t) < ece(z, y)


# --- examples ------------------------------------------------------------------------------------


def confident(c: float) -> list[float]:
    """Four-class logits whose softmax is (c, (1-c)/3, (1-c)/3, (1-c)/3): confidence c on class 0."""
    return [math.log(c)] + [math.log((1 - c) / 3)] * 3


def test_ece_of_a_hand_computed_three_bin_case():
    """Bins (0, 1/3], (1/3, 2/3], (2/3, 1]; confidence / correct: 0.3 y | 0.5 n, 0.6 y | 0.9 y, 0.8 n, 0.7 y.

    bin 1: 1 image, acc 1,   conf 0.3,  gap 0.7     -> 1/6 * 0.7    = 0.116667
    bin 2: 2 images, acc 1/2, conf 0.55, gap 0.05   -> 2/6 * 0.05   = 0.016667
    bin 3: 3 images, acc 2/3, conf 0.8,  gap 2/15   -> 3/6 * 2/15   = 0.066667
    ECE = (0.7 + 0.1 + 0.4) / 6 = 0.2
    """
    z = torch.tensor([confident(c) for c in (0.3, 0.5, 0.6, 0.9, 0.8, 0.7)], dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 0, 2, 0])
    table = reliability(z, y, bins=3)
    assert [b["count"] for b in table] == [1, 2, 3]
    assert [b["accuracy"] for b in table] == pytest.approx([1.0, 0.5, 2 / 3])
    assert [b["confidence"] for b in table] == pytest.approx([0.3, 0.55, 0.8])
    assert ece(z, y, bins=3) == pytest.approx(0.2, rel=1e-12)


def test_a_confidence_on_an_edge_falls_in_the_lower_bin_and_one_in_the_top_bin():
    half = torch.zeros(1, 2)  # softmax (1/2, 1/2) exactly: the edge between bins 1 and 2 of 2, and of bins 2 and 3 of 4
    assert [b["count"] for b in reliability(half, torch.tensor([0]), bins=2)] == [1, 0]
    assert [b["count"] for b in reliability(half, torch.tensor([0]), bins=4)] == [0, 1, 0, 0]
    sure = torch.tensor([[0.0, -1000.0]])  # softmax (1, 0) exactly
    assert [b["count"] for b in reliability(sure, torch.tensor([0]), bins=3)] == [0, 0, 1]
    assert ece(sure, torch.tensor([0]), bins=3) == 0.0 and ece(sure, torch.tensor([1]), bins=3) == 1.0


def test_uniform_logits_have_nll_log_k_at_every_temperature():
    z, y = torch.zeros(5, 7), torch.arange(5)
    for t in (0.1, 1.0, 10.0):
        assert nll(z, y, t) == pytest.approx(math.log(7), rel=1e-14)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_inputs_give_the_cpu_results():
    g = torch.Generator().manual_seed(1)
    z, y = torch.randn(200, 5, generator=g), torch.randint(5, (200,), generator=g)
    assert nll(z.cuda(), y.cuda(), 1.5) == nll(z, y, 1.5)
    assert reliability(z.cuda(), y.cuda()) == reliability(z, y)
    assert fit_temperature(z.cuda(), y.cuda()) == fit_temperature(z, y)


# --- bad input -----------------------------------------------------------------------------------


Z, Y = torch.zeros(3, 4), torch.tensor([0, 1, 2])


@pytest.mark.parametrize("call, name", [
    (lambda: nll(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)), "logits"),
    (lambda: nll(torch.zeros(3), Y), "logits"),
    (lambda: nll(Z, torch.tensor([0, 1])), "labels"),
    (lambda: nll(Z, Y.float()), "labels"),
    (lambda: nll(Z, torch.tensor([0, 1, 4])), r"labels must lie in \[0, 4\).*\[4\]"),
    (lambda: nll(Z, Y, 0.0), "temperature"),
    (lambda: nll(Z, Y, -1.0), "temperature"),
    (lambda: ece(Z, Y, temperature=math.inf), "temperature"),
    (lambda: reliability(Z, Y, bins=0), "bins"),
    (lambda: ece(Z, Y, bins=2.5), "bins"),
    (lambda: fit_temperature(torch.full((3, 4), math.nan), Y), "NaN"),
    (lambda: fit_temperature(Z, torch.tensor([[0, 1, 2]])), "labels"),
])
def test_bad_input_is_refused_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
