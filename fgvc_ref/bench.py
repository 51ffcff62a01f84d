"""Side-by-side micro-benchmarks: each hand-written technique against its torch/torchvision twin.

Every measurement is a median over repeats with its min-max, and is reported as a ratio against
the twin measured in the same process on the same tensors, because absolute times on a shared
machine are not results (docs/performance.md, "How to measure").
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

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


def _test_image(size: int = 256):
    """A deterministic photo-like RGB image (smooth gradients, edges and noise); no data files needed."""
    import numpy as np
    from PIL import Image

    g = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([np.sin(6 * xx) * 60 + 120, np.cos(5 * yy) * 50 + 110, (xx * yy) * 150 + 40], -1)
    base[size // 3 : size // 2, size // 4 : size // 2] += 60  # an edge
    return Image.fromarray((base + g.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8))


def bench_augment(*, repeats: int, device: str = "cpu", batch: int = 128, size: int = 224) -> list[dict]:
    """BatchAugment("trivialaugment", erasing 0.1) on a uint8 batch vs torchvision's per-image PIL
    pipeline (ClassificationPresetTrain) in a DataLoader with one persistent worker per core (at most 16); 256 px sources."""
    import os

    import torchvision.transforms as T

    from fgvc_ref.transforms import IMAGENET_MEAN, IMAGENET_STD, BatchAugment, pil_to_float

    img = _test_image()
    B = T.InterpolationMode.BILINEAR
    tv = T.Compose([T.RandomResizedCrop(size, interpolation=B, antialias=True), T.RandomHorizontalFlip(),
                    T.TrivialAugmentWide(interpolation=B), T.PILToTensor(), T.ConvertImageDtype(torch.float),
                    T.Normalize(IMAGENET_MEAN, IMAGENET_STD), T.RandomErasing(p=0.1)])
    workers = min(16, os.cpu_count() or 1)
    loader = torch.utils.data.DataLoader(_Repeat(img, tv, 4 * batch), batch_size=batch, num_workers=workers, persistent_workers=True)
    x = (pil_to_float(img) * 255).round().to(torch.uint8).unsqueeze(0).repeat(batch, 1, 1, 1).to(device)
    augment, g = BatchAugment("trivialaugment", size, erasing_p=0.1), torch.Generator(device=device).manual_seed(0)
    per_epoch = lambda: [b for b in loader]
    t_ref = [t / 4 for t in time_call(per_epoch, repeats=max(3, repeats // 4), warmup=1)]  # seconds per batch
    t_ours = time_call(lambda: augment(x, g), repeats=repeats, warmup=2)
    row = _row("augment", f"BatchAugment TA+RE, batch {batch}, {size} px", t_ours, f"torchvision PIL preset, DataLoader {workers} workers", t_ref, device)
    row["images_per_s"] = {"ours": batch / row["ours"]["median_s"], "twin": batch / row["twin_timing"]["median_s"]}
    return [row]


class _Repeat(torch.utils.data.Dataset):
    def __init__(self, img, transform, n):
        self.img, self.transform, self.n = img, transform, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.transform(self.img)


def bench_prepare(*, repeats: int, device: str = "cpu", images: int = 192) -> list[dict]:
    """``prepare`` throughput: 224 px box crops of synthetic 800x600 JPEGs, one process vs all cores."""
    import os
    import tempfile

    from fgvc_ref.data.cache import prepare
    from fgvc_ref.data.stanford_cars import load_stanford_cars
    from fgvc_ref.data.synthetic import make_fake_stanford_cars

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        fake = make_fake_stanford_cars(f"{tmp}/cars", "devkit", classes=8, per_class=images // 8, image_size=(800, 600))
        split = load_stanford_cars(fake.root, "train", expected=None)
        run = lambda workers: prepare(split.records, f"{tmp}/cache{workers}", split="train", classes=split.classes,
                                      size=224, workers=workers, progress=False)
        n = max(2, repeats // 4)
        t_all = time_call(lambda: run(cores), repeats=n, warmup=1)
        t_one = time_call(lambda: run(1), repeats=n, warmup=1)
    row = _row("prepare", f"prepare, {cores} processes, {len(split.records)} 800x600 JPEGs -> 224 px", t_all,
               "prepare, 1 process", t_one, "cpu")
    row["images_per_s"] = {"ours": len(split.records) / row["ours"]["median_s"], "twin": len(split.records) / row["twin_timing"]["median_s"]}
    return [row]


def bench_train(*, repeats: int, device: str = "cpu", model: str = "resnet18", image_size: int = 32, batch: int = 128,
                images: int = 1024, stage: str = "ema", epochs: int = 3, compile: int = 0, workers: int = 2, source: str = "drawn") -> list[dict]:
    """One stage's training img/s on the fast and the reference path vs the model-only step
    (forward + backward + NAG on device-resident random tensors, same batch, size and precision).

    ``compile=1`` also times the fast path under ``torch.compile`` (against the same eager model-only step); ``workers``: the reference
    path's DataLoader workers (PIL per image); ``source``: ``drawn`` (the synthetic cars, prepared from files) or
    ``random`` (uint8 noise of the same shapes, no files: a Stanford-Cars-sized cache in seconds)."""
    import json
    import tempfile

    from fgvc_ref.data.cache import prepare
    from fgvc_ref.data.sources import load_data
    from fgvc_ref.data.stanford_cars import load_stanford_cars
    from fgvc_ref.data.synthetic import make_fake_stanford_cars
    from fgvc_ref.losses import LabelSmoothingCrossEntropy
    from fgvc_ref.model import build_model
    from fgvc_ref.optim import NAG
    from fgvc_ref.recipe import apply_overrides, get_recipe, scale_epochs
    from fgvc_ref.train import train, train_step

    if source not in ("drawn", "random"):
        raise ValueError(f"train source must be 'drawn' or 'random', got {source!r}")
    dev = torch.device(device)
    with tempfile.TemporaryDirectory() as tmp:
        if source == "random":
            data = random_data(images, image_size, classes=16)
        else:
            fake = make_fake_stanford_cars(f"{tmp}/raw", "devkit", classes=16, per_class=max(1, images // 16), image_size=(64, 48))
            for split, size in (("train", round(image_size * 8 / 7)), ("test", image_size)):
                s = load_stanford_cars(fake.root, split, expected=None)
                prepare(s.records, f"{tmp}/cache", split=split, classes=s.classes, size=size, progress=False)
            data = load_data(f"{tmp}/cache")
        rates = {}
        for path, compiled in (("fast", False), ("reference", False), *((("fast", True),) if compile else ())):
            recipe = apply_overrides(scale_epochs(get_recipe(stage), epochs), [f"model={model}", "weights=none", f"image_size={image_size}",
                                                                               f"batch_size={batch}", "patience=0", f"path={path}",
                                                                               f"workers={workers}", f"compile={compiled}"])
            name = path + ("_compiled" if compiled else "")
            train(recipe, data, f"{tmp}/{name}", seed=0, device=device, progress=False)
            rows = [json.loads(line) for line in open(f"{tmp}/{name}/metrics.jsonl")]
            rates[name] = [r["img_per_s"] for r in rows[1:]]  # epoch 0 pays warm-up (and compilation)
    net = build_model(model, 16, "none").to(dev, memory_format=torch.channels_last)  # as the loop runs it (Recipe.channels_last)
    opt, crit = NAG(net.parameters(), lr=1e-3), LabelSmoothingCrossEntropy(0.1)
    x = torch.randn(batch, 3, image_size, image_size, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 16, (batch,), device=dev)
    amp = dev.type == "cuda"
    t_model = time_call(lambda: train_step(net, opt, crit, x, y, amp_device=dev.type, amp=amp), repeats=repeats, warmup=3)
    model_rate = batch / summary(t_model)["median_s"]

    net.eval()

    @torch.no_grad()
    def forward():
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            return net(x)

    t_eval = time_call(forward, repeats=repeats, warmup=3)
    row = {"section": "train", "name": f"{stage} stage, {model} at {image_size} px, batch {batch}", "device": device,
           "model": model, "image_size": image_size, "batch": batch,
           "model_only_img_per_s": model_rate, "model_only_timing": summary(t_model),
           "eval_img_per_s": batch / summary(t_eval)["median_s"], "eval_timing": summary(t_eval),
           "source": source, "reference_workers": workers,
           **{f"{p}_img_per_s": {"median": statistics.median(v), "min": min(v), "max": max(v), "epochs": len(v)} for p, v in rates.items()},
           **{f"{p}_vs_model_only": statistics.median(v) / model_rate for p, v in rates.items()}}
    return [row]


def random_data(images: int, image_size: int, classes: int = 16):
    """A cache-shaped Data of uint8 noise: ``images`` train images at ``image_size * 8 / 7`` and as many test images at
    ``image_size``, labels cycling over ``classes`` (a benchmark's stand-in for a prepared Stanford Cars cache)."""
    from fgvc_ref.data.sources import Data

    g = torch.Generator().manual_seed(0)
    train_size = round(image_size * 8 / 7)
    x = torch.randint(0, 256, (images, 3, train_size, train_size), generator=g, dtype=torch.uint8)
    t = torch.randint(0, 256, (images, 3, image_size, image_size), generator=g, dtype=torch.uint8)
    labels = torch.arange(images) % classes
    return Data(x, labels, t, labels.clone(), [f"class {c}" for c in range(classes)], "random", f"random:{images}@{image_size}")


FORMATS = {".pt": "PyTorch eager fp32", ".onnx": "ONNX Runtime fp32", ".int8.onnx": "ONNX Runtime int8"}


def bench_latency(*, repeats: int, device: str = "cpu", models: list[str] | None = None, batches: tuple[int, ...] = (1, 8),
                  warmup: int = 20) -> list[dict]:
    """Inference latency of exported models side by side in one process, the formats alternating round by round:
    PyTorch eager (a ``.pt`` export, run with the same uint8-in preprocessing as the ONNX graph), ONNX Runtime fp32 and
    int8 (``.onnx``, ``.int8.onnx``). For each batch in ``batches`` and for 1 thread and all cores: p50, p90 and p99 of
    ``repeats`` timed calls (after ``warmup``), per model; with the size on disk and, where the run's test split is
    readable, the top-1 of each file on it. ``NAME@SIZE`` (e.g. ``resnet50@224``) stands for that torchvision
    architecture with random weights, exported to all three formats here: its latency only, no accuracy."""
    import os
    import tempfile

    import numpy as np

    from fgvc_ref.deploy import OnnxClassifier, Preprocess
    from fgvc_ref.export import load_exported

    if device != "cpu":
        raise ValueError("bench --only latency measures the CPU (the edge); run it with --device cpu")
    if not models:
        raise ValueError("bench --only latency needs --model FILE (model.pt, model.onnx, model.int8.onnx) or NAME@SIZE, repeatable")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        paths = {p: (f"{spec}, random weights (exported here)" if "@" in spec else str(p)) for spec in models
                 for p in (_architecture_files(spec, Path(tmp)) if "@" in spec else [Path(spec)])}
        formats = {}
        for path in paths:
            kind = ".int8.onnx" if path.name.endswith(".int8.onnx") else path.suffix
            if kind not in FORMATS:
                raise ValueError(f"{path}: bench --only latency takes .pt (with its .json), .onnx and .int8.onnx files")
            if kind == ".pt":
                net, meta = load_exported(path)
                size = meta["preprocessing"]["image_size"]
                shape = (size, size, 3)
                eager = nn.Sequential(Preprocess("nhwc"), net).eval()
                call = (lambda eager: lambda x, threads: _eager(eager, x, threads))(eager)
            else:
                sessions = {t: OnnxClassifier(path, threads=t) for t in sorted({1, cores})}
                meta, size, shape = sessions[1].meta, sessions[1].size, sessions[1].shape  # the file's layout, NHWC or NCHW
                call = (lambda sessions: lambda x, threads: sessions[threads](x))(sessions)
            formats[path] = {"format": FORMATS[kind], "call": call, "meta": meta, "size": size, "shape": shape, "bytes": path.stat().st_size}
        rows = []
        g = np.random.default_rng(0)
        timings_of = {p: {} for p in formats}
        for threads in sorted({1, cores}):
            for batch in batches:
                inputs = {p: g.integers(0, 256, (batch, *f["shape"]), dtype=np.uint8) for p, f in formats.items()}
                for p, f in formats.items():
                    for _ in range(warmup):
                        f["call"](inputs[p], threads)
                per_round = max(1, repeats // 10)
                times = {p: [] for p in formats}
                for _ in range(-(-repeats // per_round)):  # rounds: every format in turn, so that machine noise hits them alike
                    for p, f in formats.items():
                        for _ in range(per_round):
                            t0 = time.perf_counter()
                            f["call"](inputs[p], threads)
                            times[p].append(time.perf_counter() - t0)
                for p in formats:
                    t = np.array(times[p][:repeats]) * 1e3
                    timings_of[p][(batch, threads)] = {"batch": batch, "threads": threads, "runs": len(t),
                                                       **{f"p{q}_ms": float(np.percentile(t, q)) for q in (50, 90, 99)}}
        torch.set_num_threads(cores)
        for p, f in formats.items():
            top1 = _top1(p) if f["meta"].get("data") else None
            rows.append({"section": "latency", "name": f"{f['meta']['model']} at {f['size']} px, {f['format']}", "format": f["format"],
                         "file": paths[p], "model": f["meta"]["model"], "image_size": f["size"],
                         "bytes": f["bytes"], "top1": top1, "data": f["meta"].get("data"), "timings": list(timings_of[p].values())})
    return rows


def _eager(net: nn.Module, x, threads: int):
    torch.set_num_threads(threads)
    with torch.inference_mode():
        return net(torch.from_numpy(x))


def _top1(path: Path) -> float | None:
    """The file's top-1 on its run's test split, or None when that data is not readable here."""
    from fgvc_ref.data.sources import load_test
    from fgvc_ref.export import exported_predictor

    predict, meta = exported_predictor(path, torch.device("cpu"))
    try:
        loaded = load_test(meta["data"], verify_sources=False)
    except ValueError:
        return None
    return 100.0 * (predict(loaded.test_images).argmax(1) == loaded.test_labels).double().mean().item()


def _architecture_files(spec: str, folder: Path) -> list[Path]:
    """``NAME@SIZE``: the torchvision architecture with random weights (1000 classes) as .pt, .onnx and .int8.onnx in
    ``folder`` (int8 calibrated on random pixels: the latency is real, an accuracy would not be), for latency only."""
    import json

    name, _, size = spec.partition("@")
    if not size.isdigit():
        raise ValueError(f"--model {spec!r}: an architecture is NAME@SIZE, e.g. resnet50@224")
    import numpy as np

    from fgvc_ref.deploy import export_graph, quantize
    from fgvc_ref.model import build_model

    torch.manual_seed(0)
    model = build_model(name, 1000, "none").eval()
    size = int(size)
    meta = {"format": "fgvc_ref-export", "version": 1, "model": name, "num_classes": 1000, "classes": [str(k) for k in range(1000)],
            "weights": "random (latency only)", "data": None, "channels_last": False, "outside the graph": "random weights: latency only",
            "preprocessing": {"kind": "cache", "stored_size": size, "image_size": size, "mean": [], "std": []}}
    pt = folder / f"{name}.pt"
    torch.save(model.state_dict(), pt)
    pt.with_suffix(".json").write_text(json.dumps(meta))
    onnx_path = export_graph(model, folder / f"{name}.onnx", size=size, meta={**meta, "format": "fgvc_ref-onnx"})
    pixels = np.random.default_rng(0).integers(0, 256, (64, size, size, 3), dtype=np.uint8)
    int8 = quantize(onnx_path, pixels, calibration={"images": 64, "seed": 0, "split": "none: random pixels (latency only)"})
    return [pt, onnx_path, int8]


def _row(section: str, name: str, ours: list[float], twin_name: str, twin: list[float], device: str) -> dict:
    s_ours, s_twin = summary(ours), summary(twin)
    return {"section": section, "name": name, "twin": twin_name, "device": device, "ours": s_ours, "twin_timing": s_twin,
            "ratio_vs_twin": s_ours["median_s"] / s_twin["median_s"]}


SECTIONS: dict[str, Callable[..., list[dict]]] = {"optim": bench_optim, "ema": bench_ema, "augment": bench_augment, "prepare": bench_prepare,
                                                  "train": bench_train, "latency": bench_latency}


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


def run(sections: list[str], *, repeats: int, device: str, json_path: str | None, train_config: dict | None = None,
        command: str | None = None, models: list[str] | None = None) -> list[dict]:
    unknown = sorted(set(sections) - SECTIONS.keys())
    if unknown:
        raise ValueError(f"unknown bench section(s) {unknown}; valid: {sorted(SECTIONS)}")
    options = {"train": train_config or {}, "latency": {"models": models}}
    rows = [row for name in sections for row in SECTIONS[name](repeats=repeats, device=device, **options.get(name, {}))]
    env = environment()
    print(f"# {env['cpu']} x{env['cpu_threads']} threads, gpu={env['gpu']}, torch {env['torch']}, torchvision {env['torchvision']}")
    if any("twin_timing" in r for r in rows):
        print(f"{'ours':<42} {'median ms':>10} {'min-max ms':>16}   {'twin':<40} {'median ms':>10} {'ratio':>6}")
    for r in rows:
        if r["section"] == "latency":
            top1 = "not measured" if r["top1"] is None else f"{r['top1']:.2f}%"
            print(f"{r['name']}: {r['bytes'] / 1e6:.2f} MB, top-1 {top1}; "
                  + "; ".join(f"batch {t['batch']} x{t['threads']} thread(s) p50 {t['p50_ms']:.2f} ms (p90 {t['p90_ms']:.2f}, p99 {t['p99_ms']:.2f})"
                              for t in r["timings"]))
            continue
        if r["section"] == "train":
            print(f"{r['name']}: model-only {r['model_only_img_per_s']:.0f} img/s; fast path {r['fast_img_per_s']['median']:.0f} "
                  f"({r['fast_vs_model_only']:.2f}x); reference path {r['reference_img_per_s']['median']:.0f} ({r['reference_vs_model_only']:.2f}x); "
                  f"evaluation forward {r['eval_img_per_s']:.0f} img/s")
            continue
        o, t = r["ours"], r["twin_timing"]
        print(f"{r['name']:<42} {o['median_s'] * 1e3:>10.2f} {o['min_s'] * 1e3:>7.2f}-{o['max_s'] * 1e3:<8.2f}   "
              f"{r['twin']:<40} {t['median_s'] * 1e3:>10.2f} {r['ratio_vs_twin']:>6.2f}")
        if "images_per_s" in r:
            print(f"{'':<42} img/s: ours {r['images_per_s']['ours']:.0f}, twin {r['images_per_s']['twin']:.0f}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"command": command, "environment": env, "rows": rows}, f, indent=2)
    return rows
