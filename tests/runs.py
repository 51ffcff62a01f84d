"""Shared helpers for the training and reliability tests: a tiny cached dataset and run comparisons."""

import json
import os
from pathlib import Path

import torch

from fgvc_ref.checkpoint import load_checkpoint
from fgvc_ref.data.cache import prepare
from fgvc_ref.data.stanford_cars import load_stanford_cars
from fgvc_ref.data.synthetic import make_fake_stanford_cars
from fgvc_ref.recipe import STAGES, apply_overrides, scale_epochs

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model=tiny_cnn", "weights=none", "image_size=16", "patience=0", "eval_batch_size=64"]
TIMING = {"img_per_s", "epoch_s", "wall_time"}


def make_cache(root: Path, seed: int = 0) -> Path:
    fake = make_fake_stanford_cars(root / "raw", "devkit", classes=4, per_class=6, seed=seed, image_size=(48, 36))
    for split, size in (("train", 20), ("test", 16)):
        s = load_stanford_cars(fake.root, split, expected=None)
        prepare(s.records, root / "cache", split=split, classes=s.classes, size=size, workers=1, progress=False)
    return root / "cache"


def make_folder_cache(root: Path, train_size: int = 20, test_size: int = 16) -> Path:
    """Real photos without boxes, in odd landscape and portrait shapes: 3 classes x 4 images per split."""
    from PIL import Image

    from fgvc_ref.data.folder import load_folder
    from photos import real_photos

    photos = real_photos(120)
    shapes = [(61, 37), (37, 61), (45, 44), (70, 33)]
    for split in ("train", "test"):
        for c in range(3):
            (root / "raw" / split / f"class{c}").mkdir(parents=True)
            for k, (w, h) in enumerate(shapes):
                photo = photos[(3 * c + k + (split == "test")) % len(photos)].convert("RGB")
                photo.resize((w, h), Image.BILINEAR).save(root / "raw" / split / f"class{c}" / f"{k}.png")
    for split, size in (("train", train_size), ("test", test_size)):
        s = load_folder(root / "raw", split)
        prepare(s.records, root / "cache", split=split, classes=s.classes, size=size, workers=1, progress=False)
    return root / "cache"


def tiny(stage: str, epochs: int, *extra: str):
    return apply_overrides(scale_epochs(STAGES[stage], epochs), [*TINY, *extra])


def history(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in (run / "metrics.jsonl").read_text().splitlines()]


def final_state(run: Path) -> dict:
    """The last checkpoint (runs kept with keep_checkpoints), else the finished run's final.pt."""
    found = load_checkpoint(run)
    return found[0] if found else torch.load(run / "final.pt", weights_only=True)


def assert_same_final_state(a: Path, b: Path) -> None:
    sa, sb = final_state(a), final_state(b)
    for key in ("model",):
        assert sa[key].keys() == sb[key].keys()
        for k in sa[key]:
            assert torch.equal(sa[key][k], sb[key][k]), k
    assert ("optimizer" in sa) == ("optimizer" in sb)
    for p, q in zip(sa.get("optimizer", {"state": {}})["state"].values(), sb.get("optimizer", {"state": {}})["state"].values()):
        assert torch.equal(p["momentum_buffer"], q["momentum_buffer"])
    if sa["ema"] is not None:
        assert sa["ema"]["num_updates"] == sb["ema"]["num_updates"]
        for k in sa["ema"]["module"]:
            assert torch.equal(sa["ema"]["module"][k], sb["ema"]["module"][k]), k
    assert history(a) == history(b)




PLANTED = {"blue": (30, 60, 200), "green": (40, 190, 60), "red": (200, 40, 40), "red_twin": (200, 40, 40), "yellow": (220, 210, 40)}


def make_planted_cache(root: Path, per_class: int = 10, colours: dict | None = None, mislabel: dict | None = None) -> Path:
    """Noisy flat colours, 5 classes, with a planted confusion: 'red' and 'red_twin' are drawn from the same
    distribution, so a trained model cannot tell them apart and must confuse them (class folders, no boxes).
    ``mislabel``: {class: other}: every 4th train image of the class is drawn in the other's colour (label noise)."""
    import numpy as np
    from PIL import Image

    from fgvc_ref.data.folder import load_folder

    g = np.random.default_rng(0)
    for split in ("train", "test"):
        for name, colour in (colours or PLANTED).items():
            (root / "raw" / split / name).mkdir(parents=True)
            for k in range(per_class):
                drawn = (colours or PLANTED)[mislabel[name]] if split == "train" and name in (mislabel or {}) and k % 4 == 3 else colour
                pixels = np.clip(np.array(drawn) + g.normal(0, 25, (20, 20, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / "raw" / split / name / f"{k}.png")
    for split in ("train", "test"):
        s = load_folder(root / "raw", split)
        prepare(s.records, root / "cache", split=split, classes=s.classes, size=16, workers=1, progress=False)
    return root / "cache"


# The open-set test set: known blue, green and red; an easy unknown, grey, whose colour is none of theirs (it sits between
# them: the model has no class for it); a hard unknown, red_twin, drawn exactly as red (no model can tell them apart).
# A quarter of the known train images carry another known class's colour, so that the validation split holds mistakes
# and its NLL a minimum at a finite temperature (all right by a wide margin, T would run to its bound, 0.05).
OPEN_SET_COLOURS = {"blue": (30, 60, 200), "green": (40, 190, 60), "grey": (128, 128, 128), "red": (200, 40, 40), "red_twin": (200, 40, 40)}
OPEN_SET_SPLIT = {"known": ["blue", "green", "red"], "unknown_easy": ["grey"], "unknown_hard": ["red_twin"],
                  "note": "tests: grey is no known colour; red_twin is red"}


def make_open_set_run(root: Path, stage: str = "base", *extra: str) -> tuple[Path, Path, Path]:
    """A tiny run trained by the CLI with ``train --open-set`` on the open-set colours (40 images per class and split, 16 px):
    returns (cache, split file, run folder)."""
    from fgvc_ref.cli import main

    cache = make_planted_cache(root, per_class=40, colours=OPEN_SET_COLOURS, mislabel={"blue": "green", "green": "red", "red": "blue"})
    split = root / "split.json"
    split.write_text(json.dumps(OPEN_SET_SPLIT))
    sets = [f"--set={s}" for s in [*TINY, "image_size=12", "batch_size=10", *extra]]
    assert main(["train", "--stage", stage, "--cache", str(cache), "--epochs", "6", *sets, "--open-set", str(split), "--out",
                 str(root / "run"), "--quiet"]) == 0
    return cache, split, root / "run"


def children() -> set[int]:
    """pids of this process's live children (DataLoader workers among them), zombies excluded."""
    me, found = str(os.getpid()), set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found
