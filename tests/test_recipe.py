"""fgvc_ref.recipe: the stage table reads like docs/recipe.md; every field is validated by name."""

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fgvc_ref.recipe import BLOG_TOP1, STAGES, VARIANTS, Recipe, apply_overrides, get_recipe, scale_epochs


def changed(a: Recipe, b: Recipe) -> dict:
    return {f.name: getattr(b, f.name) for f in dataclasses.fields(Recipe) if getattr(a, f.name) != getattr(b, f.name) and f.name != "name"}


def test_each_stage_changes_exactly_what_the_spec_table_says():
    s = list(STAGES.values())
    base = s[0]
    assert (base.lr, base.momentum, base.batch_size, base.epochs, base.patience, base.policy, base.label_smoothing) == (0.01, 0.9, 32, 600, 200, "standard", 0.0)
    assert changed(s[0], s[1]) == {"batch_size": 128, "lr": 0.1, "schedule": "step", "warmup_epochs": 5}
    assert (s[1].step_size, s[1].gamma, s[1].warmup_decay) == (30, 0.1, 0.01)
    assert changed(s[1], s[2]) == {"policy": "trivialaugment"}
    assert changed(s[2], s[3]) == {"schedule": "cosine"}
    assert changed(s[3], s[4]) == {"label_smoothing": 0.1, "lr": 0.4}
    assert changed(s[4], s[5]) == {"erasing_p": 0.1}
    assert changed(s[5], s[6]) == {"ema": True}
    assert (s[6].ema_steps, s[6].ema_decay) == (32, 0.994)
    assert list(STAGES) == list(BLOG_TOP1)


def test_spec_defaults_for_the_documented_ambiguities():
    r = STAGES["ema"]
    assert (r.ema_decay_reading, r.smoothing_convention, r.weights, r.jitter, r.lighting) == ("adjusted", "torch", "IMAGENET1K_V1", 0.4, 0.1)
    assert round(r.ema_update_decay(), 3) == 0.959
    assert apply_overrides(r, ["ema_decay_reading=per_update"]).ema_update_decay() == 0.994


@pytest.mark.parametrize("world_size", [1, 2, 8])
def test_ema_update_decay_is_torchvisions_adjustment_with_the_world_size(world_size):
    """d = 1 - min(1, (1 - decay) * world * batch * steps / epochs), written out here (the twin loop runs world 1)."""
    r = STAGES["ema"]
    expected = 1.0 - min(1.0, (1.0 - 0.994) * world_size * 128 * 32 / 600)
    assert r.ema_update_decay(world_size) == expected
    assert apply_overrides(r, ["ema_decay_reading=per_update"]).ema_update_decay(world_size) == 0.994


def test_policy_none_refuses_erasing_instead_of_dropping_it():
    with pytest.raises(ValueError, match="Recipe.erasing_p=0.1 needs an augmentation policy"):
        apply_overrides(STAGES["random_erasing"], ["policy=none"])


def test_variants_are_the_three_not_adopted_changes_on_top_of_the_final_stage():
    final = STAGES["ema"]
    assert [changed(final, v) for v in VARIANTS.values()] == [
        {"weight_decay": 1e-4}, {"mixup_alpha": 0.2, "cutmix_alpha": 1.0}, {"policy": "autoaugment"}]


@pytest.mark.parametrize("field, value", [("lr", -1.0), ("momentum", 1.5), ("schedule", "poly"), ("warmup_epochs", 600),
                                          ("label_smoothing", 1.0), ("policy", "randaugment"), ("erasing_p", 2.0), ("path", "gpu"),
                                          ("batch_size", 0), ("batch_size", 3.5), ("ema", "yes"), ("lr", float("nan"))])
def test_bad_values_raise_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"Recipe.{field}"):
        dataclasses.replace(STAGES["base"], **{field: value})


def test_overrides_parse_by_type_and_unknown_names_list_the_valid_ones():
    r = apply_overrides(STAGES["base"], ["lr=0.2", "ema=true", "epochs=10", "policy=trivialaugment", "weights=none"])
    assert (r.lr, r.ema, r.epochs, r.policy, r.weights) == (0.2, True, 10, "trivialaugment", "none")
    with pytest.raises(ValueError, match=r"unknown recipe field 'lrate'; valid fields: \[.*'lr'"):
        apply_overrides(STAGES["base"], ["lrate=1"])
    with pytest.raises(ValueError, match="Recipe.epochs must be int, got 'ten'"):
        apply_overrides(STAGES["base"], ["epochs=ten"])
    with pytest.raises(ValueError, match="field=value"):
        apply_overrides(STAGES["base"], ["lr"])
    with pytest.raises(ValueError, match=r"unknown stage 'nope'; valid stages: \['base'"):
        get_recipe("nope")


@given(epochs=st.integers(2, 600), stage=st.sampled_from(list(STAGES)))
def test_scaling_keeps_every_epoch_field_in_proportion_and_valid(epochs, stage):
    r = STAGES[stage]
    s = scale_epochs(r, epochs)
    f = epochs / r.epochs
    assert s.epochs == epochs and s.patience == round(r.patience * f) and s.step_size == max(1, round(r.step_size * f))
    assert (s.warmup_epochs == 0) == (r.warmup_epochs == 0) and s.warmup_epochs < epochs
    assert len(s.lrs()) == epochs


def test_lr_scale_multiplies_every_lr_of_the_schedule():
    r = STAGES["ema"]
    scaled = apply_overrides(r, ["lr_scale=0.25"])
    assert scaled.lrs() == [lr for lr in type(r).lrs(apply_overrides(r, [f"lr={r.lr * 0.25}"]))]
    with pytest.raises(ValueError, match="Recipe.lr_scale"):
        apply_overrides(r, ["lr_scale=0"])
