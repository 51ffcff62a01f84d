"""docs/reliability.md rows 1, 5, 7: atomic durable checkpoints, corruption detected, safe loading."""

import hashlib
import os
import pickle
import zipfile

import pytest
import torch

import fgvc_ref.data.cache as cache_mod
from fgvc_ref.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, save_checkpoint
from fgvc_ref.data.sources import load_data
from fgvc_ref.train import train
from runs import assert_same_final_state, tiny


def test_reliability_1_write_order_is_temp_fsync_replace_then_fsync_of_the_folder(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", "dir" if os.path.isdir(f"/proc/self/fd/{fd}") else os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src), str(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    path = save_checkpoint(tmp_path, {"w": torch.ones(3)}, epoch=1, step=0)
    replaces = [k for k, e in enumerate(events) if e[0] == "replace"]
    sha, ckpt = (next(k for k in replaces if events[k][2] == str(p)) for p in (path.with_name(path.name + ".sha256"), path))
    assert sha < ckpt  # the hash is published before the checkpoint it vouches for
    k = ckpt
    assert events[k - 1][0] == "fsync" and events[k - 1][1] == events[k][1] and ".tmp-" in events[k][1]  # temp data on disk first
    assert events[k + 1] == ("fsync", "dir")  # then the new name is made durable


def test_reliability_1_a_crash_before_publishing_leaves_the_old_checkpoint_and_the_temp_is_cleaned(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"epoch": 1}, epoch=1, step=0)

    def crash(src, dst):  # the process dies between writing the temp file and renaming it
        raise SystemExit("killed")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(SystemExit):
        save_checkpoint(tmp_path, {"epoch": 2}, epoch=2, step=0)
    monkeypatch.undo()
    (tmp_path / ".checkpoint-e00002-s0000000.pt.tmp-4194999").write_bytes(b"half a checkpoint")  # as SIGKILL leaves it (no such pid)
    state, path = load_checkpoint(tmp_path)
    assert state == {"epoch": 1} and [p.name for p in list_checkpoints(tmp_path)] == [path.name]
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_reliability_1_metrics_and_manifests_use_the_same_atomic_write(tmp_path, monkeypatch):
    """A metrics file is never half written: a failure while writing leaves the old file intact."""
    target = tmp_path / "metrics.jsonl"
    cache_mod.atomic_write(target, lambda f: f.write(b'{"epoch": 0}\n'))

    def dying(f):
        f.write(b'{"epoch": 0}\n{"epo')
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        cache_mod.atomic_write(target, dying)
    assert target.read_bytes() == b'{"epoch": 0}\n' and not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("damage", ["truncate", "byte flip"])
def test_reliability_5_corrupt_latest_checkpoint_falls_back_says_so_and_still_ends_identical(damage, cache, tmp_path, capsys):
    recipe = tiny("ema", 4, "path=fast", "batch_size=8", "ema_steps=2")
    data = load_data(cache)
    train(recipe, data, tmp_path / "a", seed=2, device="cpu", progress=False)
    train(recipe, data, tmp_path / "b", seed=2, device="cpu", progress=False, stop_after_epochs=2)
    latest = list_checkpoints(tmp_path / "b")[-1]
    data_bytes = bytearray(latest.read_bytes())
    if damage == "truncate":
        latest.write_bytes(bytes(data_bytes[: len(data_bytes) // 3]))
    else:
        data_bytes[len(data_bytes) // 2] ^= 0x10
        latest.write_bytes(bytes(data_bytes))
    train(recipe, data, tmp_path / "b", seed=2, device="cpu", progress=True)
    err = capsys.readouterr().err
    assert f"checkpoint {latest}" in err and "unusable" in err and "resuming from the older checkpoint" in err
    assert_same_final_state(tmp_path / "a", tmp_path / "b")


class _Payload:
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


def test_reliability_7_a_malicious_checkpoint_is_refused_and_runs_no_code(cache, tmp_path):
    """A run folder whose only checkpoint would run code when unpickled: the run stops, no side effect."""
    run, sentinel = tmp_path / "run", tmp_path / "sentinel"
    run.mkdir()
    path = run / "checkpoint-e00003-s0000000.pt"
    torch.save({"x": 1}, path)
    with zipfile.ZipFile(path) as z:
        contents = {n: z.read(n) for n in z.namelist()}
    pkl = next(n for n in contents if n.endswith("data.pkl"))
    contents[pkl] = pickle.dumps({"model": _Payload(sentinel)}, protocol=2)
    with zipfile.ZipFile(path, "w") as z:
        for n, b in contents.items():
            z.writestr(n, b)
    (run / (path.name + ".sha256")).write_text(hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        train(tiny("base", 2), load_data(cache), run, seed=0, device="cpu", progress=False)
    assert not sentinel.exists()


def test_reliability_7_everything_saved_loads_with_weights_only(cache, tmp_path):
    train(tiny("ema", 2, "path=fast", "mixup_alpha=0.2"), load_data(cache), tmp_path, seed=0, device="cpu", progress=False)
    for p in list_checkpoints(tmp_path):
        torch.load(p, weights_only=True)  # raises on anything but plain tensors, numbers, strings, lists, dicts


WRITER = """
import sys, torch
from fgvc_ref.checkpoint import load_checkpoint, save_checkpoint
run = sys.argv[1]
found = load_checkpoint(run)
for k in range((found[0]["k"] if found else 0) + 1, 100_000):
    save_checkpoint(run, {"k": k, "w": torch.full((2_000_000,), float(k))}, epoch=k, step=0)
"""


@pytest.mark.slow
def test_reliability_1_sigkill_during_writes_always_leaves_a_loadable_old_or_new_checkpoint(tmp_path):
    """A real writer publishing 8 MB checkpoints in a loop, SIGKILLed at 5 random moments."""
    import random
    import signal
    import subprocess
    import sys
    import time

    rng = random.Random(0)
    for attempt in range(5):
        before = list_checkpoints(tmp_path)[-1:]
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)])
        deadline = time.monotonic() + 60
        while list_checkpoints(tmp_path)[-1:] == before and time.monotonic() < deadline:
            time.sleep(0.01)  # wait until this writer has published (torch takes seconds to import)
        time.sleep(rng.random())
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state, path = load_checkpoint(tmp_path)  # also removes a temp file the kill left behind
        k = state["k"]
        assert not before or k > int(before[0].name[12:17]), "the writer published nothing new"
        assert torch.equal(state["w"], torch.full((2_000_000,), float(k))), attempt
        assert path.name == f"checkpoint-e{k:05d}-s0000000.pt"
        assert not list(tmp_path.glob(".*.tmp-*"))


def test_reliability_1_a_live_writers_temporary_file_is_not_removed(tmp_path):
    """Another rank of the same run may be writing: only temp files of dead processes are stale."""
    save_checkpoint(tmp_path, {"epoch": 1}, epoch=1, step=0)
    live = tmp_path / f".recipe.json.tmp-{os.getpid()}"
    live.write_bytes(b"being written")
    load_checkpoint(tmp_path)
    assert live.exists()


def test_reliability_1_a_kill_between_the_hash_and_the_checkpoint_keeps_the_run_resumable(tmp_path, monkeypatch):
    """Found by the reproduce.sh kill test: a checkpoint published before its .sha256 read as corrupt
    after a kill in between, and the run could not resume. The hash is now written first."""
    import fgvc_ref.checkpoint as C

    real, calls = C.atomic_write, {"n": 0}

    def killed_after_first_write(path, write):
        calls["n"] += 1
        if calls["n"] == 2:
            raise SystemExit("killed")
        return real(path, write)

    monkeypatch.setattr(C, "atomic_write", killed_after_first_write)
    with pytest.raises(SystemExit):
        save_checkpoint(tmp_path, {"epoch": 1}, epoch=1, step=0)  # the run's first checkpoint
    monkeypatch.undo()
    assert load_checkpoint(tmp_path) is None  # nothing was published: start the epoch again, no error
