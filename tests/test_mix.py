"""fgvc_ref.mix: MixUp/CutMix targets are convex combinations matching the mixed pixels."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from fgvc_ref.mix import mix_batch


@given(seed=st.integers(0, 10_000))
def test_targets_sum_to_one_and_weight_the_partner_like_the_pixels(seed):
    x = torch.stack([torch.full((3, 8, 8), float(k)) for k in range(4)])
    y = torch.arange(4)
    mixed, t = mix_batch(x, y, 4, mixup_alpha=0.2, cutmix_alpha=1.0, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(t.sum(1), torch.ones(4))
    lam = t[0, 0].item()  # image 0 mixed with image 3 (the batch rolled by one)
    # image 0 is 0 and its partner is 3: the mean pixel is 3 * (1 - lam) for both MixUp and CutMix
    assert abs(mixed[0].mean().item() - 3 * (1 - lam)) < 1e-5


def test_no_alpha_means_no_mixing():
    x, y = torch.rand(2, 3, 4, 4), torch.tensor([0, 1])
    mixed, t = mix_batch(x, y, 2, mixup_alpha=0.0, cutmix_alpha=0.0)
    assert torch.equal(mixed, x) and torch.equal(t, torch.eye(2))
