"""Command line: ``python -m fgvc_ref <command> ...``.

Each subcommand unpacks its arguments and calls one library function; no logic lives here.
"""

from __future__ import annotations

import argparse
import sys


def _bench(args: argparse.Namespace) -> int:
    from fgvc_ref import bench

    torch_threads(args.threads)
    bench.run(args.only.split(","), repeats=args.repeats, device=args.device, json_path=args.json)
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from fgvc_ref.data.cache import prepare
    from fgvc_ref.data.folder import load_folder
    from fgvc_ref.data.stanford_cars import FULL, load_stanford_cars

    sizes = {"train": args.train_size, "test": args.test_size}
    loaded = {}
    for split in sizes:  # load and check both splits before writing anything
        if args.dataset == "stanford_cars":
            loaded[split] = load_stanford_cars(args.data, split, expected=None if args.any_size else FULL)
        else:
            loaded[split] = load_folder(args.data, split, bbox_csv=args.bbox_csv)
    if loaded["train"].classes != loaded["test"].classes:
        raise ValueError(f"{args.data}: train and test have different classes ({len(loaded['train'].classes)} vs {len(loaded['test'].classes)})")
    for split, data in loaded.items():
        print(f"{split}: {len(data.records)} images, {len(data.classes)} classes ({data.layout} layout)", file=sys.stderr)
        prepare(data.records, args.out, split=split, classes=data.classes, size=sizes[split], workers=args.workers,
                dataset=f"{args.dataset}:{data.layout}", params={"data_root": str(args.data), "size": sizes[split]})
    print(f"cache ready in {args.out}")
    return 0


def torch_threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fgvc_ref", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser("bench", help="time each technique against its torch/torchvision twin (medians, ratios)",
                       description="Time each hand-written technique against its twin in one process; print medians, "
                                   "min-max and ratios, optionally write JSON.")
    b.add_argument("--only", default="optim,ema,augment", help="comma-separated sections: optim, ema, augment, prepare (default: %(default)s)")
    b.add_argument("--repeats", type=int, default=20, help="timed repeats per measurement (default: %(default)s)")
    b.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    b.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    b.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON here")
    b.set_defaults(func=_bench)

    p = sub.add_parser("prepare", help="decode, crop and resize a dataset once into a verified uint8 cache",
                       description="Detect the dataset layout, check it (counts, missing files, unreadable images, boxes) and "
                                   "write <split>.pt + <split>.manifest.json for train and test into --out.")
    p.add_argument("--data", required=True, metavar="ROOT", help="dataset root (any Stanford Cars layout, or class folders)")
    p.add_argument("--out", required=True, metavar="DIR", help="cache folder to write")
    p.add_argument("--dataset", choices=["stanford_cars", "folder"], default="stanford_cars", help="default: %(default)s")
    p.add_argument("--train-size", type=int, default=256, help="train images are stored at this square size (default: %(default)s)")
    p.add_argument("--test-size", type=int, default=224, help="test images are stored at this square size (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
    p.add_argument("--any-size", action="store_true", help="Stanford Cars: do not enforce 196 classes / 8,144 / 8,041 images")
    p.add_argument("--bbox-csv", default=None, help="folder datasets: headerless CSV of <class>/<image>,x1,y1,x2,y2 (1-based)")
    p.set_defaults(func=_prepare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:  # user errors (DatasetError included): a clear message, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
