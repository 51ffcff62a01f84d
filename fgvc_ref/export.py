"""Use a trained model: export a finished run's weights as a plain state dict, and classify image files.

``export`` writes two files. ``model.pt`` is a plain state dict (tensors only), so a torchvision
model loads it with no fgvc_ref code::

    model = torchvision.models.get_model("resnet50", num_classes=K)
    model.load_state_dict(torch.load("model.pt", weights_only=True))

``model.json`` beside it holds the class names (index = output), the model name, the weights chosen
(EMA or raw), the run it came from and the preprocessing, the one evaluation used:

- ``"cache"`` (a prepared dataset): decode, convert to RGB, cut ``trim_bottom`` rows from the bottom
  (FGVC-Aircraft's banner; 0 elsewhere); with a box, crop it (1-based inclusive)
  and resize to ``stored_size`` squared; without one, resize the shorter side to
  ``stored_size * 8 // 7`` and centre-crop ``stored_size`` (docs/data.md); then resize to
  ``image_size`` squared (antialiased) when it differs, scale to [0, 1] and normalise by mean/std;
- ``"fashion-mnist"``: convert to grey, resize to ``stored_size`` squared (antialiased bilinear, as the
  loader does from 28 x 28), replicate to RGB, then as above.

``predict`` applies exactly that (the same functions as ``prepare`` and the trainer's evaluation), so
an image from a run's test split gets the logits evaluation gave it.

A run trained with ``--open-set`` exports its rejection rule too: ``model.json`` gets ``temperature``,
``reject_score``, ``reject_threshold``, ``reject_rule`` and ``open_set``, fitted on the exported
network's logits over the run's validation split (the ONNX export fits each file on its own outputs,
:mod:`fgvc_ref.deploy`), and ``predict`` answers "unknown" for an image whose score is below the
threshold, else its top classes by the temperature-scaled probabilities.

A photo over Pillow's decompression-bomb limit (89,478,485 pixels; a 108-megapixel phone photo is
over it) is read as :mod:`fgvc_ref.data.images` reads large pictures on a user-facing path: a JPEG at
1/2, 1/4 or 1/8 of its width and height (JPEG draft mode), the largest reduction that keeps the
region the stored form is made from (the box, else the whole photo) at least as large as it is
resized to (``stored_size``; ``stored_size * 8 // 7`` before a centre crop), with the box and the
banner rows scaled alike; any other file over the limit is refused, naming the option that reads it
(``max_pixels``, ``--max-image-pixels``).
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from fgvc_ref.data.cache import atomic_write
from fgvc_ref.data.records import DatasetError


def export_run(run_dir: Path | str, out: Path | str, *, weights: str | None = None, data: str | None = None,
               reject_score: str | None = None, reject_tpr: float | None = None) -> Path:
    """Write ``out`` (a plain state dict) and ``out`` with suffix ``.json`` (classes, preprocessing, and for a run trained
    with ``--open-set`` its rejection rule, module docstring); returns ``out``."""
    from fgvc_ref.deploy import rejection_settings
    from fgvc_ref.run import load_run, num_classes, preprocessing_of

    run = load_run(run_dir, weights)
    settings = rejection_settings(run, reject_score, reject_tpr)
    out = Path(out)
    if out.suffix == ".json":
        raise ValueError(f"--out {out}: give the weights file's name (e.g. model.pt); its .json is written beside it")
    if out.suffix == ".onnx":
        raise ValueError(f"--out {out}: a state dict is not an ONNX model; add --format onnx, or name it model.pt")
    preprocessing, classes = preprocessing_of(data or run.recipe["data"], run.recipe["image_size"])
    classes = run.classes or classes
    state = {k: v.contiguous() for k, v in run.model.state_dict().items()}
    if num_classes(state) != len(classes):
        raise ValueError(f"{run.path} classifies {num_classes(state)} classes but its data names {len(classes)}")
    name = run.recipe["model"]
    meta = {"format": "fgvc_ref-export", "version": 1, "model": name, "num_classes": len(classes), "classes": classes,
            "weights": run.weights, "run": str(run.path.resolve()), "stage": run.recipe.get("name"), "seed": run.recipe.get("seed"),
            "data": run.recipe.get("data"), "preprocessing": preprocessing, "channels_last": bool(run.recipe.get("channels_last")),
            "load": (f"torchvision.models.get_model({name!r}, num_classes={len(classes)}).load_state_dict(torch.load({out.name!r}, weights_only=True))"
                     if name not in ("efficientnet_lite0", "tiny_cnn", "tiny_bn_cnn") else
                     f"fgvc_ref.model.build_model({name!r}, {len(classes)}).load_state_dict(torch.load({out.name!r}, weights_only=True))")}
    if settings:
        meta.update(_rejection_rule(run, data or run.recipe["data"], *settings))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda f: torch.save(state, f))
    atomic_write(out.with_suffix(".json"), lambda f: f.write(json.dumps(meta, indent=1).encode()))
    return out


def _rejection_rule(run, spec: str, score_name: str, tpr: float) -> dict:
    """The rule of an open-set run's state-dict export, fitted on its network's logits over the run's validation split."""
    from fgvc_ref.open_set_eval import fit_rule, validation_of
    from fgvc_ref.run import run_logits

    images, labels, boxes, _ = validation_of(spec, run.recipe["open_set"], run.recipe["val_fraction"], run.recipe["seed"],
                                             run.recipe.get("data_fingerprint"), verify_sources=False)
    fitted = fit_rule(run_logits(run, images, torch.device("cpu"), boxes), labels, score_name, tpr)
    return {**{k: fitted[k] for k in ("temperature", "reject_score", "reject_threshold", "reject_rule")}, "reject_tpr": tpr, "open_set": run.recipe["open_set"],
            "validation": {"data": spec, "data_fingerprint": run.recipe.get("data_fingerprint"), "val_fraction": run.recipe["val_fraction"], "seed": run.recipe["seed"], "images": len(labels),
                           "split": "the run's validation split: the known classes' train images it held out (train.carve_validation), never test"}}


def load_exported(path: Path | str) -> tuple[torch.nn.Module, dict]:
    """The model (eval mode, CPU) and the metadata of an exported ``model.pt`` + ``model.json``."""
    from fgvc_ref.model import build_model

    path = Path(path)
    if path.suffix == ".onnx":
        raise ValueError(f"{path}: an ONNX model; ONNX Runtime runs it (fgvc_ref.deploy.OnnxClassifier), not PyTorch")
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise ValueError(f"{path}: an exported model needs {path.name} and {meta_path.name} side by side "
                         f"(found {[p.name for p in (path, meta_path) if p.is_file()]}); run `python -m fgvc_ref export`")
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError as e:
        raise ValueError(f"{meta_path}: not readable JSON ({e}); export the model again") from None
    if not isinstance(meta, dict) or meta.get("format") != "fgvc_ref-export":
        raise ValueError(f"{meta_path}: not an fgvc_ref export description")
    model = build_model(meta["model"], meta["num_classes"], "none")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as e:  # torch raises several types for a truncated or foreign file
        raise ValueError(f"{path}: not a readable exported state dict ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                         "export the model again") from None
    return model.eval(), meta


def exported_predictor(path: Path | str, device: torch.device, threads: int | None = None, *, outputs: bool = False):
    """``(run, meta)`` for an exported model: ``run(images, boxes=None)`` gives float32 ``N x K`` logits for uint8
    ``N x 3 x S x S`` stored images (each ``boxes`` row ``(i, j, h, w)``, default all of it), resized to the model's size as
    the run's evaluation resizes them; with ``outputs``, a dict: ``logits``, and ``probs``, ``score`` and ``known`` for a
    model exported from an open-set run (the ONNX graph's own outputs; for a state dict,
    :func:`fgvc_ref.open_set_eval.head` with its metadata's rule). A ``.onnx`` file runs in ONNX Runtime (``threads``; the
    graph normalises the pixels itself), any other file is a state dict with its ``.json`` (:func:`load_exported`) run in
    PyTorch on ``device``. Used by ``predict``, ``evaluate`` and ``bench``."""
    from fgvc_ref.deploy import OnnxClassifier, eval_pixels
    from fgvc_ref.open_set_eval import head
    from fgvc_ref.train import predict_logits

    path = Path(path)
    if path.suffix == ".onnx":
        model = OnnxClassifier(path, threads=threads)
        names = model.outputs if outputs else ["logits"]

        def run(images, boxes=None):
            parts = [model.run(eval_pixels(images[i : i + 64], model.size, model.layout, None if boxes is None else boxes[i : i + 64]), names)
                     for i in range(0, len(images), 64)]
            got = {n: torch.from_numpy(np.concatenate([p[n] for p in parts])) for n in names}
            return got if outputs else got["logits"].float()
        return run, model.meta
    net, meta = load_exported(path)
    fmt = torch.channels_last if meta.get("channels_last") else torch.contiguous_format
    net = net.to(device=device, memory_format=fmt)

    def run(images, boxes=None):
        logits = predict_logits(net, images, size=meta["preprocessing"]["image_size"], batch=256, device=device,
                                amp=device.type == "cuda", memory_format=fmt, boxes=boxes).cpu()
        if not outputs:
            return logits
        return {"logits": logits, **(head(logits, meta["temperature"], meta["reject_score"], meta["reject_threshold"]) if "reject_score" in meta else {})}
    return run, meta


def parse_box(text: str) -> tuple[int, int, int, int]:
    """``"x1,y1,x2,y2"`` (1-based inclusive pixels) as four integers."""
    if not re.fullmatch(r"\s*\d+\s*,\s*\d+\s*,\s*\d+\s*,\s*\d+\s*", text):
        raise ValueError(f"--box {text!r}: expected x1,y1,x2,y2 as four positive integers (1-based, inclusive)")
    x1, y1, x2, y2 = (int(v) for v in text.split(","))
    if x1 < 1 or y1 < 1 or x2 < x1 or y2 < y1:
        raise ValueError(f"--box {text!r}: needs 1 <= x1 <= x2 and 1 <= y1 <= y2")
    return x1, y1, x2, y2


def stored_image(path: Path | str, preprocessing: dict, box=None, *, max_pixels: int | None = None) -> torch.Tensor:
    """One image file as its uint8 ``3 x S x S`` stored form (S = ``stored_size``), as ``prepare`` (or the
    Fashion-MNIST loader) would store a test image, but in the displayed frame: the file's EXIF orientation is
    applied (a user's photo means what a viewer shows) and ``box`` is read in that frame. A photo over the pixel
    limit is read reduced or refused (module docstring); ``max_pixels`` raises the limit. Raises DatasetError for
    an unreadable file."""
    from fgvc_ref.data.images import pixel_limit

    with pixel_limit(max_pixels):  # an allowed large file: its crop is checked against the same limit
        return _stored_image(path, preprocessing, box, max_pixels)


def _stored_image(path: Path | str, preprocessing: dict, box, max_pixels: int | None) -> torch.Tensor:
    from fgvc_ref.data.cache import crop_box, stored_form
    from fgvc_ref.data.images import decode_image
    from fgvc_ref.data.records import edges_box

    size, trim = preprocessing["stored_size"], preprocessing.get("trim_bottom", 0)
    decoded = decode_image(path, str(path), orientation="apply", max_reduction=affordable_reduction(preprocessing, box),
                           max_pixels=max_pixels)
    img, r = decoded.image, decoded.reduced
    if r > 1:  # read at 1/r of its width and height: the box's edges (to the nearest reduced pixel) and the banner's rows scale alike
        box = edges_box((box[0] - 1) / r, (box[1] - 1) / r, box[2] / r, box[3] / r) if box is not None else None
        trim = -(-trim // r)
    if preprocessing["kind"] == "cache":
        array, _ = stored_form(img, size, bbox=box, trim_bottom=trim, name=str(path))
        return torch.from_numpy(array).permute(2, 0, 1).contiguous()
    from fgvc_ref.data.fashion_mnist import resize_grey

    img = img.convert("L")  # exact for a grey file: R = G = B = v gives v
    if box is not None:
        img = crop_box(img, box, str(path))
    grey = resize_grey(torch.from_numpy(np.asarray(img).copy()).view(1, 1, img.height, img.width), size)
    return grey[0].expand(3, -1, -1).contiguous()


def affordable_reduction(preprocessing: dict, box=None):
    """``(width, height) -> factor``: how far a photo (its size as displayed) may be reduced and still give its stored form
    every pixel it uses: the region it is made from (the box, clamped to the photo, else the photo less its banner rows)
    keeps its shorter side at least the size that region is resized to (module docstring)."""
    from fgvc_ref.transforms import eval_resize

    size, trim = preprocessing["stored_size"], preprocessing.get("trim_bottom", 0)
    need = eval_resize(size) if box is None and preprocessing["kind"] == "cache" else size

    def factor(width: int, height: int) -> float:
        if box is None:
            return min(width, height - trim) / need
        x1, y1, x2, y2 = box
        return min(min(x2, width) - x1 + 1, min(y2, height) - y1 + 1) / need
    return factor


class BoxExpected(UserWarning):
    """A model trained and evaluated on box crops is asked about whole images."""


def image_files(paths: list[str]) -> tuple[list[str], str | None]:
    """The arguments with each folder replaced by its image files (sorted; junk skipped, links followed,
    :func:`~fgvc_ref.data.images.scan`), and the note on what was skipped. A folder that holds files but no image file
    is a DatasetError naming them."""
    from collections import Counter

    from fgvc_ref.data.images import junk_note, scan, what_it_holds

    files, skipped, examples = [], Counter(), {}
    for p in paths:
        if Path(p).is_dir():
            found = scan(p)
            if (held := what_it_holds(found)) is not None:
                raise DatasetError(f"{p}: holds {held}")
            files += [str(f) for f in found.files]
            skipped.update(found.skipped)
            examples = {**found.examples, **examples}
            if found.folders:
                skipped["sub-folders (not read: give them as arguments)"] += len(found.folders)
                examples.setdefault("sub-folders (not read: give them as arguments)", found.folders[0])
        else:
            files.append(p)
    return files, junk_note(skipped, examples, ", ".join(p for p in paths if Path(p).is_dir()))


class Unknown(NamedTuple):
    """``predict``'s answer for an image an open-set model rejects: its score is below the threshold."""

    score: float
    threshold: float
    score_name: str
    top: list  # [(class, probability), ...], what it would have said


def predict(model_path: Path | str, images: list[str], *, boxes: list | None = None, topk: int = 5, device: str | None = None,
            threads: int | None = None, max_pixels: int | None = None):
    """For each image file (a folder stands for its image files): ``(path, [(class, probability), ...])``, the ``topk``
    classes by their probability over all K classes (softmax of the logits; of the logits / T for a model exported from an
    open-set run), ``(path, Unknown(...))`` for an image such a model rejects, or ``(path, error message)``. ``model_path``:
    a ``.pt`` export with its ``.json`` (PyTorch), or an ``.onnx`` export (ONNX Runtime, fp32 or int8). Images are
    read in the displayed frame (EXIF orientation applied; a box is in that frame); a large JPEG is read reduced,
    and ``max_pixels`` allows other files over Pillow's pixel limit (:func:`stored_image`). ``threads``: ONNX Runtime's
    compute threads (None: its default). Warns (:class:`BoxExpected`) when the model was trained and evaluated on box
    crops and no box is given."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    outputs_of, meta = exported_predictor(model_path, device, threads, outputs=True)
    if boxes and any(Path(p).is_dir() for p in images):
        raise ValueError("--box goes with image files, one per file, not with a folder")
    images, note = image_files(list(images))
    if note:
        print(note, file=sys.stderr)
    if not images:
        raise ValueError("no image files to classify (an empty folder?)")
    if boxes and len(boxes) != len(images):
        raise ValueError(f"give one --box per image, in order ({len(boxes)} box(es) for {len(images)} image(s)), or none")
    if topk < 1:
        raise ValueError(f"--topk must be >= 1, got {topk}")
    if not boxes and meta["preprocessing"].get("test_images_had_boxes"):
        warnings.warn(f"{model_path} was trained and evaluated on box crops; without --box each image is used whole (resized and "
                      "centre-cropped), which this model never saw, and its answers change: give --box x1,y1,x2,y2 per image "
                      "(1-based pixels, in the picture as displayed)", BoxExpected, stacklevel=2)
    results, stored, where = [], [], []
    for k, path in enumerate(images):
        try:
            stored.append(stored_image(path, meta["preprocessing"], boxes[k] if boxes else None, max_pixels=max_pixels))
            where.append(k)
            results.append(None)
        except (DatasetError, OSError) as e:
            results.append((path, f"{e}"))
    if stored:
        out = outputs_of(torch.stack(stored))
        probs = out["probs"] if "probs" in out else out["logits"].softmax(1)
        top = probs.topk(min(topk, meta["num_classes"]), dim=1)
        for row, k in enumerate(where):
            answer = [(meta["classes"][c], float(v)) for v, c in zip(top.values[row], top.indices[row])]
            if "known" in out and not bool(out["known"][row]):
                answer = Unknown(float(out["score"][row]), meta["reject_threshold"], meta["reject_score"], answer)
            results[k] = (images[k], answer)
    return results
