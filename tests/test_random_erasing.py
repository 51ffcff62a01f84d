"""fgvc_ref.random_erasing: bit-exact with torchvision.transforms.RandomErasing; batched in distribution."""

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from hypothesis import given
from hypothesis import strategies as st

from fgvc_ref.random_erasing import RandomErasing, random_erasing_batch
from photos import real_photos, to_tensor

VALUES = [0, 0.5, (0.1, -0.2, 0.3), "random"]


# (a) equivalence ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", VALUES)
def test_bit_exact_with_torchvision_for_many_seeds_on_real_photos(value):
    imgs = [to_tensor(im).float().div(255) for im in real_photos(64)]
    for x in imgs:
        if x.shape[0] == 1 and isinstance(value, tuple):
            continue
        for seed in range(40):
            torch.manual_seed(seed)
            expected = T.RandomErasing(p=0.7, value=value)(x)
            torch.manual_seed(seed)
            assert torch.equal(RandomErasing(p=0.7, value=value)(x), expected), seed


@given(seed=st.integers(0, 2**31 - 1), h=st.integers(1, 40), w=st.integers(1, 40),
       scale_hi=st.floats(0.05, 1.0), ratio_hi=st.floats(1.0, 5.0))
def test_bit_exact_with_torchvision_for_drawn_sizes_and_ranges(seed, h, w, scale_hi, ratio_hi):
    """Including tiny images where all 10 attempts fail and nothing is erased."""
    x = torch.randn(3, h, w, generator=torch.Generator().manual_seed(seed))
    kw = dict(p=1.0, scale=(0.02, scale_hi), ratio=(1 / ratio_hi, ratio_hi))
    torch.manual_seed(seed)
    expected = T.RandomErasing(**kw)(x)
    assert torch.equal(RandomErasing(**kw)(x, generator=torch.Generator().manual_seed(seed)), expected)


def _rectangles(before, after):
    """(h, w) of the erased rectangle of each image (None if untouched)."""
    out = []
    for a, b in zip(before, after):
        changed = (a != b).any(0)
        if not changed.any():
            out.append(None)
            continue
        rows, cols = changed.any(1).nonzero(), changed.any(0).nonzero()
        out.append((int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)))
    return out


def test_batch_area_and_aspect_distributions_match_torchvision():
    """Two-sample KS on erased area fraction and log aspect, and erase rate, over 4000 images."""
    from scipy.stats import ks_2samp

    n, h, w = 4000, 32, 48
    x = torch.rand(n, 3, h, w) + 1.0  # value 0 always differs from the image
    ours = _rectangles(x, random_erasing_batch(x, p=0.5, generator=torch.Generator().manual_seed(0)))
    torch.manual_seed(0)
    tv = T.RandomErasing(p=0.5)
    ref = _rectangles(x, torch.stack([tv(im) for im in x]))
    for stat in (lambda r: r[0] * r[1] / (h * w), lambda r: np.log(r[0] / r[1])):
        a, b = [stat(r) for r in ours if r], [stat(r) for r in ref if r]
        assert ks_2samp(a, b).pvalue > 1e-3
    rate = lambda rs: sum(r is not None for r in rs) / n
    assert abs(rate(ours) - rate(ref)) < 0.05


def test_batch_rejects_a_box_as_tall_as_the_image_and_accepts_one_row_shorter():
    """Acceptance is strict (h < H, w < W), as torchvision's: on an 8x16 image with area 1/2 and ratio 1/4,
    h = 4 and w = 16 = W, so all 10 attempts fail and nothing is erased even with p = 1; area 15/32 gives w = 15,
    accepted, so every image gets a 4 x 15 box at a left edge of 0 or 1."""
    x = torch.ones(400, 1, 8, 16)
    none = random_erasing_batch(x, p=1.0, scale=(0.5, 0.5), ratio=(0.25, 0.25), generator=torch.Generator().manual_seed(0))
    assert torch.equal(none, x)
    assert T.RandomErasing.get_params(x[0], (0.5, 0.5), (0.25, 0.25), [0])[2:4] == (8, 16)  # torchvision: no erase either
    some = random_erasing_batch(x, p=1.0, scale=(15 / 32, 15 / 32), ratio=(0.25, 0.25), generator=torch.Generator().manual_seed(0))
    assert all(r == (4, 15) for r in _rectangles(x, some)) and set((some[:, 0, :, 0] == 0).any(1).tolist()) == {True, False}


def test_batch_takes_h_from_the_ratio():
    """ratio in (2, 3): every erased rectangle is taller than wide (h = sqrt(A r)); swapping h and w shows up here."""
    x = torch.ones(500, 1, 40, 40)
    rects = [r for r in _rectangles(x, random_erasing_batch(x, p=1.0, ratio=(2.0, 3.0), generator=torch.Generator().manual_seed(0))) if r]
    assert len(rects) > 400 and all(h > w for h, w in rects)


# (b) properties -------------------------------------------------------------------------------


@given(seed=st.integers(0, 1000))
def test_p_zero_is_identity(seed):
    x = torch.randn(5, 3, 12, 14, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(random_erasing_batch(x, p=0.0, generator=torch.Generator().manual_seed(seed)), x)
    assert torch.equal(RandomErasing(p=0.0)(x[0]), x[0])


@given(seed=st.integers(0, 10_000), value=st.sampled_from(VALUES))
def test_erasing_changes_only_one_axis_aligned_rectangle(seed, value):
    """Every changed pixel lies in one rectangle that is entirely set to the value (batched)."""
    x = torch.rand(8, 3, 20, 24) + 5.0
    y = random_erasing_batch(x, p=1.0, value=value, generator=torch.Generator().manual_seed(seed))
    for a, b in zip(x, y):
        changed = (a != b).any(0)
        if not changed.any():
            continue
        rows, cols = changed.any(1).nonzero().squeeze(1), changed.any(0).nonzero().squeeze(1)
        box = changed[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all(), "the changed pixels must fill their bounding box"
        if value != "random":
            v = torch.tensor(value if isinstance(value, tuple) else (value,) * 3).view(3, 1, 1)
            assert torch.equal(b[:, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1], v.expand(3, len(rows), len(cols)))


def test_output_keeps_dtype_shape_device_and_input_is_not_modified():
    x = torch.randn(4, 3, 10, 10)
    x0 = x.clone()
    y = random_erasing_batch(x, p=1.0)
    assert y.dtype == x.dtype and y.shape == x.shape and y.device == x.device and torch.equal(x, x0)
    z = RandomErasing(p=1.0)(x[0])
    assert torch.equal(x, x0) and z.shape == x[0].shape


# (c) bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(p=1.5), "p must"), (dict(p=-0.1), "p must"), (dict(scale=(0.5, 0.1)), "scale"),
     (dict(ratio=(0.0, 1.0)), "ratio"), (dict(value="noise"), "value")],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomErasing(**kwargs)
    with pytest.raises(ValueError, match=match):
        random_erasing_batch(torch.zeros(1, 3, 4, 4), **({"p": 0.5} | kwargs))


def test_value_with_wrong_channel_count_and_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="channel"):
        random_erasing_batch(torch.zeros(2, 3, 8, 8), p=1.0, value=(1.0, 2.0))
    with pytest.raises(ValueError, match="N x C x H x W"):
        random_erasing_batch(torch.zeros(3, 8, 8), p=1.0)
    with pytest.raises(ValueError, match="C x H x W"):
        RandomErasing(p=1.0)(torch.zeros(8, 8))
