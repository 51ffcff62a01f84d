"""fgvc_ref.train: every stage end to end, exact resume (SIGKILL, Ctrl-C), NaN stop, DDP, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from fgvc_ref.checkpoint import list_checkpoints, load_checkpoint
from fgvc_ref.cli import main
from fgvc_ref.data.cache import prepare
from fgvc_ref.data.sources import load_data
from fgvc_ref.data.stanford_cars import load_stanford_cars
from fgvc_ref.data.synthetic import make_fake_stanford_cars
from fgvc_ref.recipe import STAGES, apply_overrides, scale_epochs
from fgvc_ref.train import NonFiniteLoss, train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model=tiny_cnn", "weights=none", "image_size=16", "patience=0", "eval_batch_size=64"]
TIMING = {"img_per_s", "epoch_s", "wall_time"}


def make_cache(root: Path, seed: int = 0) -> Path:
    fake = make_fake_stanford_cars(root / "raw", "devkit", classes=4, per_class=6, seed=seed, image_size=(48, 36))
    for split, size in (("train", 20), ("test", 16)):
        s = load_stanford_cars(fake.root, split, expected=None)
        prepare(s.records, root / "cache", split=split, classes=s.classes, size=size, workers=1, progress=False)
    return root / "cache"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return make_cache(tmp_path_factory.mktemp("data"))


def tiny(stage: str, epochs: int, *extra: str):
    return apply_overrides(scale_epochs(STAGES[stage], epochs), [*TINY, *extra])


def history(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in (run / "metrics.jsonl").read_text().splitlines()]


def final_state(run: Path) -> dict:
    state, _ = load_checkpoint(run)
    return state


def assert_same_final_state(a: Path, b: Path) -> None:
    sa, sb = final_state(a), final_state(b)
    for key in ("model",):
        assert sa[key].keys() == sb[key].keys()
        for k in sa[key]:
            assert torch.equal(sa[key][k], sb[key][k]), k
    for p, q in zip(sa["optimizer"]["state"].values(), sb["optimizer"]["state"].values()):
        assert torch.equal(p["momentum_buffer"], q["momentum_buffer"])
    if sa["ema"] is not None:
        assert sa["ema"]["num_updates"] == sb["ema"]["num_updates"]
        for k in sa["ema"]["module"]:
            assert torch.equal(sa["ema"]["module"][k], sb["ema"]["module"][k]), k
    assert history(a) == history(b)


# --- every stage, end to end -------------------------------------------------------------------


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_stage_trains_and_logs_its_recipe(stage, cache, tmp_path):
    """LR per epoch = the stage's schedule; EMA decay = torchvision's adjustment; policy as the stage says."""
    recipe = tiny(stage, 3, "path=fast")
    summary = train(recipe, load_data(cache), tmp_path, seed=0, device="cpu", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows] == recipe.lrs()
    assert all(r["policy"] == STAGES[stage].policy and r["recipe"] == json.loads(json.dumps(vars(recipe))) for r in rows)
    assert summary["reported"] == ("ema" if STAGES[stage].ema else "raw") and summary["epochs_run"] == 3
    if recipe.ema:
        assert all(r["ema_decay"] == recipe.ema_update_decay() and "ema_test_acc" in r for r in rows)
    run_recipe = json.loads((tmp_path / "recipe.json").read_text())
    assert run_recipe["name"] == stage and run_recipe["path"] == "fast"
    env = json.loads((tmp_path / "env.json").read_text())
    assert {"torch", "torchvision", "cuda", "cudnn", "gpu", "tf32_matmul", "deterministic"} <= set(env)


@pytest.mark.parametrize("workers", [0, 2])
def test_reference_path_runs_with_and_without_workers(workers, cache, tmp_path):
    recipe = tiny("random_erasing", 2, "path=reference", f"workers={workers}")
    summary = train(recipe, load_data(cache), tmp_path, seed=1, device="cpu", progress=False)
    assert summary["path"] == "reference" and summary["epochs_run"] == 2


def test_mixup_cutmix_variant_and_validation_split_run(cache, tmp_path):
    recipe = apply_overrides(tiny("ema", 2, "path=fast"), ["mixup_alpha=0.2", "cutmix_alpha=1.0", "val_fraction=0.25"])
    train(recipe, load_data(cache), tmp_path, seed=0, device="cpu", progress=False)
    rows = history(tmp_path)
    assert all("val_acc" in r and "ema_val_acc" in r for r in rows)


# --- exact resume -----------------------------------------------------------------------------


def test_resume_at_epoch_boundaries_is_exact(cache, tmp_path):
    recipe = tiny("ema", 5, "path=fast", "batch_size=8", "ema_steps=2")
    data = load_data(cache)
    train(recipe, data, tmp_path / "a", seed=3, device="cpu", progress=False)
    assert train(recipe, data, tmp_path / "b", seed=3, device="cpu", progress=False, stop_after_epochs=2)["interrupted"]
    train(recipe, data, tmp_path / "b", seed=3, device="cpu", progress=False)
    assert_same_final_state(tmp_path / "a", tmp_path / "b")


def _cli(cache, out, *extra):
    args = [sys.executable, "-m", "fgvc_ref", "train", "--stage", "ema", "--cache", str(cache), "--seed", "5", "--out", str(out),
            "--epochs", "40", "--quiet", "--threads", "1", *[a for s in [*TINY, "path=fast", "batch_size=4", "ema_steps=2"] for a in ("--set", s)], *extra]
    return args


def _run_until_checkpoint_then(signum, cache, out, min_epoch=2):
    proc = subprocess.Popen(_cli(cache, out), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(int(p.name[12:17]) >= min_epoch for p in list_checkpoints(out)) if out.exists() else False:
            proc.send_signal(signum)
            break
        time.sleep(0.005)
    proc.wait(timeout=120)
    assert not (out / "summary.json").exists(), "the run finished before it could be interrupted"
    return proc.returncode


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(cache, tmp_path):
    assert subprocess.run(_cli(cache, tmp_path / "a"), cwd=ROOT, capture_output=True).returncode == 0
    assert _run_until_checkpoint_then(signal.SIGKILL, cache, tmp_path / "b") == -signal.SIGKILL
    assert subprocess.run(_cli(cache, tmp_path / "b"), cwd=ROOT, capture_output=True).returncode == 0
    assert_same_final_state(tmp_path / "a", tmp_path / "b")


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_save_exit_130_143_and_resume_exactly(signum, code, cache, tmp_path):
    assert subprocess.run(_cli(cache, tmp_path / "a"), cwd=ROOT, capture_output=True).returncode == 0
    assert _run_until_checkpoint_then(signum, cache, tmp_path / "b") == code
    assert subprocess.run(_cli(cache, tmp_path / "b"), cwd=ROOT, capture_output=True).returncode == 0
    assert_same_final_state(tmp_path / "a", tmp_path / "b")


# --- failures ---------------------------------------------------------------------------------


def test_non_finite_loss_stops_with_epoch_step_and_seed_and_keeps_the_last_checkpoint(cache, tmp_path, monkeypatch):
    import fgvc_ref.train as T

    real, calls = T.train_step, {"n": 0}

    def poisoned(*args, **kw):
        loss, logits = real(*args, **kw)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] == 5 else loss), logits

    monkeypatch.setattr(T, "train_step", poisoned)
    recipe = tiny("cosine", 4, "path=fast", "batch_size=8")  # 3 steps per epoch: call 5 is epoch 1, step 1
    with pytest.raises(NonFiniteLoss, match=r"epoch 1, step 1, seed 7"):
        train(recipe, load_data(cache), tmp_path, seed=7, device="cpu", progress=False)
    state, path = load_checkpoint(tmp_path)
    assert path.name == "checkpoint-e00001-s0000000.pt"
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_bad_input_is_reported_before_any_training(cache, tmp_path, capsys):
    base = ["train", "--cache", str(cache), "--out", str(tmp_path / "r")]
    assert main([*base, "--stage", "nope"]) == 2
    assert "valid stages: ['base'" in capsys.readouterr().err
    assert main([*base, "--stage", "ema", "--set", "lr=fast"]) == 2
    assert "Recipe.lr must be float" in capsys.readouterr().err
    assert main([*base, "--stage", "ema", "--set", "colour=red"]) == 2
    assert "unknown recipe field 'colour'" in capsys.readouterr().err
    assert main(["train", "--stage", "ema", "--cache", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert "not a prepared cache folder" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_resuming_with_another_dataset_or_recipe_is_refused(cache, tmp_path):
    recipe = tiny("cosine", 3, "path=fast")
    data = load_data(cache)
    train(recipe, data, tmp_path / "run", seed=0, device="cpu", progress=False, stop_after_epochs=1)
    other = load_data(make_cache(tmp_path / "other", seed=9))
    with pytest.raises(ValueError, match="refusing to resume a different run:\n  data: checkpoint"):
        train(recipe, other, tmp_path / "run", seed=0, device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"recipe.lr: checkpoint 0.1 != now 0.3"):
        train(replace(recipe, lr=0.3), data, tmp_path / "run", seed=0, device="cpu", progress=False)


# --- DDP --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_process_gloo_run_matches_single_process_with_the_same_global_batch(cache, tmp_path):
    """tiny_cnn has no BatchNorm and policy 'none' draws nothing, so the only difference is the order of
    the float sums in the gradient all-reduce (and the per-rank mean then average, equal here since the
    two halves of every global batch have the same size): a few ulps per step, so 1e-5 after 3 epochs."""
    common = ["--stage", "cosine", "--cache", str(cache), "--seed", "2", "--epochs", "3", "--quiet",
              *[a for s in [*TINY, "path=fast", "policy=none", "lr=0.05"] for a in ("--set", s)]]
    single = subprocess.run([sys.executable, "-m", "fgvc_ref", "train", *common, "--set", "batch_size=8", "--out", str(tmp_path / "one")],
                            cwd=ROOT, capture_output=True, text=True)
    assert single.returncode == 0, single.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                          "-m", "fgvc_ref", "train", *common, "--set", "batch_size=4", "--device", "cpu", "--out", str(tmp_path / "two")],
                         cwd=ROOT, capture_output=True, text=True, env=env)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a, b = final_state(tmp_path / "one")["model"], final_state(tmp_path / "two")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-5)
    assert json.loads((tmp_path / "two" / "recipe.json").read_text())["world_size"] == 2
