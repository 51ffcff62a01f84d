"""fgvc_ref.schedules: bit-exact with torch's SequentialLR(LinearLR, CosineAnnealingLR | StepLR)."""

import math
import warnings

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch.optim import lr_scheduler as sched

from fgvc_ref.schedules import epoch_lrs, lr_at, set_lr

# The recursion and the closed form are two float64 evaluation orders of the same function.
CLOSED_FORM_RTOL = 1e-12


def torch_epoch_lrs(base_lr, epochs, *, schedule, warmup_epochs, warmup_decay, step_size, gamma, min_lr):
    """The LR of each epoch as torchvision's reference script produces it (scheduler.step() per epoch)."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr, momentum=0.9, nesterov=True)
    main = {
        "cosine": lambda: sched.CosineAnnealingLR(opt, T_max=epochs - warmup_epochs, eta_min=min_lr),
        "step": lambda: sched.StepLR(opt, step_size=step_size, gamma=gamma),
        "constant": lambda: sched.LambdaLR(opt, lambda _: 1.0),
    }[schedule]()
    if warmup_epochs > 0:
        warm = sched.LinearLR(opt, start_factor=warmup_decay, total_iters=warmup_epochs)
        scheduler = sched.SequentialLR(opt, schedulers=[warm, main], milestones=[warmup_epochs])
    else:
        scheduler = main
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()"
        for _ in range(epochs):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            scheduler.step()
    return lrs


@st.composite
def configs(draw):
    epochs = draw(st.integers(1, 160))
    schedule = draw(st.sampled_from(["cosine", "step", "constant"]))
    base = draw(st.floats(1e-4, 2.0))
    return dict(
        base_lr=base,
        epochs=epochs,
        schedule=schedule,
        warmup_epochs=draw(st.one_of(st.just(0), st.just(epochs - 1), st.integers(0, epochs - 1))),
        warmup_decay=draw(st.one_of(st.just(1.0), st.floats(1e-4, 1.0))),
        step_size=draw(st.integers(1, 40)),
        gamma=draw(st.floats(0.01, 1.0)),
        min_lr=draw(st.floats(0.0, base)) if schedule == "cosine" else 0.0,
    )


# (a) equivalence ------------------------------------------------------------------------------


@given(configs())
def test_epoch_lrs_bit_exact_with_torch_schedulers(cfg):
    """Every epoch's LR equals torch's, bit for bit, including warmup 0 and warmup = epochs - 1."""
    assert epoch_lrs(**cfg) == torch_epoch_lrs(**cfg)


@pytest.mark.parametrize("schedule", ["cosine", "step"])
def test_blog_recipe_schedule_bit_exact(schedule):
    """The recipe's own values: 600 epochs, lr 0.1 (0.4), warmup 5 at decay 0.01, StepLR(30, 0.1)."""
    cfg = dict(base_lr=0.4 if schedule == "cosine" else 0.1, epochs=600, schedule=schedule, warmup_epochs=5,
               warmup_decay=0.01, step_size=30, gamma=0.1, min_lr=0.0)
    assert epoch_lrs(**cfg) == torch_epoch_lrs(**cfg)


@given(configs())
def test_closed_form_agrees_with_recursion(cfg):
    """lr_at (textbook closed form) == epoch_lrs (torch's recursion) to 1e-12 relative."""
    lrs = epoch_lrs(**cfg)
    for e, lr in enumerate(lrs):
        assert lr_at(e, **cfg) == pytest.approx(lr, rel=CLOSED_FORM_RTOL, abs=1e-300)


# (b) properties -------------------------------------------------------------------------------


@given(configs())
def test_warmup_is_monotone_and_reaches_base_lr_at_milestone(cfg):
    """Warmup rises strictly (decay < 1) from base*decay, stays below base, and the milestone is base."""
    lrs, W, base = epoch_lrs(**cfg), cfg["warmup_epochs"], cfg["base_lr"]
    assume(W > 0)
    warm = lrs[:W]
    assert warm[0] == base * cfg["warmup_decay"]
    assert all(a <= b for a, b in zip(warm, warm[1:]))
    assert all(lr <= base * (1 + 1e-12) for lr in warm)
    assert lrs[W] == pytest.approx(base, rel=1e-15)


@given(configs())
def test_cosine_ends_at_min_lr_and_decreases(cfg):
    """After the milestone cosine never rises; the schedule's end point (epoch == epochs) is min_lr."""
    assume(cfg["schedule"] == "cosine")
    lrs = epoch_lrs(**cfg)[cfg["warmup_epochs"]:]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(lrs, lrs[1:]))
    assert lr_at(cfg["epochs"], **cfg) == pytest.approx(cfg["min_lr"], abs=1e-15)
    assert min(lrs) >= cfg["min_lr"] - 1e-15


@given(configs())
def test_step_drops_come_at_warmup_plus_multiples_of_step_size(cfg):
    """StepLR behind warmup drops by gamma at epochs W + k*s, and nowhere else."""
    assume(cfg["schedule"] == "step" and cfg["gamma"] < 1.0)
    lrs, W, s = epoch_lrs(**cfg), cfg["warmup_epochs"], cfg["step_size"]
    for e in range(W + 1, cfg["epochs"]):
        dropped = lrs[e] < lrs[e - 1]
        assert dropped == ((e - W) % s == 0), e


def test_warmup_factors_of_the_spec():
    """docs/recipe.md, section 2: W=5, decay 0.01 gives 0.01, 0.208, 0.406, 0.604, 0.802, then 1.0 at epoch 5."""
    lrs = epoch_lrs(1.0, 10, schedule="cosine", warmup_epochs=5, warmup_decay=0.01)
    assert lrs[:6] == pytest.approx([0.01, 0.208, 0.406, 0.604, 0.802, 1.0], rel=1e-12)
    assert lrs[5] == 1.0


def test_recursion_differs_from_textbook_closed_form_in_the_last_bits():
    """docs/recipe.md, section 2: base 0.1, epoch 3 of a 5-epoch warmup: torch gives 0.060399999999999995."""
    lrs = epoch_lrs(0.1, 10, warmup_epochs=5, warmup_decay=0.01)
    assert lrs[3] == 0.060399999999999995
    assert lr_at(3, 0.1, 10, warmup_epochs=5, warmup_decay=0.01) == pytest.approx(0.0604, rel=1e-15)


def test_step_schedule_behind_warmup_drops_at_35_65_95():
    lrs = epoch_lrs(0.1, 100, schedule="step", warmup_epochs=5, step_size=30, gamma=0.1)
    drops = [e for e in range(6, 100) if lrs[e] < lrs[e - 1]]
    assert drops == [35, 65, 95]


def test_set_lr_applies_to_every_group():
    opt = torch.optim.SGD([{"params": [torch.zeros(1)]}, {"params": [torch.zeros(1)], "lr": 5.0}], lr=1.0)
    set_lr(opt, 0.25)
    assert [g["lr"] for g in opt.param_groups] == [0.25, 0.25]


# (c) bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(base_lr=-0.1), "base_lr"),
        (dict(warmup_decay=0.0), "warmup_decay"),
        (dict(warmup_decay=1.5), "warmup_decay"),
        (dict(warmup_epochs=10), "warmup_epochs"),
        (dict(warmup_epochs=-1), "warmup_epochs"),
        (dict(schedule="poly"), "schedule"),
        (dict(epochs=0), "epochs"),
        (dict(step_size=0, schedule="step"), "step_size"),
        (dict(gamma=0.0, schedule="step"), "gamma"),
        (dict(min_lr=0.2), "min_lr"),
        (dict(min_lr=0.01, schedule="step"), "min_lr"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, match):
    args = dict(base_lr=0.1, epochs=10) | kwargs
    with pytest.raises(ValueError, match=match):
        epoch_lrs(**args)
    with pytest.raises(ValueError, match=match):
        lr_at(0, **args)


def test_lr_at_refuses_epochs_outside_the_schedule():
    with pytest.raises(ValueError, match="epoch"):
        lr_at(11, 0.1, 10)
    assert math.isclose(lr_at(10, 0.1, 10), 0.0, abs_tol=1e-18)
