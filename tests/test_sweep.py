"""fgvc_ref.sweep: a study of real (tiny) trainings on the synthetic set; grids, samplers, workers, deaths, pruning, inputs.

Every training here is tiny_cnn at 16 px on the 4-class synthetic cache (24 train images, 4 of them carved out for
validation), so a trial takes about a second; several tests start the workers as the user would, as processes.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("optuna")

from fgvc_ref.cli import main  # noqa: E402
from fgvc_ref.sweep import parse_param, run_name, run_sweep  # noqa: E402
from runs import ROOT, TINY, children  # noqa: E402

SETS = [*TINY, "path=fast"]
FAST = dict(stage="cosine", epochs=2, sets=SETS, threads=1, heartbeat=1)


def trials_of(out: Path) -> list[dict]:
    return json.loads((out / "trials.json").read_text())["trials"]


def cli(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "fgvc_ref", "sweep", "--stage", "cosine", "--out", str(out), "--epochs", "2", "--heartbeat", "1",
            *[a for s in SETS for a in ("--set", s)], *extra]


def env1() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


# --- a grid ---------------------------------------------------------------------------------------


def test_a_2x2_grid_runs_its_4_points_once_and_its_best_is_the_best_of_4_separate_trainings(cache, tmp_path):
    from fgvc_ref.data.sources import load_train
    from fgvc_ref.recipe import STAGES, apply_overrides, scale_epochs
    from fgvc_ref.train import train

    out = tmp_path / "s"
    counts = run_sweep(params=["lr_scale=0.5,1", "label_smoothing=0,0.1"], data=str(cache), out=out, seeds=2, **FAST, say=lambda line: None)
    rows = trials_of(out)
    assert counts == {"complete": 4} and [r["state"] for r in rows] == ["COMPLETE"] * 4
    points = [(r["params"]["lr_scale"], r["params"]["label_smoothing"]) for r in rows]
    assert sorted(points) == [(0.5, 0.0), (0.5, 0.1), (1.0, 0.0), (1.0, 0.1)]
    separate = {}  # the same trainings, one train call each, as a user would run them by hand
    for lr_scale, smoothing in points:
        recipe = apply_overrides(scale_epochs(STAGES["cosine"], 2), [*SETS, "val_fraction=0.1", f"lr_scale={lr_scale}", f"label_smoothing={smoothing}"])
        separate[(lr_scale, smoothing)] = sum(train(recipe, load_train(cache), tmp_path / f"by-hand-{lr_scale}-{smoothing}-{seed}", seed=seed,
                                                    threads=1, progress=False)["last_val_acc"] for seed in (0, 1)) / 2
    assert {p: r["value"] for p, r in zip(points, rows)} == separate
    doc = json.loads((out / "trials.json").read_text())
    assert doc["best"]["value"] == max(separate.values())
    assert all((out / run / "final.pt").is_file() for r in rows for run in r["runs"])  # each point's runs, named by their hash
    for r in rows:  # the pruner saw every epoch of every seed, seed k's epoch e at step k * epochs + e
        logged = [json.loads(line)["val_acc"] for run in r["runs"] for line in (out / run / "metrics.jsonl").read_text().splitlines()]
        assert r["intermediate"] == {str(step): v for step, v in enumerate(logged)} and len(logged) == 4


def test_two_workers_started_at_once_finish_a_2x2_grid_with_every_point_run_once(cache, tmp_path):
    out = tmp_path / "s"
    args = cli(out, "--cache", str(cache), "--param", "lr_scale=0.5,1", "--param", "label_smoothing=0,0.1")
    workers = [subprocess.Popen(args, cwd=tmp_path, env=env1(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [o[1][-2000:] for o in outputs]
    rows = trials_of(out)
    assert len(rows) == 4 and {r["state"] for r in rows} == {"COMPLETE"}
    assert len({json.dumps(r["params"], sort_keys=True) for r in rows}) == 4  # four distinct points, none twice
    ran = [line for _, err in outputs for line in err.splitlines() if line.startswith("trial ") and ": {" in line]
    assert len(ran) == 4 and all(sum(f"trial {n}:" in line for line in ran) == 1 for n in range(4))  # each taken by one worker
    assert all(err.count("trial ") >= 1 for _, err in outputs), "one worker did all the work"


@pytest.mark.slow
def test_a_worker_killed_in_a_trial_is_failed_retried_by_the_other_and_resumes_to_the_uninterrupted_weights(cache, tmp_path):
    """SIGKILL during trial 0 (after its run published a checkpoint): its heartbeat stops, the other worker fails it once
    the grace (6 heartbeats) has passed, re-enqueues the same point, takes it, resumes the run from its checkpoint, and
    the run ends with the weights of the same training uninterrupted."""
    from fgvc_ref.checkpoint import list_checkpoints
    from fgvc_ref.data.sources import load_train
    from fgvc_ref.recipe import STAGES, apply_overrides, scale_epochs
    from fgvc_ref.train import train
    from runs import assert_same_final_state

    out = tmp_path / "s"
    args = [*cli(out, "--cache", str(cache), "--param", "lr_scale=0.5,1"), "--epochs", "12"]
    first = subprocess.Popen(args, cwd=tmp_path, env=env1(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        runs = list((out / "runs").glob("*")) if (out / "runs").exists() else []
        if any(int(p.name[12:17]) >= 3 for r in runs for p in list_checkpoints(r)):
            break
        time.sleep(0.02)
    assert first.poll() is None, "the first worker finished before it could be killed"
    first.send_signal(signal.SIGKILL)
    first.wait()
    (killed_run,) = [r for r in (out / "runs").glob("*") if list_checkpoints(r)]
    second = subprocess.run(args, cwd=tmp_path, env=env1(), capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    rows = {r["number"]: r for r in trials_of(out)}
    assert rows[0]["state"] == "FAIL"
    retry = next(r for r in rows.values() if r["retry_of"] == 0)
    assert retry["state"] == "COMPLETE" and retry["params"] == rows[0]["params"] and retry["runs"] == rows[0]["runs"]
    assert f"resuming {killed_run}" in second.stderr
    recipe = apply_overrides(scale_epochs(STAGES["cosine"], 12), [*SETS, "val_fraction=0.1", f"lr_scale={rows[0]['params']['lr_scale']}"])
    assert killed_run.name == run_name(recipe, 0, load_train(cache).fingerprint)
    train(recipe, load_train(cache), tmp_path / "uninterrupted", seed=0, threads=1, progress=False)
    assert_same_final_state(tmp_path / "uninterrupted", killed_run)


# --- pruning ----------------------------------------------------------------------------------------


def test_a_diverging_lr_is_pruned_at_once_and_leaves_no_process(cache, tmp_path):
    """lr_scale 1e20 makes the loss non-finite in the second epoch: the trial is pruned (not failed), its run stopped there, and
    the reference path's DataLoader workers are gone; the sane point completes."""
    out = tmp_path / "s"
    before = children()
    counts = run_sweep(params=["lr_scale=1,1e20"], data=str(cache), out=out, seeds=1, **{**FAST, "epochs": 3,
                       "sets": [*TINY, "path=reference", "workers=2"]}, say=lambda line: None)
    rows = {r["params"]["lr_scale"]: r for r in trials_of(out)}
    assert counts == {"complete": 1, "pruned": 1}
    assert rows[1e20]["state"] == "PRUNED" and "non-finite loss" in rows[1e20]["pruned_because"]
    assert rows[1.0]["state"] == "COMPLETE"
    assert children() <= before


def test_a_pruned_trial_stops_after_the_epoch_the_pruner_decides_at(cache, tmp_path, monkeypatch):
    """The pruner sees each epoch's validation top-1 at step k * epochs + epoch; one that prunes at step 1 stops the
    trial's training right after its second epoch, and the trial is PRUNED with the reason."""
    import optuna

    import fgvc_ref.sweep as S

    class AtStep1(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return max(trial.intermediate_values, default=-1) >= 1

    import fgvc_ref.train as trainer

    monkeypatch.setattr(S, "make_pruner", lambda kind, epochs: AtStep1())
    calls, real = [], trainer.evaluate  # each epoch evaluates the raw model, then the EMA, on validation: script them apart

    def scripted(model, *args, **kw):
        calls.append(model)
        return {**real(model, *args, **kw), "acc": 10.0 * len(calls) + (5.0 if len(calls) % 2 == 0 else 0.0)}

    monkeypatch.setattr(trainer, "evaluate", scripted)
    out = tmp_path / "s"
    run_sweep(params=["lr_scale=1"], data=str(cache), out=out, seeds=2, **{**FAST, "stage": "ema", "epochs": 4}, say=lambda line: None)
    (row,) = trials_of(out)
    assert row["state"] == "PRUNED" and row["intermediate"].keys() == {"0", "1"} and "seed 0, epoch 2" in row["pruned_because"]
    (run,) = row["runs"]
    logged = [json.loads(line) for line in (out / run / "metrics.jsonl").read_text().splitlines()]
    assert len(logged) == 2 and not (out / run / "final.pt").exists()
    assert list(row["intermediate"].values()) == [r["ema_val_acc"] for r in logged]  # the weights the run keeps: the EMA's


def test_the_trial_cap_counts_pruned_trials_as_finished(cache, tmp_path, monkeypatch):
    """--trials 3 with a pruner that prunes every trial at its first epoch: three trials, all pruned, then the worker
    stops (were only complete trials counted, it would start trials for ever)."""
    import optuna

    import fgvc_ref.sweep as S

    class Always(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    def say(line):
        if line.startswith("trial ") and int(line.split()[1].rstrip(":,")) > 5:
            raise AssertionError("more trials than the cap")

    monkeypatch.setattr(S, "make_pruner", lambda kind, epochs: Always())
    counts = run_sweep(params=["lr_scale=0.1:2"], data=str(cache), out=tmp_path / "s", seeds=1, sampler="random", trials=3,
                       **{**FAST, "epochs": 2}, say=say)
    assert counts == {"pruned": 3}


# --- samplers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["qmc", "tpe", "random"])
def test_the_same_seeded_sampler_proposes_the_same_trials_twice_and_another_seed_others(sampler, cache, tmp_path):
    kw = dict(params=["lr_scale=0.1:2:log", "label_smoothing=0:0.2"], data=str(cache), seeds=1, sampler=sampler, trials=3,
              **{**FAST, "epochs": 1}, say=lambda line: None)
    proposed = []
    for k, seed in enumerate([7, 7, 8]):
        run_sweep(out=tmp_path / f"s{k}", seed=seed, **kw)
        proposed.append([r["params"] for r in trials_of(tmp_path / f"s{k}")])
    assert len(proposed[0]) == 3 and proposed[0] == proposed[1] and proposed[0] != proposed[2]
    assert all(0.1 <= p["lr_scale"] <= 2 and 0 <= p["label_smoothing"] <= 0.2 for p in proposed[0])


def test_running_the_command_again_continues_the_study_without_redoing_a_trial(cache, tmp_path):
    kw = dict(params=["lr_scale=0.1:2"], data=str(cache), out=tmp_path / "s", seeds=1, sampler="random", **{**FAST, "epochs": 1},
              say=lambda line: None)
    run_sweep(trials=2, **kw)
    first = trials_of(tmp_path / "s")
    run_sweep(trials=3, **kw)
    rows = trials_of(tmp_path / "s")
    assert rows[:2] == first and len(rows) == 3 and rows[2]["params"] not in [r["params"] for r in first]


# --- honesty: the test split is never read ----------------------------------------------------------


def test_a_cache_without_its_test_split_sweeps(cache, tmp_path):
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    for f in copy.glob("test.*"):
        f.unlink()
    counts = run_sweep(params=["lr_scale=0.5,1"], data=str(copy), out=tmp_path / "s", seeds=1, **FAST, say=lambda line: None)
    assert counts == {"complete": 2}
    for r in trials_of(tmp_path / "s"):
        rows = [json.loads(line) for line in (tmp_path / "s" / r["runs"][0] / "metrics.jsonl").read_text().splitlines()]
        assert all("val_acc" in row and "test_acc" not in row for row in rows)


# --- bad input: one line, before anything is trained or written -----------------------------------------


@pytest.mark.parametrize("extra, message", [
    (["--param", "lr_scal=0.1,0.2"], "unknown recipe field 'lr_scal'"),
    (["--param", "label_smoothing=0.1,1.5"], "--param 'label_smoothing=0.1,1.5': 1.5 is not allowed: Recipe.label_smoothing has an invalid value 1.5"),
    (["--param", "lr_scale="], "an empty grid"),
    (["--param", "policy=0:1"], "a range is lo:hi or lo:hi:log, for a numeric field (policy is str)"),
    (["--param", "lr_scale=0.1:2", "--sampler", "grid"], "the grid sampler takes lists of values"),
    (["--param", "lr_scale=0.1:2", "--sampler", "tpe"], "--sampler tpe needs --trials N"),
    (["--param", "lr_scale=0.1,0.2", "--storage", "postgresql+psycopg2://me:secret@127.0.0.1:1/nowhere"],
     "--storage postgresql+psycopg2://me:***@127.0.0.1:1/nowhere: cannot open it"),
    (["--param", "lr_scale=0.1,0.2", "--set", "val_fraction=0"], "val_fraction=0 leaves none"),
])
def test_bad_input_is_one_line_before_any_training_and_writes_nothing(extra, message, cache, tmp_path, capsys):
    out = tmp_path / "s"
    args = ["sweep", "--stage", "cosine", "--out", str(out), "--cache", str(cache), "--epochs", "2", *[a for s in SETS for a in ("--set", s)], *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "secret" not in err, err
    assert not out.exists()


def test_a_study_made_with_another_search_space_is_refused_before_any_training(cache, tmp_path, capsys):
    out = tmp_path / "s"
    base = ["sweep", "--stage", "cosine", "--out", str(out), "--cache", str(cache), "--epochs", "2", *[a for s in SETS for a in ("--set", s)]]
    assert main([*base, "--param", "lr_scale=0.5,1", "--create-only"]) == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    journal = (out / "study.journal").read_bytes()
    assert main([*base, "--param", "lr_scale=0.5,2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "study 'cosine'" in err and "was created with another definition (params: the study has" in err
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before and (out / "study.journal").read_bytes() == journal
    assert not (out / "runs").exists()


def test_param_values_are_parsed_by_the_fields_type():
    from fgvc_ref.recipe import STAGES

    assert parse_param("batch_size=16,32", STAGES["ema"]).values == (16, 32)
    assert parse_param("ema=true,false", STAGES["ema"]).values == (True, False)
    p = parse_param("lr_scale=0.05:0.5:log", STAGES["ema"])
    assert (p.low, p.high, p.log) == (0.05, 0.5, True)
    assert parse_param("warmup_epochs=1:4", STAGES["ema"]).low == 1 and isinstance(parse_param("warmup_epochs=1:4", STAGES["ema"]).low, int)
    with pytest.raises(ValueError, match="lo > 0 on a log scale"):
        parse_param("label_smoothing=0:0.2:log", STAGES["ema"])


# --- after the search ----------------------------------------------------------------------------


def test_finalize_trains_the_choice_and_the_default_on_all_of_train_compares_them_on_test_and_train_takes_the_choice(cache, tmp_path):
    out = tmp_path / "s"
    assert main(["sweep", "--stage", "cosine", "--out", str(out), "--cache", str(cache), "--epochs", "2", "--threads", "1",
                 *[a for s in SETS for a in ("--set", s)], "--param", "lr_scale=0.2,0.5"]) == 0
    assert main(["sweep", "--finalize", "--out", str(out), "--cache", str(cache), "--seeds", "2", "--threads", "1"]) == 0
    final = json.loads((out / "final.json").read_text())
    best = json.loads((out / "trials.json").read_text())["best"]
    assert final["chosen_recipe"]["lr_scale"] == best["params"]["lr_scale"] and final["default_recipe"]["lr_scale"] == 1.0
    assert len(final["test_top1"]["chosen"]) == len(final["test_top1"]["default"]) == 2 and final["gain"] is not None
    for name in ("default", "chosen"):
        for seed in range(2):
            run = out / "final" / name / f"seed{seed}"
            recipe = json.loads((run / "recipe.json").read_text())
            assert recipe["val_fraction"] == 0 and recipe["patience"] == 0  # all of train, no selection
            assert not any("test_acc" in line for line in (run / "metrics.jsonl").read_text().splitlines())  # test: once, after
            evaluation = json.loads((run / "test" / "evaluation.json").read_text())
            assert evaluation["top1"] == final["test_top1"][name][seed]
    report = (out / "report.md").read_text()
    assert "Chosen minus default" in report and "| trial | state |" in report and (out / "report" / "history.png").is_file()
    assert main(["train", "--recipe", str(out / "chosen_recipe.json"), "--cache", str(cache), "--out", str(tmp_path / "again"),
                 "--quiet", "--threads", "1"]) == 0
    assert json.loads((tmp_path / "again" / "recipe.json").read_text())["lr_scale"] == best["params"]["lr_scale"]
