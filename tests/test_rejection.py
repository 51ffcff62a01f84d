"""fgvc_ref.rejection: scores against torch, AUROC against a pair count and scikit-learn (test-only), FPR at 95% TPR
against a literal threshold sweep and roc_curve, OSCR against a literal sweep, AURC and accuracy at coverage against
literal loops over every order of the tied images."""

import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fgvc_ref.rejection import (SCORES, accuracy_at_coverage, aurc, auroc, energy, fpr_at_tpr, max_logit, msp, oscr,
                                threshold_at_tpr)

RTOL = 1e-12  # float64 sums of at most a few hundred terms

# scores from a small integer set, so that ties within and across the known and unknown sets are common
scores = st.lists(st.integers(0, 5), min_size=1, max_size=20).map(lambda v: torch.tensor(v, dtype=torch.float64))
shares = st.one_of(st.sampled_from([0.05, 0.5, 0.8, 0.9, 0.95, 1.0]), st.floats(0.01, 1.0))


@st.composite
def scored_and_correct(draw, max_images=20):
    s = draw(st.lists(st.integers(0, 5), min_size=1, max_size=max_images))
    c = draw(st.lists(st.booleans(), min_size=len(s), max_size=len(s)))
    return torch.tensor(s, dtype=torch.float64), torch.tensor(c)


@st.composite
def logits(draw):
    n, k = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    v = draw(st.lists(st.floats(-20, 20, allow_nan=False), min_size=n * k, max_size=n * k))
    return torch.tensor(v, dtype=torch.float64).view(n, k)


def pair_count(known, unknown):
    """sum_i sum_j [a_i > b_j] + 1/2 [a_i = b_j], doubled to stay an integer."""
    return sum(2 * (a > b) + (a == b) for a in known.tolist() for b in unknown.tolist())


def literal_risks(ordered_correct):
    """risk(k/n) = errors among the first k / k, k = 1..n, for images already in order."""
    return [sum(not c for c in ordered_correct[:k]) / k for k in range(1, len(ordered_correct) + 1)]


def smallest_count(n, share):
    return next(k for k in range(1, n + 1) if k / n >= share)


# --- equivalence: scores -------------------------------------------------------------------------


@given(logits(), st.sampled_from([0.5, 1.0, 2.0]))
def test_msp_is_the_max_of_the_tempered_softmax(z, t):
    assert torch.equal(msp(z, t), torch.softmax(z / t, 1).max(1).values)


@given(logits())
def test_energy_is_logsumexp_that_is_minus_the_free_energy(z):
    free_energy = -torch.logsumexp(z, 1)  # Liu et al.'s E(x) = -T logsumexp(f(x) / T), T = 1
    assert torch.equal(energy(z), -free_energy)
    assert torch.equal(max_logit(z), z.max(1).values)


def test_scores_table_holds_the_three_scores():
    assert SCORES == {"msp": msp, "max_logit": max_logit, "energy": energy}


# --- equivalence: metrics ------------------------------------------------------------------------


@given(scores, scores)
def test_auroc_is_the_pair_count_with_ties_one_half(known, unknown):
    assert auroc(known, unknown) == pair_count(known, unknown) / (2 * len(known) * len(unknown))


@given(scores, scores)
def test_auroc_equals_sklearn_roc_auc_score_with_known_positive(known, unknown):
    metrics = pytest.importorskip("sklearn.metrics")
    y = torch.cat([torch.ones(len(known)), torch.zeros(len(unknown))]).numpy()
    assert auroc(known, unknown) == pytest.approx(metrics.roc_auc_score(y, torch.cat([known, unknown]).numpy()), rel=RTOL)


@given(scores, scores, shares)
def test_threshold_and_fpr_equal_a_literal_sweep_over_every_candidate_threshold(known, unknown, q):
    """t_q = the largest t with #{a >= t}/N >= q (swept over every score of either set); FPR = #{b >= t_q}/M."""
    a, b = known.tolist(), unknown.tolist()
    t = next(t for t in sorted(set(a) | set(b), reverse=True) if sum(x >= t for x in a) / len(a) >= q)
    assert threshold_at_tpr(known, q) == t
    assert fpr_at_tpr(known, unknown, q) == sum(x >= t for x in b) / len(b)


@given(scores, scores, shares)
def test_fpr_at_tpr_equals_sklearn_roc_curve_at_the_first_tpr_reaching_q(known, unknown, q):
    metrics = pytest.importorskip("sklearn.metrics")
    y = torch.cat([torch.ones(len(known)), torch.zeros(len(unknown))]).numpy()
    fpr, tpr, thresholds = metrics.roc_curve(y, torch.cat([known, unknown]).numpy(), drop_intermediate=False)
    i = int((tpr >= q).argmax())
    assert (fpr_at_tpr(known, unknown, q), threshold_at_tpr(known, q)) == (fpr[i], thresholds[i])


@given(scored_and_correct(), scores)
def test_oscr_is_the_area_under_a_literal_sweep_of_ccr_against_fpr(known_and_correct, unknown):
    """Points (FPR(t), CCR(t)) for t = +inf and every score, highest first, joined by straight lines."""
    known, correct = known_and_correct
    a, c, b = known.tolist(), correct.tolist(), unknown.tolist()
    points = [(sum(x >= t for x in b) / len(b), sum(x >= t and ok for x, ok in zip(a, c)) / len(a))
              for t in [math.inf, *sorted(set(a) | set(b), reverse=True)]]
    area = sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in itertools.pairwise(points))
    assert points[-1] == (1.0, sum(c) / len(c))
    assert oscr(known, correct, unknown) == pytest.approx(area, rel=RTOL, abs=RTOL)


@given(scored_and_correct(max_images=6))
def test_aurc_and_accuracy_at_coverage_are_the_mean_over_every_order_of_the_tied_images(data):
    """Literal loops over each ordering by score descending, ties broken by every one of the n! ranks, averaged."""
    s, correct = data
    n, v, c = len(s), s.tolist(), correct.tolist()
    orders = [[c[i] for i in sorted(range(n), key=lambda i: (-v[i], rank[i]))] for rank in itertools.permutations(range(n))]
    assert aurc(s, correct) == pytest.approx(sum(sum(literal_risks(o)) / n for o in orders) / len(orders), rel=RTOL, abs=RTOL)
    for cover in (0.3, 0.5, 0.9, 1.0):
        k = smallest_count(n, cover)
        expected = sum(sum(o[:k]) / k for o in orders) / len(orders)
        assert accuracy_at_coverage(s, correct, cover) == pytest.approx(expected, rel=RTOL, abs=RTOL)


@given(st.lists(st.booleans(), min_size=1, max_size=40), st.randoms(use_true_random=False), shares)
def test_aurc_and_accuracy_at_coverage_equal_literal_loops_without_ties(c, rng, cover):
    order = list(range(len(c)))
    rng.shuffle(order)
    s = torch.tensor([float(-r) for r in order], dtype=torch.float64)  # image i is the order[i]-th most confident
    ranked = [c[i] for i in sorted(range(len(c)), key=lambda i: order[i])]
    assert aurc(s, torch.tensor(c)) == pytest.approx(sum(literal_risks(ranked)) / len(c), rel=RTOL, abs=RTOL)
    k = smallest_count(len(c), cover)
    assert accuracy_at_coverage(s, torch.tensor(c), cover) == pytest.approx(sum(ranked[:k]) / k, rel=RTOL, abs=RTOL)


# --- properties ----------------------------------------------------------------------------------


@given(logits(), st.floats(-50, 50))
def test_adding_a_constant_to_every_logit_keeps_msp_and_shifts_max_logit_and_energy_by_it(z, c):
    assert torch.allclose(msp(z + c), msp(z), rtol=1e-12, atol=1e-12)
    assert torch.allclose(max_logit(z + c), max_logit(z) + c, rtol=1e-12, atol=1e-12)
    assert torch.allclose(energy(z + c), energy(z) + c, rtol=1e-12, atol=1e-12)


def test_every_score_is_higher_for_a_confident_image_than_for_an_unsure_one():
    z = torch.tensor([[9.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    for name, score in SCORES.items():
        high, low = score(z).tolist()
        assert high > low, name


@given(scored_and_correct(), scores)
def test_oscr_equals_auroc_exactly_when_every_known_image_is_correct_and_is_at_most_it_otherwise(data, unknown):
    known, correct = data
    assert oscr(known, torch.ones_like(correct), unknown) == auroc(known, unknown)
    assert oscr(known, correct, unknown) <= auroc(known, unknown)
    assert oscr(known, correct, unknown) <= float(correct.double().mean())


@given(scores, scores)
def test_auroc_with_unknown_positive_and_negated_scores_is_the_same(known, unknown):
    """Why the positive class does not matter for AUROC (it does for FPR@95: see the module docstring)."""
    assert auroc(known, unknown) + auroc(unknown, known) == pytest.approx(1.0, rel=RTOL)
    assert auroc(known, unknown) == auroc(-unknown, -known)


@given(scored_and_correct(max_images=30))
def test_a_perfect_ranking_gives_the_minimal_aurc(data):
    """Correct images first: E_k = max(0, k - (n - m)) for m errors, the least any ranking can have at every k."""
    s, correct = data
    n, m = len(correct), int((~correct).sum())
    best = sum((k - (n - m)) / k for k in range(n - m + 1, n + 1)) / n
    assert aurc(correct.double(), correct) == pytest.approx(best, rel=RTOL, abs=RTOL)
    assert aurc(s, correct) >= best - RTOL


# --- examples ------------------------------------------------------------------------------------


def test_threshold_keeps_95_percent_of_twenty_known_images():
    known = torch.arange(1.0, 21.0)  # 1..20: keeping 19 of 20 (95%) puts the threshold at 2
    assert threshold_at_tpr(known) == 2.0
    assert fpr_at_tpr(known, torch.tensor([0.0, 1.0, 2.0, 3.0])) == 0.5  # 2 and 3 accepted: a tie at t counts
    assert threshold_at_tpr(torch.tensor([5.0, 5.0, 5.0, 1.0]), 0.5) == 5.0  # the tie keeps 75% >= 50%


def test_coverage_counts_images_without_the_rounding_of_the_product():
    """0.07 * 100 = 7.000000000000001 in floats; ceil of it would take 8 images, the smallest k with k/100 >= 0.07 is 7."""
    correct = torch.tensor([True] * 7 + [False] * 93)
    s = -torch.arange(100.0)
    assert accuracy_at_coverage(s, correct, 0.07) == 1.0
    assert accuracy_at_coverage(s, correct, 0.08) == 7 / 8


def test_a_tie_group_cut_by_the_coverage_counts_its_mean_error_rate():
    s, correct = torch.tensor([3.0, 2.0, 2.0, 1.0]), torch.tensor([True, False, True, False])
    assert accuracy_at_coverage(s, correct, 0.5) == 0.75  # image 1, then half of the tied pair's one error
    assert aurc(s, correct) == pytest.approx((0 + 0.5 / 2 + 1 / 3 + 2 / 4) / 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_inputs_give_the_cpu_results():
    g = torch.Generator().manual_seed(1)
    z, u, c = torch.randn(300, 5, generator=g), torch.randn(200, 5, generator=g), torch.rand(300, generator=g) < 0.7
    for score in SCORES.values():
        a, b = score(z), score(u)
        assert torch.allclose(score(z.cuda()).cpu(), a)
        a, b = a.double(), b.double()
        assert auroc(a.cuda(), b.cuda()) == auroc(a, b)
        assert fpr_at_tpr(a.cuda(), b.cuda()) == fpr_at_tpr(a, b)
        assert oscr(a.cuda(), c.cuda(), b.cuda()) == oscr(a, c, b)
        assert aurc(a.cuda(), c.cuda()) == aurc(a, c)


# --- bad input -----------------------------------------------------------------------------------


A, B, C = torch.tensor([1.0, 2.0]), torch.tensor([0.0]), torch.tensor([True, False])


@pytest.mark.parametrize("call, name", [
    (lambda: auroc(torch.tensor([]), B), "known is empty"),
    (lambda: auroc(A, torch.tensor([])), "unknown is empty"),
    (lambda: fpr_at_tpr(A, torch.tensor([])), "unknown is empty"),
    (lambda: threshold_at_tpr(torch.tensor([])), "known is empty"),
    (lambda: oscr(A, C, torch.tensor([])), "unknown is empty"),
    (lambda: aurc(torch.tensor([]), torch.tensor([], dtype=torch.bool)), "scores is empty"),
    (lambda: auroc(A.view(2, 1), B), "known must be a 1-D"),
    (lambda: auroc(A, torch.tensor([math.nan])), "unknown holds NaN"),
    (lambda: oscr(A, torch.tensor([True]), B), "known_correct"),
    (lambda: oscr(A, torch.tensor([1, 0]), B), "known_correct"),
    (lambda: aurc(A, torch.tensor([True])), "correct"),
    (lambda: accuracy_at_coverage(A, C, 0.0), "coverage"),
    (lambda: accuracy_at_coverage(A, C, 1.5), "coverage"),
    (lambda: fpr_at_tpr(A, B, 0.0), "tpr"),
    (lambda: threshold_at_tpr(A, 1.01), "tpr"),
    (lambda: msp(torch.zeros(2, 3), 0.0), "temperature"),
    (lambda: msp(torch.zeros(2, 3), -2.0), "temperature"),
    (lambda: energy(torch.zeros(3)), "logits"),
])
def test_bad_input_is_refused_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
