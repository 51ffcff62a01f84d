"""bench/gpu.sh: the prepared GPU run cannot rot. Its --smoke runs every step on the CPU at toy size, as on a bare machine."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from checkout import ROOT, copy_checkout


@pytest.mark.slow
def test_gpu_sh_smoke_runs_every_step_with_python3_and_no_venv_and_writes_each_json(tmp_path):
    """A copy of the checkout without .venv (as on the GPU machine), python3 first on PATH: every step's JSON lands in OUT."""
    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file():
        pytest.skip("the proxy step reads Fashion-MNIST (Debian's dataset-fashion-mnist; .ci/run installs it)")
    copy = copy_checkout(tmp_path / "checkout")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # the machine's python3, holding torch; fgvc_ref from the copy
    (bin_dir / "python3").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "PYTHONPATH", "OUT")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", OUT=str(tmp_path / "out"))
    done = subprocess.run(["bash", "bench/gpu.sh", "--smoke"], cwd=copy, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out = tmp_path / "out"
    env_json = json.loads((out / "gpu_env.json").read_text())
    assert env_json["torch"] and env_json["gpu"] is None
    tests = json.loads((out / "gpu_tests.json").read_text())
    assert tests["failed"] == [] and any("cuda" in t for t in tests["skipped"])
    bench = json.loads((out / "gpu_bench.json").read_text())
    assert {r["section"] for r in bench["rows"]} == {"optim", "ema", "augment", "train"}
    runs = json.loads((out / "gpu_proxy_runs.json").read_text())
    assert set(runs["stages"]) == {"base", "large_batch_warmup", "trivialaugment", "cosine", "label_smoothing", "random_erasing", "ema"}
    recipe = runs["stages"]["ema"][0]["recipe"]
    assert recipe["model"] == "efficientnet_lite0" and recipe["lr_scale"] == 0.1 and recipe["epochs"] == 2
    assert (out / "gpu.log").read_text().count("== ") >= 4
    assert env_json["fgvc_ref"].startswith(str(copy))  # python3 with the checkout on PYTHONPATH, not an installed copy


def test_the_gpu_script_refuses_unknown_options_an_interpreter_without_torch_and_prints_its_help(tmp_path):
    done = subprocess.run(["bash", "bench/gpu.sh", "--fast"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "unknown option --fast" in done.stderr
    done = subprocess.run(["bash", "bench/gpu.sh", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "gpu_proxy_runs.json" in done.stdout and "--smoke" in done.stdout
    done = subprocess.run(["bash", "bench/gpu.sh", "--smoke"], cwd=ROOT, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHON": "/bin/false", "OUT": str(tmp_path)})
    assert done.returncode == 2 and "/bin/false cannot import torch, torchvision and fgvc_ref" in done.stdout + done.stderr  # gpu.log takes both
