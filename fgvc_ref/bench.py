"""Side-by-side micro-benchmarks: each hand-written technique against its torch/torchvision twin.

Every measurement is a median over repeats with its min-max, and is reported as a ratio against
the twin measured in the same process on the same tensors, because absolute times on a shared
machine are not results (PERF.md, "How to measure").
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn


def time_call(fn: Callable[[], object], *, repeats: int, warmup: int = 2) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones (CUDA-synchronised)."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def summary(times: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "repeats": len(times)}


def _resnet50_with_grads(device: str) -> nn.Module:
    import torchvision

    model = torchvision.models.resnet50(weights=None).to(device)
    g = torch.Generator().manual_seed(0)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=g).mul_(1e-3).to(device)
    return model


def bench_optim(*, repeats: int, device: str = "cpu") -> list[dict]:
    """NAG (foreach) vs torch SGD(nesterov=True, foreach=True): one step over ResNet-50's parameters."""
    from fgvc_ref.optim import NAG

    rows = []
    ours_model, ref_model = _resnet50_with_grads(device), _resnet50_with_grads(device)
    ours = NAG(ours_model.parameters(), lr=1e-4, momentum=0.9, foreach=True)
    ref = torch.optim.SGD(ref_model.parameters(), lr=1e-4, momentum=0.9, nesterov=True, foreach=True)
    # interleave the two so that machine noise hits both alike
    t_ours, t_ref = [], []
    for _ in range(repeats):
        t_ref += time_call(ref.step, repeats=1, warmup=1)
        t_ours += time_call(ours.step, repeats=1, warmup=1)
    rows.append(_row("optim", "NAG foreach step, ResNet-50 params", t_ours, "torch SGD(nesterov, foreach) step", t_ref, device))
    return rows


def bench_ema(*, repeats: int, device: str = "cpu") -> list[dict]:
    """EMA.update vs torchvision's ExponentialMovingAverage (AveragedModel + avg_fn) on ResNet-50."""
    from torch.optim.swa_utils import AveragedModel

    from fgvc_ref.ema import EMA

    model = _resnet50_with_grads(device)
    d = 0.959
    ours = EMA(model, d)
    ref = AveragedModel(model, avg_fn=lambda a, m, n: d * a + (1 - d) * m, use_buffers=True)
    ours.update(model), ref.update_parameters(model)  # leave the copy-first update behind
    t_ours, t_ref = [], []
    for _ in range(repeats):
        t_ref += time_call(lambda: ref.update_parameters(model), repeats=1, warmup=1)
        t_ours += time_call(lambda: ours.update(model), repeats=1, warmup=1)
    return [_row("ema", "EMA.update, ResNet-50 params+buffers", t_ours, "torchvision EMA (AveragedModel) update", t_ref, device)]


def _row(section: str, name: str, ours: list[float], twin_name: str, twin: list[float], device: str) -> dict:
    s_ours, s_twin = summary(ours), summary(twin)
    return {"section": section, "name": name, "twin": twin_name, "device": device, "ours": s_ours, "twin_timing": s_twin,
            "ratio_vs_twin": s_ours["median_s"] / s_twin["median_s"]}


SECTIONS: dict[str, Callable[..., list[dict]]] = {"optim": bench_optim, "ema": bench_ema}


def environment() -> dict[str, object]:
    """What the numbers were measured on."""
    import torchvision

    return {
        "torch": torch.__version__, "torchvision": torchvision.__version__, "python": platform.python_version(),
        "cpu": _cpu_name(), "cpu_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d"),
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        return f"{names[0]} ({len(names)} logical CPUs)"
    except (OSError, IndexError):
        return platform.processor() or platform.machine()


def run(sections: list[str], *, repeats: int, device: str, json_path: str | None) -> list[dict]:
    unknown = sorted(set(sections) - SECTIONS.keys())
    if unknown:
        raise ValueError(f"unknown bench section(s) {unknown}; valid: {sorted(SECTIONS)}")
    rows = [row for name in sections for row in SECTIONS[name](repeats=repeats, device=device)]
    env = environment()
    print(f"# {env['cpu']} x{env['cpu_threads']} threads, gpu={env['gpu']}, torch {env['torch']}, torchvision {env['torchvision']}")
    print(f"{'ours':<42} {'median ms':>10} {'min-max ms':>16}   {'twin':<40} {'median ms':>10} {'ratio':>6}")
    for r in rows:
        o, t = r["ours"], r["twin_timing"]
        print(f"{r['name']:<42} {o['median_s'] * 1e3:>10.2f} {o['min_s'] * 1e3:>7.2f}-{o['max_s'] * 1e3:<8.2f}   "
              f"{r['twin']:<40} {t['median_s'] * 1e3:>10.2f} {r['ratio_vs_twin']:>6.2f}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"environment": env, "rows": rows}, f, indent=2)
    return rows
