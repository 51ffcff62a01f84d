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
    b.add_argument("--only", default="optim,ema,augment", help="comma-separated sections: optim, ema, augment (default: %(default)s)")
    b.add_argument("--repeats", type=int, default=20, help="timed repeats per measurement (default: %(default)s)")
    b.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    b.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    b.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON here")
    b.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:  # user errors: one clear line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
