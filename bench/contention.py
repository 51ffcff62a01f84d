"""A short training alone and beside one busy process, for several thread settings: the contention ratio in one run.

On a machine shared with other CPU-bound work, OpenMP threads that spin-wait between parallel regions
while their core belongs to another process make each region wait for a time slice: a training can
slow far more than its fair share. This script measures it: the same short training (EfficientNet-Lite0,
stage ``base``, 4 epochs, batch 32, 48 px, on a small synthetic cache; the embedded default's setting) is
run, as a whole process, once idle and once beside one busy process (a pure-Python loop, one core), for
each setting, interleaved, ``--repeats`` times. It prints and writes (``--json``) the median wall time of
each and the busy / idle ratio per setting:

- ``before``: torch's default threads (one per core) and OpenMP's default wait policy: what
  ``python -m fgvc_ref train`` did before it chose its threads;
- ``before, --threads 1``: the same with one compute thread;
- ``before, OMP_WAIT_POLICY=PASSIVE``: the same with OpenMP told to sleep, not spin, while it waits;
- ``now``: ``python -m fgvc_ref train`` as shipped: as many compute threads as cores free of other work at its start.

Each run's training time (``summary.json``'s ``train_s``: the epochs, without start-up and evaluation) is
recorded beside the whole process's wall time.

    .venv/bin/python bench/contention.py --repeats 3 --json results/contention_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = ["-m", "fgvc_ref"]


def settings(default_threads: int) -> dict:
    """name -> (entry, extra arguments, extra environment)."""
    before = ["--threads", str(default_threads)]  # what train did before it chose: torch's default, every core
    return {"before": (CLI, before, {}), "before, --threads 1": (CLI, ["--threads", "1"], {}),
            "before, OMP_WAIT_POLICY=PASSIVE": (CLI, before, {"OMP_WAIT_POLICY": "PASSIVE"}), "now": (CLI, [], {})}


EPOCHS = 4


def train_args(cache: Path, out: Path) -> list[str]:
    return ["train", "--stage", "base", "--cache", str(cache), "--epochs", str(EPOCHS), "--out", str(out), "--quiet", "--set", "model=efficientnet_lite0",
            "--set", "weights=imagenet", "--set", "image_size=48", "--set", "workers=0", "--set", "patience=0"]


def timed(command: list[str], env: dict, out: Path) -> tuple[float, float]:
    """(whole-process wall seconds, the training's own seconds from summary.json)."""
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0, json.loads((out / "summary.json").read_text())["train_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT")}
    default_threads = int(subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=env, capture_output=True,
                                         text=True, check=True).stdout)
    chosen = settings(default_threads)
    times: dict[str, dict[str, list[float]]] = {s: {"idle": [], "busy": [], "idle_train": [], "busy_train": []} for s in chosen}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, "-m", "fgvc_ref", "make-synthetic", "--out", str(tmp / "raw"), "--classes", "10", "--per-class", "30"],
                       cwd=ROOT, check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "fgvc_ref", "prepare", "--data", str(tmp / "raw"), "--out", str(tmp / "cache"), "--any-size",
                        "--train-size", "56", "--test-size", "48"], cwd=ROOT, check=True, capture_output=True)
        run = 0
        for repeat in range(args.repeats):
            for condition in ("idle", "busy"):
                hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if condition == "busy" else None
                try:
                    time.sleep(0.5 if hog else 0)
                    for name, (entry, extra, more_env) in chosen.items():
                        run += 1
                        seconds, train_s = timed([sys.executable, *entry, *train_args(tmp / "cache", tmp / f"run{run}"), *extra],
                                                 {**env, **more_env}, tmp / f"run{run}")
                        times[name][condition].append(seconds)
                        times[name][f"{condition}_train"].append(train_s)
                        print(f"repeat {repeat} {condition:>4} {name:<32} {seconds:6.1f} s, training {train_s:5.1f} s", flush=True)
                finally:
                    if hog:
                        hog.kill()
                        hog.wait()
    rows = []
    for name, t in times.items():
        m = {k: statistics.median(v) for k, v in t.items()}
        rows.append({"setting": name, "idle_median_s": m["idle"], "busy_median_s": m["busy"], "busy_over_idle": m["busy"] / m["idle"],
                     "idle_train_median_s": m["idle_train"], "busy_train_median_s": m["busy_train"],
                     "busy_over_idle_train": m["busy_train"] / m["idle_train"], **t})
    print(f"\n{'setting':<32} {'idle s':>8} {'busy s':>8} {'busy/idle':>10} {'train idle':>11} {'train busy':>11} {'busy/idle':>10}")
    for r in rows:
        print(f"{r['setting']:<32} {r['idle_median_s']:8.1f} {r['busy_median_s']:8.1f} {r['busy_over_idle']:10.2f} "
              f"{r['idle_train_median_s']:11.1f} {r['busy_train_median_s']:11.1f} {r['busy_over_idle_train']:10.2f}")
    if args.json:
        import torch

        env_info = {"cpu_count": os.cpu_count(), "torch_threads_default": torch.get_num_threads(), "torch": torch.__version__,
                    "python": platform.python_version(), "cpu": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d")}
        Path(args.json).write_text(json.dumps({"command": " ".join(["bench/contention.py", *sys.argv[1:]]), "environment": env_info,
                                               "training": " ".join(train_args(Path("CACHE"), Path("OUT"))), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
