"""fgvc_ref.export: plain state dicts that torchvision loads, and predictions made as evaluation makes them."""

import json
import warnings
from pathlib import Path

import pytest
import torch
import torchvision

from fgvc_ref.cli import main
from fgvc_ref.data.sources import load_data
from fgvc_ref.run import load_run
from fgvc_ref.export import BoxExpected, export_run, load_exported, parse_box, predict
from fgvc_ref.train import eval_batches, predict_logits, train
from runs import make_planted_cache, tiny

CPU = torch.device("cpu")
PROB_ATOL = 1e-6  # one batch of files against the evaluation's batches: equal up to float summation order
LOGIT_RTOL = 1e-4  # of the largest logit: ONNX Runtime against PyTorch, as tests/test_deploy.py argues


@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory, cache):
    """A torchvision resnet18 trained 2 epochs on the tiny boxed cache (4 classes, test images stored at 16 px) at 12 px
    and a low LR, so that its outputs are far from saturated, with an EMA (decay 0.5 per step) unlike the raw weights."""
    root = tmp_path_factory.mktemp("resnet")
    summary = train(tiny("ema", 2, "model=resnet18", "image_size=12", "lr=0.001", "ema_steps=1", "ema_decay=0.5", "ema_decay_reading=per_update", "warmup_epochs=0"),
                    load_data(cache), root / "run", seed=0, progress=False)
    return root / "run", summary


@pytest.fixture(scope="module")
def onnx_export(resnet_run, tmp_path_factory):
    """``onnx_export(layout, weights)``: resnet_run exported to ONNX with that input layout and those weights, once."""
    from fgvc_ref.deploy import export_onnx

    root, made = tmp_path_factory.mktemp("onnx"), {}

    def get(layout: str = "nhwc", weights: str = "ema") -> Path:
        if (layout, weights) not in made:
            made[layout, weights] = export_onnx(resnet_run[0], root / f"{layout}-{weights}.onnx", weights=weights, layout=layout)[0]
        return made[layout, weights]
    return get


def logits_of(run_dir, images, weights=None):
    run = load_run(run_dir, weights)
    fmt = torch.channels_last if run.recipe["channels_last"] else torch.contiguous_format
    return predict_logits(run.model.to(memory_format=fmt), images, size=run.recipe["image_size"], batch=64, device=CPU, amp=False,
                          memory_format=fmt)


def test_exported_weights_load_into_torchvision_get_model_and_score_the_logged_accuracy(resnet_run, cache, tmp_path):
    run, summary = resnet_run
    out = export_run(run, tmp_path / "model.pt")
    model = torchvision.models.get_model("resnet18", num_classes=4)
    model.load_state_dict(torch.load(out, weights_only=True))  # plain user code: no fgvc_ref
    model.eval()
    data = load_data(cache)
    meta = json.loads(out.with_suffix(".json").read_text())
    correct = 0
    with torch.no_grad():
        for x, start in eval_batches(data.test_images, meta["preprocessing"]["image_size"], 64, CPU):
            correct += int((model(x.contiguous(memory_format=torch.channels_last)).argmax(1) == data.test_labels[start : start + len(x)]).sum())
    assert 100.0 * correct / len(data.test_labels) == summary["last_test_acc"]  # the EMA's, as the run reports
    assert meta["weights"] == "ema" and meta["classes"] == data.classes and meta["preprocessing"]["stored_size"] == 16
    assert meta["preprocessing"]["image_size"] == 12
    assert "get_model('resnet18', num_classes=4)" in meta["load"]


def test_evaluate_predicts_each_image_as_the_runs_evaluation_at_the_training_size(resnet_run, cache, tmp_path):
    from fgvc_ref.evaluate import evaluate_run

    run, summary = resnet_run
    r = evaluate_run(run, out=tmp_path / "ev")
    assert r["top1"] == summary["last_test_acc"]
    assert r["predicted"] == logits_of(run, load_data(cache).test_images).argmax(1).tolist()


def test_raw_and_ema_exports_are_the_runs_raw_and_ema_weights(resnet_run, tmp_path):
    run, _ = resnet_run
    final = torch.load(run / "final.pt", weights_only=True)
    for weights, state in (("raw", final["model"]), ("ema", final["ema"]["module"])):
        exported = torch.load(export_run(run, tmp_path / f"{weights}.pt", weights=weights), weights_only=True)
        assert exported.keys() == state.keys() and all(torch.equal(exported[k], state[k]) for k in state)


@pytest.mark.parametrize("weights, fmt", [("raw", ".pt"), ("ema", ".pt"), ("raw", ".onnx")])
def test_an_exports_agreement_is_measured_against_the_runs_model_with_the_exported_weights(resnet_run, onnx_export, cache, tmp_path, weights, fmt):
    """evaluate on an exported model compares it with the run's PyTorch model holding the weights that were exported
    (raw or EMA, which differ here by far more than float error): its reference answers are those weights' answers, and
    the logits differ by float error only (none for a state dict, LOGIT_RTOL of the largest logit for ONNX Runtime)."""
    from fgvc_ref.evaluate import evaluate_model

    run, _ = resnet_run
    images = load_data(cache).test_images
    own, other = logits_of(run, images, weights), logits_of(run, images, "ema" if weights == "raw" else "raw")
    tolerance = 0.0 if fmt == ".pt" else LOGIT_RTOL * float(own.abs().max())
    assert (own - other).abs().max() > 100 * tolerance + 1e-3  # the two sets of weights are told apart
    out = export_run(run, tmp_path / "m.pt", weights=weights) if fmt == ".pt" else onnx_export("nhwc", weights)
    a = evaluate_model(out, out=tmp_path / "ev")["agreement"]
    assert a["reference"].endswith(f"({weights} weights, PyTorch)")
    assert a["reference_top1_predictions"] == own.argmax(1).tolist()
    assert a["max_abs_logit_diff"] <= tolerance


def test_predict_on_the_test_files_with_their_boxes_gives_the_evaluations_probabilities(resnet_run, cache, tmp_path):
    run, _ = resnet_run
    out = export_run(run, tmp_path / "model.pt")
    sources = json.loads((Path(cache) / "test.manifest.json").read_text())["sources"]
    answers = predict(out, [s["path"] for s in sources], boxes=[tuple(s["bbox"]) for s in sources], topk=4)
    expected = logits_of(run, load_data(cache).test_images).softmax(1)
    classes = json.loads(out.with_suffix(".json").read_text())["classes"]
    for (path, top), p in zip(answers, expected):
        assert [name for name, _ in top][0] == classes[int(p.argmax())]
        got = torch.tensor([prob for _, prob in sorted(top, key=lambda a: classes.index(a[0]))])
        assert torch.allclose(got, p, atol=PROB_ATOL)
    with pytest.warns(BoxExpected):  # the check has power: the box changes the answer
        unboxed = predict(out, [s["path"] for s in sources], topk=4)
    assert any(abs(a[1][0][1] - b[1][0][1]) > 1e-3 for a, b in zip(answers, unboxed))


def test_predict_without_a_box_follows_the_centre_crop_protocol_of_an_unboxed_test_split(tmp_path):
    cache = make_planted_cache(tmp_path)
    train(tiny("base", 2, "batch_size=10"), load_data(cache), tmp_path / "run", seed=0, progress=False)
    out = export_run(tmp_path / "run", tmp_path / "model.pt")
    sources = json.loads((cache / "test.manifest.json").read_text())["sources"]
    answers = predict(out, [s["path"] for s in sources], topk=5)
    expected = logits_of(tmp_path / "run", load_data(cache).test_images).softmax(1)
    classes = json.loads(out.with_suffix(".json").read_text())["classes"]
    for (_, top), p in zip(answers, expected):
        got = torch.tensor([prob for _, prob in sorted(top, key=lambda a: classes.index(a[0]))])
        assert torch.allclose(got, p, atol=PROB_ATOL)


def test_predict_on_fashion_mnist_pngs_gives_the_evaluations_probabilities(tmp_path):
    """A run on Fashion-MNIST at 16 px: the 28 x 28 test images, written as PNGs, are resized as the loader does."""
    from PIL import Image

    from fgvc_ref.data.fashion_mnist import DEFAULT_ROOT, load_fashion_mnist

    if not DEFAULT_ROOT.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    spec = "fashion-mnist:tops@16,train=4,test=3"
    train(tiny("base", 1), load_data(spec), tmp_path / "run", seed=0, progress=False)
    out = export_run(tmp_path / "run", tmp_path / "model.pt")
    raw = load_fashion_mnist("test", subset="tops", per_class=3)  # 28 x 28, as in the files
    paths = []
    for i, image in enumerate(raw.images):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image[0].numpy()).save(paths[-1])
    expected = logits_of(tmp_path / "run", load_data(spec).test_images).softmax(1)
    for (_, top), p in zip(predict(out, paths, topk=4), expected):
        got = torch.tensor([prob for _, prob in sorted(top, key=lambda a: raw.classes.index(a[0]))])
        assert torch.allclose(got, p, atol=PROB_ATOL)


# --- bad input ------------------------------------------------------------------------------------


def test_an_unreadable_image_is_refused_alone_and_the_others_are_classified(resnet_run, cache, tmp_path, capsys):
    run, _ = resnet_run
    out = export_run(run, tmp_path / "model.pt")
    good = json.loads((Path(cache) / "test.manifest.json").read_text())["sources"][0]["path"]
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    code = main(["predict", str(out), str(tmp_path / "broken.jpg"), good, str(tmp_path / "missing.png"), good, "--topk", "2"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.count(good) == 2 and captured.out.count("%") == 4
    assert "broken.jpg: not a readable image" in captured.err and "missing.png: cannot be read (No such file" in captured.err


@pytest.mark.parametrize("box, message", [("1,2,3", "four positive integers"), ("5,5,2,9", "x1 <= x2"), ("a,b,c,d", "four positive")])
def test_a_malformed_box_is_refused(box, message):
    with pytest.raises(ValueError, match=message):
        parse_box(box)


def test_box_count_must_match_the_images_and_an_export_needs_its_json(resnet_run, tmp_path, capsys):
    run, _ = resnet_run
    out = export_run(run, tmp_path / "model.pt")
    assert main(["predict", str(out), "a.png", "b.png", "--box", "1,1,5,5"]) == 2
    assert "one --box per image" in capsys.readouterr().err
    out.with_suffix(".json").unlink()
    with pytest.raises(ValueError, match="model.json side by side"):
        load_exported(out)
    with pytest.raises(ValueError, match="weights file"):
        export_run(run, tmp_path / "model.json")


def test_the_export_cli_names_both_files(resnet_run, tmp_path, capsys):
    run, _ = resnet_run
    assert main(["export", str(run), "--out", str(tmp_path / "m.pt"), "--weights", "raw"]) == 0
    assert "m.json" in capsys.readouterr().out and json.loads((tmp_path / "m.json").read_text())["weights"] == "raw"


def _turned(path: Path, out: Path, orientation: int) -> None:
    """``path``'s picture stored as a phone stores it: pixels turned, with the EXIF tag that turns them back."""
    from PIL import Image

    turn = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270, 3: Image.Transpose.ROTATE_180}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.open(path).convert("RGB").transpose(turn).save(out, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_predict_reads_a_phone_photo_upright_and_its_box_in_the_displayed_frame(resnet_run, cache, tmp_path, orientation):
    """A tagged photo whose stored pixels are turned gives the upright photo's answer, with and without a box."""
    from PIL import Image

    run, _ = resnet_run
    out = export_run(run, tmp_path / "model.pt")
    source = json.loads((Path(cache) / "test.manifest.json").read_text())["sources"][2]
    upright = tmp_path / "upright.png"
    Image.open(source["path"]).convert("RGB").save(upright)
    phone = tmp_path / "phone.png"
    _turned(upright, phone, orientation)
    box = tuple(source["bbox"])
    for boxes in (None, [box]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BoxExpected)
            want, got = predict(out, [str(upright)], boxes=boxes, topk=4), predict(out, [str(phone)], boxes=boxes, topk=4)
        assert [c for c, _ in want[0][1]] == [c for c, _ in got[0][1]]
        assert all(abs(a - b) < PROB_ATOL for (_, a), (_, b) in zip(want[0][1], got[0][1]))


def test_predict_warns_once_when_a_box_trained_model_gets_no_box_and_takes_a_folder(resnet_run, cache, tmp_path, capsys):
    run, _ = resnet_run
    out = export_run(run, tmp_path / "model.pt")
    sources = json.loads((Path(cache) / "test.manifest.json").read_text())["sources"]
    folder = tmp_path / "photos"
    folder.mkdir()
    for k, s in enumerate(sources[:3]):
        (folder / f"{k}.jpg").write_bytes(Path(s["path"]).read_bytes())
        (folder / f"._{k}.jpg").write_bytes(b"AppleDouble")
    (folder / ".DS_Store").write_bytes(b"junk")
    assert main(["predict", str(out), str(folder), "--topk", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("trained and evaluated on box crops; without --box") == 1
    assert [line.split(":")[0] for line in captured.out.splitlines()] == [str(folder / f"{k}.jpg") for k in range(3)]
    assert "skipped 4 entries" in captured.err and "._* (macOS AppleDouble)" in captured.err
    box = ",".join(map(str, sources[0]["bbox"]))
    assert main(["predict", str(out), sources[0]["path"], "--box", box]) == 0
    assert "box crops" not in capsys.readouterr().err


def test_evaluate_on_a_folder_of_labelled_photos_reads_them_upright_as_predict_does(resnet_run, cache, tmp_path):
    """evaluate --data FOLDER (class folders of the user's photos): each photo decoded in its displayed frame and
    preprocessed as predict does, so its prediction is predict's; the folder is not the run's data."""
    from fgvc_ref.evaluate import evaluate_run

    run, _ = resnet_run
    out = export_run(run, tmp_path / "model.pt")
    meta = json.loads(out.with_suffix(".json").read_text())
    sources = json.loads((Path(cache) / "test.manifest.json").read_text())["sources"]
    files = []
    for k, s in enumerate(sources[:6]):
        folder = tmp_path / "mine" / meta["classes"][s["label"]].replace("/", "-")
        folder.mkdir(parents=True, exist_ok=True)
        _turned(Path(s["path"]), folder / f"{k}.png", 6)
        files.append(str(folder / f"{k}.png"))
    r = evaluate_run(run, str(tmp_path / "mine"), out=tmp_path / "ev")
    with pytest.warns(BoxExpected):
        answers = {path: top[0][0] for path, top in predict(out, files, topk=1)}
    order = sorted(files, key=lambda f: (Path(f).parent.name, Path(f).name))  # class folders by name, then their files by name
    assert [meta["classes"][p] for p in r["predicted"]] == [answers[f] for f in order]
    assert r["images"] == 6 and not r["same_data_as_training"]
    (tmp_path / "mine" / "Not A Class").mkdir()
    with pytest.raises(ValueError, match="match no class name"):
        evaluate_run(run, str(tmp_path / "mine"), out=tmp_path / "ev2")


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18", "tiny_bn_cnn"])
def test_the_load_line_written_beside_every_export_loads_it(name, cache, tmp_path, monkeypatch):
    """model.json's "load" is run as written, from the export's folder, for a torchvision model and for the models
    torchvision does not know (get_model("efficientnet_lite0") raises "Unknown model")."""
    import fgvc_ref
    from fgvc_ref.model import build_model

    run = tmp_path / "run"
    run.mkdir()
    model = build_model(name, 4, "none")
    torch.save({"model": model.state_dict(), "ema": None, "identity": {}, "classes": load_data(cache).classes}, run / "final.pt")
    (run / "recipe.json").write_text(json.dumps({"model": name, "image_size": 16, "data": str(cache), "channels_last": True}))
    out = export_run(run, tmp_path / "exported" / "model.pt")
    line = json.loads(out.with_suffix(".json").read_text())["load"]
    monkeypatch.chdir(out.parent)
    loaded = eval(line, {"torch": torch, "torchvision": torchvision, "fgvc_ref": fgvc_ref})
    assert repr(loaded) == "<All keys matched successfully>"
    if name == "efficientnet_lite0":
        with pytest.raises(ValueError, match="Unknown model"):
            torchvision.models.get_model(name, num_classes=4)


def test_a_loaded_export_is_in_eval_mode_gives_the_same_logits_twice_and_equals_evaluates(resnet_run, cache, tmp_path):
    """resnet18 has BatchNorm: in training mode its outputs would use the batch's statistics (and change the running
    ones), so two calls would differ and neither would be evaluation's."""
    run, _ = resnet_run
    model, meta = load_exported(export_run(run, tmp_path / "model.pt"))
    assert not model.training and all(not m.training for m in model.modules())
    images = load_data(cache).test_images
    x = next(eval_batches(images, meta["preprocessing"]["image_size"], 64, CPU))[0].contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        first, second = model(x), model(x)
    assert torch.equal(first, second)
    torch.testing.assert_close(first, logits_of(run, images)[: len(x)], rtol=0, atol=1e-5)


@pytest.mark.parametrize("topk", [1, 2, 3])
def test_predict_probabilities_are_the_softmax_over_all_classes_not_the_top_k(resnet_run, cache, tmp_path, topk):
    """With top-k < K the printed probabilities are softmax(logits) over all K classes (so they sum to less than 1)."""
    run, _ = resnet_run
    out = export_run(run, tmp_path / "model.pt")
    sources = json.loads((Path(cache) / "test.manifest.json").read_text())["sources"][:5]
    answers = predict(out, [s["path"] for s in sources], boxes=[tuple(s["bbox"]) for s in sources], topk=topk)
    oracle = torch.softmax(logits_of(run, load_data(cache).test_images[:5]).double(), dim=1)
    classes = json.loads(out.with_suffix(".json").read_text())["classes"]
    for (_, top), p in zip(answers, oracle):
        assert len(top) == topk
        for name, prob in top:
            assert abs(prob - float(p[classes.index(name)])) < PROB_ATOL
        assert sum(prob for _, prob in top) < 1.0 - 1e-3 or topk == 4
        assert [name for name, _ in top] == [classes[c] for c in p.argsort(descending=True)[:topk].tolist()]


def test_predict_runs_an_onnx_export_in_onnx_runtime_with_the_same_answers(resnet_run, onnx_export, cache, tmp_path):
    run, _ = resnet_run
    pt = export_run(run, tmp_path / "model.pt")
    onnx_path = onnx_export("nhwc", "ema")
    sources = json.loads((Path(cache) / "test.manifest.json").read_text())["sources"][:4]
    files, boxes = [s["path"] for s in sources], [tuple(s["bbox"]) for s in sources]
    a, b = predict(pt, files, boxes=boxes, topk=3), predict(onnx_path, files, boxes=boxes, topk=3)
    for (_, x), (_, y) in zip(a, b):
        assert [n for n, _ in x] == [n for n, _ in y] and all(abs(p - q) < 1e-5 for (_, p), (_, q) in zip(x, y))


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_an_onnx_export_in_either_layout_predicts_evaluates_and_benches_as_the_run_does(resnet_run, onnx_export, cache, layout, tmp_path):
    """NHWC (S x S x 3) and NCHW (3 x S x S) exports of the run (trained at 12 px on images stored at 16): predict,
    evaluate and bench's latency read the input size S from the file's own layout and give the run's own answers."""
    from fgvc_ref import bench
    from fgvc_ref.evaluate import evaluate_model

    run, summary = resnet_run
    path = onnx_export(layout, "ema")
    expected = logits_of(run, load_data(cache).test_images)
    r = evaluate_model(path, out=tmp_path / "ev")
    assert r["predicted"] == expected.argmax(1).tolist() and r["top1"] == summary["last_test_acc"]
    sources = json.loads((Path(cache) / "test.manifest.json").read_text())["sources"][:3]
    answers = predict(path, [s["path"] for s in sources], boxes=[tuple(s["bbox"]) for s in sources], topk=2)
    classes = json.loads(path.with_name(path.name + ".json").read_text())["classes"]
    for (_, top), p in zip(answers, expected[:3].softmax(1)):
        assert [name for name, _ in top] == [classes[c] for c in p.argsort(descending=True)[:2].tolist()]
        assert all(abs(q - float(p[classes.index(name)])) < 1e-5 for name, q in top)
    (row,) = bench.bench_latency(repeats=2, models=[str(path)], batches=(1,), warmup=1)
    assert row["image_size"] == 12 and row["top1"] == summary["last_test_acc"]


def test_predict_and_evaluate_run_an_onnx_file_with_the_thread_count_the_cli_chose(onnx_export, cache, tmp_path, monkeypatch, capsys):
    """The CLI picks one compute-thread count (here OMP_NUM_THREADS=3) and an ONNX file's session computes with it, in its
    intra-op pool, not with ONNX Runtime's default of one thread per physical core."""
    import fgvc_ref.deploy as deploy

    real, built = deploy.OnnxClassifier, []

    class Recorded(real):
        def __init__(self, path, **kw):
            super().__init__(path, **kw)
            built.append(self)
    monkeypatch.setattr(deploy, "OnnxClassifier", Recorded)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    path = onnx_export("nhwc", "ema")
    photo = json.loads((Path(cache) / "test.manifest.json").read_text())["sources"][0]["path"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoxExpected)
        assert main(["predict", str(path), photo]) == 0
    assert main(["evaluate", str(path), "--out", str(tmp_path / "ev")]) == 0
    capsys.readouterr()
    assert len(built) == 2 and [m.session.get_session_options().intra_op_num_threads for m in built] == [3, 3]


def test_bad_model_files_and_bad_predict_arguments_are_clear_errors(resnet_run, cache, tmp_path, capsys):
    run, _ = resnet_run
    out = export_run(run, tmp_path / "model.pt")
    photo = json.loads((Path(cache) / "test.manifest.json").read_text())["sources"][0]["path"]
    cut = tmp_path / "cut.pt"
    cut.write_bytes(out.read_bytes()[:1000])
    (tmp_path / "cut.json").write_text(out.with_suffix(".json").read_text())
    for model in (cut, tmp_path / "broken.onnx"):
        if model.suffix == ".onnx":
            model.write_bytes(b"junk")
        assert main(["predict", str(model), photo]) == 2
        assert f"{model}: not a readable" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(out), str(tmp_path / "empty")]) == 2 and "no image files to classify" in capsys.readouterr().err
    assert main(["predict", str(out), photo, "--topk", "0"]) == 2 and "--topk must be >= 1" in capsys.readouterr().err
    assert main(["export", str(run), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "a state dict is not an ONNX model; add --format onnx" in capsys.readouterr().err and not (tmp_path / "x.onnx").exists()


def test_evaluating_other_data_never_replaces_the_runs_own_evaluation(resnet_run, cache, tmp_path):
    from fgvc_ref.evaluate import evaluate_run

    run, _ = resnet_run
    own = evaluate_run(run)
    sources = json.loads((Path(cache) / "test.manifest.json").read_text())["sources"]
    classes = json.loads(export_run(run, tmp_path / "m.pt").with_suffix(".json").read_text())["classes"]
    folder = tmp_path / "my_photos"
    for k, s in enumerate(sources[:4]):
        (folder / classes[s["label"]].replace("/", "-")).mkdir(parents=True, exist_ok=True)
        (folder / classes[s["label"]].replace("/", "-") / f"{k}.jpg").write_bytes(Path(s["path"]).read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = evaluate_run(run, str(folder))
    assert Path(own["out"]) == run / "evaluation-ema" and Path(other["out"]) == run / "evaluation-ema-on-my_photos"
    assert json.loads((run / "evaluation-ema" / "evaluation.json").read_text())["images"] == own["images"] != other["images"]


# --- files as people have them: very large photos, links, names ------------------------------------------

DRAFT_MEAN_LEVELS = 2.0  # JPEG draft mode averages 8 x 8 blocks in the DCT, a full decode then an antialiased resize averages
# a bilinear window: on real photos the stored 16-px images differ by at most about 1.5 grey levels on average (measured 0.2-1.4)
DRAFT_PROB_ATOL = 0.02  # ... which moves this model's probabilities by far less than this


def _big_photo(path: Path, size=(800, 600), fmt="JPEG") -> Path:
    """scikit-image's cat photo at ``size``: a "large" photo once the tests lower Pillow's limit below its pixels."""
    from PIL import Image

    from photos import photo_dir

    Image.open(photo_dir() / "chelsea.png").convert("RGB").resize(size, Image.BILINEAR).save(path, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return path


@pytest.mark.parametrize("box", [None, (81, 41, 720, 560)])  # a box on the 1/8 grid (x1 - 1, y1 - 1, x2, y2 multiples of 8): mapped exactly
def test_predict_reads_a_jpeg_over_the_pixel_limit_reduced_and_answers_as_for_the_whole_decode(resnet_run, tmp_path, monkeypatch, box):
    """The oracle is the same photo decoded whole (--max-image-pixels above its size) then preprocessed: the same top-1 class
    and probabilities within DRAFT_PROB_ATOL; the stored image within DRAFT_MEAN_LEVELS on average."""
    from PIL import Image

    from fgvc_ref.export import stored_image

    run, _ = resnet_run
    out = export_run(run, tmp_path / "model.pt")
    prep = json.loads(out.with_suffix(".json").read_text())["preprocessing"]
    photo = _big_photo(tmp_path / "IMG_0001.JPG")
    boxes = [box] if box else None
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200_000)  # 480,000 pixels: over twice the limit, Pillow's hard error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoxExpected)
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # no crop of the allowed whole decode goes over the limit
        (_, reduced), = predict(out, [str(photo)], boxes=boxes, topk=4)
        (_, whole), = predict(out, [str(photo)], boxes=boxes, topk=4, max_pixels=480_000)
    assert not isinstance(reduced, str), reduced
    assert reduced[0][0] == whole[0][0]
    assert all(abs(p - dict(whole)[c]) < DRAFT_PROB_ATOL for c, p in reduced)
    a, b = stored_image(photo, prep, box).float(), stored_image(photo, prep, box, max_pixels=480_000).float()
    assert (a - b).abs().mean() < DRAFT_MEAN_LEVELS and Image.MAX_IMAGE_PIXELS == 200_000


def test_a_png_over_the_pixel_limit_is_refused_by_predict_with_the_option_that_reads_it(resnet_run, tmp_path, monkeypatch, capsys):
    from PIL import Image

    run, _ = resnet_run
    out = export_run(run, tmp_path / "model.pt")
    photo = _big_photo(tmp_path / "scan.png", (600, 400), "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # 240,000 pixels: over twice the limit, Pillow's hard error
    assert main(["predict", str(out), str(photo)]) == 1
    err = capsys.readouterr().err
    assert f"{photo}: 240,000 pixels is over the 100,000-pixel limit that guards against decompression bombs" in err
    assert "only a JPEG can be read reduced" in err and "--max-image-pixels 240000" in err and "not a readable image" not in err
    for box in ([], ["--box", "2,2,600,400"]):  # Pillow checks a crop's size too (not a crop of the whole): the allowed limit holds for it
        assert main(["predict", str(out), str(photo), "--max-image-pixels", "240000", *box]) == 0
        captured = capsys.readouterr()
        assert str(photo) in captured.out and "decompression bomb" not in captured.err
    assert Image.MAX_IMAGE_PIXELS == 100_000


def test_affordable_reduction_keeps_the_region_the_stored_form_is_made_from_at_least_its_resize():
    """For the whole photo the shorter side stays >= stored_size * 8 // 7 (the resize before the centre crop); for a box,
    the box's shorter side (clamped to the photo) stays >= stored_size; a Fashion-MNIST model resizes the region to
    stored_size; the banner rows do not count."""
    from fgvc_ref.export import affordable_reduction

    cache = {"kind": "cache", "stored_size": 224, "trim_bottom": 0}
    assert affordable_reduction(cache)(4000, 3000) == 3000 / 256
    assert affordable_reduction(cache, (1001, 501, 2000, 3500))(4000, 3000) == 1000 / 224  # clamped: 2,500 rows in the photo
    assert affordable_reduction({"kind": "fashion-mnist", "stored_size": 28})(4000, 3000) == 3000 / 28
    assert affordable_reduction({**cache, "trim_bottom": 20})(4000, 3000) == 2980 / 256


def test_predict_on_a_folder_follows_links_and_names_a_broken_one_or_a_folder_without_images(resnet_run, cache, tmp_path, capsys):
    import os

    run, _ = resnet_run
    out = export_run(run, tmp_path / "model.pt")
    sources = json.loads((Path(cache) / "test.manifest.json").read_text())["sources"]
    folder = tmp_path / "photos"
    folder.mkdir()
    os.symlink(sources[0]["path"], folder / "linked.jpg")  # a file outside the folder
    (folder / "own.jpg").write_bytes(Path(sources[1]["path"]).read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoxExpected)
        answers = predict(out, [str(folder)], topk=1)
        assert [Path(p).name for p, _ in answers] == ["linked.jpg", "own.jpg"]
        assert answers[0][1] == predict(out, [sources[0]["path"]], topk=1)[0][1]
        os.symlink("../moved.jpg", folder / "old.jpg")
        assert main(["predict", str(out), str(folder)]) == 2
        assert f"{folder / 'old.jpg'} -> ../moved.jpg is broken" in capsys.readouterr().err
        (tmp_path / "iphone").mkdir()
        (tmp_path / "iphone" / "IMG_0001.HEIC").write_bytes(b"heic")
        assert main(["predict", str(out), str(tmp_path / "iphone")]) == 2
        assert f"{tmp_path / 'iphone'}: holds 'IMG_0001.HEIC', but no image file (image extensions read here:" in capsys.readouterr().err


def test_evaluate_on_photos_matches_nfd_class_folders_to_the_models_names_and_reads_a_large_jpeg_as_predict_does(tmp_path, monkeypatch):
    """A model whose classes are NFC names; the user's folders come from a Mac (NFD); one photo is over the pixel limit."""
    import unicodedata

    from PIL import Image

    from fgvc_ref.evaluate import evaluate_model

    raw = tmp_path / "raw"
    names = ["Citroën C4", "Škoda Octavia"]
    for split in ("train", "test"):
        for c, name in enumerate(names):
            (raw / split / name).mkdir(parents=True)
            for k in range(3):
                Image.new("RGB", (40, 30), (200 * c, 60 * k, 100)).save(raw / split / name / f"{k}.png")
    assert main(["prepare", "--dataset", "folder", "--data", str(raw), "--out", str(tmp_path / "cache"), "--any-size", "--train-size", "16",
                 "--test-size", "16", "--workers", "1"]) == 0
    train(tiny("base", 1), load_data(tmp_path / "cache"), tmp_path / "run", seed=0, progress=False)
    out = export_run(tmp_path / "run", tmp_path / "model.pt")
    assert json.loads(out.with_suffix(".json").read_text())["classes"] == names
    mine = tmp_path / "mine"
    for c, name in enumerate(names):
        (mine / unicodedata.normalize("NFD", name)).mkdir(parents=True)
        Image.new("RGB", (40, 30), (200 * c, 60, 100)).save(mine / unicodedata.normalize("NFD", name) / "a.png")
    big = mine / unicodedata.normalize("NFD", names[1]) / "big.jpg"
    Image.new("RGB", (400, 300), (200, 60, 100)).save(big, quality=95)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)
    r = evaluate_model(out, str(mine), out=tmp_path / "ev")
    assert r["images"] == 3 and r["classes"] == names
    assert r["predicted"][-1] == names.index(predict(out, [str(big)], topk=1)[0][1][0][0])
    Image.new("RGB", (400, 300), (200, 60, 100)).save(big.with_suffix(".png"))  # not a JPEG: read with the option only
    with pytest.raises(ValueError, match=r"big\.png: 120,000 pixels is over the 50,000-pixel limit .*--max-image-pixels 120000"):
        evaluate_model(out, str(mine), out=tmp_path / "ev2")
    assert main(["evaluate", str(out), "--data", str(mine), "--out", str(tmp_path / "ev3"), "--max-image-pixels", "120000"]) == 0
    assert json.loads((tmp_path / "ev3" / "evaluation.json").read_text())["images"] == 4
