"""fgvc_ref.optim.NAG: bit-exact with torch.optim.SGD(nesterov=True) on the same code path."""

import copy
import io

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fgvc_ref.optim import NAG


def _params(seed: int, shapes=((3, 4), (4,), (2, 2, 3), (5,))):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, requires_grad=True) for s in shapes]


def _clone(params):
    return [p.detach().clone().requires_grad_(True) for p in params]


def _run_pair(seed, steps, lrs, momentum, wd, foreach, *, roundtrip_at=None, skip_grad=None):
    """Step NAG and torch SGD side by side on two param groups with the same gradients.

    ``skip_grad``: index of a parameter left without a grad on even steps (it must not move then).
    ``roundtrip_at``: save/load both optimizers' state_dicts through bytes at this step.
    """
    ours, ref = _params(seed), None
    ref = _clone(ours)
    make = lambda cls, ps, **kw: cls([{"params": ps[:2]}, {"params": ps[2:], "lr": lrs[0] * 0.5}], lr=lrs[0], momentum=momentum, weight_decay=wd, foreach=foreach, **kw)
    opt = make(NAG, ours)
    sgd = make(torch.optim.SGD, ref, nesterov=True)
    g = torch.Generator().manual_seed(seed + 1)
    for step in range(steps):
        for group_a, group_b in zip(opt.param_groups, sgd.param_groups):
            group_a["lr"] = group_b["lr"] = lrs[step % len(lrs)] * (1.0 if group_a is opt.param_groups[0] else 0.5)
        for i, (a, b) in enumerate(zip(ours, ref)):
            if skip_grad == i and step % 2 == 0:
                a.grad = b.grad = None
            else:
                grad = torch.randn(a.shape, generator=g)
                a.grad, b.grad = grad.clone(), grad.clone()
        opt.step()
        sgd.step()
        if step == roundtrip_at:
            opt = _roundtrip(opt, lambda: make(NAG, ours))
            sgd = _roundtrip(sgd, lambda: make(torch.optim.SGD, ref, nesterov=True))
    return ours, ref, opt, sgd


def _roundtrip(opt, fresh):
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    new = fresh()
    new.load_state_dict(torch.load(buf, weights_only=True))
    return new


hyper = dict(
    seed=st.integers(0, 10_000),
    steps=st.integers(1, 25),
    lrs=st.lists(st.floats(1e-4, 1.0), min_size=1, max_size=4),
    momentum=st.floats(0.01, 0.99),
    wd=st.sampled_from([0.0, 1e-4, 5e-2]),
)


# (a) equivalence ------------------------------------------------------------------------------


@pytest.mark.parametrize("foreach", [False, True])
@given(**hyper, data=st.data())
def test_bit_exact_with_torch_sgd_nesterov_on_the_same_path(foreach, seed, steps, lrs, momentum, wd, data):
    """Params and momentum buffers equal torch's SGD(nesterov=True) bit for bit, with LR changes between
    steps, two param groups, a parameter that sometimes has no grad, and a state_dict round trip."""
    roundtrip = data.draw(st.integers(0, steps - 1))
    skip = data.draw(st.sampled_from([None, 1, 3]))
    ours, ref, opt, sgd = _run_pair(seed, steps, lrs, momentum, wd, foreach, roundtrip_at=roundtrip, skip_grad=skip)
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)
        sa, sb = opt.state.get(a, {}), sgd.state.get(b, {})
        assert (sa.get("momentum_buffer") is None) == (sb.get("momentum_buffer") is None)
        if sa.get("momentum_buffer") is not None:
            assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])


@given(**hyper)
def test_single_tensor_and_foreach_paths_agree_to_one_ulp(seed, steps, lrs, momentum, wd):
    """Across code paths torch itself may differ in the last bit: allow 1 ulp (float32)."""
    a, *_ = _run_pair(seed, steps, lrs, momentum, wd, False)
    b, *_ = _run_pair(seed, steps, lrs, momentum, wd, True)
    for x, y in zip(a, b):
        ulp = torch.finfo(torch.float32).eps * x.detach().abs().clamp(min=1e-30)
        assert ((x - y).abs() <= ulp).all()


def test_state_dict_loads_from_torch_sgd():
    """The buffer lives under 'momentum_buffer', so a torch SGD state dict continues in NAG exactly."""
    ours = _params(0)
    ref = _clone(ours)
    sgd = torch.optim.SGD(ref, lr=0.1, momentum=0.9, nesterov=True)
    for p in ref:
        p.grad = torch.ones_like(p)
    sgd.step()
    opt = NAG(ours, lr=0.1)
    for p, q in zip(ours, ref):
        p.data.copy_(q.data)
    opt.load_state_dict(copy.deepcopy(sgd.state_dict()))  # torch would share the buffer tensors otherwise
    for p, q in zip(ours, ref):
        p.grad, q.grad = torch.full_like(p, 0.5), torch.full_like(q, 0.5)
    opt.step(), sgd.step()
    assert all(torch.equal(p, q) for p, q in zip(ours, ref))


# (b) properties -------------------------------------------------------------------------------


@pytest.mark.parametrize("foreach", [False, True])
@given(seed=st.integers(0, 1000), lr=st.floats(1e-3, 1.0), mu=st.floats(0.1, 0.99), wd=st.sampled_from([0.0, 0.1]))
def test_first_step_is_p_minus_lr_times_one_plus_mu_times_g(foreach, seed, lr, mu, wd):
    """On the first step b = g, so p' = p - lr * (g + mu * g), with g = grad + wd * p (float64, to 1e-15)."""
    p = torch.randn(7, generator=torch.Generator().manual_seed(seed), dtype=torch.float64, requires_grad=True)
    grad = torch.randn(7, dtype=torch.float64)
    p0 = p.detach().clone()
    p.grad = grad.clone()
    NAG([p], lr=lr, momentum=mu, weight_decay=wd, foreach=foreach).step()
    g = grad + wd * p0
    torch.testing.assert_close(p.detach(), p0 - lr * (g + mu * g), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_gradient_after_step_is_what_torch_leaves_there(foreach, wd):
    """torch's foreach path (wd = 0) overwrites p.grad with g + mu*b; its single-tensor path does not.
    Ours has the same side effects on each path, so swapping optimizers changes nothing observable."""
    ours, ref = _params(3), None
    ref = _clone(ours)
    opt = NAG(ours, lr=0.1, weight_decay=wd, foreach=foreach)
    sgd = torch.optim.SGD(ref, lr=0.1, momentum=0.9, nesterov=True, weight_decay=wd, foreach=foreach)
    for _ in range(3):
        for a, b in zip(ours, ref):
            a.grad = torch.randn(a.shape)
            b.grad = a.grad.clone()
        untouched = [a.grad.clone() for a in ours]
        opt.step(), sgd.step()
        for a, b, g in zip(ours, ref, untouched):
            assert torch.equal(a.grad, b.grad)
            assert torch.equal(a.grad, g) == (not foreach or wd != 0)


def test_parameters_without_grad_do_not_move_or_get_state():
    a, b = torch.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    b0 = b.detach().clone()
    a.grad = torch.ones(3)
    opt = NAG([a, b], lr=0.1)
    opt.step()
    assert torch.equal(b, b0) and b not in opt.state


def test_closure_is_evaluated_and_its_loss_returned():
    p = torch.tensor([1.0], requires_grad=True)
    opt = NAG([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 1.0
    assert p.item() == pytest.approx(1.0 - 0.1 * (2.0 + 0.9 * 2.0))


# (c) bad input --------------------------------------------------------------------------------


def test_momentum_zero_is_refused_as_torch_refuses_it():
    with pytest.raises(ValueError):
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.0, nesterov=True)
    with pytest.raises(ValueError, match="momentum"):
        NAG([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.0)


@pytest.mark.parametrize("kwargs, match", [(dict(lr=-0.1), "lr"), (dict(lr=0.1, weight_decay=-1.0), "weight_decay"), (dict(lr=float("nan")), "lr")])
def test_bad_hyperparameters_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NAG([torch.zeros(1, requires_grad=True)], **kwargs)
