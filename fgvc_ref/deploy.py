"""The model on the edge: ONNX export with its preprocessing inside, int8 quantisation, and ONNX Runtime inference.

Where a deployed classifier quietly loses accuracy is the step from training to the runtime: a
different resize, colour order or normalisation, or a quantisation nobody measured. So the exported
graph takes what a camera pipeline has, **uint8 RGB pixels**, and does the rest of the project's
preprocessing inside (:class:`Preprocess`):

    pixels  uint8 N x S x S x 3 (NHWC, RGB; ``layout="nchw"``: N x 3 x S x S), S = the run's image_size
    x       = (float32(pixels) / 255 - mean) / std         per channel, ImageNet mean and std
    logits  = model(x)                                      float32 N x K

which equals the trainer's evaluation input (``normalize(x.float() / 255)``, :func:`fgvc_ref.train.eval_batches`)
bit for bit. What stays outside is the choice of pixels: with the box-crop protocol, the crop of the
object's box resized to S x S; without it, the shorter side resized to ``S * 8 // 7`` and the centre
S x S (it depends on the detector upstream). That rule, the class names and the provenance are
written into the ONNX ``metadata_props`` (keys ``fgvc_ref.*``, JSON values) and into ``model.onnx.json``
beside it (the state-dict export's is ``model.json``).

Export uses ``torch.onnx.export`` (the dynamo exporter, which needs ``onnxscript``) with a dynamic batch
dimension, and the file must pass ``onnx.checker``. ``int8``: ONNX Runtime's static post-training
quantisation (``quantize_static``): QDQ format, per-channel symmetric int8 weights, int8 activations,
for every op type ONNX Runtime quantizes (its default list; quantising only Conv, Gemm and MatMul kept
float activations between them and agreed less with fp32: 96.6% of top-1 answers against 98.8% on the
pretrained proxy's ``ema`` run, RESULTS.md), calibrated on a fixed, seeded
sample of the run's **train** split (never the test split), each image taken as validation takes it
(a box crop whole, a whole image by its centre 7/8) and resized to S; default 256 images, seed 0,
MinMax ranges. The method, sample size, seed and split are recorded in the metadata.

**A model that can say "unknown".** A run trained on an open-set split (``train --open-set``) is
exported with three more outputs, computed in the graph from ``logits``, which stays as it is:

    probs   = softmax(logits / T)          float32 N x K, calibrated: T fitted by NLL (temperature scaling)
    score   = s(logits)                    float32 N, the rejection score: max_logit (default), energy, msp or msp_ts
    known   = score >= t                   bool N

T and t are constants of the graph, fitted on **this file's own outputs** over the run's validation
split (the known classes' train images it held out, recomputed as training carved them; never the
test split): T minimises the NLL there, and t is the highest value of the graph's own ``score`` that
keeps at least 95% of those images (``--reject-tpr``). So the int8 file, whose logits differ from
fp32's, fits its own. Both are written into ``metadata_props`` (``fgvc_ref.temperature``,
``fgvc_ref.reject_score``, ``fgvc_ref.reject_threshold``, ``fgvc_ref.reject_rule``, with the split in
``fgvc_ref.open_set``). :func:`fgvc_ref.open_set_eval.head` is the same computation in PyTorch.

:class:`OnnxClassifier` runs an exported file in ONNX Runtime and refuses, with a clear message, an
input of the wrong dtype, layout or size.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fgvc_ref.transforms import IMAGENET_MEAN, IMAGENET_STD

LAYOUTS = ("nhwc", "nchw")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
INPUT, OUTPUT = "pixels", "logits"
HEAD_OUTPUTS = ("probs", "score", "known")  # an open-set export's outputs beside the logits


def _need(module: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise ValueError(f"{module} is not installed: pip install 'fgvc_ref[deploy]' (onnx, onnxruntime, onnxscript)") from None


class Preprocess(nn.Module):
    """uint8 pixels -> the normalised float32 NCHW tensor the network was trained on (module docstring)."""

    def __init__(self, layout: str = "nhwc", mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.layout = layout
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 3, 1, 2) if self.layout == "nhwc" else pixels
        return x.to(torch.float32).div(255).sub(self.mean).div(self.std)  # fgvc_ref.transforms.normalize's order and dtype


def export_onnx(run_dir: Path | str, out: Path | str, *, weights: str | None = None, layout: str = "nhwc", int8: bool = False,
                calibration_images: int = 256, calibration_method: str = "minmax", seed: int = 0, data: str | None = None,
                reject_score: str | None = None, reject_tpr: float | None = None) -> list[Path]:
    """Write ``out`` (fp32 ONNX with its preprocessing) and its description ``out.json`` (:func:`description`); with
    ``int8``, also ``<out stem>.int8.onnx`` and its ``.json``. A run trained with ``--open-set`` gets, in each file, the
    rejection head of the module docstring (``reject_score``, default max_logit; ``reject_tpr``, default 0.95), fitted on
    that file's own outputs over the run's validation split. Returns the model paths written."""
    from fgvc_ref.run import preprocessing_of
    from fgvc_ref.run import load_run, num_classes

    if calibration_method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {CALIBRATION_METHODS}, got {calibration_method!r}")
    if int8 and not (isinstance(calibration_images, int) and calibration_images >= 1):
        raise ValueError(f"--calibration-images must be an integer >= 1, got {calibration_images!r}")
    out = Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"--out {out}: an ONNX file's name ends in .onnx")
    run = load_run(run_dir, weights)
    rule = rejection_settings(run, reject_score, reject_tpr)
    spec = data or run.recipe["data"]
    preprocessing, classes = preprocessing_of(spec, run.recipe["image_size"])
    classes = list(run.classes or classes)
    k = num_classes(run.model.state_dict())
    if k != len(classes):
        raise ValueError(f"{run.path} classifies {k} classes but its data names {len(classes)}")
    size = int(run.recipe["image_size"])
    meta = {"format": "fgvc_ref-onnx", "version": 1, "model": run.recipe["model"], "num_classes": k, "classes": classes,
            "weights": run.weights, "run": str(run.path.resolve()), "stage": run.recipe.get("name"), "seed": run.recipe.get("seed"),
            "data": spec, "outside the graph": _crop_rule(preprocessing, size), "preprocessing": preprocessing}
    validation = validation_pixels(run, spec, size, layout) if rule else None  # before any file is written: refusals leave nothing
    written = [export_graph(run.model, out, size=size, layout=layout, meta=meta)]
    try:
        if int8:
            pixels = calibration_pixels(spec, size, layout, calibration_images, seed)
            written.append(quantize(out, pixels, method=calibration_method,
                                    calibration={"images": len(pixels), "seed": seed, "split": "train", "data": spec,
                                                 "preparation": "as validation: a box crop whole, a whole image by its centre 7/8, resized"}))
        if rule:  # each file fits its own temperature and threshold, on its own outputs
            pixels, labels, info = validation
            for path in written:
                add_rejection_head(path, pixels, labels, score_name=rule[0], tpr=rule[1], open_set=run.recipe["open_set"], validation=info)
    except BaseException:  # all or nothing: no file left behind by a failed int8 export or head
        for path in written:
            path.unlink(missing_ok=True)
            description(path).unlink(missing_ok=True)
        raise
    return written


def rejection_settings(run, score: str | None, tpr: float | None) -> tuple[str, float] | None:
    """``(score, tpr)`` for a run trained with ``--open-set`` (defaults max_logit, 0.95), None for a run trained on all
    classes; asking a rejection rule of the latter is refused (it has no unknown classes, nor a rule fitted without them)."""
    from fgvc_ref.open_set_eval import DEFAULT_SCORE, DEFAULT_TPR, SCORES

    if run.recipe.get("open_set") is None:
        if score is not None or tpr is not None:
            raise ValueError(f"{run.path} was trained on all the classes of its data (no train --open-set): there is no rejection rule "
                             "to export; --reject-score and --reject-tpr go with a run trained with --open-set SPLIT")
        return None
    score, tpr = score or DEFAULT_SCORE, DEFAULT_TPR if tpr is None else tpr
    if score not in SCORES:
        raise ValueError(f"--reject-score must be one of {', '.join(SCORES)}, got {score!r}")
    if isinstance(tpr, bool) or not isinstance(tpr, (int, float)) or not 0 < tpr <= 1:
        raise ValueError(f"--reject-tpr must be in (0, 1], the share of validation images the threshold keeps; got {tpr!r}")
    return score, float(tpr)


def validation_pixels(run, spec: str, size: int, layout: str) -> tuple[np.ndarray, torch.Tensor, dict]:
    """An open-set run's validation images (:func:`fgvc_ref.evaluate.validation_of`) as the uint8 pixels the graph takes,
    each taken as training's validation took it and resized to ``size``; their labels; and where they came from."""
    from fgvc_ref.open_set_eval import validation_of
    from fgvc_ref.transforms import resized_crop_batch

    images, labels, boxes, _ = validation_of(spec, run.recipe["open_set"], run.recipe["val_fraction"], run.recipe["seed"],
                                             run.recipe.get("data_fingerprint"), verify_sources=False)
    x = resized_crop_batch(images, boxes, size)
    info = {"data": spec, "data_fingerprint": run.recipe.get("data_fingerprint"), "val_fraction": run.recipe["val_fraction"], "seed": run.recipe["seed"], "images": len(labels),
            "split": "the run's validation split: the known classes' train images it held out (train.carve_validation), never test"}
    return (x.permute(0, 2, 3, 1) if layout == "nhwc" else x).contiguous().numpy(), labels, info


def add_rejection_head(path: Path, pixels: np.ndarray, labels: torch.Tensor, *, score_name: str, tpr: float, open_set: dict,
                       validation: dict) -> Path:
    """Append ``probs``, ``score`` and ``known`` (module docstring) to the ONNX model at ``path``, with T and t fitted on
    its own outputs over the validation ``pixels``, and record them in its metadata and description."""
    from fgvc_ref.open_set_eval import fit_temperature, rule

    onnx = _need("onnx")
    temperature = fit_temperature(torch.from_numpy(_run_all(path, pixels)[OUTPUT]), labels)  # on the file's own logits
    model = onnx.load(str(path))
    _append_head(model, temperature, score_name, 0.0)
    scores = torch.from_numpy(_run_all(model, pixels)["score"])  # the graph's own score: t is fitted on exactly what it compares
    fitted = rule(temperature, score_name, scores, tpr, fitted_on="; both fitted on this file's own outputs")
    _set_constant(model, "fgvc_ref_reject_threshold", fitted["reject_threshold"])
    meta = json.loads(description(path).read_text())
    k = meta["num_classes"]
    meta.update({key: fitted[key] for key in ("temperature", "reject_score", "reject_threshold", "reject_rule")}, reject_tpr=tpr,
                open_set=open_set, validation=validation,
                outputs={OUTPUT: "float32 N x K: the logits, unchanged", "probs": f"float32 N x {k}: softmax(logits / temperature)",
                         "score": f"float32 N: {score_name}, higher = known", "known": "bool N: score >= reject_threshold"})
    _finish(path, meta, model)
    return path


def _append_head(model, temperature: float, score_name: str, threshold: float) -> None:
    """The head's nodes after the graph's logits: Div and Softmax for probs, a reduction for the score, GreaterOrEqual."""
    from onnx import TensorProto, helper, numpy_helper

    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    graph = model.graph
    graph.initializer.extend([numpy_helper.from_array(np.array(temperature, dtype=np.float32), "fgvc_ref_temperature"),
                              numpy_helper.from_array(np.array(threshold, dtype=np.float32), "fgvc_ref_reject_threshold"),
                              numpy_helper.from_array(np.array([1], dtype=np.int64), "fgvc_ref_class_axis")])

    def reduce(op: str, x: str, out: str):  # over the class axis; axes became an input in opset 18
        return (helper.make_node(op, [x, "fgvc_ref_class_axis"], [out], keepdims=0) if opset >= 18
                else helper.make_node(op, [x], [out], axes=[1], keepdims=0))

    nodes = [helper.make_node("Div", [OUTPUT, "fgvc_ref_temperature"], ["fgvc_ref_scaled_logits"]),
             helper.make_node("Softmax", ["fgvc_ref_scaled_logits"], ["probs"], axis=1)]
    if score_name == "max_logit":
        nodes.append(reduce("ReduceMax", OUTPUT, "score"))
    elif score_name == "energy":
        nodes.append(reduce("ReduceLogSumExp", OUTPUT, "score"))
    elif score_name == "msp_ts":
        nodes.append(reduce("ReduceMax", "probs", "score"))
    else:  # msp: the softmax at T = 1
        nodes += [helper.make_node("Softmax", [OUTPUT], ["fgvc_ref_softmax"], axis=1), reduce("ReduceMax", "fgvc_ref_softmax", "score")]
    nodes.append(helper.make_node("GreaterOrEqual", ["score", "fgvc_ref_reject_threshold"], ["known"]))
    graph.node.extend(nodes)
    logits = next(o for o in graph.output if o.name == OUTPUT).type.tensor_type.shape.dim
    batch, k = (d.dim_param or d.dim_value for d in logits)
    graph.output.extend([helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, k]),
                         helper.make_tensor_value_info("score", TensorProto.FLOAT, [batch]),
                         helper.make_tensor_value_info("known", TensorProto.BOOL, [batch])])


def _set_constant(model, name: str, value: float) -> None:
    from onnx import numpy_helper

    init = next(i for i in model.graph.initializer if i.name == name)
    init.CopyFrom(numpy_helper.from_array(np.array(value, dtype=np.float32), name))


def _run_all(model, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of an ONNX model (a path or a ModelProto) on ``pixels``, in batches of 64, in ONNX Runtime."""
    from fgvc_ref.threads import onnxruntime_options

    ort = _need("onnxruntime")
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    session = ort.InferenceSession(source, onnxruntime_options(None), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    parts = [session.run(names, {INPUT: pixels[i : i + 64]}) for i in range(0, len(pixels), 64)]
    return {name: np.concatenate([p[j] for p in parts]) for j, name in enumerate(names)}


def export_graph(model: nn.Module, out: Path, *, size: int, layout: str = "nhwc", meta: dict) -> Path:
    """``Preprocess`` + ``model`` as an fp32 ONNX graph with a dynamic batch dimension at ``out``, ``meta`` (with the input
    and output described) in its metadata_props and beside it as ``.json``; checked with ``onnx.checker``."""
    _need("onnx")
    _need("onnxscript")
    k = meta["num_classes"]
    meta = {**meta,
            "input": {"name": INPUT, "dtype": "uint8", "layout": layout.upper(), "shape": ["N", size, size, 3] if layout == "nhwc" else ["N", 3, size, size],
                      "colour": "RGB", "inside the graph": "x / 255, then (x - mean) / std per channel", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
            "output": {"name": OUTPUT, "dtype": "float32", "shape": ["N", k], "meaning": "logits; softmax over all K classes for probabilities"},
            "precision": "fp32", "fgvc_ref": _version(), "torch": torch.__version__}
    out.parent.mkdir(parents=True, exist_ok=True)
    net = nn.Sequential(Preprocess(layout), model).eval()
    example = torch.zeros((2, size, size, 3) if layout == "nhwc" else (2, 3, size, size), dtype=torch.uint8)
    with torch.no_grad():
        program = torch.onnx.export(net, (example,), dynamo=True, input_names=[INPUT], output_names=[OUTPUT],
                                    dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},), verbose=False)
    program.save(str(out))
    _finish(out, meta)
    return out


def description(path: Path) -> Path:
    """The JSON written beside an ONNX file: ``model.onnx.json`` (``model.json`` is the state-dict export's)."""
    return path.with_name(path.name + ".json")


def _crop_rule(preprocessing: dict, size: int) -> str:
    if preprocessing["kind"] == "fashion-mnist":
        return f"a greyscale picture resized to {preprocessing['stored_size']} px (antialiased bilinear), replicated to RGB, resized to {size}"
    trim = f"cut the bottom {preprocessing['trim_bottom']} rows (FGVC-Aircraft's banner); " if preprocessing.get("trim_bottom") else ""
    if preprocessing.get("test_images_had_boxes"):
        return (f"{trim}crop the object's box (from your detector) and resize it to {preprocessing['stored_size']} x "
                f"{preprocessing['stored_size']}" + ("" if preprocessing["stored_size"] == size else f", then to {size} x {size}")
                + " (bilinear, antialiased)")
    return (f"{trim}resize the shorter side to {preprocessing['stored_size'] * 8 // 7}, crop the centre {preprocessing['stored_size']} x "
            f"{preprocessing['stored_size']}" + ("" if preprocessing["stored_size"] == size else f", resize to {size} x {size}")
            + " (bilinear, antialiased)")


def _version() -> str:
    from fgvc_ref import __version__

    return __version__


def _finish(path: Path, meta: dict, model=None) -> None:
    """Write ``meta`` into the model's metadata_props (``fgvc_ref.<key>``, JSON values) and beside it as ``.json``; check it.
    ``model``: the ModelProto to write at ``path`` (default: the file there)."""
    from fgvc_ref.data.cache import atomic_write

    onnx = _need("onnx")
    model = onnx.load(str(path)) if model is None else model
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = f"fgvc_ref.{key}", json.dumps(value)
    onnx.checker.check_model(model, full_check=True)
    atomic_write(path, lambda f: f.write(model.SerializeToString()))
    atomic_write(description(path), lambda f: f.write(json.dumps(meta, indent=1).encode()))


def calibration_pixels(spec: str, size: int, layout: str, images: int, seed: int) -> np.ndarray:
    """A fixed, seeded sample of the train split (never the test split) as uint8 pixels at ``size``: each image taken as
    validation takes it (a box crop whole, a whole image by its centre 7/8), resized as evaluation resizes."""
    from fgvc_ref.data.sources import load_data
    from fgvc_ref.transforms import centre_crop_boxes, resized_crop_batch, whole_boxes

    data = load_data(spec, verify_sources=False)
    n, s = len(data.train_labels), data.train_images.shape[-1]
    pick = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[: min(images, n)].sort().values
    sizes = data.train_sizes[pick] if data.train_sizes is not None else torch.tensor([s, s]).expand(len(pick), 2)
    cropped = data.train_cropped[pick] if data.train_cropped is not None else torch.ones(len(pick), dtype=torch.bool)
    boxes = torch.where(cropped.unsqueeze(1), whole_boxes(sizes), centre_crop_boxes(sizes))
    x = resized_crop_batch(data.train_images[pick], boxes, size)
    return (x.permute(0, 2, 3, 1) if layout == "nhwc" else x).contiguous().numpy()


def quantize(fp32: Path, pixels: np.ndarray, *, method: str = "minmax", calibration: dict) -> Path:
    """Static int8 quantisation of ``fp32`` (module docstring), calibrated on ``pixels`` (uint8, the graph's input
    layout), into ``<stem>.int8.onnx`` with the fp32 file's metadata plus the quantisation and ``calibration``."""
    import tempfile

    quant = _need("onnxruntime.quantization")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {CALIBRATION_METHODS}, got {method!r}")

    class Reader(quant.CalibrationDataReader):
        def __init__(self):
            self.batches = iter([pixels[i : i + 16] for i in range(0, len(pixels), 16)])

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {INPUT: batch}

    out = fp32.with_name(fp32.stem + ".int8.onnx")
    calibrate = {"minmax": quant.CalibrationMethod.MinMax, "entropy": quant.CalibrationMethod.Entropy,
                 "percentile": quant.CalibrationMethod.Percentile}[method]
    meta = json.loads(description(fp32).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quant.quantize_static(str(prepared), str(out), Reader(), quant_format=quant.QuantFormat.QDQ, per_channel=True,
                              activation_type=quant.QuantType.QInt8, weight_type=quant.QuantType.QInt8, calibrate_method=calibrate,
                              extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    _finish(out, {**meta, "precision": "int8",
                  "quantization": {"tool": "onnxruntime.quantization.quantize_static", "format": "QDQ", "weights": "int8, per channel, symmetric",
                                   "activations": "int8, per tensor, asymmetric",
                                   "ops": "every op type ONNX Runtime quantizes (its default list: Conv, Gemm, MatMul, Add, Clip, ...)",
                                   "calibration": {"method": method, **calibration}}})
    return out


class OnnxClassifier:
    """An exported model in ONNX Runtime: ``classifier(pixels) -> logits``, pixels checked against the graph's input."""

    def __init__(self, path: Path | str, *, threads: int | None = None) -> None:
        from fgvc_ref.threads import onnxruntime_options

        ort = _need("onnxruntime")
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"{self.path}: no such model file")
        options = onnxruntime_options(threads)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own exception types for unreadable or invalid files
            raise ValueError(f"{self.path}: not a readable ONNX model ({type(e).__name__}: {str(e).splitlines()[0][:300]})") from None
        props = self.session.get_modelmeta().custom_metadata_map
        if "fgvc_ref.format" not in props:
            raise ValueError(f"{self.path}: an ONNX model, but not one fgvc_ref exported (no fgvc_ref.* metadata)")
        self.meta = {k.removeprefix("fgvc_ref."): json.loads(v) for k, v in props.items() if k.startswith("fgvc_ref.")}
        self.input = self.session.get_inputs()[0]
        self.layout = self.meta["input"]["layout"].lower()  # "nhwc" or "nchw"
        self.shape = tuple(self.meta["input"]["shape"][1:])  # one image: S x S x 3 (NHWC) or 3 x S x S (NCHW)
        self.size = self.shape[0] if self.layout == "nhwc" else self.shape[1]  # S, the side the pixels are resized to
        self.outputs = [o.name for o in self.session.get_outputs()]  # logits; and probs, score, known for an open-set export

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return self.run(pixels, [OUTPUT])[OUTPUT]

    def run(self, pixels: np.ndarray, outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """The graph's ``outputs`` (default: all of them) on ``pixels``, by name."""
        if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
            raise ValueError(f"{self.path.name} takes uint8 pixels, got {getattr(pixels, 'dtype', type(pixels).__name__)}")
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != self.shape:
            raise ValueError(f"{self.path.name} takes uint8 {self.meta['input']['layout']} images of shape N x "
                             f"{' x '.join(map(str, self.shape))} ({self.meta['input']['colour']}), got shape {tuple(pixels.shape)}; "
                             f"prepare them as its metadata says: {self.meta['outside the graph']}")
        names = outputs or self.outputs
        return dict(zip(names, self.session.run(names, {self.input.name: pixels})))


def eval_pixels(images: torch.Tensor, size: int, layout: str = "nhwc", boxes: torch.Tensor | None = None) -> np.ndarray:
    """The uint8 pixels an exported model takes for cache images (uint8 ``N x 3 x S x S``; each ``boxes`` row ``(i, j, h, w)``,
    default all of it): resized to ``size`` as the trainer's evaluation resizes them (:func:`fgvc_ref.train.eval_batches`,
    before its normalisation)."""
    from fgvc_ref.transforms import resized_crop_batch, whole_boxes

    if boxes is not None or tuple(images.shape[-2:]) != (size, size):
        boxes = whole_boxes(torch.tensor(images.shape[-2:]).expand(len(images), 2)) if boxes is None else boxes
        images = resized_crop_batch(images, boxes, size)
    return (images.permute(0, 2, 3, 1) if layout == "nhwc" else images).contiguous().numpy()


def timings(run, *, warmup: int, repeats: int) -> list[float]:
    """Seconds of ``repeats`` calls of ``run`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        out.append(time.perf_counter() - t0)
    return out


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
