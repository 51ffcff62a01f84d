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
                calibration_images: int = 256, calibration_method: str = "minmax", seed: int = 0, data: str | None = None) -> list[Path]:
    """Write ``out`` (fp32 ONNX with its preprocessing) and its description ``out.json`` (:func:`description`); with
    ``int8``, also ``<out stem>.int8.onnx`` and its ``.json``. Returns the model paths written."""
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
    written = [export_graph(run.model, out, size=size, layout=layout, meta=meta)]
    if int8:
        try:
            pixels = calibration_pixels(spec, size, layout, calibration_images, seed)
            written.append(quantize(out, pixels, method=calibration_method,
                                    calibration={"images": len(pixels), "seed": seed, "split": "train", "data": spec,
                                                 "preparation": "as validation: a box crop whole, a whole image by its centre 7/8, resized"}))
        except BaseException:  # all or nothing: no fp32 file left behind by a failed int8 export
            for path in written:
                path.unlink(missing_ok=True)
                description(path).unlink(missing_ok=True)
            raise
    return written


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


def _finish(path: Path, meta: dict) -> None:
    """Write ``meta`` into the model's metadata_props (``fgvc_ref.<key>``, JSON values) and beside it as ``.json``; check it."""
    from fgvc_ref.data.cache import atomic_write

    onnx = _need("onnx")
    model = onnx.load(str(path))
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

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
            raise ValueError(f"{self.path.name} takes uint8 pixels, got {getattr(pixels, 'dtype', type(pixels).__name__)}")
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != self.shape:
            raise ValueError(f"{self.path.name} takes uint8 {self.meta['input']['layout']} images of shape N x "
                             f"{' x '.join(map(str, self.shape))} ({self.meta['input']['colour']}), got shape {tuple(pixels.shape)}; "
                             f"prepare them as its metadata says: {self.meta['outside the graph']}")
        return self.session.run([OUTPUT], {self.input.name: pixels})[0]


def eval_pixels(images: torch.Tensor, size: int, layout: str = "nhwc") -> np.ndarray:
    """The uint8 pixels an exported model takes for cache images (uint8 ``N x 3 x S x S``): resized to ``size`` as the
    trainer's evaluation resizes them (:func:`fgvc_ref.train.eval_batches`, before its normalisation)."""
    from fgvc_ref.transforms import resized_crop_batch, whole_boxes

    if tuple(images.shape[-2:]) != (size, size):
        images = resized_crop_batch(images, whole_boxes(torch.tensor(images.shape[-2:]).expand(len(images), 2)), size)
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
