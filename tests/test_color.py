"""fgvc_ref.color: colour jitter bit-exact with torchvision's ColorJitter on PIL; PCA lighting literal."""

import numpy as np
import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.v2.functional as F2
from hypothesis import given
from hypothesis import strategies as st

from fgvc_ref.color import EIGVAL, EIGVEC, ColorJitter, Lighting, color_jitter_batch, lighting_noise
from photos import real_photos, synthetic_images, to_tensor


# (a) equivalence ------------------------------------------------------------------------------


@pytest.mark.parametrize("strength", [0.4, 0.1])
def test_jitter_bit_exact_with_torchvision_colorjitter_on_pil(strength):
    """Same seed: randperm(4) order, then uniform factors b, c, s; RGB and greyscale photos."""
    ref, ours = T.ColorJitter(strength, strength, strength), ColorJitter(strength, strength, strength)
    for img in real_photos(64) + synthetic_images():
        for seed in range(30):
            torch.manual_seed(seed)
            expected = np.array(ref(img))
            torch.manual_seed(seed)
            assert np.array_equal(np.array(ours(img)), expected), (img.mode, seed)


def test_batched_jitter_of_one_image_equals_torchvision_tensor_ops_in_its_order():
    """Replay the batch's draws (order, factors) with v2 tensor ops: identical images."""
    x = torch.stack([to_tensor(im) for im in real_photos(48)[:1] * 6])
    g = torch.Generator().manual_seed(3)
    y = color_jitter_batch(x, 0.4, generator=g)
    g = torch.Generator().manual_seed(3)
    order = torch.rand(6, 3, generator=g).argsort(1)
    factors = torch.empty(6, 3, dtype=torch.float64).uniform_(0.6, 1.4, generator=g)
    ops = (F2.adjust_brightness, F2.adjust_contrast, F2.adjust_saturation)
    for k in range(6):
        img = x[k]
        for which in order[k].tolist():
            img = ops[which](img, float(factors[k, which]))
        assert torch.equal(y[k], img), k


def test_lighting_equals_its_formula_evaluated_literally():
    """x + sum_j V[:, j] * alpha_j * lambda_j, alpha ~ N(0, 0.1^2) from the generator."""
    x = torch.rand(3, 5, 7)
    y = Lighting(0.1)(x, generator=torch.Generator().manual_seed(0))
    alpha = (torch.randn(1, 3, generator=torch.Generator().manual_seed(0)) * 0.1)[0].tolist()
    offset = [sum(EIGVEC[c][j] * alpha[j] * EIGVAL[j] for j in range(3)) for c in range(3)]
    for c in range(3):
        torch.testing.assert_close(y[c] - x[c], torch.full((5, 7), offset[c]), rtol=1e-5, atol=1e-7)


# (b) properties -------------------------------------------------------------------------------


def test_zero_strength_jitter_and_zero_std_lighting_are_identity():
    img = real_photos(48)[1]
    assert np.array_equal(np.array(ColorJitter(0, 0, 0)(img)), np.array(img))
    x = torch.rand(3, 4, 4)
    assert torch.equal(Lighting(0.0)(x), x)


@given(seed=st.integers(0, 10_000))
def test_lighting_noise_is_zero_mean_with_pca_covariance(seed):
    """Cov(offset) = V diag(lambda^2 sigma^2) V^T (checked on 20k draws to 10% + small abs)."""
    z = lighting_noise(20_000, 0.1, generator=torch.Generator().manual_seed(seed)).double()
    V, lam = torch.tensor(EIGVEC, dtype=torch.float64), torch.tensor(EIGVAL, dtype=torch.float64)
    expected = V @ torch.diag((lam * 0.1) ** 2) @ V.T
    torch.testing.assert_close(z.T.cov(), expected, rtol=0.1, atol=2e-6)
    assert z.mean(0).abs().max() < 4 * 0.1 * 0.2175 / 20_000**0.5


@given(seed=st.integers(0, 1000), c=st.sampled_from([1, 3]))
def test_batched_jitter_keeps_dtype_shape_and_device(seed, c):
    x = torch.randint(0, 256, (5, c, 9, 11), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    y = color_jitter_batch(x, generator=torch.Generator().manual_seed(seed))
    assert y.dtype == x.dtype and y.shape == x.shape and y.device == x.device


# (c) bad input --------------------------------------------------------------------------------


def test_bad_arguments_and_inputs_are_refused():
    with pytest.raises(ValueError, match="brightness"):
        ColorJitter(brightness=1.5)
    with pytest.raises(ValueError, match="std"):
        Lighting(-1.0)
    with pytest.raises(ValueError, match="float 3 x H x W"):
        Lighting()(torch.zeros(3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8"):
        color_jitter_batch(torch.zeros(1, 3, 4, 4))
