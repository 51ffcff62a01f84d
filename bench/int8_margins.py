"""Why int8 costs a weak model more top-1 than a strong one: its answers sit closer to the decision boundary.

Quantisation moves every logit a little (``d``: the int8 logit minus the fp32 one). An answer can change only where
the fp32 margin ``m`` (top-1 logit minus top-2 logit) is smaller than the two logits' moves can close:
``m < |d_top1| + |d_top2| <= 2 max|d|``. So the answers at risk are the images whose margin is below ``2 q``, with ``q``
a high quantile of ``|d|``; a model whose margins are small (a weak, uncertain model) has many of them, whatever the
quantiser. For each run given, this script exports the fp32 and int8 ONNX files exactly as ``export --format onnx
--int8`` does (calibrated on the run's train split), runs both on the run's test split, and writes per run: fp32 and
int8 top-1, the share of identical answers, the quantiles of ``|d|``, the share of images whose margin is below
``2 x`` the 99th percentile of ``|d|`` (at risk), and the flips counted by margin band.

    .venv/bin/python bench/int8_margins.py runs/embedded-default/runs/ema/seed0 RUN2 --json results/int8_margins.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def measure(run: str, tmp: Path) -> dict:
    import torch

    from fgvc_ref.data.sources import load_test
    from fgvc_ref.deploy import OnnxClassifier, eval_pixels, export_onnx

    fp32_file, int8_file = export_onnx(run, tmp / "model.onnx", int8=True)
    meta = OnnxClassifier(fp32_file).meta
    test = load_test(meta["data"], verify_sources=False)
    logits = {}
    for name, path in (("fp32", fp32_file), ("int8", int8_file)):
        model = OnnxClassifier(path)
        pixels = eval_pixels(test.test_images, model.size, model.layout)
        logits[name] = torch.from_numpy(model(pixels)).double()
    a, b, y = logits["fp32"], logits["int8"], test.test_labels
    d = (b - a).abs()
    top2 = a.topk(2, dim=1).values
    margin = top2[:, 0] - top2[:, 1]
    q99 = float(d.flatten().quantile(0.99))
    flipped = a.argmax(1) != b.argmax(1)
    bands = [0, 0.5 * q99, q99, 2 * q99, 4 * q99, float("inf")]
    return {"run": run, "stage": meta.get("stage"), "model": meta.get("model"), "images": len(y),
            "top1_fp32": 100 * float((a.argmax(1) == y).double().mean()), "top1_int8": 100 * float((b.argmax(1) == y).double().mean()),
            "identical": 100 * float((~flipped).double().mean()),
            "abs_logit_change": {"median": float(d.median()), "p99": q99, "max": float(d.max())},
            "margin_median": float(margin.median()),
            "at_risk_share": 100 * float((margin < 2 * q99).double().mean()),
            "flips_by_margin": [{"margin_from": lo, "margin_to": hi, "images": int(((margin >= lo) & (margin < hi)).sum()),
                                 "flipped": int((flipped & (margin >= lo) & (margin < hi)).sum())} for lo, hi in zip(bands, bands[1:])]}


def table(doc: dict) -> str:
    """The Markdown table README.md and RESULTS.md show, rendered from this script's JSON (``--markdown JSON``)."""
    lines = ["| run (fp32 and int8 ONNX, the run's test split) | images | top-1 fp32 | top-1 int8 | identical answers | median fp32 margin "
             "| p99 of \\|logit change\\| | margin under 2 x p99 (at risk) | answers flipped: at risk / all |", "|---|---|---|---|---|---|---|---|---|"]
    for r in doc["runs"]:
        flipped = sum(b["flipped"] for b in r["flips_by_margin"])
        at_risk = sum(b["flipped"] for b in r["flips_by_margin"] if b["margin_to"] <= 2 * r["abs_logit_change"]["p99"] * (1 + 1e-12))
        lines.append(f"| `{r['run']}` ({r['model']}) | {r['images']} | {r['top1_fp32']:.2f}% | {r['top1_int8']:.2f}% | {r['identical']:.1f}% "
                     f"| {r['margin_median']:.2f} | {r['abs_logit_change']['p99']:.2f} | {r['at_risk_share']:.1f}% | {at_risk} / {flipped} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="finished run folders")
    parser.add_argument("--json", default=None)
    parser.add_argument("--markdown", default=None, metavar="JSON", help="print the table of a JSON this script wrote, and exit")
    args = parser.parse_args()
    if args.markdown:
        print(table(json.loads(Path(args.markdown).read_text())))
        return 0
    if not args.runs:
        parser.error("give run folders, or --markdown JSON")
    import platform

    import torch

    rows = []
    for run in args.runs:
        with tempfile.TemporaryDirectory() as tmp:
            r = measure(run, Path(tmp))
        rows.append(r)
        print(f"{run}: top-1 fp32 {r['top1_fp32']:.2f}% int8 {r['top1_int8']:.2f}%, identical {r['identical']:.1f}%, |d| p99 "
              f"{r['abs_logit_change']['p99']:.3f}, median margin {r['margin_median']:.3f}, at risk {r['at_risk_share']:.1f}%")
    if args.json:
        doc = {"command": "python bench/int8_margins.py " + " ".join(sys.argv[1:]), "date": time.strftime("%Y-%m-%d"),
               "cpu": platform.processor() or platform.machine(), "torch": torch.__version__, "runs": rows}
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
