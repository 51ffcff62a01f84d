"""The blog's own procedure on a user's data: adopt one technique at a time, and only when its gain is real.

The blog added its techniques one by one and "tuned some combinations through greedy or grid search to
account for synergies and interdependencies" (its LR jump from 0.1 to 0.4 with label smoothing came from
such a search). Greedy forward selection, as here:

    adopted = {},  incumbent = base, its learning rate tuned
    repeat:  for every technique t not adopted, for every lr_scale s in a small grid around the incumbent's:
                 train  base + adopted + t  at s,  K seeds  ->  validation top-1 per seed
             best(t) = the s with the highest mean;  winner = the t with the highest best(t) mean
             adopt the winner iff Welch's 95% interval for  mean(winner) - mean(incumbent)  lies above 0
             (fgvc_ref.stats.welch), else stop

The learning rate is a nuisance hyper-parameter, re-tuned for each candidate so that a technique is compared
at its own best rate (Google's Deep Learning Tuning Playbook, "scientific, nuisance and fixed"
hyper-parameters); the grid is centred on the incumbent's lr_scale, so the rate can move step by step. The
techniques are the recipe's stage deltas (:data:`TECHNIQUES`: what each stage of ``fgvc_ref.recipe.STAGES``
changes over the one before), composed in the recipe's order whatever the order of adoption, so ``cosine``
replaces StepLR's schedule whether or not large batch + warmup came first. One field is left out: label
smoothing's LR jump (0.1 -> 0.4), which is what the LR re-tuning is for; large batch keeps its LR (0.01 -> 0.1
with the batch 32 -> 128), the linear scaling rule that belongs to the technique.

Convention: a step's winner is the largest of many noisy means, so its measured gain is biased upward (the
winner's curse), and Welch's test is not corrected for the candidates compared. The search selects on a
validation split only; ``sweep --finalize`` then trains the result and the stage's default on fresh runs and
compares them once on the test split, which is the honest number.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

from fgvc_ref.recipe import STAGES, Recipe, as_dict

NONE = "none"  # the incumbent alone, for the first step's LR tuning


def _deltas() -> dict[str, dict]:
    stages = list(STAGES.values())
    deltas = {b.name: {k: v for k, v in as_dict(b).items() if k != "name" and as_dict(a)[k] != v} for a, b in zip(stages, stages[1:])}
    del deltas["label_smoothing"]["lr"]  # a nuisance: re-tuned (module docstring)
    return deltas


TECHNIQUES: dict[str, dict] = _deltas()  # large_batch_warmup, trivialaugment, cosine, label_smoothing, random_erasing, ema


def compose(base: Recipe, adopted: tuple[str, ...]) -> Recipe:
    """``base`` with the adopted techniques' fields, applied in the recipe's order; named ``base+t1+t2...``."""
    unknown = [t for t in adopted if t not in TECHNIQUES]
    if unknown:
        raise ValueError(f"unknown technique(s) {unknown}; the techniques are {list(TECHNIQUES)}")
    changes = {k: v for t in TECHNIQUES if t in adopted for k, v in TECHNIQUES[t].items()}
    return replace(base, **changes, name="+".join([base.name, *[t for t in TECHNIQUES if t in adopted]]))


class Tried(NamedTuple):
    """A technique at its best lr_scale in one step, with its per-seed validation top-1."""

    technique: str
    lr_scale: float
    values: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)


class Step(NamedTuple):
    adopted_before: tuple[str, ...]
    incumbent: Tried
    tried: list[Tried]  # every candidate at its best lr_scale, best first
    winner: str | None  # adopted at this step, or None: the search stops
    gain: object | None  # fgvc_ref.stats.Step of winner - incumbent (the best candidate's, also when not adopted)


def best_lr(rows: list[Tried]) -> list[Tried]:
    """Per technique, the lr_scale with the highest mean (ties: the smaller lr_scale); best technique first (ties: the
    recipe's order)."""
    order = [NONE, *TECHNIQUES]
    best: dict[str, Tried] = {}
    for r in sorted(rows, key=lambda r: (r.technique, r.lr_scale)):
        if r.values and (r.technique not in best or r.mean > best[r.technique].mean):
            best[r.technique] = r
    return sorted(best.values(), key=lambda r: (-r.mean, order.index(r.technique) if r.technique in order else len(order)))


def greedy(evaluate: Callable[[tuple[str, ...], list[str], Tried | None], list[Tried]], techniques: list[str] | None = None) -> list[Step]:
    """The procedure of the module docstring. ``evaluate(adopted, candidates, incumbent)`` trains every candidate
    (``"none"``: the starting recipe alone, with ``incumbent`` None) at every lr_scale of a grid around the incumbent's on
    top of ``adopted``, and returns one :class:`Tried` per (candidate, lr_scale) with its per-seed values (at least 2
    seeds, for Welch's test). Returns the steps; the last one's winner is None unless every technique was adopted."""
    from fgvc_ref.stats import welch

    remaining = list(techniques if techniques is not None else TECHNIQUES)
    adopted: tuple[str, ...] = ()
    (incumbent, *_) = best_lr(evaluate(adopted, [NONE], None)) or [None]
    if incumbent is None:
        raise ValueError("the starting recipe gave no finished trial at any lr_scale; nothing to compare with")
    steps = []
    while remaining:
        tried = best_lr(evaluate(adopted, remaining, incumbent))
        if not tried:
            steps.append(Step(adopted, incumbent, [], None, None))
            break
        gain = welch(incumbent.values, tried[0].values)
        winner = tried[0].technique if gain.low > 0 else None  # the 95% interval of the gain lies above 0
        steps.append(Step(adopted, incumbent, tried, winner, gain))
        if winner is None:
            break
        adopted, incumbent = adopted + (winner,), tried[0]
        remaining.remove(winner)
    return steps


def adopted_of(steps: list[Step]) -> tuple[str, ...]:
    """The techniques adopted, in order."""
    return tuple(s.winner for s in steps if s.winner)
