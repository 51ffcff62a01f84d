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
    odd = [real_photos(400)[k].convert("RGB").resize(shape) for k, shape in ((0, (301, 257)), (2, (257, 301)), (3, (263, 333)))]
    for img in real_photos(300)[:3] + odd:  # odd margins: round(37.5) = 38 where // 2 gives 37
        assert torch.equal(EvalTransform(224, resize)(img), ref(img))


@pytest.mark.parametrize("ratio", [(3 / 4, 4 / 3), (2.0, 3.0), (1 / 3, 1 / 2)])
def test_batched_resized_crop_is_within_one_level_of_pil_crop_and_resize(ratio):
    """The reference path crops with PIL and resizes with antialiasing; the batched resample gives the same image
    within one grey level (PIL rounds between its two passes), for downscaling and upscaling boxes, and for
    asymmetric ratios that fix which side is h and which is w."""
    img = real_photos(400)[1].convert("RGB").resize((256, 192))
    x = to_tensor(img)
    boxes = rrc_params_batch(64, 192, 256, ratio=ratio, generator=torch.Generator().manual_seed(0))
    if ratio[0] > 1:
        assert (boxes[:, 3] > boxes[:, 2]).all()  # w = sqrt(A r): wide boxes
    got = resized_crop_batch(x[None].expand(64, -1, -1, -1), boxes, 224)
    for k, (i, j, h, w) in enumerate(boxes.tolist()):
        expected = to_tensor(img.crop((j, i, j + w, i + h)).resize((224, 224), Image.BILINEAR))
        assert (got[k].int() - expected.int()).abs().max() <= 1, (i, j, h, w)


def test_batched_resized_crop_is_within_one_level_of_torchvision_tensor_resized_crop():
    x = to_tensor(real_photos(400)[3].convert("RGB").resize((200, 150)))
    boxes = rrc_params_batch(32, 150, 200, generator=torch.Generator().manual_seed(1))
    got = resized_crop_batch(x[None].expand(32, -1, -1, -1), boxes, 96)
    for k, (i, j, h, w) in enumerate(boxes.tolist()):
        expected = F2.resized_crop(x, i, j, h, w, [96, 96], antialias=True)
        assert (got[k].int() - expected.int()).abs().max() <= 1, (i, j, h, w)


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


# (b) the batched components, each with the power to see a one-line bug ----------------------

IDENTITY_CROP = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0), jitter=0.0, lighting=0.0)  # square images: every step but flip is identity


def normalised(x):
    return (x.float() / 255 - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)


def test_batch_augment_flips_half_the_images_and_a_flip_mirrors_left_right():
    """2000 random 8x8 images through the identity crop and colour: each output is the image or its left-right
    mirror, exactly; the mirrored share is within 4.5 sigma of 1/2."""
    x = torch.randint(0, 256, (2000, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    y = BatchAugment("standard", 8, **IDENTITY_CROP)(x, torch.Generator().manual_seed(1))
    same = torch.isclose(y, normalised(x), rtol=0, atol=1e-6).flatten(1).all(1)
    mirrored = torch.isclose(y, normalised(x.flip(-1)), rtol=0, atol=1e-6).flatten(1).all(1)
    assert (same ^ mirrored).all()
    assert abs(int(mirrored.sum()) - 1000) <= 4.5 * (2000 * 0.25) ** 0.5


def test_batch_augment_erases_after_normalising_so_erased_pixels_are_the_mean_colour():
    """erasing_p = 1: every image differs from its (possibly mirrored) normalised self on exactly one axis-aligned
    rectangle, where all channels are exactly 0, the normalised mean colour (erasing before normalising would give
    -mean/std instead)."""
    x = torch.randint(0, 256, (300, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    y = BatchAugment("standard", 16, erasing_p=1.0, **IDENTITY_CROP)(x, torch.Generator().manual_seed(3))
    erased = 0
    for k in range(len(x)):
        ref = normalised(x[k])
        ref = ref if torch.isclose(y[k], ref, atol=1e-6).flatten(1).all(0).float().mean() > 0.5 else normalised(x[k].flip(-1))
        changed = ~torch.isclose(y[k], ref, rtol=0, atol=1e-6).all(0)
        if changed.any():
            rows, cols = changed.any(1).nonzero().squeeze(1), changed.any(0).nonzero().squeeze(1)
            box = (slice(int(rows.min()), int(rows.max()) + 1), slice(int(cols.min()), int(cols.max()) + 1))
            assert (y[k][:, box[0], box[1]] == 0).all(), k
            erased += 1
    assert erased >= 290  # p = 1: only a pixel that happened to equal the mean, or 10 rejected attempts, hides one


def test_batch_augment_is_its_documented_steps_in_order():
    """BatchAugment == crop boxes -> antialiased resize -> flip -> policy colour op -> float -> [lighting] ->
    normalise -> [erasing], drawing from one generator in that order (transforms.py docstring)."""
    from fgvc_ref.color import color_jitter_batch, lighting_noise
    from fgvc_ref.random_erasing import random_erasing_batch
    from fgvc_ref.trivial_augment import trivial_augment_batch

    x = torch.randint(0, 256, (12, 3, 30, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    sizes = torch.tensor([[30, 40], [22, 40], [30, 17]] * 4)
    for policy in ("trivialaugment", "standard"):
        got = BatchAugment(policy, 24, erasing_p=0.5)(x, torch.Generator().manual_seed(5), sizes)
        g = torch.Generator().manual_seed(5)
        boxes = rrc_params_batch(12, sizes[:, 0], sizes[:, 1], generator=g)
        assert ((boxes[:, 0] + boxes[:, 2] <= sizes[:, 0]) & (boxes[:, 1] + boxes[:, 3] <= sizes[:, 1])).all()
        y = resized_crop_batch(x, boxes, 24)
        y = torch.where((torch.rand(12, generator=g) < 0.5).view(-1, 1, 1, 1), y.flip(-1), y)
        y = trivial_augment_batch(y, generator=g) if policy == "trivialaugment" else color_jitter_batch(y, 0.4, generator=g)
        f = y.float() / 255
        if policy == "standard":
            f = f + lighting_noise(12, 0.1, generator=g).view(12, 3, 1, 1)
        f = (f - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
        expected = random_erasing_batch(f, p=0.5, value=0, generator=g)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_batched_crop_accepts_a_box_that_exactly_fits_and_falls_back_to_the_clamped_centre_crop():
    """Acceptance is non-strict (w <= W): on an 8x16 image, area 1/2 and ratio 4 give w = 16 = W and h = 4, accepted,
    so the top varies over 0..4; ratio 5 gives w = 18 > W, so all 10 attempts fail and the fallback (aspect clamped to
    5: h = round(16/5) = 3, centred) is taken. Both as torchvision's get_params decides."""
    fits = rrc_params_batch(500, 8, 16, scale=(0.5, 0.5), ratio=(4.0, 4.0), generator=torch.Generator().manual_seed(0))
    assert (fits[:, 1:] == torch.tensor([0, 4, 16])).all() and set(fits[:, 0].tolist()) == {0, 1, 2, 3, 4}
    torch.manual_seed(0)
    assert T.RandomResizedCrop.get_params(torch.empty(1, 8, 16), (0.5, 0.5), (4.0, 4.0))[1:] == (0, 4, 16)
    falls = rrc_params_batch(50, 8, 16, scale=(0.5, 0.5), ratio=(5.0, 5.0), generator=torch.Generator().manual_seed(0))
    expected = T.RandomResizedCrop.get_params(torch.empty(1, 8, 16), (0.5, 0.5), (5.0, 5.0))
    assert expected == (2, 0, 3, 16) and (falls == torch.tensor(expected)).all()
    tall = rrc_params_batch(50, 8, 16, scale=(0.5, 0.5), ratio=(0.25, 0.25), generator=torch.Generator().manual_seed(0))
    expected = T.RandomResizedCrop.get_params(torch.empty(1, 8, 16), (0.5, 0.5), (0.25, 0.25))  # aspect 2 > 1/4: w = round(8/4)
    assert expected == (0, 7, 8, 2) and (tall == torch.tensor(expected)).all()


def test_batched_crop_boxes_take_w_from_the_ratio_and_stay_inside_each_images_own_size():
    """ratio in (2, 3): every box is wider than tall (w = sqrt(A r)); per-image sizes bound every box."""
    sizes = torch.tensor([[64, 64], [40, 64], [64, 30]] * 200)
    boxes = rrc_params_batch(600, sizes[:, 0], sizes[:, 1], ratio=(2.0, 3.0), generator=torch.Generator().manual_seed(0))
    i, j, h, w = boxes.unbind(1)
    fallback = (i == (sizes[:, 0] - h) // 2) & (j == (sizes[:, 1] - w) // 2) & ((h == sizes[:, 0]) | (w == sizes[:, 1]))
    assert (w > h)[~fallback].all() and (~fallback).sum() > 300
    assert ((i + h <= sizes[:, 0]) & (j + w <= sizes[:, 1]) & (i >= 0) & (j >= 0)).all()


# (c) properties -------------------------------------------------------------------------------


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


# (d) bad input --------------------------------------------------------------------------------


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
    """docs/performance.md: no host sync inside an epoch. CUDA's sync debug mode turns any sync into an error."""
    x = torch.randint(0, 256, (32, 3, 72, 64), dtype=torch.uint8, device="cuda")
    augment, g = BatchAugment(policy, 56, erasing_p=0.5), torch.Generator(device="cuda").manual_seed(0)
    augment(x, g)  # first call: per-device constants are made once
    torch.cuda.set_sync_debug_mode("error")
    try:
        y = augment(x, g)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert y.shape == (32, 3, 56, 56) and y.is_cuda
