"""fgvc_ref.model: any torchvision classifier by name with a new head; weights from a local state dict."""

import pytest
import torch

from fgvc_ref.model import build_model


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v3_small", "tiny_cnn"])
def test_head_is_replaced_for_k_classes(name):
    model = build_model(name, 7, "none")
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)


def test_weights_load_from_a_state_dict_file_and_the_head_is_new(tmp_path):
    """Tests never download: a state dict saved here stands in for the ImageNet weights."""
    torch.manual_seed(0)
    src = build_model("resnet18", 1000, "none")
    path = tmp_path / "weights.pt"
    torch.save(src.state_dict(), path)
    model = build_model("resnet18", 5, str(path))
    assert torch.equal(model.conv1.weight, src.conv1.weight)
    assert model.fc.out_features == 5


def test_unknown_model_and_bad_weights_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'resnet5000'"):
        build_model("resnet5000", 3)
    with pytest.raises(ValueError, match="weights must be"):
        build_model("tiny_cnn", 3, "IMAGENET1K_V9")
