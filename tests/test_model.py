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


def test_offline_torchvision_weights_name_the_file_where_torch_looks_and_how_to_give_it(tmp_path, monkeypatch):
    """No network (the download raises as urllib does offline): the error names the file, torch's cache folder, the URL
    and the two ways to give the weights; nothing is downloaded."""
    import urllib.error

    from fgvc_ref.model import WeightsUnavailable

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsUnavailable) as caught:
        build_model("resnet18", 3, "IMAGENET1K_V1")
    message = str(caught.value)
    assert f"torch looks for them in {tmp_path / 'torch' / 'hub' / 'checkpoints' / 'resnet18-f37072fd.pth'}" in message
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message and "Temporary failure in name resolution" in message
    assert "--set weights=/path/to/resnet18-f37072fd.pth" in message and "Offline and air-gapped machines" in message
    assert isinstance(caught.value, ValueError)  # the CLI's one-line error, exit 2


def test_a_training_without_its_weights_says_offline_not_disk_and_leaves_no_folder(cache, tmp_path, monkeypatch, capsys):
    import urllib.error

    from fgvc_ref.cli import main

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: (_ for _ in ()).throw(urllib.error.URLError("offline")))
    out = tmp_path / "runs" / "r"
    code = main(["train", "--stage", "base", "--cache", str(cache), "--out", str(out), "--epochs", "1", "--quiet",
                 "--set", "model=resnet18", "--set", "image_size=16"])
    err = capsys.readouterr().err
    assert code == 2 and "IMAGENET1K_V1 ImageNet weights are not on this machine" in err
    assert "Free space" not in err and "intact" not in err  # not a disk error, and no checkpoint ever existed
    assert not out.exists() and not out.parent.exists()  # the run folder this call made is gone, with the parent it made
    made = tmp_path / "mine"
    made.mkdir()  # a folder the user made is theirs: kept
    assert main(["train", "--stage", "base", "--cache", str(cache), "--out", str(made), "--epochs", "1", "--quiet",
                 "--set", "model=resnet18", "--set", "image_size=16"]) == 2
    assert made.is_dir()
