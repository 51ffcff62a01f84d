"""fgvc_ref: a refined fine-grained classification recipe (ResNet-50 on Stanford Cars), one technique per stage.

Prepare a dataset once, train each stage (it resumes by itself), report the results; or run
``./reproduce.sh``, which does all of it. Each subcommand unpacks its arguments and calls one library
function; no logic lives here.
"""



from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from pathlib import Path

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

    from fgvc_ref.data.cache import prepare_dataset, prepared_with
    from fgvc_ref.data.datasets import check_disjoint, load_dataset, split_parts, unused_splits
    from fgvc_ref.data.records import names_differ

    sizes = {"train": args.train_size, "test": args.test_size}
    parts = split_parts(args.train_splits, args.test_split)
    hub = dict(image_column=args.image_column, label_column=args.label_column, box_column=args.box_column, box_format=args.box_format,
               config=args.hub_config)
    settings = {"data_root": str(Path(args.data).resolve()), "dataset": args.dataset, "boxes": not args.no_boxes, "sizes": sizes,
                "splits": {part: list(names) for part, names in parts.items()}, **({"layout": args.layout} if args.layout else {}),
                **{k: v for k, v in hub.items() if v is not None}}
    if args.reuse:
        found = prepared_with(args.out)
        if found is not None and not args.layout:  # the layout detected from the same root is the same
            found.pop("layout")
        if found == settings:
            print(f"cache in {args.out} was prepared from the same data with the same settings: reused", file=sys.stderr)
            return 0
        if found is not None:
            differ = ", ".join(f"{k} {found.get(k)!r} (asked: {settings.get(k)!r})" for k in dict.fromkeys([*settings, *found])
                               if found.get(k) != settings.get(k))
            raise ValueError(f"{args.out} holds a cache prepared otherwise: {differ}. Give another --out, or delete its "
                             "train.* and test.* files to prepare it again")
    loaded = {part: load_dataset(args.dataset, args.data, part, any_size=args.any_size, boxes=not args.no_boxes, bbox_csv=args.bbox_csv,
                                 layout=args.layout, splits=parts[part], **hub) for part in sizes}  # load and check both before writing
    differ = names_differ(loaded["train"].classes, loaded["test"].classes, "train", "test")
    if differ:
        raise ValueError(f"{args.data}: train and test have different classes: {differ}")
    check_disjoint(loaded)
    for note in dict.fromkeys(n for data in loaded.values() for n in data.notes):  # each note once, in order
        print(note, file=sys.stderr)
    for part, data in loaded.items():
        boxed = sum(r.bbox is not None for r in data.records)
        made_of = "" if parts[part] == (part,) else f" from split(s) {', '.join(parts[part])}"
        print(f"{part}: {len(data.records)} images{made_of} ({boxed} with a box), {len(data.classes)} classes ({data.layout} layout)",
              file=sys.stderr)
    if (line := unused_splits(loaded, parts)) is not None:
        print(line, file=sys.stderr)
    if not any(r.bbox is not None for data in loaded.values() for r in data.records):
        print("no boxes: every image is used whole, which is not the blog's box-crop protocol (docs/data.md)", file=sys.stderr)
    prepare_dataset(loaded, args.out, sizes=sizes, workers=args.workers, dataset=args.dataset,
                    params={k: v for k, v in settings.items() if k not in ("dataset", "sizes", "layout")})
    print(f"cache ready in {args.out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    import errno

    from fgvc_ref.checkpoint import CheckpointError, list_checkpoints
    from fgvc_ref.data.sources import load_data
    from fgvc_ref.train import Interrupted, NonFiniteLoss, OutOfMemory, RunInUse, train

    if (args.stage is None) == (args.recipe is None):
        raise ValueError("give --stage NAME or --recipe FILE (e.g. a search's chosen_recipe.json), one of the two")
    if args.recipe is not None:
        from fgvc_ref.recipe import apply_overrides, recipe_file, scale_epochs

        recipe = recipe_file(args.recipe)
        recipe = apply_overrides(scale_epochs(recipe, args.epochs) if args.epochs is not None else recipe, args.set)
    else:
        recipe = _resolve(args.stage, args.epochs, args.set)  # before any work
    if args.data is None and args.cache is None:
        raise ValueError("give --cache DIR (a prepared cache) or --data fashion-mnist[:tops][@SIZE]")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    data = load_data(args.cache if args.cache is not None else args.data, verify_sources=not args.no_verify_sources)
    if args.open_set is not None:  # the known classes only, with a validation split to fit the rejection rule on
        from fgvc_ref.data.open_set import DEFAULT_VAL_FRACTION, known_data, load_split

        split = load_split(args.open_set, data.classes)
        data = known_data(data, split)
        print(split.summary(), file=sys.stderr)
        if recipe.val_fraction == 0:
            recipe = dataclasses.replace(recipe, val_fraction=DEFAULT_VAL_FRACTION)
            print(f"--open-set: val_fraction 0 -> {DEFAULT_VAL_FRACTION}: the temperature and the rejection threshold are fitted on a "
                  "validation split of the known train images, never on test (--set val_fraction=F for another share)", file=sys.stderr)
    try:
        summary = train(recipe, data, args.out, seed=args.seed, device=args.device, progress=not args.quiet,
                        keep_checkpoints=args.keep_checkpoints, threads=chosen_threads(args.threads)[0] or "free")
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
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):  # not the disk: said as it is (main's OSError line)
            raise
        last = list_checkpoints(args.out) if Path(args.out).is_dir() else []  # the disk: a publish failed, the last one stands
        print(f"error: {e.strerror} while writing to {args.out}; " + (f"the last checkpoint, {last[-1].name}, is intact. Free space "
              "and run the same command again to resume." if last else "no checkpoint was written yet. Free space and run the same "
              "command again."), file=sys.stderr)
        return 5
    print(f"{summary['stage']} seed {summary['seed']}: last-epoch {summary['reported']} test top-1 {summary['last_test_acc']:.2f}% -> {args.out}/summary.json")
    return 0


def _resolve(stage: str, epochs: int | None, overrides: list[str]):
    from fgvc_ref.recipe import resolve

    return resolve(stage, epochs, overrides)


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
    if args.open_set is not None:  # its form; the classes it names are checked against the data when training starts
        from fgvc_ref.data.open_set import SEEDED, read_split

        if not SEEDED.fullmatch(args.open_set):
            read_split(args.open_set)
    if errors:
        messages = {m for _, m in errors}
        if len(messages) == 1 and len(errors) > 1:  # the same error for every stage given: said once
            raise ValueError(f"stages {', '.join(s for s, _ in errors)}: {messages.pop()}")
        raise ValueError("\n".join(f"stage {s!r}: {m}" for s, m in errors))
    return 0


def _report(args: argparse.Namespace) -> int:
    from fgvc_ref.report import write_report

    if args.greedy:  # a greedy search's table, from its greedy.json, to stdout (RESULTS.md quotes it as a script block)
        from fgvc_ref.sweep import greedy_table

        print(greedy_table(json.loads(Path(args.greedy).read_text())).split("\n\n", 1)[1].rstrip("\n"))
        return 0
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
    from fgvc_ref.evaluate import evaluate_model, evaluate_run

    threads = torch_threads(None)  # torch's, and an ONNX file's session's
    if args.cache and args.data:
        raise ValueError("give --cache or --data, not both")
    if Path(args.run).is_file():
        if args.weights:
            raise ValueError("--weights goes with a run folder; an exported model holds one set of weights")
        r = evaluate_model(args.run, args.cache or args.data, out=args.out, pairs=args.pairs, verify_sources=not args.no_verify_sources,
                           device=args.device, open_set=args.open_set, threads=threads, max_pixels=args.max_image_pixels)
        what = f"{r['model_file']} ({r['precision']}, {r['weights']} weights)"
    else:
        r = evaluate_run(args.run, args.cache or args.data, weights=args.weights, out=args.out, device=args.device, pairs=args.pairs,
                         verify_sources=not args.no_verify_sources, open_set=args.open_set, max_pixels=args.max_image_pixels)
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
    if "open_set" in r:  # an open-set run or model: its calibration, rejection and selective classification
        from fgvc_ref.open_set_eval import lines

        print(f"open set ({r['open_set_split']['split']}; top-1 above is over the known test images):")
        for line in lines(r):
            print(f"  {line}")
    print(f"written to {r['out']}/evaluation.{{json,md}} (+ PNGs)")
    return 0


def _export(args: argparse.Namespace) -> int:
    if args.format == "onnx":
        from fgvc_ref.deploy import description, export_onnx

        for path in export_onnx(args.run, args.out, weights=args.weights, layout=args.layout, int8=args.int8, data=args.data,
                                calibration_images=args.calibration_images, calibration_method=args.calibration_method, seed=args.seed,
                                reject_score=args.reject_score, reject_tpr=args.reject_tpr):
            print(f"{path} and {description(path)} (uint8 {args.layout.upper()} input, preprocessing inside, classes)" + _rule_line(description(path)))
        return 0
    if args.int8:
        raise ValueError("--int8 goes with --format onnx")
    from fgvc_ref.export import export_run

    out = export_run(args.run, args.out, weights=args.weights, data=args.data, reject_score=args.reject_score, reject_tpr=args.reject_tpr)
    print(f"{out} (state dict) and {out.with_suffix('.json')} (classes, preprocessing, how to load)" + _rule_line(out.with_suffix(".json")))
    return 0


def _rule_line(description: Path) -> str:
    """For an open-set export: its rejection rule, as its description records it."""
    import json

    meta = json.loads(Path(description).read_text())
    if "reject_score" not in meta:
        return ""
    return (f"\n  says unknown when {meta['reject_score']} < {meta['reject_threshold']:.6g}; probs = softmax(logits / {meta['temperature']:.6g}) "
            f"({meta['reject_rule'].split('; ', 1)[1]})")


def _predict(args: argparse.Namespace) -> int:
    from fgvc_ref.export import Unknown, parse_box, predict

    boxes = [parse_box(b) for b in args.box] if args.box else None
    threads = torch_threads(None)  # torch's, and an ONNX file's session's
    failed = 0
    for path, answer in predict(args.model, args.images, boxes=boxes, topk=args.topk, device=args.device, threads=threads,
                                max_pixels=args.max_image_pixels):
        if isinstance(answer, str):
            print(f"error: {answer}", file=sys.stderr)
            failed += 1
            continue
        if isinstance(answer, Unknown):  # an open-set model's score below its threshold
            print(f"{path}: unknown ({answer.score_name} {answer.score:.4g} < threshold {answer.threshold:.4g}; it would say "
                  + ", ".join(f"{name} {100 * p:.1f}%" for name, p in answer.top[:2]) + ")")
            continue
        print(f"{path}: " + ", ".join(f"{name} {100 * p:.1f}%" for name, p in answer))
    return 1 if failed else 0


def _sweep(args: argparse.Namespace) -> int:
    from fgvc_ref.sweep import run_greedy, run_sweep

    if args.data is None and args.cache is None:
        raise ValueError("give --cache DIR (a prepared cache) or --data fashion-mnist[:tops][@SIZE]")
    modes = [m for m in ("greedy", "finalize", "create_only") if getattr(args, m)]
    if len(modes) > 1:
        raise ValueError(f"--{modes[0].replace('_', '-')} and --{modes[1].replace('_', '-')} do not go together")
    data = args.cache if args.cache is not None else args.data
    threads = chosen_threads(args.threads)[0]
    common = dict(data=data, out=args.out, verify_sources=not args.no_verify_sources)
    if args.finalize:
        from fgvc_ref.finalize import run_finalize

        if args.param:
            raise ValueError("--finalize reads the search in --out; it takes no --param")
        run_finalize(seeds=args.seeds or 3, storage=args.storage, threads=threads or "free", command=" ".join(["python -m fgvc_ref", *args.argv]),
                     **common)
        return 0
    if args.greedy:
        if args.param:
            raise ValueError("--greedy searches the recipe's techniques and the LR; it takes no --param (use a plain sweep for fields)")
        factors = [float(f) for f in args.lr_factors.split(",") if f.strip()]
        techniques = [t.strip() for t in args.techniques.split(",") if t.strip()] if args.techniques else None
        run_greedy(stage=args.stage or "base", seeds=args.seeds or 2, lr_factors=factors, techniques=techniques, pruner=args.pruner, storage=args.storage,
                   study=args.study, epochs=args.epochs, sets=args.set, seed=args.sampler_seed, threads=threads, heartbeat=args.heartbeat, **common)
        return 0
    if args.stage is None:
        raise ValueError("give --stage NAME: the stage whose recipe is searched")
    counts = run_sweep(stage=args.stage, params=args.param, trials=args.trials, seeds=args.seeds or 1, sampler=args.sampler, pruner=args.pruner,
                       storage=args.storage, study=args.study, epochs=args.epochs, sets=args.set, seed=args.sampler_seed, threads=threads,
                       heartbeat=args.heartbeat, create_only=args.create_only, **common)
    print(f"sweep: {', '.join(f'{v} {k}' for k, v in sorted(counts.items())) or 'study ready'}; trials in {args.out}/trials.json")
    return 0


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
    p.add_argument("--hub-config", default=None, metavar="NAME",
                   help="Hugging Face snapshots: the card's config to read (default: the one the card makes default, or its only one; "
                        "without configs in the card, the folder NAME)")
    p.add_argument("--train-splits", default="train", metavar="A,B",
                   help="Hugging Face copies: the copy's splits the train cache is made of (default: %(default)s; e.g. train,validation, "
                        "as the Flowers-102 and FGVC-Aircraft loaders train on train + val). prepare names the splits it leaves out")
    p.add_argument("--test-split", default="test", metavar="NAME",
                   help="Hugging Face copies: the copy's split to test on (default: %(default)s; e.g. validation for a copy with no test split)")
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
    t.add_argument("--stage", default=None, help="recipe stage or variant name (see above)")
    t.add_argument("--recipe", default=None, metavar="FILE",
                   help="instead of --stage: a recipe as JSON (every field; e.g. a search's chosen_recipe.json, or a run's recipe.json)")
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
    t.add_argument("--open-set", default=None, metavar="SPLIT",
                   help="train on a split's known classes only (labels renumbered, names kept), with a validation split of their train "
                        "images (val_fraction 0.1 if 0): a split JSON file, a shipped split (ssb-stanford-cars, ssb-cub, fashion-mnist) "
                        "or seeded:SEED[:KNOWN] (docs/evaluation.md, \"Open set\")")
    t.add_argument("--keep-checkpoints", action="store_true",
                   help="keep the training state (checkpoints) of a finished run; by default it keeps final.pt (raw and EMA weights) and the logs")
    t.set_defaults(func=_train)

    r = sub.add_parser("report", help="render the results table and plots from a folder of runs",
                       description="Read RUNS/<stage>/seed<k>/summary.json and write a Markdown report with mean +- std per "
                                   "stage, gains, the blog's numbers, protocol, hardware and versions, plus PNG plots.")
    r.add_argument("runs", metavar="RUNS_DIR", nargs="?", help="a folder of runs, or the <section>_runs.json a report wrote beside itself")
    r.add_argument("--bench", nargs="+", default=None, metavar="JSON", help="render benchmark JSON files (from bench --json) instead of runs")
    r.add_argument("--greedy", default=None, metavar="JSON", help="print the table of a greedy search's greedy.json (sweep --greedy) and exit")
    r.add_argument("--out", default=None, help="report file (default: RUNS_DIR/RESULTS.md; needed with a runs JSON or --bench)")
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
    e.add_argument("--open-set", nargs="?", const="recorded", default=None, metavar="SPLIT",
                   help="a run (or model) trained with --open-set is always evaluated with its split: calibration (NLL, ECE, temperature "
                        "fitted on its validation split), rejection of the unknown test images (AUROC all/easy/hard, FPR@95, OSCR for "
                        "msp, msp_ts, max_logit, energy), selective classification, reliability.png; give SPLIT to grade the unknowns "
                        "by another split with the same known classes; refused for a run trained on all classes")
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
    x.add_argument("--reject-score", choices=["max_logit", "energy", "msp", "msp_ts"], default=None,
                   help="a run trained with --open-set: the score its exported model rejects by (default: max_logit); the model "
                        "answers unknown when it is below a threshold fitted on the run's validation split")
    x.add_argument("--reject-tpr", type=float, default=None,
                   help="a run trained with --open-set: the share of its validation images the threshold keeps (default: 0.95)")
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

    w = sub.add_parser("sweep", help="search the recipe's hyper-parameters (grid, quasi-random, TPE; greedy like the blog) on a validation split",
                       description="Search one stage's recipe with Optuna: every trial trains it per seed on the train split, with a "
                                   "validation split carved out, and is judged on validation top-1; the test split is never read. "
                                   "Several workers: start the same command several times (one machine: the default storage; "
                                   "several: --storage postgresql+psycopg2://...). Running it again continues the study. "
                                   "--greedy runs the blog's procedure (adopt one technique at a time when Welch's test says its gain "
                                   "is real); --finalize trains the choice and the default on all of train and compares them on test once. "
                                   "docs/sweep.md.")
    w.add_argument("--stage", default=None, help="the stage whose recipe is searched (--greedy: the starting stage, default base)")
    w.add_argument("--param", action="append", default=[], metavar="FIELD=v1,v2|FIELD=lo:hi[:log]",
                   help="a recipe field to search: a list of values (a grid), or a numeric range for a sampler; repeatable")
    w.add_argument("--trials", type=int, default=None, help="finished trials to reach across all workers (grid: default, every point)")
    w.add_argument("--seeds", type=int, default=None, help="seeds per trial, 0..K-1 (default 1; --greedy 2; --finalize 3)")
    w.add_argument("--sampler", choices=["grid", "qmc", "tpe", "random"], default=None,
                   help="grid (the default for lists), qmc (scrambled Sobol; the default with a range), tpe or random")
    w.add_argument("--sampler-seed", type=int, default=0, help="the samplers' seed (default: %(default)s)")
    w.add_argument("--pruner", choices=["none", "median", "sha"], default="none",
                   help="stop poor trials early on their per-epoch validation top-1: median or successive halving (default: %(default)s)")
    w.add_argument("--out", required=True, metavar="DIR", help="the sweep folder: trial runs, trials.json, the default storage, the report")
    w.add_argument("--storage", default=None, metavar="URL",
                   help="an Optuna storage URL, e.g. postgresql+psycopg2://user@host/db (default: the journal file DIR/study.journal)")
    w.add_argument("--study", default=None, metavar="NAME", help="the study's name (default: the stage's; greedy-<stage> for --greedy)")
    w.add_argument("--cache", default=None, metavar="DIR", help="a cache written by `prepare` (its test split is never read)")
    w.add_argument("--data", default=None, metavar="SPEC", help="or a Fashion-MNIST spec, as train takes it")
    w.add_argument("--epochs", type=int, default=None, help="scale the stage to this many epochs, as train --epochs does")
    w.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="fix a recipe field in every trial (as train --set)")
    w.add_argument("--threads", type=int, default=None,
                   help="compute threads per trial (default: the free cores at each run's start, at most the cores / the workers on this machine)")
    w.add_argument("--heartbeat", type=int, default=10, metavar="SECONDS",
                   help="a running trial's heartbeat; one silent for 6 heartbeats is failed and retried (default: %(default)s)")
    w.add_argument("--create-only", action="store_true", help="create the study (and enqueue the grid) and exit: then start the workers")
    w.add_argument("--greedy", action="store_true", help="the blog's greedy procedure over the recipe's techniques, the LR re-tuned for each")
    w.add_argument("--lr-factors", default="0.5,1,2", metavar="F,F,...",
                   help="--greedy: the lr_scale grid, as factors of the incumbent's lr_scale (default: %(default)s)")
    w.add_argument("--techniques", default=None, metavar="T,T,...",
                   help="--greedy: the candidate techniques (default: large_batch_warmup, trivialaugment, cosine, label_smoothing, random_erasing, ema)")
    w.add_argument("--finalize", action="store_true",
                   help="train the search's choice and the stage's default on all of train, compare them on test once, write DIR/report.md")
    w.add_argument("--no-verify-sources", action="store_true", help="do not check the cache's source images")
    w.set_defaults(func=_sweep)

    k = sub.add_parser("check", help="validate stage names and --set values for every stage, before any work (reproduce.sh's preflight)",
                       description="Resolve every listed stage with the same --epochs and --set as train would; print one line "
                                   "per stage, or every error at once (exit 2). Writes nothing.")
    k.add_argument("--stages", required=True, help="comma-separated stage names")
    k.add_argument("--epochs", type=int, default=None, help="as train --epochs")
    k.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=SET_HELP)
    k.add_argument("--open-set", default=None, metavar="SPLIT", help="also check an open-set split's form (as train --open-set)")
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
