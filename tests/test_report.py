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
