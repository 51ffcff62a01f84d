"""fgvc_ref.report: the table from run summaries, gains, the blog's numbers, section splicing."""

import json

import pytest

from fgvc_ref.report import TABLE_BEGIN, TABLE_END, collect, table, write_report


def fake_runs(root, accs: dict[str, list[float]]):
    for stage, values in accs.items():
        for seed, acc in enumerate(values):
            run = root / stage / f"seed{seed}"
            run.mkdir(parents=True)
            (run / "summary.json").write_text(json.dumps({"stage": stage, "seed": seed, "last_test_acc": acc,
                                                          "best_test_acc_test_selected": acc + 1, "train_s": 10.0}))
            (run / "recipe.json").write_text(json.dumps({"data": "synthetic", "model": "tiny_cnn", "weights": "none", "image_size": 16, "epochs": 3}))
            (run / "env.json").write_text(json.dumps({"torch": "x", "cpu": "cpu"}))
            (run / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "lr": 0.1 * (e + 1), "test_acc": acc - 2 + e, "recipe": {"lr": 0.1}})
                                                       + "\n" for e in range(3)))


def test_table_has_mean_std_step_and_total_gains_and_the_blog_numbers(tmp_path):
    fake_runs(tmp_path, {"ema": [80.0, 82.0, 84.0], "base": [70.0, 71.0, 72.0], "trivialaugment": [75.0, 75.0, 78.0]})
    rows = table(collect(tmp_path)).splitlines()
    assert [r.split("|")[2].strip() for r in rows[2:]] == ["base", "trivialaugment", "ema"]  # recipe order, not alphabetical
    assert "| 0 | base | 3 | 71.00 +- 1.00 |  |  | 72.00 +- 1.00 | 88.22 | |  |" == rows[2]
    assert "| 2 | trivialaugment | 3 | 76.00 +- 1.73 | +5.00 | +5.00 |" in rows[3]
    assert "| 6 | ema | 3 | 82.00 +- 2.00 | +6.00 | +11.00 | 83.00 +- 2.00 | 94.93 | +0.00 | +6.71 |" == rows[4]


def test_report_is_written_with_plots_and_spliced_into_a_section(tmp_path):
    fake_runs(tmp_path / "runs", {"base": [50.0], "ema": [60.0]})
    target = tmp_path / "RESULTS.md"
    target.write_text("# Results\n\nhand-written intro\n")
    write_report(tmp_path / "runs", target, command="./reproduce.sh", title="Embedded", section="embedded")
    first = target.read_text()
    assert first.startswith("# Results\n\nhand-written intro\n") and "<!-- report:embedded:begin -->" in first
    assert TABLE_BEGIN in first and TABLE_END in first and "`./reproduce.sh`" in first
    write_report(tmp_path / "runs", target, command="./reproduce.sh", title="Embedded", section="embedded")
    assert target.read_text() == first  # replaced in place, not appended twice
    results = tmp_path / "results"  # the report's plots and sources, beside it
    assert (results / "embedded_progression.png").stat().st_size > 0 and (results / "embedded_lr_curves.png").exists()
    assert "<!-- source: results/embedded_runs.json -->" in first and "![embedded_progression](results/embedded_progression.png)" in first
    saved = json.loads((results / "embedded_runs.json").read_text())["stages"]["base"][0]
    assert saved["summary"]["last_test_acc"] == 50.0
    assert saved["metrics"][2] == {"epoch": 2, "lr": 0.1 * 3, "test_acc": 50.0}  # per-epoch numbers kept, the repeated recipe not


def test_no_finished_runs_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no finished runs"):
        write_report(tmp_path)


@pytest.mark.parametrize("gpu, expected, absent", [(None, "no GPU", "CUDA 13.0"), ("NVIDIA H200", "CUDA 13.0", "no GPU")])
def test_hardware_line_names_cuda_only_when_a_gpu_ran(gpu, expected, absent, tmp_path):
    """A CUDA build of torch on a machine without a GPU is not "CUDA 13.0" hardware."""
    fake_runs(tmp_path / "runs", {"base": [50.0]})
    (tmp_path / "runs" / "base" / "seed0" / "env.json").write_text(json.dumps({"torch": "x", "cpu": "cpu", "cuda": "13.0", "gpu": gpu}))
    write_report(tmp_path / "runs", tmp_path / "RESULTS.md")
    line = next(line for line in (tmp_path / "RESULTS.md").read_text().splitlines() if line.startswith("- Hardware:"))
    assert expected in line and absent not in line


def test_significance_rows_give_welch_intervals_verdicts_and_seeds_for_the_blog_step(tmp_path):
    from fgvc_ref.report import significance
    from fgvc_ref.stats import pooled_sd, seeds_needed, welch

    accs = {"base": [70.0, 71.0, 72.0], "large_batch_warmup": [70.5, 73.0, 70.0], "trivialaugment": [80.0, 81.0, 82.5],
            "ema": [80.0, 82.0, 84.0], "autoaugment": [60.0, 61.0, 62.0]}
    fake_runs(tmp_path, accs)
    rows = significance(collect(tmp_path)).splitlines()[2:]
    assert [r.split("|")[1].strip() for r in rows] == [
        "large_batch_warmup vs base", "trivialaugment vs large_batch_warmup", "ema vs trivialaugment", "total: ema vs base"]  # variants skipped
    cells = [[c.strip() for c in r.split("|")[1:-1]] for r in rows]
    w = welch(accs["large_batch_warmup"], accs["trivialaugment"])
    assert cells[1][2:6] == [f"{w.diff:+.2f}", f"[{w.low:+.2f}, {w.high:+.2f}]", f"{w.p:.3f}", "yes, at 3 seeds"]
    assert cells[0][5] == "no, at 3 seeds"  # +0.50 within the seeds' noise
    assert cells[1][6:] == ["+3.45", str(seeds_needed(3.45, pooled_sd(accs["large_batch_warmup"], accs["trivialaugment"])))]
    assert cells[2][6:] == ["+2.27", str(seeds_needed(2.27, pooled_sd(accs["trivialaugment"], accs["ema"])))]
    assert cells[3][2] == "+11.00" and cells[3][6] == "+6.71"


def test_significance_needs_two_seeds_a_side_and_says_so_otherwise(tmp_path):
    from fgvc_ref.report import significance

    fake_runs(tmp_path / "one", {"base": [50.0], "ema": [60.0]})
    assert "| ema vs base | 1 | +10.00 | not enough seeds: 2 a side needed |" in significance(collect(tmp_path / "one"))
    fake_runs(tmp_path / "alone", {"ema": [60.0, 61.0]})
    assert significance(collect(tmp_path / "alone")) == ""  # one stage: no step
    fake_runs(tmp_path / "two", {"base": [50.0, 52.0], "ema": [60.0, 61.0]})
    write_report(tmp_path / "two", tmp_path / "two" / "RESULTS.md")
    text = (tmp_path / "two" / "RESULTS.md").read_text()
    assert "| ema vs base | 2 | +9.50 |" in text and "total:" not in text  # one step only: no separate total row
    assert (tmp_path / "two" / "results" / "learning_curves.png").stat().st_size > 0


def test_mean_band_counts_each_run_while_it_ran():
    from fgvc_ref.report import mean_band

    assert mean_band([[1.0, 2.0, 3.0], [3.0, 4.0], [5.0]]) == ([3.0, 3.0, 3.0], [1.0, 2.0, 3.0], [5.0, 4.0, 3.0])
    assert mean_band([]) == ([], [], [])


@pytest.mark.parametrize("seeds", [(1, 3), (3, 1), (1, 1), (2, 2), (3, 2)])
def test_a_step_with_fewer_than_two_seeds_a_side_says_not_enough_seeds_and_the_rest_still_renders(seeds, tmp_path):
    """Both sides of the boundary: Welch's interval needs 2 seeds a side; with fewer, the row says so (it neither crashes
    the report nor disappears), and the other rows keep their intervals."""
    from fgvc_ref.report import significance

    a, b = seeds
    fake_runs(tmp_path, {"base": [50.0 + k for k in range(a)], "trivialaugment": [60.0 + 2 * k for k in range(b)], "ema": [70.0, 71.0, 73.0]})
    rows = {r.split("|")[1].strip(): r for r in significance(collect(tmp_path)).splitlines()[2:]}
    short = rows["trivialaugment vs base"]
    if min(a, b) < 2:
        assert "not enough seeds" in short and "[" not in short
        assert short.split("|")[2].strip() == (f"{a}" if a == b else f"{a} / {b}")
    else:
        assert "not enough seeds" not in short and "[" in short
    assert "[" in rows["ema vs trivialaugment"] or min(b, 3) < 2
    write_report(tmp_path, tmp_path / "RESULTS.md")
    assert "Is each step real?" in (tmp_path / "RESULTS.md").read_text()


def test_reading_notes_give_chance_the_peak_lr_jump_and_still_rising_curves(tmp_path):
    from fgvc_ref.report import reading_notes

    fake_runs(tmp_path, {"cosine": [50.0, 52.0], "label_smoothing": [55.0, 56.0]})
    for stage, lr in (("cosine", 0.1), ("label_smoothing", 0.4)):
        for seed in (0, 1):
            run = tmp_path / stage / f"seed{seed}"
            recipe = json.loads((run / "recipe.json").read_text())
            (run / "recipe.json").write_text(json.dumps({**recipe, "lr": lr, "lr_scale": 0.5, "batch_size": 128, "num_classes": 4}))
            (run / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "test_acc": 40.0 + (e if stage == "cosine" else -e)}) + "\n"
                                                       for e in range(6)))
    notes = reading_notes(collect(tmp_path))
    assert notes[0] == "Chance is 25.0% (4 classes)."
    assert "cosine 0.05 (batch 128); label_smoothing 0.2 (batch 128)" in notes[1] and "label_smoothing runs at 4x the LR of cosine" in notes[1]
    assert "cosine +3.0 (rising), label_smoothing -3.0." in notes[2]


def fake_open_set_evaluation(run, auroc: float, ece: float, at_bound: bool = False):
    """An evaluation.json as evaluate --open-set writes it, with every AUROC = ``auroc`` and ECE = ``ece``."""
    per_score = {"auroc": auroc, "auroc_easy": auroc, "auroc_hard": None, "fpr95": 1 - auroc, "oscr": auroc - 0.1}
    evaluation = {"top1": 70.0, "open_set": {s: per_score for s in ("msp", "msp_ts", "max_logit", "energy")},
                  "selective": {s: {"aurc": 0.1, "accuracy_at_90": 0.8} for s in ("msp", "msp_ts", "max_logit", "energy")},
                  "calibration": {"nll": 1.0, "ece": ece, "temperature": 1.5, "nll_ts": 0.9, "ece_ts": ece / 2, "bins": 15, "reliability": [],
                                  "temperature_at_bound": at_bound},
                  "rule": {"test_known_kept": 0.95, "test_unknown_accepted": 0.5, "reject_rule": "text"},
                  "open_set_images": {"validation": 6, "known": 60, "unknown_easy": 20, "unknown_hard": 0},
                  "open_set_split": {"split": "s.json", "sha256": "0" * 64, "known": ["a", "b"], "unknown_easy": ["c"], "unknown_hard": [],
                                     "content": {}, "unused": []}}
    (run / "evaluation-raw").mkdir()
    (run / "evaluation-raw" / "evaluation.json").write_text(json.dumps(evaluation))


def test_the_open_set_tables_give_mean_sd_per_stage_and_welch_against_the_previous_stage(tmp_path):
    from fgvc_ref.report import open_set_tables

    fake_runs(tmp_path / "runs", {"base": [70.0, 71.0, 72.0], "cosine": [75.0, 75.0, 76.0], "ema": [75.0, 76.0, 77.0]})
    for seed, (a, b, c) in enumerate([(0.80, 0.90, 0.90), (0.82, 0.91, 0.90), (0.84, 0.92, 0.93)]):
        fake_open_set_evaluation(tmp_path / "runs" / "base" / f"seed{seed}", a, 0.10)
        fake_open_set_evaluation(tmp_path / "runs" / "cosine" / f"seed{seed}", b, 0.05 + 0.01 * seed, at_bound=seed == 1)
        fake_open_set_evaluation(tmp_path / "runs" / "ema" / f"seed{seed}", c, 0.05)
    stages = collect(tmp_path / "runs")
    text = open_set_tables(stages)
    rejection, calibration, steps = text.split("\n\n")[0], text.split("\n\n")[1], text.split("\n\n")[-1]
    assert "| 0 | base | 3 | 70.0 +- 0.0 | 82.0 +- 2.0 | 82.0 +- 2.0 | 82.0 +- 2.0 | 82.0 +- 2.0 | 82.0 +- 2.0 | n/a | 18.0 +- 2.0 | 72.0 +- 2.0 |" in rejection
    assert "| 3 | cosine | 3 |" in calibration and "| 6.0 +- 1.0 |" in calibration and "| 1.500 +- 0.000 |" in calibration
    step = next(line for line in steps.splitlines() if line.startswith("| cosine vs base | 3 |"))
    assert "+9.0 (p " in step and ", yes)" in step.split("|")[3]  # AUROC up 9 points at a spread of 1-2: distinguishable
    assert step.split("|")[4].strip() == "n/a"  # no hard unknowns: not measured
    last = next(line for line in steps.splitlines() if line.startswith("| ema vs cosine | 3 |"))  # against the previous stage
    assert last.split("|")[3].strip().startswith("+0.0 (p ")
    write_report(tmp_path / "runs", tmp_path / "RESULTS.md", section="open")
    first = (tmp_path / "RESULTS.md").read_text()
    assert "### Does the model know when it does not know?" in first and text in first
    assert "T ended at its search bound (0.05 or 20) for cosine seed 1:" in first
    write_report(tmp_path / "results" / "open_runs.json", tmp_path / "RESULTS.md", section="open")  # again, from the saved JSON alone
    assert (tmp_path / "RESULTS.md").read_text() == first


def test_runs_without_an_open_set_evaluation_render_as_before(tmp_path):
    from fgvc_ref.report import open_set_tables, render

    fake_runs(tmp_path, {"base": [70.0, 71.0], "ema": [72.0, 74.0]})
    stages = collect(tmp_path)
    assert open_set_tables(stages) == "" and "Does the model know" not in render(stages, command=None, title="t", plots=[])


def test_the_latency_table_shows_each_percentile_in_milliseconds_and_each_p50_over_eagers():
    """Rows as bench writes them (p50_ms, p90_ms, p99_ms): the cells are those numbers in ms, and the share is the
    format's p50 over PyTorch eager's in the same setting, written out here."""
    from fgvc_ref.report import latency_table

    def row(fmt, p50, p90, p99, size=3_500_000):
        timing = lambda batch, threads, k: {"batch": batch, "threads": threads, "runs": 100, "p50_ms": p50 * k, "p90_ms": p90 * k, "p99_ms": p99 * k}
        return {"format": fmt, "model": "resnet50", "image_size": 224, "bytes": size, "top1": None,
                "timings": [timing(1, 1, 1), timing(8, 2, 4)]}

    lines = latency_table([row("PyTorch eager fp32", 50.5, 90.1, 99.01), row("ONNX Runtime int8", 25.25, 30.0, 40.5, 1_000_000)])
    assert lines[2] == "| resnet50 at 224 px | PyTorch eager fp32 | 3.50 | not measured | 50.50 / 90.10 / 99.01 (1.00) | 202.00 / 360.40 / 396.04 (1.00) |"
    assert lines[3] == "| resnet50 at 224 px | ONNX Runtime int8 | 1.00 | not measured | 25.25 / 30.00 / 40.50 (0.50) | 101.00 / 120.00 / 162.00 (0.50) |"
    assert "p50 / p90 / p99 ms" in lines[0] and "over 100 timed calls" in lines[-1]
