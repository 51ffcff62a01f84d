"""Compute threads on a shared machine: how many cores other work leaves free, and the thread settings that follow.

torch's OpenMP threads wait for each other at every parallel region, so a thread whose core is busy with
another process stalls the others until it gets a time slice: with more compute threads than free cores a
training slows far more than its share (docs/performance.md, "Shared machines"; measured 3.5x beside one busy
process on 2 cores with a thread per core, 1.5x with one thread per free core). So every entry point that
computes (training, evaluation, prediction, the sweep's trials) runs as many threads as cores are free:

    free = round( sum over this process's CPUs c of  d idle_c / d total_c )   clamped to [1, CPUs]

with the idle (idle + iowait) and total time counters of ``/proc/stat`` sampled ``window`` seconds apart.
``--threads N`` or ``OMP_NUM_THREADS`` choose instead. ONNX Runtime sessions take the count as their
intra-op pool (the threads that share one operator's work) with one inter-op thread: the inter-op pool only
runs independent branches of a graph in parallel, and a classifier's graph is a chain.
"""

from __future__ import annotations

import os
import time


def cpu_times(cpus) -> dict[int, tuple[int, int]]:
    """CPU -> (idle + iowait, total) time counters of ``cpus`` from ``/proc/stat`` (Linux; OSError elsewhere)."""
    times = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu" and int(name[3:]) in cpus:
                v = [int(x) for x in values]
                times[int(name[3:])] = (v[3] + v[4], sum(v[:8]))  # user nice system idle iowait irq softirq steal
    return times


def free_between(before: dict, after: dict) -> int:
    """Cores free of other work between two :func:`cpu_times` samples: the summed idle share of each CPU, rounded, >= 1."""
    free = sum((after[c][0] - before[c][0]) / max(1, after[c][1] - before[c][1]) for c in after if c in before)
    return max(1, min(len(after), round(free)))


def allowed_cpus() -> set[int]:
    """The CPUs this process may run on (its affinity), or all of them where the OS does not say."""
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))


def free_cores(window: float = 0.25) -> int:
    """How many of this process's CPUs other work leaves free, measured over ``window`` seconds (:func:`free_between`);
    all allowed CPUs where ``/proc/stat`` cannot be read."""
    allowed = allowed_cpus()
    try:
        before = cpu_times(allowed)
        time.sleep(window)
        return free_between(before, cpu_times(allowed))
    except (OSError, ValueError, IndexError):
        return len(allowed)


def chosen_threads(n: int | None) -> tuple[int | None, str]:
    """The thread count a command was asked for, and how: ``n`` (``--threads``), else ``OMP_NUM_THREADS``, else None
    (nobody chose: the caller measures the free cores)."""
    if n:
        return n, "--threads"
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) >= 1:
        return int(omp), "OMP_NUM_THREADS"
    return None, "the cores free of other work at the start; --threads N to choose"


def torch_threads(n: int | None) -> int:
    """Set torch's compute threads: ``n``, or ``OMP_NUM_THREADS``, or (neither) the cores other work leaves free
    (:func:`free_cores`), never more than torch's own default. Returns the number set."""
    import torch

    n = chosen_threads(n)[0] or min(torch.get_num_threads(), free_cores())
    torch.set_num_threads(n)
    return torch.get_num_threads()


def onnxruntime_options(threads: int | None):
    """ONNX Runtime session options for ``threads`` compute threads (module docstring): the intra-op pool takes them,
    the inter-op pool one thread. ``None``: ONNX Runtime's defaults (one intra-op thread per physical core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return options
