"""docs/reliability.md row 8: reproduce.sh killed anywhere and rerun skips, resumes and renders a byte-identical table."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--seeds", "1", "--epochs", "3", "--stages", "base,ema", "--set", "model=tiny_cnn", "--set", "weights=none", "--set", "image_size=16"]


def run(out, timeout=600):
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", "reproduce.sh", "--out", str(out), *ARGS], cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout)


def table_of(out: Path) -> str:
    text = (out / "RESULTS.md").read_text()
    return re.search(r"<!-- table:begin -->.*<!-- table:end -->", text, re.S).group(0)


def start(out):
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.Popen(["bash", "reproduce.sh", "--out", str(out), *ARGS], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def kill_when(proc, condition, timeout=300):
    """SIGKILL the script and its children (one process group) as soon as ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # it had already finished
        pass
    proc.wait()


def reporting(group: int) -> bool:
    """Whether the `python -m fgvc_ref report` step of the script (process group ``group``) is running."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.getpgid(int(proc.name)) == group and b"fgvc_ref\0report" in (proc / "cmdline").read_bytes():
                return True
        except (OSError, ProcessLookupError):
            continue
    return False


@pytest.mark.slow
def test_reliability_8_killed_during_a_run_between_runs_and_while_reporting_then_rerun_gives_a_byte_identical_table(tmp_path):
    straight = run(tmp_path / "a")
    assert straight.returncode == 0, straight.stderr[-2000:]
    assert "results:" in straight.stdout
    expected = table_of(tmp_path / "a")
    out = tmp_path / "b"
    runs = out / "runs"
    points = {
        "during the first training run": lambda proc: any(runs.glob("base/seed0/checkpoint-*.pt")),
        "between runs": lambda proc: (runs / "base" / "seed0" / "summary.json").exists(),
        "while the report is written": lambda proc: reporting(proc.pid),
    }
    for label, condition in points.items():
        proc = start(out)
        kill_when(proc, lambda: condition(proc))
        assert proc.returncode == -signal.SIGKILL, f"{label}: the script ended before the kill"
    assert not (out / "RESULTS.md").exists() or table_of(out) == expected
    resumed = run(out)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "skip base seed 0 (finished)" in resumed.stdout
    assert table_of(out) == expected


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file(),
                    reason="Fashion-MNIST not installed: apt-get install -y dataset-fashion-mnist (.ci/run does)")
def test_proxy_mode_runs_the_documented_protocol_and_lets_set_override_it(tmp_path):
    """`--proxy fashion-mnist:tops` expands to the README's protocol; a later --set wins (here: a tiny model)."""
    env = {**os.environ, "PYTHON": sys.executable}
    args = ["--proxy", "fashion-mnist:tops", "--out", str(tmp_path), "--seeds", "1", "--stages", "ema", "--set", "model=tiny_cnn"]
    done = subprocess.run(["bash", "reproduce.sh", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    recipe = json.loads((tmp_path / "runs" / "ema" / "seed0" / "recipe.json").read_text())
    assert recipe["data"] == "fashion-mnist:tops@32,train=250,test=250"
    assert (recipe["model"], recipe["weights"], recipe["image_size"], recipe["epochs"]) == ("tiny_cnn", "none", 32, 10)
    assert (recipe["lr_scale"], recipe["ema_steps"], recipe["warmup_epochs"], recipe["patience"]) == (0.1, 1, 1, 3)
    report = (tmp_path / "RESULTS.md").read_text()
    assert "Proxy: fashion-mnist:tops@32,train=250,test=250" in report and "./reproduce.sh --proxy fashion-mnist:tops" in report
