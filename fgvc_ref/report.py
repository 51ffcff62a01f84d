"""The results report: one row per stage from the runs' summaries, the blog's numbers beside them.

Reads ``RUNS/<stage>/seed<k>/{summary,recipe,env}.json`` and ``metrics.jsonl`` of finished runs
and renders Markdown: mean +- sample std over seeds of the reported last-epoch top-1 (the EMA's when
the stage uses EMA), the step and total gains, the blog's numbers (docs/recipe.md section 1), whether
each step is distinguishable from zero at the seeds run (Welch's t, :mod:`fgvc_ref.stats`) and how
many seeds the blog's step would need, the protocol, hardware, versions, wall time and command; plus
PNG plots of the cumulative progression, the LR per epoch and the learning curves of every stage. The table block depends only on the runs' accuracies, so an interrupted
and resumed reproduction renders it byte for byte like an uninterrupted one. With ``section``, the
report replaces the block between ``<!-- report:SECTION:begin -->`` and ``<!-- report:SECTION:end -->``
in the output file (appending it if absent), so RESULTS.md can hold several generated reports.

Runs trained with ``--open-set`` and evaluated (``evaluate RUN --open-set``, which reproduce.sh runs)
add a rejection-and-calibration table per stage (:func:`open_set_tables`) from each run's
``evaluation-<weights>/evaluation.json``: mean +- sd over seeds and Welch's verdict against the
previous stage, deterministic given those files (their numbers are kept in the runs JSON).
"""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path

from fgvc_ref.data.cache import atomic_write
from fgvc_ref.recipe import BLOG_TOP1, STAGES, VARIANTS

TABLE_BEGIN, TABLE_END = "<!-- table:begin -->", "<!-- table:end -->"
ARTIFACTS = "results"  # the folder beside a report that holds its plots and the runs JSON it was made from


def collect(runs: Path) -> dict[str, list[dict]]:
    """Finished runs per stage: {stage: [{"summary", "recipe", "env", "metrics"}, ...]} sorted by seed.
    ``runs`` is a folder of runs, or the ``*_runs.json`` file a report saved beside itself."""
    if Path(runs).is_file():
        return _in_recipe_order(json.loads(Path(runs).read_text())["stages"])
    out: dict[str, list[dict]] = {}
    for summary_path in sorted(Path(runs).glob("*/*/summary.json")):
        run = summary_path.parent
        record = {"summary": json.loads(summary_path.read_text()), "recipe": _json(run / "recipe.json"), "env": _json(run / "env.json"),
                  "metrics": [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] if (run / "metrics.jsonl").exists() else []}
        evaluation = _json(run / f"evaluation-{record['summary'].get('reported', 'raw')}" / "evaluation.json")
        if "open_set" in evaluation:
            record["open_set"] = open_set_record(evaluation)
        out.setdefault(record["summary"]["stage"], []).append(record)
    return _in_recipe_order(out)


def _in_recipe_order(stages: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Stages in the recipe's order (then variants, then others by name), runs by seed."""
    order = list(STAGES) + list(VARIANTS)
    rank = lambda s: (order.index(s) if s in order else len(order), s)
    return {k: sorted(stages[k], key=lambda r: r["summary"]["seed"]) for k in sorted(stages, key=rank)}


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def open_set_record(evaluation: dict) -> dict:
    """What the report keeps of an open-set evaluation: its numbers, not its per-image lists or reliability bins."""
    split = evaluation["open_set_split"]
    return {"top1": evaluation["top1"], "open_set": evaluation["open_set"], "selective": evaluation["selective"],
            "calibration": {k: v for k, v in evaluation["calibration"].items() if not k.startswith("reliability")},
            "rule": {k: v for k, v in evaluation["rule"].items() if k != "reject_rule"}, "images": evaluation["open_set_images"],
            "split": {k: split[k] for k in ("split", "sha256", "known", "unknown_easy", "unknown_hard")}}


# (column title, where in the open-set record, scale): fractions shown in percent, NLL in nats, T as it is
REJECTION_COLUMNS = (("top-1, known", ("top1",), 1), ("AUROC MSP", ("open_set", "msp", "auroc"), 100),
                     ("AUROC MSP+TS", ("open_set", "msp_ts", "auroc"), 100), ("AUROC max logit", ("open_set", "max_logit", "auroc"), 100),
                     ("AUROC energy", ("open_set", "energy", "auroc"), 100), ("AUROC max logit, easy", ("open_set", "max_logit", "auroc_easy"), 100),
                     ("AUROC max logit, hard", ("open_set", "max_logit", "auroc_hard"), 100), ("FPR@95 max logit", ("open_set", "max_logit", "fpr95"), 100),
                     ("OSCR max logit", ("open_set", "max_logit", "oscr"), 100))
CALIBRATION_COLUMNS = (("NLL", ("calibration", "nll"), 1), ("ECE", ("calibration", "ece"), 100), ("T", ("calibration", "temperature"), 1),
                       ("NLL after T", ("calibration", "nll_ts"), 1), ("ECE after T", ("calibration", "ece_ts"), 100),
                       ("AURC MSP", ("selective", "msp", "aurc"), 100), ("acc. at 90% coverage, MSP", ("selective", "msp", "accuracy_at_90"), 100),
                       ("rule: known kept", ("rule", "test_known_kept"), 100), ("rule: unknown accepted", ("rule", "test_unknown_accepted"), 100))
STEP_COLUMNS = (("AUROC max logit", ("open_set", "max_logit", "auroc"), 100), ("AUROC max logit, hard", ("open_set", "max_logit", "auroc_hard"), 100),
                ("FPR@95 max logit", ("open_set", "max_logit", "fpr95"), 100), ("OSCR max logit", ("open_set", "max_logit", "oscr"), 100),
                ("AUROC MSP", ("open_set", "msp", "auroc"), 100), ("ECE", ("calibration", "ece"), 100), ("ECE after T", ("calibration", "ece_ts"), 100),
                ("NLL", ("calibration", "nll"), 1), ("AURC MSP", ("selective", "msp", "aurc"), 100))


def _values(runs: list[dict], path: tuple[str, ...], scale: float) -> list[float]:
    out = []
    for r in runs:
        v = r["open_set"]
        for key in path:
            v = v[key]
        if v is not None:
            out.append(v * scale)
    return out


def _cell(values: list[float], digits: int) -> str:
    if not values:
        return "n/a"
    mean, std = _mean_std(values)
    return f"{mean:.{digits}f} +- {std:.{digits}f}" if std is not None else f"{mean:.{digits}f} (1 seed)"


def open_set_tables(stages: dict[str, list[dict]]) -> str:
    """Per stage, over the seeds whose open-set evaluation is there: rejection, calibration and selective classification
    (mean +- sample sd), then each metric's step against the previous adopted stage (Welch's t, :mod:`fgvc_ref.stats`)."""
    from fgvc_ref.stats import welch

    rows = {s: [r for r in runs if r.get("open_set")] for s, runs in stages.items()}
    rows = {s: runs for s, runs in rows.items() if runs}
    if not rows:
        return ""
    digits = lambda title: 3 if title.startswith(("NLL", "T")) else 1
    blocks = []
    for columns in (REJECTION_COLUMNS, CALIBRATION_COLUMNS):
        lines = ["| # | stage | seeds | " + " | ".join(t for t, _, _ in columns) + " |", "|---|---|---|" + "---|" * len(columns)]
        for stage, runs in rows.items():
            number = list(STAGES).index(stage) if stage in STAGES else "-"
            lines.append(f"| {number} | {stage} | {len(runs)} | " + " | ".join(_cell(_values(runs, path, scale), digits(t))
                                                                          for t, path, scale in columns) + " |")
        blocks.append("\n".join(lines))
    adopted = [s for s in rows if s in STAGES]
    steps = ["| step | seeds | " + " | ".join(t for t, _, _ in STEP_COLUMNS) + " |", "|---|---|" + "---|" * len(STEP_COLUMNS)]
    for a, b in zip(adopted, adopted[1:]):
        cells = []
        for title, path, scale in STEP_COLUMNS:
            x, y = _values(rows[a], path, scale), _values(rows[b], path, scale)
            if len(x) < 2 or len(y) < 2:
                cells.append("n/a")
                continue
            w = welch(x, y)
            p = "< 0.001" if w.p < 0.001 else f"{w.p:.3f}"
            cells.append(f"{w.diff:+.{digits(title)}f} (p {p}{', yes' if w.distinguishable else ''})")
        seeds = f"{len(rows[a])}" if len(rows[a]) == len(rows[b]) else f"{len(rows[a])} / {len(rows[b])}"
        steps.append(f"| {b} vs {a} | {seeds} | " + " | ".join(cells) + " |")
    if len(steps) > 2:
        blocks.append("Each step against the previous stage: the difference of means, Welch's two-sided p over seeds, and \"yes\" where its 95% interval excludes 0.\n\n" + "\n".join(steps))
    return "\n\n".join(blocks)


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _fmt(mean: float, std: float | None) -> str:
    return f"{mean:.2f} +- {std:.2f}" if std is not None else f"{mean:.2f} (1 seed)"


def table(stages: dict[str, list[dict]]) -> str:
    """The Markdown results table (deterministic given the runs' accuracies)."""
    rows = ["| # | stage | seeds | top-1, last epoch (mean +- std) | step | total | best epoch, test-selected | blog top-1 | blog step | blog total |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    base = previous = None
    blog = list(BLOG_TOP1.values())
    for k, (stage, runs) in enumerate(stages.items()):
        last = [r["summary"]["last_test_acc"] for r in runs]
        best = [r["summary"]["best_test_acc_test_selected"] for r in runs]
        mean, std = _mean_std(last)
        adopted = stage in STAGES
        step = f"{mean - previous:+.2f}" if previous is not None and adopted else ""
        total = f"{mean - base:+.2f}" if base is not None and adopted else ""
        if stage in BLOG_TOP1:
            i = list(BLOG_TOP1).index(stage)
            b = BLOG_TOP1[stage]
            blog_cells = f"{b:.2f} | {b - blog[i - 1]:+.2f} | {b - blog[0]:+.2f}" if i else f"{b:.2f} | | "
        else:
            blog_cells = "not adopted | | "
        number = list(STAGES).index(stage) if adopted else "-"
        rows.append(f"| {number} | {stage} | {len(runs)} | {_fmt(mean, std)} | {step} | {total} | {_fmt(*_mean_std(best))} | {blog_cells} |")
        if adopted:
            base = mean if base is None else base
            previous = mean
    return "\n".join(rows)


def significance(stages: dict[str, list[dict]]) -> str:
    """Per step between adopted stages, and for the total: the difference of mean top-1, Welch's 95% interval,
    p, the verdict at the seeds run, and the seeds per stage an 80%-power test needs for the blog's step."""
    from fgvc_ref.stats import pooled_sd, seeds_needed, welch

    adopted = [(s, [r["summary"]["last_test_acc"] for r in runs]) for s, runs in stages.items() if s in STAGES]
    pairs = [(f"{b} vs {a}", x, y, a, b) for (a, x), (b, y) in zip(adopted, adopted[1:])]
    if len(adopted) > 2:
        pairs.append((f"total: {adopted[-1][0]} vs {adopted[0][0]}", adopted[0][1], adopted[-1][1], adopted[0][0], adopted[-1][0]))
    if not pairs:
        return ""
    rows = ["| step | seeds | difference | 95% interval (Welch t) | p | distinguishable from zero? | blog step | seeds per stage for the blog's step (80% power) |",
            "|---|---|---|---|---|---|---|---|"]
    for name, x, y, a, b in pairs:
        seeds = f"{len(x)}" if len(x) == len(y) else f"{len(x)} / {len(y)}"
        blog = BLOG_TOP1[b] - BLOG_TOP1[a]
        if len(x) < 2 or len(y) < 2:  # Welch's interval needs a spread on each side
            rows.append(f"| {name} | {seeds} | {statistics.fmean(y) - statistics.fmean(x):+.2f} | not enough seeds: 2 a side needed | | "
                        f"not enough seeds | {blog:+.2f} | |")
            continue
        w = welch(x, y)
        n = seeds_needed(round(blog, 2), pooled_sd(x, y))
        need = "none: the blog's step is 0" if round(blog, 2) == 0 else (f"{n}" if n is not None else "> 10,000")
        p = "< 0.001" if w.p < 0.001 else f"{w.p:.3f}"
        rows.append(f"| {name} | {seeds} | {w.diff:+.2f} | [{w.low:+.2f}, {w.high:+.2f}] | {p} | {'yes' if w.distinguishable else 'no'}, at {seeds} seeds | "
                    f"{blog:+.2f} | {need} |")
    return "\n".join(rows)


def render(stages: dict[str, list[dict]], *, command: str | None, title: str, plots: list[str]) -> str:
    first = next(iter(stages.values()))[0]
    recipe, env = first["recipe"], first["env"]
    seeds = sorted({r["summary"]["seed"] for runs in stages.values() for r in runs})
    sig = significance(stages)
    protocol = recipe.get("protocol", "")
    lines = [
        f"## {title}" + (f": {protocol}" if protocol.startswith("whole images") and protocol not in title else ""), "",
        f"- Data: `{recipe.get('data')}`; model `{recipe.get('model')}` (weights `{recipe.get('weights')}`"
        + (f", BatchNorm momentum {recipe['batch_norm_momentum']}" if recipe.get("batch_norm_momentum") is not None else "")
        + f"), {recipe.get('image_size')} px, "
        f"up to {recipe.get('epochs')} epochs per stage (epoch-denominated fields scaled alike), seeds {seeds}",
        "- Reported: top-1 on the test split at the last epoch, mean +- sample std over seeds; the EMA's accuracy for stages with EMA. "
        "\"best epoch, test-selected\" picks the epoch on the test set (the blog's early-stopping protocol) and is optimistic.",
        f"- Hardware: {env.get('gpu') or env.get('cpu')} ({env.get('cpu_count')} CPUs, {env.get('torch_threads')} torch threads); "
        f"torch {env.get('torch')}, torchvision {env.get('torchvision')}, "
        + (f"CUDA {env.get('cuda')}" if env.get("gpu") else "no GPU") + f", Python {env.get('python')}; date {env.get('date')}",
        _as_run(stages),
        f"- Command: `{command}`" if command else "- Command: not recorded",
        "- The blog's columns are its Stanford Cars numbers (ResNet-50, ImageNet weights, box crops at 224 px), for comparison only.", "",
        TABLE_BEGIN, table(stages), TABLE_END, "",
        "How to read it:", "", *[f"- {note}" for note in reading_notes(stages)], "",
        *(["Is each step real? Welch's t interval over seeds for the difference of mean top-1 (not a bootstrap; "
           "fgvc_ref/stats.py). The last column uses the pooled per-seed spread measured here for the two stages.", "",
           sig, ""] if sig else []),
        *(open_set_section(stages)),
        "Wall time of training per stage (sum over seeds, seconds): "
        + ", ".join(f"{s} {sum(r['summary'].get('train_s') or 0 for r in runs):.0f}" for s, runs in stages.items()) + ".", "",
    ]
    lines += [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def open_set_section(stages: dict[str, list[dict]]) -> list[str]:
    """The rejection-and-calibration tables with what a reader needs to read them (nothing when no run was evaluated so)."""
    tables = open_set_tables(stages)
    if not tables:
        return []
    first = next(r["open_set"] for runs in stages.values() for r in runs if r.get("open_set"))
    split, n = first["split"], first["images"]
    return ["### Does the model know when it does not know? Rejection and calibration per stage", "",
            f"- Split `{split['split']}` (sha256 {split['sha256'][:12]}): {len(split['known'])} known classes; unknown easy "
            f"{', '.join(split['unknown_easy']) or 'none'}; hard {', '.join(split['unknown_hard']) or 'none'}. Test images per run: "
            f"{n['known']} known, {n['unknown_easy']} easy and {n['unknown_hard']} hard unknown; the temperature T and the rule's "
            f"threshold are fitted on the run's validation split ({n['validation']} known train images held out), never on test.",
            "- Percent unless said; NLL in nats. AUROC: the chance a known test image scores above an unknown one (50 = chance); "
            "FPR@95: the share of unknown images accepted at the threshold keeping 95% of the known; OSCR: the area under correct "
            "known accepted against unknown accepted; AURC (lower is better) and accuracy at 90% coverage rank the known test images "
            "by MSP. The rule: max logit >= the threshold keeping 95% of the validation images, applied to test. Each run is "
            "evaluated with its reported weights (the EMA's for the ema stage). docs/evaluation.md defines each metric.",
            *_bound_note(stages), "", tables, ""]


def _bound_note(stages: dict[str, list[dict]]) -> list[str]:
    """The runs whose temperature ended at its search bound (their validation NLL has no minimum inside it)."""
    hits = [f"{s} seed {r['summary']['seed']}" for s, runs in stages.items() for r in runs
            if r.get("open_set") and r["open_set"]["calibration"].get("temperature_at_bound")]
    return [f"- T ended at its search bound (0.05 or 20) for {', '.join(hits)}: the validation NLL had no minimum inside the "
            "interval (every validation image right by a wide margin drives T to 0.05), so temperature scaling there fits the "
            "validation split, not the model: its NLL and ECE after T can be worse on test than before."] if hits else []


def num_classes_of(recipe: dict) -> int | None:
    """K from a run's recipe.json (``num_classes``, recorded since it was added), else from a Fashion-MNIST spec; None if unknown."""
    if recipe.get("num_classes"):
        return int(recipe["num_classes"])
    data = str(recipe.get("data", ""))
    return (4 if data.startswith("fashion-mnist:tops") else 10) if data.startswith("fashion-mnist") else None


def reading_notes(stages: dict[str, list[dict]], last: int = 3) -> list[str]:
    """What a reader needs beside the table: chance, each stage's peak LR, and whether its curve is still moving at the end."""
    first = next(iter(stages.values()))[0]["recipe"]
    k = num_classes_of(first)
    notes = [f"Chance is {100 / k:.1f}% ({k} classes)." if k else "Chance: the class count was not recorded with these runs."]
    peaks = []
    for s, runs in stages.items():
        r = runs[0]["recipe"]
        peaks.append((s, r.get("lr", 0.0) * r.get("lr_scale", 1.0), r.get("batch_size")))
    groups: list[list] = []
    for s, lr, batch in peaks:
        if groups and math.isclose(groups[-1][1], lr) and groups[-1][2] == batch:
            groups[-1][0].append(s)
        else:
            groups.append([[s], lr, batch])
    parts = [f"{g[0][0] if len(g[0]) == 1 else g[0][0] + ' to ' + g[0][-1]} {g[1]:.4g} (batch {g[2]})" for g in groups]
    jumps = [f"{b[0][0]} runs at {b[1] / a[1]:.3g}x the LR of {a[0][-1]}" for a, b in zip(groups, groups[1:]) if a[1] > 0]
    notes.append("Peak learning rate per stage (after warmup, LR x lr_scale): " + "; ".join(parts) + "."
                 + (f" {'; '.join(jumps)}: the recipe changes the LR with the batch size and again with label smoothing (0.1 -> 0.4), "
                    "so a stage's step mixes its technique with its LR." if jumps else ""))
    trends = []
    for s, runs in stages.items():
        key = "ema_test_acc" if runs[0]["summary"].get("reported") == "ema" else "test_acc"
        curves = [[m[key] for m in r["metrics"] if m.get(key) is not None] for r in runs]
        curves = [c for c in curves if len(c) >= 2 * last]
        if not curves:
            continue
        change = statistics.fmean(statistics.fmean(c[-last:]) - statistics.fmean(c[-2 * last : -last]) for c in curves)
        trends.append(f"{s} {change:+.1f}" + (" (rising)" if round(change, 1) > 0 else ""))
    if trends:
        notes.append(f"Change of the reported top-1 over the last {last} epochs against the {last} before (points, mean over seeds): "
                     + ", ".join(trends) + ". A curve still rising at the last epoch has not converged in this budget: "
                     "its stage's number, and the steps around it, would move with more epochs (the learning curves below).")
    return notes


def _as_run(stages: dict[str, list[dict]]) -> str:
    """The epoch-denominated fields as the last stage ran them (``scale_epochs`` when epochs != 600)."""
    r = list(stages.values())[-1][0]["recipe"]
    ema = (f"; EMA every {r['ema_steps']} step(s), decay per update {r['ema_update_decay']:.4f}"
           if r.get("ema") and "ema_update_decay" in r else "")
    return (f"- As run ({r.get('name')}): warmup {r.get('warmup_epochs')} epoch(s), StepLR step {r.get('step_size')} epoch(s) where used, "
            f"patience {r.get('patience')} epochs, LRs x {r.get('lr_scale', 1.0)}{ema}")


def plot(stages: dict[str, list[dict]], out_dir: Path, prefix: str) -> list[str]:
    """progression and LR-curve PNGs; [] when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    names = [s for s in stages if s in STAGES]
    if not names:  # only not-adopted variants: nothing to plot against the blog
        return []
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    means = [_mean_std([r["summary"]["last_test_acc"] for r in stages[s]]) for s in names]
    x, ours, blog = range(len(names)), [m for m, _ in means], [BLOG_TOP1[s] for s in names]
    for ax, shift, title, label in ((axes[0], (0, 0), "top-1 per stage", "top-1 (%)"),
                                    (axes[1], (ours[0], blog[0]), f"cumulative gain over {names[0]}", "points over the first stage")):
        ax.errorbar(x, [m - shift[0] for m in ours], yerr=[sd or 0 for _, sd in means], marker="o", capsize=3, label="this run (mean +- std)")
        ax.plot(x, [b - shift[1] for b in blog], marker="s", linestyle="--", label="blog (Stanford Cars)")
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(str(out_dir / f"{prefix}progression.png"))
    fig.savefig(paths[-1], dpi=100, metadata={"Software": None})
    plt.close(fig)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), sharex=True, squeeze=False)
    for ax, s in zip(axes.flat, names):  # one panel per stage: their curves coincide in places
        lrs = _planned_lrs(stages[s][0]["recipe"]) or [m["lr"] for m in stages[s][0]["metrics"]]
        ax.plot(range(len(lrs)), lrs, drawstyle="steps-post")
        ax.set_title(s, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.supxlabel("epoch", fontsize=9)
    fig.supylabel("learning rate", fontsize=9)
    fig.suptitle("LR per epoch, as scheduled (early stopping may end a run sooner)", fontsize=10)
    fig.tight_layout()
    paths.append(str(out_dir / f"{prefix}lr_curves.png"))
    fig.savefig(paths[-1], dpi=100, metadata={"Software": None})
    plt.close(fig)
    paths.append(str(out_dir / f"{prefix}learning_curves.png"))
    learning_curves(stages, names, paths[-1], plt)
    return paths


def mean_band(series: list[list[float]]) -> tuple[list[float], list[float], list[float]]:
    """Mean, min and max at each epoch over runs of different lengths (a run counts while it ran)."""
    at = [[v[e] for v in series if e < len(v)] for e in range(max(map(len, series), default=0))]
    return [statistics.fmean(a) for a in at], [min(a) for a in at], [max(a) for a in at]


def learning_curves(stages: dict[str, list[dict]], names: list[str], path: str, plt) -> None:
    """Per stage (a row): loss and top-1 per epoch, train and test (and the EMA's test), mean over seeds with
    the min-max band; a cross marks the last epoch of a run that stopped early."""
    fig, axes = plt.subplots(len(names), 2, figsize=(9, 2.1 * len(names)), squeeze=False)
    curves = (("train", "train_{}", "C0"), ("test, raw weights", "test_{}", "C1"), ("test, EMA weights", "ema_test_{}", "C2"))
    handles = {}
    for row, s in zip(axes, names):
        for ax, quantity in zip(row, ("loss", "acc")):
            for label, key, colour in curves:
                series = [[m[key.format(quantity)] for m in r["metrics"] if m.get(key.format(quantity)) is not None] for r in stages[s]]
                if not any(series):
                    continue
                mean, low, high = mean_band([v for v in series if v])
                handles[label] = ax.plot(range(len(mean)), mean, color=colour, lw=1.2, label=label)[0]
                ax.fill_between(range(len(mean)), low, high, color=colour, alpha=0.2, lw=0)
                for r, v in zip(stages[s], series):
                    if v and r["summary"].get("early_stopped"):
                        ax.plot(len(v) - 1, v[-1], "x", color=colour, ms=6)
            ax.set_ylabel("loss" if quantity == "loss" else "top-1 (%)", fontsize=8)
            ax.tick_params(labelsize=7)
        row[0].set_title(f"{s}: loss", fontsize=9, loc="left")
        row[1].set_title(f"{s}: top-1", fontsize=9, loc="left")
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize=8)
    fig.legend(handles.values(), handles.keys(), loc="upper center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle("mean over seeds, band min-max; x: the last epoch of a run that stopped early", fontsize=9, y=0.985)
    fig.tight_layout(rect=(0, 0, 1, 0.965))
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)


def _planned_lrs(recipe_json: dict) -> list[float]:
    """The full schedule of a run's resolved recipe (recipe.json), or [] if it cannot be rebuilt."""
    import dataclasses

    from fgvc_ref.recipe import Recipe

    fields = {f.name for f in dataclasses.fields(Recipe)}
    try:
        return Recipe(**{k: v for k, v in recipe_json.items() if k in fields}).lrs()
    except (TypeError, ValueError):
        return []


def write_report(runs: Path | str, out: Path | str | None = None, *, command: str | None = None, title: str | None = None,
                 section: str | None = None) -> Path:
    """Render the runs in ``runs`` (a folder, or a ``*_runs.json`` saved by an earlier report) into ``out``.

    In ``results/`` beside ``out`` it keeps the plots and ``[SECTION_]runs.json``: the summaries, resolved recipes,
    environments and LR curves the report was made from, so every number can be traced and the block made again."""
    runs = Path(runs)
    stages = collect(runs)
    if not stages:
        raise ValueError(f"{runs}: no finished runs (RUNS/<stage>/seed<k>/summary.json)")
    if runs.is_file():
        saved = json.loads(runs.read_text())
        command, title = command or saved.get("command"), title or saved.get("title")
    title = title or "Results"
    if out is None and runs.is_file():  # beside it would be results/, a tracked folder
        raise ValueError(f"{runs} is a runs JSON: give --out (e.g. RESULTS.md with --section NAME, or a file under runs/)")
    out = Path(out) if out else runs / "RESULTS.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{section}_" if section else ""
    artifacts = out.parent / ARTIFACTS
    artifacts.mkdir(exist_ok=True)
    plots = [f"{ARTIFACTS}/{Path(p).name}" for p in plot(stages, artifacts, prefix)]
    text = render(stages, command=command, title=title, plots=plots)
    source = artifacts / f"{prefix}runs.json"
    if not runs.is_file():  # keep what the report was made from
        keep = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "ema_test_loss", "ema_test_acc", "epoch_s")
        slim = {k: [{**r, "metrics": [{f: m[f] for f in keep if f in m} for m in r["metrics"]]} for r in v] for k, v in stages.items()}
        record = {"title": title, "command": command, "stages": slim}
        atomic_write(source, lambda f: f.write(json.dumps(record, indent=1, sort_keys=True).encode()))
    _splice(out, f"<!-- source: {ARTIFACTS}/{source.name} -->\n" + text, section)
    return out


def _splice(out: Path, text: str, section: str | None) -> None:
    """Write ``text`` to ``out``, or replace only its ``section`` block."""
    if section:
        begin, end = f"<!-- report:{section}:begin -->", f"<!-- report:{section}:end -->"
        old = out.read_text() if out.exists() else ""
        block = f"{begin}\n{text}{end}"
        text = (old[: old.index(begin)] + block + old[old.index(end) + len(end):]) if begin in old and end in old else (old + ("\n" if old else "") + block + "\n")
    atomic_write(out, lambda f: f.write(text.encode()))


# --- benchmarks -------------------------------------------------------------------------------


def render_benchmarks(paths: list[Path | str], base: Path) -> str:
    """Markdown tables of ``bench --json`` files, each with its command, hardware, versions and date;
    file names are written relative to ``base`` (the report's folder)."""
    blocks = []
    for path in (Path(p).resolve() for p in paths):
        data = json.loads(path.read_text())
        env, rows = data["environment"], data["rows"]
        name = os.path.relpath(path, base)
        lines = [f"<!-- source: {name} -->",
                 f"- Command: `{data.get('command') or 'not recorded'}`; raw output [`{name}`]({name})",
                 f"- Hardware: {env['cpu']}, {env['cpu_threads']} torch threads, GPU {env['gpu'] or 'none'}; torch {env['torch']}, "
                 f"torchvision {env['torchvision']}, Python {env['python']}; date {env['date']}", ""]
        twin_rows = [r for r in rows if "twin_timing" in r]
        if twin_rows:
            lines += ["| ours | twin | ours median (min-max) ms | twin median (min-max) ms | ratio ours/twin | img/s ours / twin | repeats |",
                      "|---|---|---|---|---|---|---|"]
            for r in twin_rows:
                o, t = r["ours"], r["twin_timing"]
                ips = f"{r['images_per_s']['ours']:.0f} / {r['images_per_s']['twin']:.0f}" if "images_per_s" in r else ""
                lines.append(f"| {r['name']} | {r['twin']} | {o['median_s'] * 1e3:.2f} ({o['min_s'] * 1e3:.2f}-{o['max_s'] * 1e3:.2f}) | "
                             f"{t['median_s'] * 1e3:.2f} ({t['min_s'] * 1e3:.2f}-{t['max_s'] * 1e3:.2f}) | {r['ratio_vs_twin']:.2f} | {ips} | "
                             f"{o['repeats']} / {t['repeats']} |")
        latency = [r for r in rows if r["section"] == "latency"]
        if latency:
            lines += [""] * (lines[-1] != "") + latency_table(latency)
        for r in (r for r in rows if r["section"] == "train"):
            lines += [""] * (lines[-1] != "") + ["| training, img/s | median (min-max) | / model-only |", "|---|---|---|",
                                                  f"| model-only step ({r['name']}) | {_rate(r['model_only_img_per_s'])} | 1.00 |"]
            for p in ("fast", "reference", "fast_compiled"):
                if f"{p}_img_per_s" not in r:
                    continue
                v = r[f"{p}_img_per_s"]
                label = {"fast": "fast path", "reference": f"reference path ({r.get('reference_workers', 2)} DataLoader workers)",
                         "fast_compiled": "fast path, torch.compile"}[p]
                lines.append(f"| {label}, epochs 1.. of the run | {_rate(v['median'])} ({_rate(v['min'])}-{_rate(v['max'])}) | "
                             f"{r[f'{p}_vs_model_only']:.2f} |")

            if "eval_img_per_s" in r:
                lines.append(f"| evaluation forward, same batch | {_rate(r['eval_img_per_s'])} | |")
            if r.get("model") == "resnet50" and r.get("image_size") == 224 and "eval_img_per_s" in r:
                lines += ["", projection(r)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def latency_table(rows: list[dict]) -> list[str]:
    """Per model and format: size, top-1, and p50 / p90 / p99 latency (ms) at each batch and thread count, with each p50
    as a share of the same model's PyTorch eager p50 in the same setting."""
    settings = [(t["batch"], t["threads"]) for t in rows[0]["timings"]]
    head = "| model | format | size, MB | top-1 | " + " | ".join(f"batch {b}, {t} thread{'s' * (t > 1)}: p50 / p90 / p99 ms (p50 / eager's)"
                                                                for b, t in settings) + " |"
    lines = [head, "|" + "---|" * (4 + len(settings))]
    eager = {(r["model"], r["image_size"]): {(t["batch"], t["threads"]): t["p50_ms"] for t in r["timings"]}
             for r in rows if r["format"].startswith("PyTorch")}
    for r in rows:
        cells = []
        for t in r["timings"]:
            base = eager.get((r["model"], r["image_size"]), {}).get((t["batch"], t["threads"]))
            share = f" ({t['p50_ms'] / base:.2f})" if base else ""
            cells.append(f"{t['p50_ms']:.2f} / {t['p90_ms']:.2f} / {t['p99_ms']:.2f}{share}")
        top1 = f"{r['top1']:.2f}" if r.get("top1") is not None else "not measured"
        lines.append(f"| {r['model']} at {r['image_size']} px | {r['format']} | {r['bytes'] / 1e6:.2f} | {top1} | " + " | ".join(cells) + " |")
    runs = rows[0]["timings"][0]["runs"]
    lines += ["", f"Each figure is over {runs} timed calls after a warm-up, the formats alternating in rounds in one process; "
                  "p50 / eager's is the format's median over PyTorch eager's median for the same model, batch and threads."]
    return lines


def latency_plot(paths: list[Path | str], out: Path) -> str | None:
    """Top-1 against p50 latency at batch 1 (1 thread), one point per model file with a measured top-1; None without any."""
    points = [r for p in paths for r in json.loads(Path(p).read_text())["rows"] if r["section"] == "latency" and r.get("top1") is not None]
    if not points:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in points:
        t = next(t for t in r["timings"] if t["batch"] == 1 and t["threads"] == 1)
        ax.scatter(t["p50_ms"], r["top1"], s=40)
        ax.annotate(f"{r['format']}\n{r['bytes'] / 1e6:.1f} MB", (t["p50_ms"], r["top1"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xlabel("p50 latency, batch 1, 1 thread (ms)")
    ax.set_ylabel("top-1 on the run's test split (%)")
    ax.set_title(f"{points[0]['model']} at {points[0]['image_size']} px: accuracy against latency", fontsize=10)
    ax.margins(x=0.35, y=0.3)
    ax.set_xlim(left=0)
    fig.tight_layout()
    fig.savefig(out, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return str(out)


def _rate(img_per_s: float) -> str:
    """Images per second: whole numbers from 100 up, three significant digits below (2.93, 12.4)."""
    return f"{img_per_s:.0f}" if img_per_s >= 100 else f"{img_per_s:.3g}"


def projected_hours(fast_img_per_s: float, eval_img_per_s: float, *, seeds: int = 3, epochs: int = 600) -> float:
    """Hours for the full reproduction if every run went all ``epochs`` (no early stop): per epoch, every stage
    trains on the 8,144 train images and evaluates the 8,041 test images (twice for the EMA stage)."""
    from fgvc_ref.data.stanford_cars import FULL

    evaluations = len(STAGES) + sum(r.ema for r in STAGES.values())
    per_epoch = len(STAGES) * FULL["train"] / fast_img_per_s + evaluations * FULL["test"] / eval_img_per_s
    return seeds * epochs * per_epoch / 3600


def projection(row: dict) -> str:
    hours = projected_hours(row["fast_img_per_s"]["median"], row["eval_img_per_s"])
    return (f"**Projection, not a measurement**: the full reproduction (7 stages x 3 seeds x 600 epochs, 8,144 train + 8,041 "
            f"test images per epoch, the EMA stage evaluated twice) would take about {hours:,.0f} hours ({hours / 24:,.1f} days) "
            f"on this device, one run at a time, at the fast path's median {_rate(row['fast_img_per_s']['median'])} img/s and "
            f"{_rate(row['eval_img_per_s'])} img/s for evaluation above. Upper bound for early stopping (patience 200 can end a run "
            f"sooner); every stage is counted at this row's batch {row['batch']} (the recipe trains stage 0 at 32, the others at 128).")


def write_bench_report(paths: list[Path | str], out: Path | str | None, *, section: str | None = None, base: Path | None = None) -> Path:
    if out is None:
        raise ValueError("report --bench needs --out (e.g. RESULTS.md with --section NAME, or a file under runs/)")
    out = Path(out)
    base = (base or out.parent).resolve()
    text = render_benchmarks(paths, base=base)
    (base / ARTIFACTS).mkdir(parents=True, exist_ok=True)
    plot = latency_plot(paths, base / ARTIFACTS / f"{section or 'latency'}_accuracy_latency.png")
    if plot:
        text += f"\n![accuracy against latency]({os.path.relpath(plot, base)})\n"
    _splice(out, text, section)
    return out
