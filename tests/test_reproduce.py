"""reproduce.sh: killed anywhere and rerun, it skips, resumes and renders a byte-identical table."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--seeds", "1", "--epochs", "3", "--stages", "base,ema", "--set", "model=tiny_cnn", "--set", "image_size=16"]


def run(out, timeout=600):
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", "reproduce.sh", "--out", str(out), *ARGS], cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout)


def table_of(out: Path) -> str:
    text = (out / "RESULTS.md").read_text()
    return re.search(r"<!-- table:begin -->.*<!-- table:end -->", text, re.S).group(0)


@pytest.mark.slow
def test_killed_midway_then_rerun_gives_a_byte_identical_table(tmp_path):
    straight = run(tmp_path / "a")
    assert straight.returncode == 0, straight.stderr[-2000:]
    assert "results:" in straight.stdout
    # kill the whole script (and its training child) as soon as the first run has finished
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.Popen(["bash", "reproduce.sh", "--out", str(tmp_path / "b"), *ARGS], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first = tmp_path / "b" / "runs" / "base" / "seed0" / "summary.json"
    deadline = time.monotonic() + 300
    while not first.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first.exists() and not (tmp_path / "b" / "RESULTS.md").exists()
    resumed = run(tmp_path / "b")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "skip base seed 0 (finished)" in resumed.stdout
    assert table_of(tmp_path / "b") == table_of(tmp_path / "a")
