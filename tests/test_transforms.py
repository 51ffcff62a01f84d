"""fgvc_ref.transforms: RandomResizedCrop RNG-exact, pipelines bit-exact, BatchAugment equal in distribution."""

import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.v2.functional as F2
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from fgvc_ref.color import EIGVAL, EIGVEC
from fgvc_ref.transforms import (
    IMAGENET_MEAN, IMAGENET_STD, BatchAugment, EvalTransform, TrainTransform, resized_crop_batch, rrc_params,
    rrc_params_batch,
)
from photos import real_photos, synthetic_images, to_tensor

B = T.InterpolationMode.BILINEAR
# grid_sample bilinear vs torchvision's antialiased bilinear, cropping a 256 px cache to 224 px:
# the filters differ when downscaling (<= 1.15x here) and at crop borders (we read the pixels just
# outside the crop, torchvision clamps to the crop): mean |difference| in grey levels.
RESAMPLE_MEAN_ABS_TOL = 1.0


def tv_train(policy, erasing_p=0.0):
    """torchvision's ClassificationPresetTrain for the policy (+ our literal lighting for 'standard')."""
    colour = {
        "trivialaugment": [T.TrivialAugmentWide(interpolation=B)],
        "standard": [T.ColorJitter(0.4, 0.4, 0.4)],
        "autoaugment": [T.AutoAugment(T.AutoAugmentPolicy.IMAGENET, interpolation=B)],
    }[policy]
    lighting = [T.Lambda(lambda x: x + ((torch.randn(1, 3) * 0.1 * torch.tensor(EIGVAL)) @ torch.tensor(EIGVEC).T).view(3, 1, 1))] if policy == "standard" else []
    erase = [T.RandomErasing(p=erasing_p)] if erasing_p else []
    return T.Compose([T.RandomResizedCrop(224, interpolation=B, antialias=True), T.RandomHorizontalFlip(), *colour,
                      T.PILToTensor(), T.ConvertImageDtype(torch.float), *lighting, T.Normalize(IMAGENET_MEAN, IMAGENET_STD), *erase])


# (a) equivalence ------------------------------------------------------------------------------


@given(seed=st.integers(0, 2**31 - 1), h=st.integers(1, 600), w=st.integers(1, 600),
       lo=st.floats(0.01, 1.0), ratio_hi=st.floats(1.0, 4.0))
def test_rrc_params_rng_exact_with_torchvision_get_params(seed, h, w, lo, ratio_hi):
    """Same seed, same box, for drawn sizes, scales and ratios (fallback included)."""
    scale, ratio = (lo, 1.0), (1 / ratio_hi, ratio_hi)
    torch.manual_seed(seed)
    expected = T.RandomResizedCrop.get_params(torch.empty(3, h, w), scale, ratio)
    assert rrc_params(h, w, scale, ratio, torch.Generator().manual_seed(seed)) == tuple(expected)


def test_rrc_fallback_is_the_ratio_clamped_centre_crop():
    """A 1000x10 image can never fit ratio [3/4, 4/3] boxes of >= 8% area: centre crop, aspect 4/3."""
    torch.manual_seed(0)
    assert rrc_params(10, 1000, generator=torch.Generator().manual_seed(0)) == T.RandomResizedCrop.get_params(torch.empty(1, 10, 1000), (0.08, 1.0), (3 / 4, 4 / 3))
    assert rrc_params(10, 1000) == (0, 493, 10, 13)


@pytest.mark.parametrize("policy, erasing_p", [("trivialaugment", 0.0), ("trivialaugment", 0.5), ("standard", 0.1), ("autoaugment", 0.0)])
def test_train_pipeline_bit_exact_with_torchvision_preset(policy, erasing_p):
    """TrainTransform == torchvision's ClassificationPresetTrain, same seed, real photos and odd sizes, drawing from
    the global generator or from an explicit one (AutoAugment included: its global draws run on the generator's stream)."""
    ref, ours = tv_train(policy, erasing_p), TrainTransform(policy, 224, erasing_p=erasing_p)
    for img in real_photos(128)[:4] + synthetic_images()[:2]:
        for seed in range(8):
            torch.manual_seed(seed)
            expected = ref(img)
            torch.manual_seed(seed)
            assert torch.equal(ours(img), expected), (policy, img.size, seed)
            torch.manual_seed(seed + 1)  # the global state must not matter when a generator is given
            assert torch.equal(ours(img, torch.Generator().manual_seed(seed)), expected), (policy, img.size, seed)


@pytest.mark.parametrize("resize", [None, 256])
def test_eval_transform_equals_torchvision(resize):
    tv_resize = [T.Resize((224, 224), interpolation=B)] if resize is None else [T.Resize(256, interpolation=B), T.CenterCrop(224)]
    ref = T.Compose([*tv_resize, T.PILToTensor(), T.ConvertImageDtype(torch.float), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    for img in real_photos(300)[:3] + [Image.new("RGB", (301, 257), (9, 99, 199))]:
        assert torch.equal(EvalTransform(224, resize)(img), ref(img))


def test_batched_resized_crop_is_close_to_torchvision_antialiased_resized_crop():
    x = to_tensor(real_photos(400)[1].resize((256, 256)))
    boxes = rrc_params_batch(64, 256, 256, generator=torch.Generator().manual_seed(0))
    got = resized_crop_batch(x[None].expand(64, -1, -1, -1), boxes, 224)
    for k, (i, j, h, w) in enumerate(boxes.tolist()):
        expected = F2.resized_crop(x, i, j, h, w, [224, 224], antialias=True)
        assert (got[k].float() - expected.float()).abs().mean() <= RESAMPLE_MEAN_ABS_TOL, (i, j, h, w)


def test_batched_crop_boxes_match_torchvision_distribution():
    """KS on area fraction, log aspect and normalised corner of 4000 boxes vs get_params."""
    from scipy.stats import ks_2samp

    h, w = 120, 200
    ours = rrc_params_batch(4000, h, w, generator=torch.Generator().manual_seed(0)).double()
    torch.manual_seed(0)
    ref = torch.tensor([T.RandomResizedCrop.get_params(torch.empty(1, h, w), (0.08, 1.0), (3 / 4, 4 / 3)) for _ in range(4000)]).double()
    stats = [lambda b: b[:, 2] * b[:, 3] / (h * w), lambda b: (b[:, 3] / b[:, 2]).log(),
             lambda b: b[:, 0] / (h - b[:, 2] + 1), lambda b: b[:, 1] / (w - b[:, 3] + 1)]
    for stat in stats:
        assert ks_2samp(stat(ours).numpy(), stat(ref).numpy()).pvalue > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("policy, erasing_p", [("trivialaugment", 0.1), ("standard", 0.0)])
def test_batch_augment_equals_reference_pipeline_in_distribution(policy, erasing_p):
    """Per-image mean and std of 400 augmented views of one cached image: KS, fast vs reference path."""
    from scipy.stats import ks_2samp

    img = real_photos(400)[2].resize((64, 64))
    x = to_tensor(img)
    size, n = 56, 400
    fast = BatchAugment(policy, size, erasing_p=erasing_p)(x[None].expand(n, -1, -1, -1).contiguous(), torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    ref = TrainTransform(policy, size, erasing_p=erasing_p)
    slow = torch.stack([ref(img) for _ in range(n)])
    for stat in (lambda t: t.mean((1, 2, 3)), lambda t: t.std((1, 2, 3)), lambda t: t[:, 0].mean((1, 2)) - t[:, 2].mean((1, 2))):
        assert ks_2samp(stat(fast).numpy(), stat(slow).numpy()).pvalue > 1e-3


# (b) properties -------------------------------------------------------------------------------


@given(seed=st.integers(0, 1000), n=st.integers(1, 5), policy=st.sampled_from(["trivialaugment", "standard"]))
def test_batch_augment_output_is_normalised_float_of_the_requested_size(seed, n, policy):
    x = torch.randint(0, 256, (n, 3, 40, 30), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    y = BatchAugment(policy, 24, erasing_p=0.5)(x, torch.Generator().manual_seed(seed))
    assert y.shape == (n, 3, 24, 24) and y.dtype == torch.float32 and y.device == x.device
    lo = (0 - max(IMAGENET_MEAN)) / min(IMAGENET_STD)
    assert y.min() >= lo - 1.0  # lighting can push slightly outside the [0, 1] image range


def test_full_box_crop_is_exact_and_flip_is_an_involution():
    x = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    full = torch.tensor([[0, 0, 16, 16]] * 3)
    assert torch.equal(resized_crop_batch(x, full, 16), x)
    assert torch.equal(x.flip(-1).flip(-1), x)


# (c) bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [(dict(policy="randaugment"), "policy"), (dict(size=0), "size"), (dict(erasing_p=2.0), "p must")])
def test_bad_pipeline_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainTransform(**kwargs)
    with pytest.raises(ValueError, match=match):
        BatchAugment(**kwargs)


def test_autoaugment_is_reference_only_and_bad_batches_are_refused():
    with pytest.raises(ValueError, match="reference path"):
        BatchAugment("autoaugment")
    with pytest.raises(ValueError, match="uint8"):
        BatchAugment()(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="EvalTransform|resize"):
        EvalTransform(224, resize=100)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("policy", ["trivialaugment", "standard"])
def test_batch_augment_on_cuda_never_syncs_with_the_host(policy):
    """PERF.md: no host sync inside an epoch. CUDA's sync debug mode turns any sync into an error."""
    x = torch.randint(0, 256, (32, 3, 72, 64), dtype=torch.uint8, device="cuda")
    augment, g = BatchAugment(policy, 56, erasing_p=0.5), torch.Generator(device="cuda").manual_seed(0)
    augment(x, g)  # first call: per-device constants are made once
    torch.cuda.set_sync_debug_mode("error")
    try:
        y = augment(x, g)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert y.shape == (32, 3, 56, 56) and y.is_cuda
