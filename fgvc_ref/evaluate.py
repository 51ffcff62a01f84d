"""After training: evaluate a finished run on a test set and show which classes it confuses.

:func:`evaluate_run` classifies a test set exactly as the
trainer's evaluation does (same cache images, resize, normalisation, batches and memory format), so
on the run's own test set its top-1 equals the run's logged last-epoch number. It reports:

- top-1 and top-k (k = min(5, K)) accuracy, and per-class accuracy ``C[c, c] / sum_j C[c, j]``;
- the confusion matrix ``C[t, p]`` = images of true class t predicted as p;
- the most confused pairs: the largest off-diagonal ``C[t, p]``, by name, with the share
  ``C[t, p] / sum_j C[t, j]`` of class t they take;
- a class order in which confusions cluster (:func:`cluster_order`), used for the figure;
- the predicted class of every test image, in the data's order.

It writes ``evaluation.json``, ``evaluation.md``, ``confusion.png`` (rows normalised, classes in
that order; needs matplotlib) and ``confused_pairs.png`` (test images of the top pairs: the mistakes
beside correctly classified images of the class they were taken for) into ``--out``.

A run trained on an open-set split (``train --open-set``) is evaluated on its known test images as
above, and :mod:`fgvc_ref.open_set_eval` adds its calibration, rejection of the unknown test images
and selective classification (``open_set``, ``calibration``, ``selective``, ``rule`` in the JSON, and
``reliability.png``), with the temperature and threshold fitted on the run's validation split,
recomputed exactly as training carved it (:func:`validation_of`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from fgvc_ref import open_set_eval
from fgvc_ref.data.cache import atomic_write
from fgvc_ref.open_set_eval import validation_of
from fgvc_ref.run import load_run, num_classes, run_logits


def confusion_matrix(target: torch.Tensor, predicted: torch.Tensor, k: int) -> torch.Tensor:
    """``C[t, p]``: how many images of true class t were predicted as p (int64 ``k x k``)."""
    return torch.bincount(target * k + predicted, minlength=k * k).view(k, k)


def top_k_accuracy(logits: torch.Tensor, target: torch.Tensor, k: int) -> float:
    """Percent of images whose true class is among the ``k`` largest logits."""
    return 100.0 * (logits.topk(k, dim=1).indices == target.unsqueeze(1)).any(1).double().mean().item()


def most_confused(cm: torch.Tensor, classes: list[str], n: int = 10) -> list[dict]:
    """The ``n`` largest off-diagonal counts, largest first (ties: by true, then predicted class index)."""
    off = cm.clone().fill_diagonal_(0)
    pairs = sorted(((int(off[t, p]), t, p) for t, p in off.nonzero().tolist()), key=lambda c: (-c[0], c[1], c[2]))[:n]
    totals = cm.sum(1)
    return [{"true": classes[t], "predicted": classes[p], "true_index": t, "predicted_index": p, "count": c,
             "share_of_true_class": c / int(totals[t])} for c, t, p in pairs]


def cluster_order(cm: torch.Tensor) -> list[int]:
    """A class order in which confused classes sit together. Chains grow greedily: a chain starts at the unplaced
    class with the most confusion (both ways) left, then takes, at either end, the unplaced class most confused
    with that end, until no unplaced class is confused with either end; then the next chain starts."""
    s = (cm + cm.T).clone().fill_diagonal_(0)
    order, left = [], list(range(len(cm)))
    while left:
        chain = [max(left, key=lambda i: (int(s[i, left].sum()), -i))]
        left.remove(chain[0])
        while left:
            strength, at_start, minus_j = max((int(s[end, j]), at_start, -j) for at_start, end in ((False, chain[-1]), (True, chain[0])) for j in left)
            if strength == 0:
                break
            if at_start:
                chain.insert(0, -minus_j)
            else:
                chain.append(-minus_j)
            left.remove(-minus_j)
        order += chain
    return order


def is_photo_folder(spec: str | Path) -> bool:
    """A folder of class folders of photos (not a prepared cache, not a Fashion-MNIST spec)."""
    return Path(spec).is_dir() and not (Path(spec) / "test.manifest.json").exists() and not (Path(spec) / "train.manifest.json").exists()


def photos(folder: str | Path, preprocessing: dict, classes: list[str], max_pixels: int | None = None):
    """A user's labelled photos, ``FOLDER/<class>/<image>``, as a test set: each image decoded in its displayed frame
    (EXIF orientation applied) and stored as ``predict`` stores it (``preprocessing``: the run's evaluation preprocessing,
    a whole image: resize and centre crop; a large JPEG read reduced, ``max_pixels`` for other large files). Class
    folders are matched to ``classes`` ("/" spelled "-", names compared in Unicode NFC); every unreadable image is listed
    in one error."""
    from fgvc_ref.data.folder import load_folder
    from fgvc_ref.data.records import DatasetError
    from fgvc_ref.data.sources import TestData
    from fgvc_ref.export import stored_image

    folder = Path(folder)
    loaded = load_folder(folder.parent, folder.name, class_names=classes, folder_name=lambda name: name.replace("/", "-"),
                         allow_empty=True)
    for note in loaded.notes:
        print(note, file=sys.stderr)
    images, bad = [], []
    for r in loaded.records:
        try:
            images.append(stored_image(r.path, preprocessing, max_pixels=max_pixels))
        except (DatasetError, OSError) as e:
            bad.append(str(e))
    if bad:
        raise DatasetError(f"{len(bad)} of {len(loaded.records)} image(s) in {folder} cannot be used:\n  " + "\n  ".join(bad))
    if not images:
        raise DatasetError(f"{folder}: no images in its class folders")
    labels = torch.tensor([r.label for r in loaded.records], dtype=torch.int64)
    return TestData(torch.stack(images), labels, list(classes), "", str(folder))


def test_set(spec: str, *, preprocessing: dict, classes: list[str], trained_on: str | None, verify_sources: bool,
             max_pixels: int | None = None):
    """The test set ``spec`` names (a cache, a Fashion-MNIST spec, or a folder of photos), with an error that says what
    to give when the data a model was trained on (``trained_on``, the default) is not readable here."""
    from fgvc_ref.data.sources import load_test

    try:
        return (photos(spec, preprocessing, classes, max_pixels) if is_photo_folder(spec) else
                load_test(spec, verify_sources=verify_sources))
    except ValueError as e:
        raise ValueError(f"{e}\n(the data the model was trained on, {spec!r}, is not readable here: give --cache DIR or --data SPEC)"
                         if spec == trained_on else str(e)) from e


def check_classes(where: str, k: int, names: list[str] | None, loaded, spec: str, owner: str = "run") -> None:
    """Refuse a test set whose class count or class names differ from the model's (``owner``: "run" or "model"); names
    are compared in Unicode NFC and a difference is shown with escapes (:func:`~fgvc_ref.data.records.names_differ`)."""
    from fgvc_ref.data.records import names_differ

    if len(loaded.classes) != k:
        raise ValueError(f"{where} classifies {k} classes but {spec} has {len(loaded.classes)}; evaluate it on data with the same classes")
    differ = names_differ(list(names), list(loaded.classes), f"the {owner}", "the data") if names is not None else None
    if differ:
        raise ValueError(f"{where} was trained on other classes than {spec} has: {differ}")


def open_set_test(loaded, split):
    """A test set split by ``split``: the known images as a TestData (labels renumbered, known class names) and the unknown
    images with their hard flags."""
    from fgvc_ref.data.open_set import known_fingerprint, partition
    from fgvc_ref.data.sources import TestData

    part = partition(loaded.test_labels, split)
    if not len(part.unknown):
        raise ValueError(f"{loaded.name}: no unknown test images: {split.name}'s unknown classes have no image in this test set, so "
                         "there is nothing to reject and no AUROC; evaluate on data holding them")
    known = TestData(loaded.test_images[part.known], part.known_labels, split.names("known"),
                     known_fingerprint(loaded.fingerprint, split) if loaded.fingerprint else "", loaded.name)
    return known, loaded.test_images[part.unknown], part.hard


def split_for(recorded: dict | None, asked: str | None, classes: list[str], where: str, known: list[str]):
    """The split an open-set evaluation uses: the one the run or model recorded (``asked`` None or "recorded"), or the split
    ``asked`` names, which must know the same classes."""
    from fgvc_ref.data.open_set import from_record, load_split

    if recorded is None:
        raise ValueError(f"{where} was trained on all the classes of its data (no train --open-set), so it has no unknown classes to "
                         "reject: an open-set evaluation needs a run trained with --open-set SPLIT")
    split = from_record(recorded, classes) if asked in (None, "recorded") else load_split(asked, classes)
    if split.names("known") != list(known):
        raise ValueError(f"{split.name} knows other classes than {where} was trained on ({len(split.known)} known vs {len(known)}); "
                         "an open-set evaluation keeps the known classes of the run")
    return split


def evaluate_run(run_dir: Path | str, data: str | None = None, *, weights: str | None = None, out: Path | str | None = None,
                 device: str | None = None, pairs: int = 10, verify_sources: bool = True, open_set: str | None = None,
                 max_pixels: int | None = None) -> dict:
    """Evaluate a finished run on ``data`` (default: the run's own data spec) and write the results to ``out``
    (default ``RUN_DIR/evaluation-<weights>`` on the run's own data, ``RUN_DIR/evaluation-<weights>-on-<data>`` on other
    data, so that one never replaces the other); returns what ``evaluation.json`` holds. A run trained with ``--open-set``
    is evaluated on its known test images and gets its open-set metrics (module docstring), by its recorded split or the
    split ``open_set`` names (same known classes); ``open_set`` for a run trained on all classes is refused. ``max_pixels``: for a folder of photos, a pixel limit above
    Pillow's for files that are not JPEGs (:func:`photos`)."""
    from fgvc_ref.run import preprocessing_of

    run = load_run(run_dir, weights)
    spec = data or run.recipe["data"]
    recorded = run.recipe.get("open_set")
    if open_set is not None and recorded is None:
        split_for(None, open_set, [], str(run.path), [])  # refused: nothing to reject
    k = num_classes(run.model.state_dict())
    preprocessing, names = preprocessing_of(run.recipe["data"], run.recipe["image_size"]) if is_photo_folder(spec) else ({}, None)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    folder = f"evaluation-{run.weights}"
    if recorded is None:
        loaded = test_set(spec, preprocessing=preprocessing, classes=list(run.classes or names or []), trained_on=run.recipe["data"],
                          verify_sources=verify_sources, max_pixels=max_pixels)
        same = loaded.fingerprint == run.recipe.get("data_fingerprint")
        check_classes(str(run.path), k, run.classes, loaded, spec)
        logits, extra = run_logits(run, loaded.test_images, dev), {}
    else:  # the known test images as above; the validation split, recomputed, to fit on; the unknown test images to reject
        val_x, val_y, val_boxes, own = validation_of(run.recipe["data"], recorded, run.recipe["val_fraction"], run.recipe["seed"],
                                                     run.recipe.get("data_fingerprint"), verify_sources=verify_sources)
        full = _as_test(own) if spec == run.recipe["data"] else test_set(spec, preprocessing=preprocessing, classes=list(names or own.classes),
                                                                        trained_on=run.recipe["data"], verify_sources=verify_sources,
                                                                        max_pixels=max_pixels)
        same = full.fingerprint == own.fingerprint
        split = split_for(recorded, open_set, list(full.classes), str(run.path), run.classes or [])
        if split.sha256 != recorded["sha256"]:  # another grading of the unknowns: its own folder
            folder += f"-split-{slug(split.name)}"
        loaded, unknown, hard = open_set_test(full, split)
        check_classes(str(run.path), k, run.classes, loaded, spec)
        logits = run_logits(run, loaded.test_images, dev)
        extra = open_set_eval.evaluate(logits, loaded.test_labels, run_logits(run, unknown, dev), hard,
                                       run_logits(run, val_x, dev, val_boxes), val_y)
        extra["open_set_split"] = {**split.record(), "validation": {"data": run.recipe["data"], "val_fraction": run.recipe["val_fraction"],
                                                                     "seed": run.recipe["seed"]}}
    header = {"run": str(run.path), "model_file": None, "stage": run.recipe.get("name"), "seed": run.recipe.get("seed"),
              "weights": run.weights, "data": spec, "same_data_as_training": same, **extra}
    default = run.path / (folder if same else f"{folder}-on-{slug(spec)}")
    return report(logits, loaded, header, Path(out) if out else default, pairs)


def _as_test(data):
    from fgvc_ref.data.sources import TestData

    return TestData(data.test_images, data.test_labels, data.classes, data.fingerprint, data.name)


def slug(spec: str) -> str:
    """A folder-name form of a data spec: its last path part, or the spec, with other characters as '-'."""
    import re

    return re.sub(r"[^\w.-]+", "-", Path(str(spec).rstrip("/")).name or str(spec)).strip("-") or "data"


def evaluate_model(path: Path | str, data: str | None = None, *, out: Path | str | None = None, pairs: int = 10,
                   verify_sources: bool = True, device: str | None = None, open_set: str | None = None,
                   threads: int | None = None, max_pixels: int | None = None) -> dict:
    """Evaluate an exported model (``.onnx`` in ONNX Runtime, or ``.pt`` with its ``.json``) on ``data`` (default: the data
    its run was trained on) with the run's own test split and preprocessing, and measure its agreement with the run's
    PyTorch model when the run folder is there: the share of identical top-1 answers and the max and mean absolute
    logit difference. Writes as :func:`evaluate_run` does, to ``out`` (default beside the model: ``model-onnx-evaluation/`` for
    ``model.onnx``, ``model-int8-onnx-evaluation/`` for ``model.int8.onnx``, ``model-pt-evaluation/`` for ``model.pt``).
    A model exported from an open-set run gets the same open-set metrics as its run, from its own outputs (its validation
    logits recomputed from the run's data), and its own rule measured on test (``exported_rule``). ``threads``: ONNX
    Runtime's compute threads (None: its default)."""
    from fgvc_ref.export import exported_predictor
    from fgvc_ref.run import preprocessing_of

    path = Path(path)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    predict, meta = exported_predictor(path, device, threads, outputs=True)
    spec = data or meta["data"]
    recorded = meta.get("open_set")
    if open_set is not None and recorded is None:
        split_for(None, open_set, [], str(path), [])  # refused: nothing to reject
    extra = {}
    if recorded is None:
        loaded = test_set(spec, preprocessing=meta["preprocessing"], classes=meta["classes"], trained_on=meta["data"], verify_sources=verify_sources,
                          max_pixels=max_pixels)
    else:
        v = meta["validation"]
        val_x, val_y, val_boxes, own = validation_of(v["data"], recorded, v["val_fraction"], v["seed"], v.get("data_fingerprint"),
                                                     verify_sources=verify_sources)
        if spec == v["data"]:
            full = _as_test(own)
        else:
            names = preprocessing_of(meta["data"], meta["preprocessing"]["image_size"])[1] if is_photo_folder(spec) else own.classes
            full = test_set(spec, preprocessing=meta["preprocessing"], classes=list(names), trained_on=meta["data"], verify_sources=verify_sources,
                              max_pixels=max_pixels)
        split = split_for(recorded, open_set, list(full.classes), str(path), meta["classes"])
        loaded, unknown, hard = open_set_test(full, split)
    check_classes(str(path), meta["num_classes"], meta["classes"], loaded, spec, owner="model")
    outputs = predict(loaded.test_images)
    logits = outputs["logits"].float()
    if recorded is not None:
        unknown_out = predict(unknown)
        extra = open_set_eval.evaluate(logits, loaded.test_labels, unknown_out["logits"].float(), hard, predict(val_x, val_boxes)["logits"].float(),
                                       val_y, score_name=meta["reject_score"], tpr=meta["reject_tpr"])
        extra["open_set_split"] = {**split.record(), "validation": meta["validation"]}
        extra["exported_rule"] = {**{k: meta[k] for k in ("temperature", "reject_score", "reject_threshold", "reject_tpr", "reject_rule")},
                                  "test_known_kept": float(outputs["known"].double().mean()),
                                  "test_unknown_accepted": float(unknown_out["known"].double().mean())}
    header = {"run": meta.get("run"), "model_file": str(path), "precision": meta.get("precision", "fp32"), "stage": meta.get("stage"),
              "seed": meta.get("seed"), "weights": meta.get("weights"), "data": spec, "same_data_as_training": spec == meta.get("data"),
              "agreement": agreement(logits, loaded.test_images, meta, device), **extra}
    return report(logits, loaded, header, Path(out) if out else path.with_name(f"{path.name.replace('.', '-')}-evaluation"), pairs)


def agreement(logits: torch.Tensor, images: torch.Tensor, meta: dict, device: torch.device) -> dict | None:
    """Against the run's own PyTorch model (its folder named in the metadata), on the same images: the share of identical
    top-1 answers (%), and the max and mean absolute logit difference. None when the run folder is not here."""
    run_dir = meta.get("run")
    if not run_dir or not (Path(run_dir) / "final.pt").is_file():
        return None
    reference = run_logits(load_run(run_dir, meta.get("weights")), images, device)
    diff = (logits - reference).abs()
    return {"reference": f"{run_dir} ({meta.get('weights')} weights, PyTorch)", "top1_identical": 100.0 * (logits.argmax(1) == reference.argmax(1)).double().mean().item(),
            "max_abs_logit_diff": diff.max().item(), "mean_abs_logit_diff": diff.mean().item(),
            "reference_top1_predictions": reference.argmax(1).tolist()}


def report(logits: torch.Tensor, loaded, header: dict, out: Path, pairs: int) -> dict:
    """The evaluation of ``logits`` on ``loaded`` (a TestData): numbers, confusions and figures written to ``out``."""
    k = logits.shape[1]
    target = loaded.test_labels
    predicted = logits.argmax(1)
    cm = confusion_matrix(target, predicted, k)
    per_class = [{"class": name, "images": int(cm[c].sum()), "correct": int(cm[c, c]), "acc": 100.0 * int(cm[c, c]) / max(1, int(cm[c].sum()))}
                 for c, name in enumerate(loaded.classes)]
    result = {
        **header, "images": len(target),
        "top1": 100.0 * int((predicted == target).sum()) / len(target), "top5": top_k_accuracy(logits, target, min(5, k)),
        "topk": min(5, k), "per_class": per_class, "most_confused": most_confused(cm, loaded.classes, pairs),
        "class_order": cluster_order(cm), "confusion_matrix": cm.tolist(), "classes": list(loaded.classes),
        "predicted": predicted.tolist(),  # per test image, in the data's order
    }
    out.mkdir(parents=True, exist_ok=True)
    result["out"] = str(out)
    atomic_write(out / "evaluation.json", lambda f: f.write(json.dumps(result, indent=1).encode()))
    pictures = [p for p in (_confusion_figure(result, out / "confusion.png"),
                            _pairs_strip(result, loaded.test_images, loaded.test_labels, predicted, out / "confused_pairs.png")) if p]
    if "calibration" in result:
        pictures += [p for p in (open_set_eval.reliability_figure(result["calibration"], out / "reliability.png",
                                                                  f"reliability on {result['images']} known test images of {Path(str(result['data'])).name or result['data']}"),) if p]
    atomic_write(out / "evaluation.md", lambda f: f.write(_markdown(result, pictures).encode()))
    return result


def _markdown(r: dict, pictures: list[str]) -> str:
    what = f"{r['model_file']} ({r.get('precision', 'fp32')}, from {r['run']})" if r.get("model_file") else r["run"]
    lines = [f"# Evaluation of {what} ({r['weights']} weights)", "",
             f"- Data: `{r['data']}`, {r['images']} test images" + ("" if r["same_data_as_training"] else
                                                                  " (not the data the run was trained and logged on)"),
             f"- top-1 {r['top1']:.2f}%, top-{r['topk']} {r['top5']:.2f}%"]
    a = r.get("agreement")
    if "agreement" in r:
        lines.append(f"- Agreement with {a['reference']}: identical top-1 on {a['top1_identical']:.2f}% of the images; logits differ by at "
                     f"most {a['max_abs_logit_diff']:.3g}, {a['mean_abs_logit_diff']:.3g} on average" if a else
                     "- Agreement with the run's PyTorch model: not measured (the run folder named in the model's metadata is not here)")
    if "open_set" in r:
        s = r["open_set_split"]
        lines += ["", "## Open set: calibration, rejection, selective classification", "",
                  f"Split `{s['split']}` (sha256 {s['sha256'][:12]}): {len(s['known'])} known classes, unknown easy {s['unknown_easy']}, "
                  f"hard {s['unknown_hard']}; temperature and threshold fitted on the validation split (val_fraction "
                  f"{s['validation']['val_fraction']}, seed {s['validation']['seed']}), never on test. Percent unless said.", "", "```text",
                  *open_set_eval.lines(r), "```"]
        if "exported_rule" in r:
            e = r["exported_rule"]
            lines.append(f"- The model's own rule ({e['reject_score']} >= {e['reject_threshold']:.6g}, T = {e['temperature']:.6g}) on test: "
                         f"{100 * e['test_known_kept']:.1f}% of known kept, {100 * e['test_unknown_accepted']:.1f}% of unknown accepted")
    lines += ["", "## Most confused pairs", "", "| true class | predicted as | images | share of the true class |", "|---|---|---|---|"]
    lines += [f"| {p['true']} | {p['predicted']} | {p['count']} | {100 * p['share_of_true_class']:.1f}% |" for p in r["most_confused"]]
    lines += ["", "## Per-class accuracy (lowest first)", "", "| class | images | correct | top-1 |", "|---|---|---|---|"]
    lines += [f"| {c['class']} | {c['images']} | {c['correct']} | {c['acc']:.1f}% |" for c in sorted(r["per_class"], key=lambda c: (c["acc"], c["class"]))]
    lines += [""] + [f"![{Path(p).stem}]({Path(p).name})" for p in pictures]
    return "\n".join(lines) + "\n"


def _confusion_figure(r: dict, path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no confusion.png (pip install matplotlib)", file=sys.stderr)
        return None
    order = r["class_order"]
    cm = torch.tensor(r["confusion_matrix"], dtype=torch.float64)[order][:, order]
    rates = cm / cm.sum(1, keepdim=True).clamp_min(1)
    k = len(order)
    side = min(16, 3 + 0.3 * k)
    fig, ax = plt.subplots(figsize=(side, side))
    shown = ax.imshow(rates.numpy(), cmap="viridis", vmin=0, vmax=1)
    if k <= 60:
        names = [r["classes"][i] for i in order]
        ax.set_xticks(range(k), names, rotation=90, fontsize=7)
        ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"confusion (rows sum to 1), classes ordered so that confusions cluster\ntop-1 {r['top1']:.2f}% on {r['images']} images "
                 f"of {Path(str(r['data'])).name or r['data']}", fontsize=9)
    fig.colorbar(shown, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return str(path)


def pair_sections(r: dict, images: torch.Tensor, labels: torch.Tensor, predicted: torch.Tensor, per_pair: int = 4, cell: int = 96):
    """The strip's sections, one per confused pair (up to 6): titled with both full class names and the count; cells: up
    to ``per_pair`` test images of the true class predicted as the other ("mistake"), then up to ``per_pair`` correctly
    classified images of that other class ("a <name>")."""
    from fgvc_ref.mosaic import Section
    from fgvc_ref.transforms import resized_crop_batch, whole_boxes

    sections = []
    for n, p in enumerate(r["most_confused"][:6], 1):
        t, q = p["true_index"], p["predicted_index"]
        wrong = ((labels == t) & (predicted == q)).nonzero().squeeze(1)[:per_pair]
        right = ((labels == q) & (predicted == q)).nonzero().squeeze(1)[:per_pair]
        picks = torch.cat([wrong, right])
        if not len(picks):
            continue
        shown = resized_crop_batch(images[picks], whole_boxes(torch.tensor(images.shape[-2:]).expand(len(picks), 2)), cell)
        title = f"{n}. {r['classes'][t]} taken for {r['classes'][q]}: {p['count']} images ({100 * p['share_of_true_class']:.0f}%)"
        sections.append(Section(title, [[("mistake", x) for x in shown[: len(wrong)]] + [(f"a {r['classes'][q]}", x) for x in shown[len(wrong):]]]))
    return sections


def _pairs_strip(r: dict, images: torch.Tensor, labels: torch.Tensor, predicted: torch.Tensor, path: Path, cell: int = 96) -> str | None:
    """``confused_pairs.png``: :func:`pair_sections` drawn with :mod:`fgvc_ref.mosaic` (pasted pixels, names cut from the middle)."""
    from fgvc_ref.mosaic import draw

    sections = pair_sections(r, images, labels, predicted, cell=cell)
    if not sections:
        return None
    draw(sections, cell).save(path)
    return str(path)
