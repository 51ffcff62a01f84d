"""fgvc_ref.bench and the bench CLI: the harness measures both sides and reports ratios."""

import json

import pytest

from fgvc_ref import bench
from fgvc_ref.cli import main


def test_time_call_runs_warmup_then_repeats():
    calls = []
    times = bench.time_call(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and len(times) == 3 and all(t >= 0 for t in times)


def test_summary_is_median_min_max():
    assert bench.summary([3.0, 1.0, 2.0]) == {"median_s": 2.0, "min_s": 1.0, "max_s": 3.0, "repeats": 3}


@pytest.mark.slow
def test_bench_cli_writes_ratios_for_optim_and_ema(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--only", "optim,ema", "--repeats", "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert {r["section"] for r in data["rows"]} == {"optim", "ema"}
    for row in data["rows"]:
        assert row["ratio_vs_twin"] == pytest.approx(row["ours"]["median_s"] / row["twin_timing"]["median_s"])
        assert row["ours"]["repeats"] == 2
    assert data["environment"]["torch"]
    assert "ratio" in capsys.readouterr().out


def test_unknown_section_is_a_clear_error(capsys):
    assert main(["bench", "--only", "optim,nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "optim" in err


@pytest.mark.slow
def test_bench_train_times_both_paths_the_model_only_step_and_evaluation():
    (row,) = bench.bench_train(repeats=2, model="tiny_cnn", image_size=16, batch=8, images=32, epochs=2)
    assert (row["model"], row["image_size"], row["batch"]) == ("tiny_cnn", 16, 8)
    for path in ("fast", "reference"):
        v = row[f"{path}_img_per_s"]
        assert v["epochs"] == 1 and 0 < v["min"] <= v["median"] <= v["max"]  # epoch 0 (warm-up) is left out
        assert row[f"{path}_vs_model_only"] == pytest.approx(v["median"] / row["model_only_img_per_s"])
    assert row["eval_img_per_s"] == pytest.approx(8 / row["eval_timing"]["median_s"])


def test_projection_counts_every_stage_seed_epoch_and_the_second_ema_evaluation():
    from fgvc_ref.report import projected_hours

    # 8,144 img/s training and 8,041 img/s evaluation: 1 s per stage-epoch of training, 1 s per evaluation;
    # 7 trainings + 8 evaluations (the EMA stage evaluates twice) = 15 s per epoch, x 600 epochs x 3 seeds.
    assert projected_hours(8144, 8041) == pytest.approx(15 * 600 * 3 / 3600)
    assert projected_hours(8144, 8041, seeds=1, epochs=1) == pytest.approx(15 / 3600)


def test_projection_is_rendered_only_for_the_real_recipes_model_and_size(tmp_path):
    from fgvc_ref.report import render_benchmarks

    def train_row(model, size):
        rate = {"median": 8144.0, "min": 8000.0, "max": 8200.0, "epochs": 2}
        return {"section": "train", "name": f"ema stage, {model} at {size} px, batch 128", "model": model, "image_size": size, "batch": 128,
                "model_only_img_per_s": 9000.0, "fast_img_per_s": rate, "reference_img_per_s": rate, "fast_vs_model_only": 0.9,
                "reference_vs_model_only": 0.9, "eval_img_per_s": 8041.0}

    env = {"cpu": "x", "cpu_threads": 2, "gpu": None, "torch": "t", "torchvision": "v", "python": "p", "date": "d"}
    for model, size, shown in (("resnet50", 224, True), ("resnet18", 32, False)):
        path = tmp_path / f"{model}.json"
        path.write_text(json.dumps({"command": "c", "environment": env, "rows": [train_row(model, size)]}))
        text = render_benchmarks([path], base=tmp_path)
        assert ("Projection, not a measurement" in text) is shown
        assert ("about 8 hours" in text) is shown  # 7.5 h, from test_projection_counts_every_stage_seed_epoch...


def test_gpu_script_is_valid_bash_and_asks_only_for_known_sections_and_train_settings():
    import inspect
    import re
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "gpu.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    sections = re.search(r"--only (\S+)", text)[1].split(",")
    assert set(sections) <= set(bench.SECTIONS) and "train" in sections
    full, smoke = (dict(item.split("=") for item in value.split(",")) for value in re.findall(r'train_config="([^"]+)"', text))
    for config in (full, smoke):
        assert set(config) <= set(inspect.signature(bench.bench_train).parameters)
    assert (full["model"], full["image_size"], full["batch"], full["images"], full["stage"], full["compile"]) == ("resnet50", "224", "128", "8144", "ema", "1")


def test_latency_alternates_the_formats_round_by_round_and_reports_percentiles(tmp_path, monkeypatch):
    """Two fake models whose calls are logged: the formats interleave in rounds (machine noise hits both alike), each
    gets `repeats` timed calls at every batch and thread setting, and p50 <= p90 <= p99."""
    import torch

    from fgvc_ref.model import build_model

    log = []
    for name in ("a", "b"):
        model = build_model("tiny_cnn", 3, "none")
        torch.save(model.state_dict(), tmp_path / f"{name}.pt")
        (tmp_path / f"{name}.json").write_text(json.dumps({"format": "fgvc_ref-export", "version": 1, "model": "tiny_cnn", "num_classes": 3,
                                                          "classes": ["x", "y", "z"], "preprocessing": {"image_size": 8}, "data": None}))
    real = bench._eager
    monkeypatch.setattr(bench, "_eager", lambda net, x, threads: (log.append((id(net), len(x), threads)), real(net, x, threads))[1])
    rows = bench.bench_latency(repeats=20, models=[str(tmp_path / "a.pt"), str(tmp_path / "b.pt")], batches=(1, 2), warmup=1)
    assert [r["file"] for r in rows] == [str(tmp_path / "a.pt"), str(tmp_path / "b.pt")]
    cores = len(__import__("os").sched_getaffinity(0))
    for r in rows:
        assert {(t["batch"], t["threads"]) for t in r["timings"]} == {(b, t) for b in (1, 2) for t in {1, cores}}
        for t in r["timings"]:
            assert t["runs"] == 20 and t["p50_ms"] <= t["p90_ms"] <= t["p99_ms"]
    timed = [n for n, b, t in log if (b, t) == (1, 1)][2:]  # after each model's warm-up call
    switches = sum(1 for p, q in zip(timed, timed[1:]) if p != q)
    assert switches >= 9  # 10 rounds of 2 calls per model: the models alternate round by round


def test_latency_percentiles_are_those_of_the_call_times_in_milliseconds(tmp_path, monkeypatch):
    """A fake clock makes the timed calls of model a take 1, 2, ..., 100 ms (shuffled) in every setting, and model b's
    twice that: p50 / p90 / p99 are then the linear-interpolation percentiles of 1..100 ms, written out here
    (1 + 0.99 q: 50.5, 90.1, 99.01), and twice those for b; not seconds, microseconds, nor percentiles read as fractions."""
    import types

    import numpy as np
    import torch

    from fgvc_ref.model import build_model

    nets = {}
    for name in ("a", "b"):
        torch.save(build_model("tiny_cnn", 3, "none").state_dict(), tmp_path / f"{name}.pt")
        (tmp_path / f"{name}.json").write_text(json.dumps({"format": "fgvc_ref-export", "version": 1, "model": "tiny_cnn", "num_classes": 3,
                                                          "classes": ["x", "y", "z"], "preprocessing": {"image_size": 8}, "data": None}))
    order = np.random.default_rng(0).permutation(100) + 1  # ms, shuffled
    clock, calls = [1000.0], {}

    def fake(net, x, threads):
        k = calls.setdefault((id(net), len(x), threads), [0])
        scale = nets.setdefault(id(net), len(nets) + 1)  # a: 1, b: 2 (a is called first)
        if k[0] >= 1:  # after the one warm-up call
            clock[0] += scale * order[(k[0] - 1) % 100] / 1000
        k[0] += 1
    monkeypatch.setattr(bench, "_eager", fake)
    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    rows = bench.bench_latency(repeats=100, models=[str(tmp_path / "a.pt"), str(tmp_path / "b.pt")], batches=(1, 2), warmup=1)
    for row, scale in zip(rows, (1, 2)):
        for t in row["timings"]:
            assert t["runs"] == 100
            assert (t["p50_ms"], t["p90_ms"], t["p99_ms"]) == pytest.approx((50.5 * scale, 90.1 * scale, 99.01 * scale), rel=1e-9)
