"""fgvc_ref.mix: MixUp/CutMix equal torchvision.transforms.v2's, bit for bit; their laws; bad cases."""

import pytest
import torch
import torchvision.transforms.v2 as T2
from hypothesis import given
from hypothesis import strategies as st

from fgvc_ref.mix import mix_batch


def v2_mix(mixup_alpha, cutmix_alpha, num_classes):
    """torchvision's reference get_mixup_cutmix: RandomChoice over the enabled ones, MixUp first."""
    chosen = [kind(alpha=a, num_classes=num_classes) for kind, a in ((T2.MixUp, mixup_alpha), (T2.CutMix, cutmix_alpha)) if a > 0]
    return T2.RandomChoice(chosen)


def batch(seed, n=6, h=12, w=20, k=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, h, w, generator=g), torch.randint(k, (n,), generator=g)


# (a) equivalence ------------------------------------------------------------------------------


@pytest.mark.parametrize("mixup_alpha, cutmix_alpha", [(0.2, 1.0), (0.2, 0.0), (0.0, 1.0), (0.7, 0.3)])
def test_bit_exact_with_torchvision_v2_for_the_same_seed(mixup_alpha, cutmix_alpha):
    """Same seed -> the same choice, lam, box, pixels and targets as v2.RandomChoice([MixUp, CutMix])."""
    ref = v2_mix(mixup_alpha, cutmix_alpha, 5)
    for seed in range(200):
        x, y = batch(seed, h=7 + seed % 9, w=9 + seed % 13)
        torch.manual_seed(seed)
        ex, et = ref(x, y)
        got_x, got_t = mix_batch(x, y, 5, mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(got_x, ex) and torch.equal(got_t, et), seed


# (b) properties -------------------------------------------------------------------------------


def test_mixup_and_cutmix_are_chosen_with_equal_probability():
    """Binomial: 2000 batches, the CutMix share within 4.5 sigma of 1/2. Image 0 is 0 and its partner 2: CutMix leaves
    only 0s and 2s, MixUp makes every pixel 2 (1 - lam), which is 0 or 2 only for lam exactly 0 or 1."""
    x = torch.stack([torch.full((1, 8, 8), float(k)) for k in range(3)])
    cut = 0
    for seed in range(2000):
        mixed, _ = mix_batch(x, torch.arange(3), 3, mixup_alpha=0.2, cutmix_alpha=1.0, generator=torch.Generator().manual_seed(seed))
        cut += bool(((mixed[0] == 0) | (mixed[0] == 2)).all())
    assert abs(cut - 1000) <= 4.5 * (2000 * 0.25) ** 0.5


def test_mixup_lambda_follows_beta_alpha_alpha():
    """KS of 3000 MixUp lambdas (read from the targets) against scipy's Beta(0.2, 0.2)."""
    from scipy.stats import beta, kstest

    x, y = torch.zeros(2, 1, 2, 2), torch.tensor([0, 1])
    lams = [mix_batch(x, y, 2, mixup_alpha=0.2, cutmix_alpha=0.0, generator=torch.Generator().manual_seed(s))[1][0, 0].item()
            for s in range(3000)]
    assert kstest(lams, beta(0.2, 0.2).cdf).pvalue > 1e-3


def test_cutmix_box_area_is_one_minus_lambda_of_the_image():
    """Away from the borders the pasted box has side ~ sqrt(1 - lam) of the image's: the mean of
    area / ((1 - lam) H W) over boxes that were not clipped is 1 within the int() truncation."""
    h = w = 200
    ratios = []
    for seed in range(400):
        g = torch.Generator().manual_seed(seed)
        x = torch.zeros(2, 1, h, w)
        x[1] = 1.0  # image 1 is image 0's partner after the roll: the pasted box reads 1
        mixed, t = mix_batch(x, torch.tensor([0, 1]), 2, mixup_alpha=0.0, cutmix_alpha=1.0, generator=g)
        area = int(mixed[0].sum())
        rows, cols = (mixed[0, 0] == 1).any(1).nonzero(), (mixed[0, 0] == 1).any(0).nonzero()
        assert area == 0 or area == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # one rectangle
        clipped = area and (rows.min() == 0 or cols.min() == 0 or rows.max() == h - 1 or cols.max() == w - 1)
        assert t[0, 1].item() == pytest.approx(area / (h * w))  # the partner's share is the pasted area
        if area and not clipped:
            g2 = torch.Generator().manual_seed(seed)
            torch.multinomial(torch.tensor([1.0]), 1, generator=g2)
            lam = float(torch._sample_dirichlet(torch.tensor([[1.0, 1.0]]), generator=g2)[..., 0])
            ratios.append(area / ((1 - lam) * h * w))
    assert len(ratios) > 50 and 0.9 < sum(ratios) / len(ratios) <= 1.0


@given(seed=st.integers(0, 10_000))
def test_targets_sum_to_one_and_weight_the_partner_like_the_pixels(seed):
    x = torch.stack([torch.full((3, 8, 8), float(k)) for k in range(4)])
    y = torch.arange(4)
    mixed, t = mix_batch(x, y, 4, mixup_alpha=0.2, cutmix_alpha=1.0, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(t.sum(1), torch.ones(4))
    lam = t[0, 0].item()  # image 0 mixed with image 3 (the batch rolled by one)
    # image 0 is 0 and its partner is 3: the mean pixel is 3 * (1 - lam) for both MixUp and CutMix
    assert abs(mixed[0].mean().item() - 3 * (1 - lam)) < 1e-5


# (c) examples ---------------------------------------------------------------------------------


def test_no_alpha_means_no_mixing():
    x, y = torch.rand(2, 3, 4, 4), torch.tensor([0, 1])
    mixed, t = mix_batch(x, y, 2, mixup_alpha=0.0, cutmix_alpha=0.0)
    assert torch.equal(mixed, x) and torch.equal(t, torch.eye(2))
