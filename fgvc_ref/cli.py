"""fgvc_ref: a refined fine-grained classification recipe (ResNet-50 on Stanford Cars), one technique per stage.

Prepare a dataset once, train each stage (it resumes by itself), report the results; or run
``./reproduce.sh``, which does all of it. Each subcommand unpacks its arguments and calls one library
function; no logic lives here.
"""



from __future__ import annotations

import argparse
import dataclasses
import sys

from fgvc_ref.threads import chosen_threads, torch_threads

EPILOG = """typical use:
  python -m fgvc_ref prepare --data /path/to/stanford_cars --out cache/cars
  python -m fgvc_ref recipe --stage ema                  # the resolved recipe, each field explained
  python -m fgvc_ref check --stages base,ema --set lr_scale=0.5
  python -m fgvc_ref train --stage ema --cache cache/cars --seed 0 --out runs/cars/ema/seed0
  python -m fgvc_ref report runs/cars
  python -m fgvc_ref evaluate runs/cars/ema/seed0        # top-1/top-5, per class, confusions, figures
  python -m fgvc_ref export runs/cars/ema/seed0 --out model.pt
  python -m fgvc_ref predict model.pt photo.jpg --box 40,30,600,400
docs: README.md, docs/recipe.md (what each technique computes), docs/data.md (dataset layouts)"""


def _bench(args: argparse.Namespace) -> int:
    import torch

    from fgvc_ref import bench

    if args.threads:  # a benchmark sets its threads explicitly, or takes torch's default
        torch.set_num_threads(args.threads)
    config = {}
    for item in filter(None, (args.train_config or "").split(",")):
        key, _, value = item.partition("=")
        keys = ("model", "image_size", "batch", "images", "stage", "epochs", "compile", "workers", "source")
        if key not in keys:
            raise ValueError(f"--train-config key {key!r} unknown; valid: {', '.join(keys)}")
        config[key] = value if key in ("model", "stage", "source") else int(value)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    bench.run(args.only.split(","), repeats=args.repeats, device=device, json_path=args.json, train_config=config,
              command=" ".join(["python -m fgvc_ref", *args.argv]), models=args.model)
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fgvc_ref.data.cache import prepare_dataset, prepared_with
    from fgvc_ref.data.datasets import load_dataset
    from fgvc_ref.data.records import names_differ

    sizes = {"train": args.train_size, "test": args.test_size}
    settings = {"data_root": str(Path(args.data).resolve()), "dataset": args.dataset, "boxes": not args.no_boxes, "sizes": sizes,
                **({"layout": args.layout} if args.layout else {})}
    if args.reuse:
        found = prepared_with(args.out)
        if found is not None and not args.layout:  # the layout detected from the same root is the same
            found.pop("layout")
        if found == settings:
            print(f"cache in {args.out} was prepared from the same data with the same settings: reused", file=sys.stderr)
            return 0
        if found is not None:
            differ = ", ".join(f"{k} {found.get(k)!r} (asked: {v!r})" for k, v in settings.items() if found.get(k) != v)
            raise ValueError(f"{args.out} holds a cache prepared otherwise: {differ}. Give another --out, or delete its "
                             "train.* and test.* files to prepare it again")
    hub = dict(image_column=args.image_column, label_column=args.label_column, box_column=args.box_column, box_format=args.box_format,
               config=args.hub_config)
    loaded = {split: load_dataset(args.dataset, args.data, split, any_size=args.any_size, boxes=not args.no_boxes, bbox_csv=args.bbox_csv,
                                  layout=args.layout, **hub) for split in sizes}  # load and check both splits before writing anything
    differ = names_differ(loaded["train"].classes, loaded["test"].classes, "train", "test")
    if differ:
        raise ValueError(f"{args.data}: train and test have different classes: {differ}")
    for note in dict.fromkeys(n for data in loaded.values() for n in data.notes):  # each note once, in order
        print(note, file=sys.stderr)
    for split, data in loaded.items():
        boxed = sum(r.bbox is not None for r in data.records)
        print(f"{split}: {len(data.records)} images ({boxed} with a box), {len(data.classes)} classes ({data.layout} layout)", file=sys.stderr)
    if not any(r.bbox is not None for data in loaded.values() for r in data.records):
        print("no boxes: every image is used whole, which is not the blog's box-crop protocol (docs/data.md)", file=sys.stderr)
    prepare_dataset(loaded, args.out, sizes=sizes, workers=args.workers, dataset=args.dataset,
                    params={"data_root": settings["data_root"], "boxes": not args.no_boxes})
    print(f"cache ready in {args.out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    import os

    from fgvc_ref.checkpoint import CheckpointError
    from fgvc_ref.data.sources import load_data
    from fgvc_ref.train import Interrupted, NonFiniteLoss, OutOfMemory, RunInUse, train

    recipe = _resolve(args.stage, args.epochs, args.set)  # before any work
    if args.data is None and args.cache is None:
        raise ValueError("give --cache DIR (a prepared cache) or --data fashion-mnist[:tops][@SIZE]")
    data = load_data(args.cache if args.cache is not None else args.data, verify_sources=not args.no_verify_sources)
    threads = torch_threads(args.threads)
    if not args.quiet:
        print(f"{threads} compute thread(s) ({chosen_threads(args.threads)[1]})", file=sys.stderr)
    try:
        summary = train(recipe, data, args.out, seed=args.seed, device=args.device, progress=not args.quiet,
                        keep_checkpoints=args.keep_checkpoints)
    except Interrupted as e:
        print(f"interrupted: {e}. Run the same command again to resume.", file=sys.stderr)
        return e.exit_code
    except NonFiniteLoss as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 4
    except OutOfMemory as e:
        print(f"error: {e}", file=sys.stderr)
        return 6
    except RunInUse as e:
        print(f"error: {e}", file=sys.stderr)
        return 7
    except OSError as e:  # e.g. ENOSPC while publishing a checkpoint: the previous one is untouched
        print(f"error: {e.strerror or e} while writing to {args.out}; the previous checkpoint is intact. "
              "Free space and run the same command again to resume.", file=sys.stderr)
        return 5
    print(f"{summary['stage']} seed {summary['seed']}: last-epoch {summary['reported']} test top-1 {summary['last_test_acc']:.2f}% -> {args.out}/summary.json")
    return 0


def _resolve(stage: str, epochs: int | None, overrides: list[str]):
    from fgvc_ref.recipe import apply_overrides, get_recipe, scale_epochs

    recipe = get_recipe(stage)  # unknown stage or field: a ValueError listing the valid ones
    return apply_overrides(scale_epochs(recipe, epochs) if epochs is not None else recipe, overrides)


def _recipe(args: argparse.Namespace) -> int:
    from fgvc_ref.recipe import describe

    print(describe(_resolve(args.stage, args.epochs, args.set)))
    return 0


def _check(args: argparse.Namespace) -> int:
    """Resolve every stage's recipe with the overrides, before any data work or training; print one line each."""
    errors = []
    for stage in filter(None, args.stages.split(",")):
        try:
            r = _resolve(stage, args.epochs, args.set)
            print(f"ok {stage}: {r.model} ({r.weights}) {r.image_size} px, {r.epochs} epochs, batch {r.batch_size}, lr {r.lr} x {r.lr_scale}, "
                  f"{r.schedule} (warmup {r.warmup_epochs}), policy {r.policy}, smoothing {r.label_smoothing}, erasing {r.erasing_p}, "
                  f"EMA {'every ' + str(r.ema_steps) + ' steps' if r.ema else 'off'}")
        except ValueError as e:
            errors.append((stage, str(e)))
    if errors:
        messages = {m for _, m in errors}
        if len(messages) == 1 and len(errors) > 1:  # the same error for every stage given: said once
            raise ValueError(f"stages {', '.join(s for s, _ in errors)}: {messages.pop()}")
        raise ValueError("\n".join(f"stage {s!r}: {m}" for s, m in errors))
    return 0


def _report(args: argparse.Namespace) -> int:
    from fgvc_ref.report import write_report

    if args.bench:
        from fgvc_ref.report import write_bench_report

        path = write_bench_report(args.bench, args.out, section=args.section)
    else:
        if args.runs is None:
            raise ValueError("give RUNS_DIR (or a runs JSON written by a previous report), or --bench FILE ...")
        path = write_report(args.runs, args.out, command=args.command_line, title=args.title, section=args.section)
    print(f"report written to {path}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fgvc_ref.evaluate import evaluate_model, evaluate_run

    torch_threads(None)
    if args.cache and args.data:
        raise ValueError("give --cache or --data, not both")
    if Path(args.run).is_file():
        if args.weights:
            raise ValueError("--weights goes with a run folder; an exported model holds one set of weights")
        r = evaluate_model(args.run, args.cache or args.data, out=args.out, pairs=args.pairs, verify_sources=not args.no_verify_sources,
                           device=args.device, max_pixels=args.max_image_pixels)
        what = f"{r['model_file']} ({r['precision']}, {r['weights']} weights)"
    else:
        r = evaluate_run(args.run, args.cache or args.data, weights=args.weights, out=args.out, device=args.device, pairs=args.pairs,
                         verify_sources=not args.no_verify_sources, max_pixels=args.max_image_pixels)
        what = f"{r['run']} ({r['weights']} weights)"
    print(f"{what} on {r['data']}: top-1 {r['top1']:.2f}%, top-{r['topk']} {r['top5']:.2f}% "
          f"({r['images']} images)" + ("" if r["same_data_as_training"] else "; not the data the run was trained on"))
    if "agreement" in r:
        a = r["agreement"]
        print(f"  agreement with {a['reference']}: identical top-1 on {a['top1_identical']:.2f}% of the images, logits differ by at most "
              f"{a['max_abs_logit_diff']:.3g} ({a['mean_abs_logit_diff']:.3g} on average)" if a else
              "  agreement with the run's PyTorch model: not measured (its run folder is not here)")
    for p in r["most_confused"][:5]:
        print(f"  {p['true']} -> {p['predicted']}: {p['count']} images ({100 * p['share_of_true_class']:.1f}% of {p['true']})")
    print(f"written to {r['out']}/evaluation.{{json,md}} (+ PNGs)")
    return 0


def _export(args: argparse.Namespace) -> int:
    if args.format == "onnx":
        from fgvc_ref.deploy import description, export_onnx

        for path in export_onnx(args.run, args.out, weights=args.weights, layout=args.layout, int8=args.int8, data=args.data,
                                calibration_images=args.calibration_images, calibration_method=args.calibration_method, seed=args.seed):
            print(f"{path} and {description(path)} (uint8 {args.layout.upper()} input, preprocessing inside, classes)")
        return 0
    if args.int8:
        raise ValueError("--int8 goes with --format onnx")
    from fgvc_ref.export import export_run

    out = export_run(args.run, args.out, weights=args.weights, data=args.data)
    print(f"{out} (state dict) and {out.with_suffix('.json')} (classes, preprocessing, how to load)")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from fgvc_ref.export import parse_box, predict

    boxes = [parse_box(b) for b in args.box] if args.box else None
    torch_threads(None)
    failed = 0
    for path, answer in predict(args.model, args.images, boxes=boxes, topk=args.topk, device=args.device, max_pixels=args.max_image_pixels):
        if isinstance(answer, str):
            print(f"error: {answer}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: " + ", ".join(f"{name} {100 * p:.1f}%" for name, p in answer))
    return 1 if failed else 0


def _gallery(args: argparse.Namespace) -> int:
    from fgvc_ref.gallery import write_gallery

    print(f"gallery written to {write_gallery(args.out, args.image, size=args.size, seed=args.seed, max_pixels=args.max_image_pixels)}")
    return 0


def _make_synthetic(args: argparse.Namespace) -> int:
    from fgvc_ref.data.synthetic import make_fake_stanford_cars

    fake = make_fake_stanford_cars(args.out, args.layout, classes=args.classes, per_class=args.per_class, seed=args.seed,
                                   image_size=(args.width, args.height), hazards=args.hazards)
    print(f"synthetic {args.layout} dataset: {args.classes} classes x {args.per_class} images per split -> {fake.root}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fgvc_ref", description=__doc__.split(" Each subcommand")[0],
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from fgvc_ref.data.datasets import NAMES as DATASETS

    MAX_PIXELS = dict(type=int, default=None, metavar="N",
                      help="read a photo of up to N pixels at full size (default: Pillow's decompression-bomb limit, 89,478,485). "
                           "A larger JPEG is read reduced (JPEG draft mode) without it; other formats need it. Only for files you trust")

    b = sub.add_parser("bench", help="time each technique against its torch/torchvision twin (medians, ratios)",
                       description="Time each hand-written technique against its twin in one process; print medians, "
                                   "min-max and ratios, optionally write JSON.")
    b.add_argument("--only", default="optim,ema,augment,train",
                   help="comma-separated sections: optim, ema, augment, prepare, train, latency (default: %(default)s)")
    b.add_argument("--model", action="append", default=[], metavar="FILE|NAME@SIZE",
                   help="latency: an exported model (model.pt with its .json, model.onnx, model.int8.onnx), or an architecture with random "
                        "weights such as resnet50@224 (exported to all three here); repeatable")
    b.add_argument("--repeats", type=int, default=20, help="timed repeats per measurement (default: %(default)s)")
    b.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    b.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    b.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON here")
    b.add_argument("--train-config", default=None, metavar="K=V,...",
                   help="train section: model, image_size, batch, images, stage, epochs, compile (0/1), workers (reference path), source (drawn/random) "
                        "(default resnet18,32,128,1024,ema,3,0,2,drawn)")
    b.set_defaults(func=_bench)

    p = sub.add_parser("prepare", help="decode, crop and resize a dataset once into a verified uint8 cache",
                       description="Read the dataset in its native layout, check it (counts, missing files, unreadable images, boxes) and "
                                   "write <split>.pt + <split>.manifest.json for train and test into --out.")
    p.add_argument("--data", required=True, metavar="ROOT", help="dataset root, in the dataset's native layout (docs/data.md)")
    p.add_argument("--out", required=True, metavar="DIR", help="cache folder to write")
    p.add_argument("--dataset", choices=DATASETS, default="stanford_cars", metavar="NAME",
                   help="one of " + ", ".join(DATASETS) + " (default: %(default)s; aircraft is aircraft:variant)")
    p.add_argument("--no-boxes", action="store_true", help="use whole images even where the dataset has boxes (the usual literature protocol)")
    p.add_argument("--train-size", type=int, default=256, help="train images are stored at this square size (default: %(default)s)")
    p.add_argument("--test-size", type=int, default=224, help="test images are stored at this square size (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
    p.add_argument("--any-size", action="store_true", help="do not enforce the dataset's class and image counts (e.g. 196 / 8,144 / 8,041 for Stanford Cars)")
    p.add_argument("--bbox-csv", default=None, help="folder datasets: headerless CSV of <class>/<image>,x1,y1,x2,y2 (1-based)")
    p.add_argument("--layout", default=None, metavar="NAME",
                   help="use this layout instead of detecting one (Stanford Cars: devkit, kaggle_devkit, car_ims, kaggle_folders, hf_repo, "
                        "hf_save_to_disk, folders; a wrong name lists the dataset's own)")
    p.add_argument("--image-column", default=None, metavar="NAME", help="Hugging Face copies: the column holding the images (default: the Image feature)")
    p.add_argument("--label-column", default=None, metavar="NAME", help="Hugging Face copies: the column holding the labels (default: the ClassLabel feature)")
    p.add_argument("--box-column", default=None, metavar="NAME", help="Hugging Face copies: a column of boxes to crop to (default: none; give --box-format)")
    p.add_argument("--box-format", default=None, choices=["xyxy", "xywh", "voc"],
                   help="the box column's convention: xyxy pixel edges 0-based (PIL crop box), xywh left/top/width/height (COCO), voc 1-based inclusive")
    p.add_argument("--hub-config", default=None, metavar="NAME", help="Hugging Face snapshots: the card's config to read (default: its default)")
    p.add_argument("--reuse", action="store_true",
                   help="if --out already holds a complete cache prepared from the same data with the same settings, keep it; "
                        "if it holds one prepared otherwise, refuse (reproduce.sh uses this)")
    p.set_defaults(func=_prepare)

    from fgvc_ref.data.stanford_cars import LAYOUTS
    from fgvc_ref.recipe import STAGES, VARIANTS, Recipe

    SET_HELP = ("override a recipe field (repeatable); fields: " + ", ".join(f.name for f in dataclasses.fields(Recipe))
                + ". `python -m fgvc_ref recipe --stage NAME` explains each and its allowed values")

    t = sub.add_parser("train", help="train one stage of the recipe (resumes automatically)",
                       description="Train one stage with one seed into --out. Running the same command again resumes an "
                                   "unfinished run exactly, and does nothing for a finished one. Stages: "
                                   f"{', '.join(STAGES)}; not-adopted variants: {', '.join(VARIANTS)}.")
    t.add_argument("--stage", required=True, help="recipe stage or variant name (see above)")
    t.add_argument("--cache", default=None, metavar="DIR", help="a cache written by `prepare`")
    t.add_argument("--data", default=None, metavar="SPEC", help="fashion-mnist, fashion-mnist:tops, optionally @SIZE (e.g. fashion-mnist:tops@32)")
    t.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    t.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (checkpoints, metrics.jsonl, summary.json)")
    t.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=SET_HELP)
    t.add_argument("--epochs", type=int, default=None, help="scale the stage to this many epochs (warmup, patience, step size scale too)")
    t.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    t.add_argument("--threads", type=int, default=None,
                   help="compute threads (default: the cores other processes leave free, measured at the start; OMP_NUM_THREADS also sets it)")
    t.add_argument("--no-verify-sources", action="store_true", help="do not check the cache's source images (raw data elsewhere)")
    t.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    t.add_argument("--keep-checkpoints", action="store_true",
                   help="keep the training state (checkpoints) of a finished run; by default it keeps final.pt (raw and EMA weights) and the logs")
    t.set_defaults(func=_train)

    r = sub.add_parser("report", help="render the results table and plots from a folder of runs",
                       description="Read RUNS/<stage>/seed<k>/summary.json and write a Markdown report with mean +- std per "
                                   "stage, gains, the blog's numbers, protocol, hardware and versions, plus PNG plots.")
    r.add_argument("runs", metavar="RUNS_DIR", nargs="?", help="a folder of runs, or the <section>_runs.json a report wrote beside itself")
    r.add_argument("--bench", nargs="+", default=None, metavar="JSON", help="render benchmark JSON files (from bench --json) instead of runs")
    r.add_argument("--out", default=None, help="report file (default: RUNS_DIR/RESULTS.md)")
    r.add_argument("--title", default=None, help="report title (default: the saved one for a runs JSON, else \"Results\")")
    r.add_argument("--command-line", default=None, help="the command that produced the runs, quoted in the report")
    r.add_argument("--section", default=None, help="replace only the <!-- report:SECTION --> block of --out (e.g. RESULTS.md)")
    r.set_defaults(func=_report)

    m = sub.add_parser("make-synthetic", help="write the synthetic fine-grained 'cars' dataset in a Stanford Cars layout",
                       description="Drawn cars whose class shows only in details (cabin shape, hubcaps, stripe, door marks), "
                                   "written as real image and annotation files in one of the layouts prepare reads.")
    m.add_argument("--out", required=True, metavar="DIR", help="folder to write the dataset into")
    m.add_argument("--layout", default="devkit", choices=LAYOUTS, help="Stanford Cars layout to write (default: %(default)s)")
    m.add_argument("--classes", type=int, default=10, help="number of classes (default: %(default)s)")
    m.add_argument("--per-class", type=int, default=30, help="images per class in each of train and test (default: %(default)s)")
    m.add_argument("--seed", type=int, default=0, help="random seed: the same seed writes the same images (default: %(default)s)")
    m.add_argument("--width", type=int, default=64, help="image width, pixels (default: %(default)s)")
    m.add_argument("--height", type=int, default=48, help="image height, pixels (default: %(default)s)")
    m.add_argument("--hazards", action="store_true",
                   help="mix in what real copies hold: greyscale, CMYK, RGBA and palette images, a box at the border, and three unreadable files")
    m.set_defaults(func=_make_synthetic)

    c = sub.add_parser("recipe", help="print a stage's resolved recipe: every field with its meaning and allowed values",
                       description="Print the recipe a train command would use, one field a line: value, meaning, allowed values.")
    c.add_argument("--stage", required=True, help=f"stage or variant: {', '.join([*STAGES, *VARIANTS])}")
    c.add_argument("--epochs", type=int, default=None, help="scale the stage to this many epochs, as train --epochs does")
    c.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=SET_HELP)
    c.set_defaults(func=_recipe)

    e = sub.add_parser("evaluate", help="evaluate a finished run: top-1/top-5, per-class accuracy, confusion matrix, most confused pairs",
                       description="Classify a test set with a finished run's weights, exactly as training evaluated, and write "
                                   "evaluation.json, evaluation.md, confusion.png and confused_pairs.png.")
    e.add_argument("run", metavar="RUN_DIR|MODEL", help="a finished run folder (with final.pt), or a model written by export (.onnx, or .pt with its .json)")
    e.add_argument("--cache", default=None, metavar="DIR", help="evaluate on this prepared cache's test split (default: the run's own data)")
    e.add_argument("--data", default=None, metavar="SPEC",
                   help="or on this data spec (e.g. fashion-mnist:tops@48), or a folder of your labelled photos (FOLDER/<class>/<image>) (default: the run's own)")
    e.add_argument("--weights", choices=["ema", "raw"], default=None, help="default: ema when the run has an EMA, else raw")
    e.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: RUN_DIR/evaluation-<weights>, or RUN_DIR/evaluation-<weights>-on-<data> for other data; "
                        "for a model file, model-onnx-evaluation/ etc. beside it)")
    e.add_argument("--pairs", type=int, default=10, help="how many confused pairs to list (default: %(default)s)")
    e.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    e.add_argument("--no-verify-sources", action="store_true", help="do not check the cache's source images")
    e.add_argument("--max-image-pixels", **MAX_PIXELS)
    e.set_defaults(func=_evaluate)

    x = sub.add_parser("export", help="write a finished run's weights as a plain state dict or an ONNX graph, with classes and preprocessing",
                       description="Write OUT: a plain state dict (default; torchvision.models.get_model(name, num_classes=K) loads a "
                                   "torchvision model's, fgvc_ref.model.build_model(name, K) the others', and OUT.json says which) with "
                                   "OUT with suffix .json beside it; or, with --format onnx, an ONNX graph taking uint8 pixels, with OUT.json "
                                   "(and with --int8 a quantised copy).")
    x.add_argument("run", metavar="RUN_DIR", help="a finished run folder (with final.pt)")
    x.add_argument("--out", required=True, metavar="MODEL.pt|MODEL.onnx", help="file to write; its .json goes beside it")
    x.add_argument("--weights", choices=["ema", "raw"], default=None, help="default: ema when the run has an EMA, else raw")
    x.add_argument("--data", default=None, metavar="SPEC", help="the run's data (cache folder or spec) if it moved since training")
    x.add_argument("--format", choices=["state_dict", "onnx"], default="state_dict",
                   help="state_dict: a plain PyTorch state dict (default); onnx: an ONNX graph that takes uint8 RGB pixels and normalises inside")
    x.add_argument("--layout", choices=["nhwc", "nchw"], default="nhwc", help="onnx: the pixels' layout (default: %(default)s, as cameras give)")
    x.add_argument("--int8", action="store_true",
                   help="onnx: also write <out>.int8.onnx, statically quantised (QDQ, per-channel int8 weights) on a sample of the train split")
    x.add_argument("--calibration-images", type=int, default=256, help="--int8: train images to calibrate on (default: %(default)s)")
    x.add_argument("--calibration-method", choices=["minmax", "entropy", "percentile"], default="minmax", help="--int8: (default: %(default)s)")
    x.add_argument("--seed", type=int, default=0, help="--int8: the calibration sample's seed (default: %(default)s)")
    x.set_defaults(func=_export)

    q = sub.add_parser("predict", help="classify image files with an exported model (class names and probabilities)",
                       description="Preprocess each image as evaluation does and print its top-k classes. An unreadable file "
                                   "is reported and skipped; the others are still classified (exit 1 if any failed).")
    q.add_argument("model", metavar="MODEL", help="written by `export`: a .pt (its .json beside it) or a .onnx (fp32 or int8)")
    q.add_argument("images", metavar="IMAGE", nargs="+", help="image files, or folders (each stands for the image files in it)")
    q.add_argument("--box", action="append", default=[], metavar="x1,y1,x2,y2",
                   help="bounding box, 1-based inclusive pixels; give one per image, in order (default: whole image, centre crop)")
    q.add_argument("--topk", type=int, default=5, help="classes to print per image (default: %(default)s)")
    q.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    q.add_argument("--max-image-pixels", **MAX_PIXELS)
    q.set_defaults(func=_predict)

    g = sub.add_parser("gallery", help="draw what each augmentation does to a photo, from the code that trains",
                       description="Draw the 14 TrivialAugment ops at low, middle and high magnitude, and training samples of each "
                                   "policy from the reference and the fast path, into one PNG (exact pixels).")
    g.add_argument("--out", default="runs/gallery/augmentations.png",
                   help="PNG to write (default: %(default)s; the repository's docs/augmentations.png is made with --out docs/augmentations.png)")
    g.add_argument("--image", default=None, help="a photo (default: scikit-image's bundled cat photo)")
    g.add_argument("--size", type=int, default=96, help="cell size in pixels (default: %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="seed of the training samples (default: %(default)s)")
    g.add_argument("--max-image-pixels", **MAX_PIXELS)
    g.set_defaults(func=_gallery)

    k = sub.add_parser("check", help="validate stage names and --set values for every stage, before any work (reproduce.sh's preflight)",
                       description="Resolve every listed stage with the same --epochs and --set as train would; print one line "
                                   "per stage, or every error at once (exit 2). Writes nothing.")
    k.add_argument("--stages", required=True, help="comma-separated stage names")
    k.add_argument("--epochs", type=int, default=None, help="as train --epochs")
    k.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=SET_HELP)
    k.set_defaults(func=_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    import warnings

    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    shown = warnings.showwarning  # a warning is a line for the user here, not a traceback-style report
    warnings.showwarning = lambda message, category, *rest, **kw: print(f"warning: {message}", file=sys.stderr)
    try:
        return args.func(args)
    except ValueError as e:  # user errors (DatasetError included): a clear message, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a folder that cannot be made or written, a disk that is full: said, not a traceback
        print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = shown
