"""fgvc_ref.ema: bit-exact with torchvision's AveragedModel-based ExponentialMovingAverage."""

import io

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.optim.swa_utils import AveragedModel

from fgvc_ref.ema import EMA, adjusted_ema_decay, ema_update_, resets_after_update, should_update


def small_bn_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))


def torchvision_ema(model: nn.Module, decay: float) -> AveragedModel:
    """torchvision/references/classification/utils.py ExponentialMovingAverage, written out."""
    return AveragedModel(model, avg_fn=lambda avg, cur, n: decay * avg + (1 - decay) * cur, use_buffers=True)


def _train_and_average(seed, decay, epochs, steps_per_epoch, ema_steps, warmup_epochs, *, roundtrip_at=None):
    """Train a BN net with NAG-like updates; keep both EMAs with torchvision's update rule."""
    model = small_bn_net(seed)
    ours, ref = EMA(model, decay), torchvision_ema(model, decay)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        for i in range(steps_per_epoch):
            x = torch.randn(4, 3, 6, 6, generator=g)
            loss = model(x).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if should_update(i, ema_steps):
                ours.update(model)
                ref.update_parameters(model)
                if resets_after_update(epoch, warmup_epochs):
                    ours.reset_counter()
                    ref.n_averaged.fill_(0)
        if epoch == roundtrip_at:
            ours = _roundtrip(ours, model)
    return model, ours, ref


def _roundtrip(ema: EMA, model: nn.Module) -> EMA:
    buf = io.BytesIO()
    torch.save(ema.state_dict(), buf)
    buf.seek(0)
    fresh = EMA(model, 0.5)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    return fresh


def _assert_states_equal(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        assert torch.equal(sa[k], sb[k]), k


# (a) equivalence ------------------------------------------------------------------------------


@given(
    seed=st.integers(0, 1000),
    decay=st.one_of(st.sampled_from([0.0, 0.5, 0.959, 0.9999, 1.0]), st.floats(0.0, 1.0)),
    epochs=st.integers(1, 4),
    steps_per_epoch=st.integers(1, 6),
    ema_steps=st.integers(1, 4),
    warmup_epochs=st.integers(0, 3),
    data=st.data(),
)
def test_bit_exact_with_averaged_model_including_buffers_and_warmup_resets(
    seed, decay, epochs, steps_per_epoch, ema_steps, warmup_epochs, data
):
    """Parameters, BN running stats and num_batches_tracked equal AveragedModel(avg_fn=d*a+(1-d)*m,
    use_buffers=True) bit for bit, with torchvision's warmup resets and a state_dict round trip."""
    roundtrip_at = data.draw(st.sampled_from([None, *range(epochs)]))
    _, ours, ref = _train_and_average(seed, decay, epochs, steps_per_epoch, ema_steps, warmup_epochs, roundtrip_at=roundtrip_at)
    _assert_states_equal(ours.module, ref.module)
    assert ours.num_updates == int(ref.n_averaged)


def test_ema_update_is_the_written_expression_not_lerp():
    """d*a + (1-d)*m and torch.lerp round differently; the spec pins the former."""
    g = torch.Generator().manual_seed(0)
    a, m, d = torch.randn(10_000, generator=g), torch.randn(10_000, generator=g), 0.959
    expected = d * a + (1 - d) * m
    ours = a.clone()
    ema_update_([ours], [m], d)
    assert torch.equal(ours, expected)
    assert not torch.equal(torch.lerp(a, m, 1 - d), expected)  # the bug this test guards against


# (b) properties -------------------------------------------------------------------------------


@given(seed=st.integers(0, 100), steps=st.integers(1, 5))
def test_ema_with_decay_zero_copies_weights(seed, steps):
    """d = 0: after any update the average equals the live model exactly (buffers too)."""
    model, ours, _ = _train_and_average(seed, 0.0, 1, steps, 1, 0)
    _assert_states_equal(ours.module, model)


@given(decay=st.floats(0.0, 1.0), updates=st.integers(1, 10), value=st.floats(-1e3, 1e3))
def test_ema_of_constant_weights_is_constant(decay, updates, value):
    """If the live weights never change, d*c + (1-d)*c stays c (to float rounding, 1 ulp per update)."""
    model = nn.Linear(3, 2)
    nn.init.constant_(model.weight, value), nn.init.constant_(model.bias, value)
    ema = EMA(model, decay)
    for _ in range(updates):
        ema.update(model)
    for p in ema.module.parameters():
        torch.testing.assert_close(p, torch.full_like(p, value), rtol=updates * 1.2e-7, atol=1e-30)


def test_first_update_and_update_after_reset_are_copies():
    model = small_bn_net(0)
    ema = EMA(model, 0.9)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    _assert_states_equal(ema.module, model)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    ema.reset_counter()
    ema.update(model)
    _assert_states_equal(ema.module, model)


def test_ema_never_writes_into_the_live_model_and_has_no_grad():
    model = small_bn_net(1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ema = EMA(model, 0.5)
    ema.update(model), ema.update(model)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_integer_buffer_goes_through_the_formula_and_is_truncated():
    """num_batches_tracked: d*a + (1-d)*m in torch's default float dtype, truncated on copy (as torchvision).

    In float32 (1 - 0.9) * 10 rounds to exactly 1.0, whereas Python's float64 gives 0.9999999999999998."""
    model = nn.BatchNorm1d(2)
    ema = EMA(model, 0.9)
    ema.update(model)  # copy: 0
    model.num_batches_tracked.fill_(10)
    ema.update(model)
    expected = (0.9 * torch.tensor(0) + (1 - 0.9) * torch.tensor(10)).long()
    assert ema.module.num_batches_tracked.dtype == torch.long
    assert ema.module.num_batches_tracked.item() == expected.item() == 1


# (c) adjusted decay and update rule -----------------------------------------------------------


def test_adjusted_decay_of_the_blog_recipe_is_0_959():
    d = adjusted_ema_decay(0.994, world_size=1, batch_size=128, ema_steps=32, epochs=600)
    assert d == pytest.approx(1 - 0.006 * 128 * 32 / 600, rel=1e-12)
    assert round(d, 3) == 0.959


@given(
    decay=st.floats(0.0, 1.0), world=st.integers(1, 16), batch=st.integers(1, 512),
    steps=st.integers(1, 64), epochs=st.integers(1, 1000),
)
def test_adjusted_decay_equals_torchvision_formula_and_stays_in_range(decay, world, batch, steps, epochs):
    """d = 1 - min(1, (1 - decay) * world * batch * steps / epochs), as torchvision's train.py computes it."""
    adjust = world * batch * steps / epochs
    expected = 1.0 - min(1.0, (1.0 - decay) * adjust)
    d = adjusted_ema_decay(decay, world_size=world, batch_size=batch, ema_steps=steps, epochs=epochs)
    assert d == expected and 0.0 <= d <= 1.0


def test_update_rule_two_updates_per_epoch_for_stanford_cars():
    """8,144 images at batch 128 = 64 iterations; i % 32 == 0 gives updates at i = 0 and 32."""
    iters = -(-8144 // 128)
    assert iters == 64
    assert [i for i in range(iters) if should_update(i, 32)] == [0, 32]
    assert resets_after_update(4, 5) and not resets_after_update(5, 5)


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(decay=1.5), "decay"), (dict(world_size=0), "world_size"), (dict(batch_size=0), "batch_size"),
     (dict(ema_steps=0), "ema_steps"), (dict(epochs=0), "epochs")],
)
def test_bad_arguments_name_them(kwargs, match):
    args = dict(decay=0.99, world_size=1, batch_size=32, ema_steps=1, epochs=10) | kwargs
    with pytest.raises(ValueError, match=match):
        adjusted_ema_decay(args.pop("decay"), **args)


def test_ema_refuses_bad_decay_and_mismatched_model():
    with pytest.raises(ValueError, match="decay"):
        EMA(nn.Linear(2, 2), -0.1)
    ema = EMA(nn.Linear(2, 2), 0.9)
    with pytest.raises(ValueError, match="parameters"):
        ema.update(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))
