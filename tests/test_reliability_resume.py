"""docs/reliability.md rows 2, 3, 4, 6, 12, 13, 14: resume, signals, incompatible resume, determinism, NaN, disk full, OOM."""

import errno
import json
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch

from fgvc_ref.checkpoint import list_checkpoints, load_checkpoint
from fgvc_ref.cli import main
from fgvc_ref.data.sources import load_data
from fgvc_ref.train import NonFiniteLoss, train
from runs import ROOT, TINY, assert_same_final_state, final_state, make_cache, tiny


def _cli(cache, out, *extra):
    """The CLI's training, with one compute thread: runs compared bit for bit must compute with the same thread count (the
    default is the cores free at the start, which the machine's load decides, and another count sums in another order)."""
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
def test_reliability_2_3_sigkill_at_a_random_step_then_resume_equals_an_uninterrupted_run(cache, tmp_path):
    assert subprocess.run(_cli(cache, tmp_path / "a"), cwd=ROOT, capture_output=True).returncode == 0
    assert _run_until_checkpoint_then(signal.SIGKILL, cache, tmp_path / "b") == -signal.SIGKILL
    assert subprocess.run(_cli(cache, tmp_path / "b"), cwd=ROOT, capture_output=True).returncode == 0
    assert_same_final_state(tmp_path / "a", tmp_path / "b")


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_reliability_4_ctrl_c_and_sigterm_finish_the_step_save_exit_130_143_and_resume_exactly(signum, code, cache, tmp_path):
    assert subprocess.run(_cli(cache, tmp_path / "a"), cwd=ROOT, capture_output=True).returncode == 0
    assert _run_until_checkpoint_then(signum, cache, tmp_path / "b") == code
    assert subprocess.run(_cli(cache, tmp_path / "b"), cwd=ROOT, capture_output=True).returncode == 0
    assert_same_final_state(tmp_path / "a", tmp_path / "b")


def test_reliability_13_non_finite_loss_stops_with_epoch_step_and_seed_and_keeps_the_last_checkpoint(cache, tmp_path, monkeypatch):
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


def test_reliability_6_resuming_with_another_dataset_or_recipe_is_refused_with_the_difference(cache, tmp_path):
    recipe = tiny("cosine", 3, "path=fast")
    data = load_data(cache)
    train(recipe, data, tmp_path / "run", seed=0, device="cpu", progress=False, stop_after_epochs=1)
    other = load_data(make_cache(tmp_path / "other", seed=9))
    with pytest.raises(ValueError, match="refusing to resume a different run:\n  data: checkpoint"):
        train(recipe, other, tmp_path / "run", seed=0, device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"recipe.lr: checkpoint 0.1 != now 0.3"):
        train(replace(recipe, lr=0.3), data, tmp_path / "run", seed=0, device="cpu", progress=False)




def test_reliability_2_resume_at_epoch_boundaries_is_exact(cache, tmp_path):
    recipe = tiny("ema", 5, "path=fast", "batch_size=8", "ema_steps=2")
    data = load_data(cache)
    train(recipe, data, tmp_path / "a", seed=3, device="cpu", progress=False)
    for _ in range(3):  # stop after every epoch or two, resume each time
        train(recipe, data, tmp_path / "b", seed=3, device="cpu", progress=False, stop_after_epochs=2)
    assert_same_final_state(tmp_path / "a", tmp_path / "b")


def test_reliability_12_deterministic_mode_same_seed_same_weights_other_seed_other_weights(cache, tmp_path):
    recipe = tiny("ema", 2, "path=fast", "deterministic=true", "batch_size=8")
    data = load_data(cache)
    for name, seed in (("a", 4), ("b", 4), ("c", 5)):
        train(recipe, data, tmp_path / name, seed=seed, device="cpu", progress=False)
    a, b, c = (final_state(tmp_path / n)["model"] for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    env = json.loads((tmp_path / "a" / "env.json").read_text())
    assert env["deterministic"] is True and {"torch", "cuda", "cudnn", "gpu", "tf32_matmul", "tf32_cudnn"} <= set(env)


def test_reliability_14_disk_full_while_saving_is_a_clear_error_and_resume_still_matches(cache, tmp_path, monkeypatch, capsys):
    import fgvc_ref.checkpoint as C

    args = ["train", "--stage", "cosine", "--cache", str(cache), "--seed", "1", "--epochs", "4", "--quiet", "--threads", "1",  # see _cli
            *[a for s in [*TINY, "path=fast", "batch_size=8"] for a in ("--set", s)]]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    real, calls = C.atomic_write, {"n": 0}

    def full_disk(path, write):
        calls["n"] += 1
        if calls["n"] == 3:  # the checkpoint after epoch 2 (epoch 1 wrote the checkpoint and its .sha256)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, write)

    monkeypatch.setattr(C, "atomic_write", full_disk)
    assert main([*args, "--out", str(tmp_path / "b")]) == 5
    err = capsys.readouterr().err
    assert "No space left on device" in err and "the last checkpoint, checkpoint-e00001-s0000000.pt, is intact" in err
    state, path = load_checkpoint(tmp_path / "b")
    assert path.name == "checkpoint-e00001-s0000000.pt" and not list((tmp_path / "b").glob(".*tmp*"))
    monkeypatch.setattr(C, "atomic_write", real)
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert_same_final_state(tmp_path / "a", tmp_path / "b")


def test_only_a_full_disk_is_called_a_full_disk(cache, tmp_path, monkeypatch, capsys):
    """Another OSError while publishing (here: permission denied) is said as what it is, with its file, exit 1; the disk
    message, with its checkpoint, belongs to ENOSPC and EDQUOT only."""
    import fgvc_ref.checkpoint as C

    def denied(path, write):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(C, "atomic_write", denied)
    args = ["train", "--stage", "cosine", "--cache", str(cache), "--seed", "1", "--epochs", "2", "--quiet", "--out", str(tmp_path / "a"),
            *[a for s in [*TINY, "path=fast", "batch_size=8"] for a in ("--set", s)]]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "error: Permission denied: " in err and "checkpoint-e00001-s0000000.pt" in err and "Free space" not in err


def test_reliability_14_out_of_memory_at_a_step_is_a_clear_error_and_resume_still_matches(cache, tmp_path, monkeypatch, capsys):
    import fgvc_ref.train as T

    args = ["train", "--stage", "cosine", "--cache", str(cache), "--seed", "1", "--epochs", "4", "--quiet", "--threads", "1",  # see _cli
            *[a for s in [*TINY, "path=fast", "batch_size=8"] for a in ("--set", s)]]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    real, calls = T.train_step, {"n": 0}

    def oom(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 8:  # 3 steps per epoch: epoch 2, step 1
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(*a, **kw)

    monkeypatch.setattr(T, "train_step", oom)
    assert main([*args, "--out", str(tmp_path / "b")]) == 6
    assert "out of memory at epoch 2, step 1" in capsys.readouterr().err
    monkeypatch.setattr(T, "train_step", real)
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert_same_final_state(tmp_path / "a", tmp_path / "b")


def test_reliability_4_a_signal_inside_a_step_saves_after_that_step_and_the_resume_replays_nothing(cache, tmp_path, monkeypatch):
    """Deterministic mid-epoch stop (the subprocess tests above land where the timing puts them): SIGTERM arrives during
    the 3rd step of epoch 1; the checkpoint is (epoch 1, step 3), and resuming from it equals an uninterrupted run."""
    import os

    import fgvc_ref.train as trainer
    from fgvc_ref.checkpoint import checkpoint_name

    recipe, data = tiny("ema", 4, "path=fast", "batch_size=4", "ema_steps=2"), load_data(cache)  # 24 images: 6 steps an epoch
    train(recipe, data, tmp_path / "a", seed=5, device="cpu", progress=False)
    real, calls = trainer.train_step, {"n": 0}

    def step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6 + 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_step", step)
    with pytest.raises(trainer.Interrupted) as stopped:
        train(recipe, data, tmp_path / "b", seed=5, device="cpu", progress=False)
    assert stopped.value.checkpoint.name == checkpoint_name(1, 3) and stopped.value.exit_code == 143
    monkeypatch.setattr(trainer, "train_step", real)
    train(recipe, data, tmp_path / "b", seed=5, device="cpu", progress=False)
    assert_same_final_state(tmp_path / "a", tmp_path / "b")


def test_a_resume_computes_with_the_thread_count_the_run_started_with_whatever_the_load(cache, tmp_path, monkeypatch, capsys):
    """Float sums split over another thread count round otherwise, so a resume takes the recorded count, not the cores
    free now (here: 1); an explicit count that differs wins, with a line saying the resume is no longer bit-exact."""
    import fgvc_ref.threads
    import fgvc_ref.train as T

    seen, real = [], T.train_step
    monkeypatch.setattr(T, "train_step", lambda *a, **k: (seen.append(torch.get_num_threads()), real(*a, **k))[1])
    monkeypatch.setattr(fgvc_ref.threads, "free_cores", lambda window=0.25: 1)  # a busier machine at the resume
    recipe, data, default = tiny("cosine", 3, "path=fast", "batch_size=8"), load_data(cache), torch.get_num_threads()
    try:
        train(recipe, data, tmp_path / "a", seed=4, device="cpu", progress=False, threads=2)
        train(recipe, data, tmp_path / "b", seed=4, device="cpu", progress=False, threads=2, stop_after_epochs=1)
        seen.clear()
        train(recipe, data, tmp_path / "b", seed=4, device="cpu", progress=True, threads="free")  # the CLI's default
        assert set(seen) == {2} and "2 compute thread(s) (the count the run started with" in capsys.readouterr().err
        assert_same_final_state(tmp_path / "a", tmp_path / "b")
        train(recipe, data, tmp_path / "c", seed=4, device="cpu", progress=False, threads=2, stop_after_epochs=1)
        seen.clear()
        train(recipe, data, tmp_path / "c", seed=4, device="cpu", progress=False, threads=1)
        assert set(seen) == {1} and "resuming with 1 compute thread(s) where the run started with 2" in capsys.readouterr().err
        train(recipe, data, tmp_path / "d", seed=4, device="cpu", progress=False, threads="free")
        assert json.loads((tmp_path / "d" / "env.json").read_text())["torch_threads"] == 1  # a new run: the free cores
    finally:
        torch.set_num_threads(default)
