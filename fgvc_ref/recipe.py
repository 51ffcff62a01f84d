"""The recipe as data: one frozen, typed ``Recipe`` and the seven stages of the progression.

Each stage is a ``dataclasses.replace`` of the one before, so ``STAGES`` reads like the table of docs/recipe.md:

    0 base                  NAG lr 0.01, momentum 0.9, batch 32, CE, "standard" augmentation, 600 epochs, patience 200
    1 large_batch_warmup    batch 128, lr 0.1, StepLR(30, 0.1), linear warmup 5 epochs from 0.01
    2 trivialaugment        TrivialAugmentWide replaces colour jitter + lighting
    3 cosine                cosine annealing to 0 replaces StepLR
    4 label_smoothing       eps 0.1, and lr 0.1 -> 0.4 (the blog's text; its table still says 0.1)
    5 random_erasing        p 0.1
    6 ema                   EMA every 32 steps, decay 0.994 (torchvision flag, adjusted), evaluated with the EMA

``VARIANTS`` are the tried-and-not-adopted changes on top of the final stage: weight decay,
MixUp/CutMix (one of the two per batch, equal probability) and AutoAugment instead of
TrivialAugment. The documented ambiguities are fields with the defaults of docs/recipe.md: ``ema_decay_reading``,
``smoothing_convention``, the "standard" policy's ``jitter``/``lighting`` and ``weights`` (V1/V2).
``scale_epochs`` shortens a recipe for proxies, scaling every epoch-denominated field alike.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, replace
from pathlib import Path

from fgvc_ref.losses import CONVENTIONS
from fgvc_ref.schedules import SCHEDULES
from fgvc_ref.transforms import POLICIES

PATHS = ("auto", "fast", "reference")
EMA_READINGS = ("adjusted", "per_update")


@dataclass(frozen=True)
class Recipe:
    name: str = "base"  # stage name, for logs and the report
    # model
    model: str = "resnet50"  # a torchvision classification model name, "efficientnet_lite0" (offline ImageNet weights), or "tiny_cnn" / "tiny_bn_cnn" (CPU tests)
    weights: str = "IMAGENET1K_V1"  # "IMAGENET1K_V1" (76.13%), "IMAGENET1K_V2" (80.86%), "imagenet" (efficientnet_lite0, offline), "none", or a state-dict path
    image_size: int = 224  # training and evaluation resolution, pixels
    # optimisation
    epochs: int = 600  # maximum epochs (early stopping may end sooner)
    batch_size: int = 32  # images per process per step; the global batch is batch_size * world_size
    lr: float = 0.01  # base learning rate (after warmup), per global batch
    lr_scale: float = 1.0  # multiplies every LR of the schedule (lr, min_lr): one factor for every stage of a proxy
    momentum: float = 0.9  # Nesterov momentum mu
    weight_decay: float = 0.0  # L2 coefficient coupled into the gradient (not adopted: 0)
    schedule: str = "constant"  # "constant", "step" or "cosine", per epoch (fgvc_ref.schedules)
    warmup_epochs: int = 0  # linear warmup length, epochs
    warmup_decay: float = 0.01  # warmup start factor
    step_size: int = 30  # StepLR period, epochs after warmup
    gamma: float = 0.1  # StepLR factor
    min_lr: float = 0.0  # cosine floor
    # loss
    label_smoothing: float = 0.0  # eps
    smoothing_convention: str = "torch"  # "torch" (eps/K on all classes) or "blog" (eps/(K-1) on the others)
    # augmentation
    policy: str = "standard"  # "standard", "trivialaugment", "autoaugment" (reference path only), "none"
    jitter: float = 0.4  # "standard": brightness/contrast/saturation factors from [1 - jitter, 1 + jitter]
    lighting: float = 0.1  # "standard": PCA lighting noise std
    erasing_p: float = 0.0  # RandomErasing probability (on the normalised image, value 0)
    mixup_alpha: float = 0.0  # MixUp Beta(alpha, alpha); with cutmix_alpha, one of the two per batch
    cutmix_alpha: float = 0.0  # CutMix Beta(alpha, alpha)
    # EMA of the weights
    ema: bool = False  # keep an EMA and report its accuracy
    ema_steps: int = 32  # update every ema_steps iterations (i % ema_steps == 0, i from 0 each epoch)
    ema_decay: float = 0.994  # torchvision's --model-ema-decay
    ema_decay_reading: str = "adjusted"  # "adjusted": torchvision's adjustment of the flag; "per_update": use as is
    # protocol
    patience: int = 200  # early stopping: epochs without a better selection accuracy (0: off)
    val_fraction: float = 0.0  # stratified hold-out of train for honest selection (0: select on test, the blog's)
    eval_batch_size: int = 256  # evaluation batch, images
    # execution
    path: str = "auto"  # "fast" (device-resident cache, BatchAugment), "reference" (PIL + DataLoader); "auto": fast unless AutoAugment
    workers: int = 2  # reference path DataLoader workers
    channels_last: bool = True  # NHWC memory format for the model and batches (faster on CUDA; on the CPU, evaluation ~2x, training within noise)
    compile: bool = False  # torch.compile the model
    deterministic: bool = False  # torch.use_deterministic_algorithms(True)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), _TYPES[f.name]
            if kind is float and type(value) is int:  # 0 for 0.0
                object.__setattr__(self, f.name, float(value))
            elif type(value) is not kind:
                raise ValueError(f"Recipe.{f.name} must be {kind.__name__}, got {value!r} ({type(value).__name__})")
            elif kind is float and not math.isfinite(value):
                raise ValueError(f"Recipe.{f.name} must be finite, got {value!r}")
        checks = {
            "image_size": self.image_size >= 8, "epochs": self.epochs >= 1, "batch_size": self.batch_size >= 1,
            "lr": self.lr >= 0, "lr_scale": self.lr_scale > 0, "momentum": 0 < self.momentum < 1, "weight_decay": self.weight_decay >= 0,
            "schedule": self.schedule in SCHEDULES, "warmup_epochs": 0 <= self.warmup_epochs < self.epochs,
            "warmup_decay": 0 < self.warmup_decay <= 1, "step_size": self.step_size >= 1, "gamma": 0 < self.gamma <= 1,
            "min_lr": 0 <= self.min_lr <= self.lr and (self.schedule == "cosine" or self.min_lr == 0),
            "label_smoothing": 0 <= self.label_smoothing < 1, "smoothing_convention": self.smoothing_convention in CONVENTIONS,
            "policy": self.policy in (*POLICIES, "none"), "jitter": 0 <= self.jitter <= 1, "lighting": self.lighting >= 0,
            "erasing_p": 0 <= self.erasing_p <= 1, "mixup_alpha": self.mixup_alpha >= 0, "cutmix_alpha": self.cutmix_alpha >= 0,
            "ema_steps": self.ema_steps >= 1, "ema_decay": 0 <= self.ema_decay <= 1, "ema_decay_reading": self.ema_decay_reading in EMA_READINGS,
            "patience": self.patience >= 0, "val_fraction": 0 <= self.val_fraction < 1, "eval_batch_size": self.eval_batch_size >= 1,
            "path": self.path in PATHS, "workers": self.workers >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"Recipe.{name} has an invalid value {getattr(self, name)!r}: it must be {_RULES[name]}")
        if self.policy == "none" and self.erasing_p > 0:
            raise ValueError(f"Recipe.erasing_p={self.erasing_p} needs an augmentation policy; policy='none' only resizes and "
                             f"normalises. Set erasing_p=0, or a policy from {POLICIES}")
        if self.path == "fast" and self.policy == "autoaugment":
            raise ValueError("Recipe.path='fast' cannot run policy='autoaugment' (reference path only); use path='reference' or 'auto'")

    def ema_update_decay(self, world_size: int = 1) -> float:
        """The decay applied at each EMA update (docs/recipe.md, section 5): torchvision's adjustment, or the flag as is."""
        from fgvc_ref.ema import adjusted_ema_decay

        if self.ema_decay_reading == "per_update":
            return self.ema_decay
        return adjusted_ema_decay(self.ema_decay, world_size=world_size, batch_size=self.batch_size, ema_steps=self.ema_steps, epochs=self.epochs)

    def lrs(self) -> list[float]:
        """The LR of every epoch (fgvc_ref.schedules.epoch_lrs)."""
        from fgvc_ref.schedules import epoch_lrs

        return epoch_lrs(self.lr * self.lr_scale, self.epochs, schedule=self.schedule, warmup_epochs=self.warmup_epochs,
                         warmup_decay=self.warmup_decay, step_size=self.step_size, gamma=self.gamma, min_lr=self.min_lr * self.lr_scale)


_TYPES = {name: hint for name, hint in typing.get_type_hints(Recipe).items()}
_RULES = {  # what each validated field accepts, for error messages and `python -m fgvc_ref recipe`
    "image_size": "an integer >= 8", "epochs": "an integer >= 1", "batch_size": "an integer >= 1", "lr": ">= 0", "lr_scale": "> 0",
    "momentum": "0 < momentum < 1", "weight_decay": ">= 0", "schedule": f"one of {SCHEDULES}", "warmup_epochs": "0 <= warmup_epochs < epochs",
    "warmup_decay": "in (0, 1]", "step_size": "an integer >= 1", "gamma": "in (0, 1]", "min_lr": "0 <= min_lr <= lr, and 0 unless schedule='cosine'",
    "label_smoothing": "in [0, 1)", "smoothing_convention": f"one of {CONVENTIONS}", "policy": f"one of {(*POLICIES, 'none')}",
    "jitter": "in [0, 1]", "lighting": ">= 0", "erasing_p": "in [0, 1]", "mixup_alpha": ">= 0", "cutmix_alpha": ">= 0",
    "ema_steps": "an integer >= 1", "ema_decay": "in [0, 1]", "ema_decay_reading": f"one of {EMA_READINGS}", "patience": "an integer >= 0 (0: off)",
    "val_fraction": "in [0, 1)", "eval_batch_size": "an integer >= 1", "path": f"one of {PATHS}", "workers": "an integer >= 0",
}


def field_help() -> dict[str, str]:
    """Each field's meaning: its comment in the ``Recipe`` source (empty where the source cannot be read)."""
    import inspect
    import re

    try:
        source = inspect.getsource(Recipe)
    except (OSError, TypeError):
        return {}
    return dict(re.findall(r"^    (\w+): \w+ = .*?  # (.*)$", source, re.M))


def describe(recipe: Recipe) -> str:
    """The resolved recipe, one field a line: value, meaning and what it accepts."""
    meaning = field_help()
    lines = [f"{f.name} = {getattr(recipe, f.name)!r}" + (f"  # {meaning[f.name]}" if f.name in meaning else "")
             + (f"  [{_RULES[f.name]}]" if f.name in _RULES else "") for f in dataclasses.fields(recipe)]
    derived = [f"(derived) lrs = first {min(8, recipe.epochs)} epochs {[round(v, 6) for v in recipe.lrs()[:8]]}",
               f"(derived) EMA decay per update, one process = {recipe.ema_update_decay(1):.6f}" if recipe.ema else "(derived) no EMA"]
    return "\n".join(lines + derived)


BASE = Recipe()
_s1 = replace(BASE, name="large_batch_warmup", batch_size=128, lr=0.1, schedule="step", step_size=30, gamma=0.1, warmup_epochs=5, warmup_decay=0.01)
_s2 = replace(_s1, name="trivialaugment", policy="trivialaugment")
_s3 = replace(_s2, name="cosine", schedule="cosine")
_s4 = replace(_s3, name="label_smoothing", label_smoothing=0.1, lr=0.4)
_s5 = replace(_s4, name="random_erasing", erasing_p=0.1)
_s6 = replace(_s5, name="ema", ema=True, ema_steps=32, ema_decay=0.994)
STAGES: dict[str, Recipe] = {r.name: r for r in (BASE, _s1, _s2, _s3, _s4, _s5, _s6)}
VARIANTS: dict[str, Recipe] = {
    r.name: r for r in (
        replace(_s6, name="ema+weight_decay", weight_decay=1e-4),  # torchvision's default 1e-4; the blog gives no value
        replace(_s6, name="ema+mixup_cutmix", mixup_alpha=0.2, cutmix_alpha=1.0),  # torchvision's reference values
        replace(_s6, name="ema+autoaugment", policy="autoaugment"),
    )
}
# docs/recipe.md section 1: the blog's top-1 per stage (ResNet-50, Stanford Cars, box crops at 224 px, mean of 3-5 seeds).
BLOG_TOP1 = {"base": 88.22, "large_batch_warmup": 89.21, "trivialaugment": 92.66, "cosine": 93.22, "label_smoothing": 94.50,
             "random_erasing": 94.93, "ema": 94.93}


def get_recipe(name: str) -> Recipe:
    recipes = STAGES | VARIANTS
    if name not in recipes:
        raise ValueError(f"unknown stage {name!r}; valid stages: {list(STAGES)}; not-adopted variants: {list(VARIANTS)}")
    return recipes[name]


def apply_overrides(recipe: Recipe, overrides: list[str]) -> Recipe:
    """``["field=value", ...]`` -> a new recipe; values are parsed by the field's type."""
    changes = {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like field=value")
        key, raw = (s.strip() for s in item.split("=", 1))
        if key not in _TYPES:
            raise ValueError(f"unknown recipe field {key!r}; valid fields: {sorted(_TYPES)}")
        changes[key] = _parse(key, raw, _TYPES[key])
    return replace(recipe, **changes)


def _parse(key: str, raw: str, kind: type):
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return raw.lower() in ("true", "1", "yes")
        if kind is int:
            return int(raw)
        if kind is float:
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError
            return value
        return raw
    except ValueError:
        raise ValueError(f"Recipe.{key} must be {kind.__name__}, got {raw!r}") from None


def scale_epochs(recipe: Recipe, epochs: int) -> Recipe:
    """The same recipe over ``epochs`` epochs: warmup, patience and step size scale by epochs / recipe.epochs
    (rounded; a warmup stays >= 1 epoch and < ``epochs``; step size >= 1); the EMA adjustment follows
    ``epochs`` by itself."""
    f = epochs / recipe.epochs
    warmup = min(epochs - 1, max(1, round(recipe.warmup_epochs * f))) if recipe.warmup_epochs else 0
    return replace(recipe, epochs=epochs, warmup_epochs=warmup, patience=round(recipe.patience * f),
                   step_size=max(1, round(recipe.step_size * f)))


def resolve(stage: str, epochs: int | None, overrides: list[str]) -> Recipe:
    """The recipe a ``train`` command runs: the stage (or variant), scaled to ``epochs`` when given, then ``overrides``."""
    recipe = get_recipe(stage)  # unknown stage or field: a ValueError listing the valid ones
    return apply_overrides(scale_epochs(recipe, epochs) if epochs is not None else recipe, overrides)


RUN_KEYS = ("seed", "data", "data_fingerprint", "protocol", "num_classes", "path", "world_size", "ema_update_decay", "batch_norm_momentum",
            "open_set")  # what a run's recipe.json adds to the recipe's fields


def recipe_from_dict(fields: dict) -> Recipe:
    """A recipe from its fields, as ``as_dict`` or a search's ``chosen_recipe.json`` wrote them (a run's recipe.json too:
    the keys it adds, :data:`RUN_KEYS`, are left out). Unknown keys and invalid values are ValueErrors naming them."""
    if not isinstance(fields, dict):
        raise ValueError(f"a recipe is a JSON object of fields, got {type(fields).__name__}")
    unknown = sorted(set(fields) - set(_TYPES) - set(RUN_KEYS))
    if unknown:
        raise ValueError(f"unknown recipe field(s) {unknown}; valid fields: {sorted(_TYPES)}")
    return Recipe(**{k: v for k, v in fields.items() if k in _TYPES})


def recipe_file(path: str | Path) -> Recipe:
    """:func:`recipe_from_dict` of a JSON file (``train --recipe FILE``)."""
    import json

    try:
        fields = json.loads(Path(path).read_text())
    except OSError as e:
        raise ValueError(f"--recipe {path}: cannot be read ({e.strerror or e})") from None
    except ValueError as e:
        raise ValueError(f"--recipe {path}: not JSON ({e})") from None
    try:
        return recipe_from_dict(fields)
    except (TypeError, ValueError) as e:
        raise ValueError(f"--recipe {path}: {e}") from None


def as_dict(recipe: Recipe) -> dict:
    return dataclasses.asdict(recipe)
