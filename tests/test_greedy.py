"""fgvc_ref.greedy: the procedure on a scripted objective (planted gains and noise), the techniques, and the command."""

import json
import math
import random
import re

import pytest

from fgvc_ref.greedy import NONE, TECHNIQUES, Tried, adopted_of, best_lr, compose, greedy
from fgvc_ref.recipe import BASE, STAGES


def scripted(gains: dict, *, noise: float, seeds: int = 3, lr_best: dict | None = None):
    """An objective with planted truths: validation top-1 = 50 + the gains of the adopted techniques and the candidate,
    minus 1 point per octave away from the candidate's best lr_scale (1 unless ``lr_best`` says), plus Gaussian noise
    drawn from a generator seeded by the (adopted, candidate, lr_scale, seed) it measures, so reruns agree."""
    calls = []

    def evaluate(adopted, candidates, incumbent):
        calls.append((tuple(adopted), tuple(candidates), incumbent.lr_scale if incumbent else None))
        centre = incumbent.lr_scale if incumbent else 1.0
        rows = []
        for t in candidates:
            for lr in (centre / 2, centre, centre * 2):
                truth = 50 + sum(gains.get(a, 0) for a in adopted) + gains.get(t, 0) - abs(math.log2(lr / (lr_best or {}).get(t, 1.0)))
                draws = [random.Random(f"{adopted}|{t}|{lr}|{s}").gauss(0, noise) for s in range(seeds)]
                rows.append(Tried(t, lr, [truth + d for d in draws]))
        return rows

    return evaluate, calls


def test_greedy_adopts_exactly_the_planted_techniques_in_the_order_of_their_gains():
    gains = {"trivialaugment": 4.0, "cosine": 1.5, "label_smoothing": -1.0}  # the rest: no effect
    evaluate, calls = scripted(gains, noise=0.3)
    steps = greedy(evaluate)
    assert adopted_of(steps) == ("trivialaugment", "cosine")
    assert [s.winner for s in steps] == ["trivialaugment", "cosine", None]  # the third step finds nothing real and stops
    assert steps[-1].gain.low <= 0 < steps[0].gain.low and steps[1].gain.low > 0
    assert calls[0] == ((), (NONE,), None)  # the starting recipe, its LR tuned first
    assert calls[1][0] == () and set(calls[1][1]) == set(TECHNIQUES)  # every technique tried on top of it
    assert calls[2][0] == ("trivialaugment",) and "trivialaugment" not in calls[2][1]


def test_a_gain_smaller_than_the_noise_is_not_adopted():
    evaluate, _ = scripted({"ema": 0.5}, noise=3.0)
    steps = greedy(evaluate)
    assert adopted_of(steps) == () and steps[0].winner is None and steps[0].gain.low <= 0


def test_the_lr_grid_follows_the_incumbent_so_a_technique_that_wants_a_higher_lr_reaches_it():
    """label smoothing planted with its best lr_scale at 2 (the blog's LR jump): adopted, at lr_scale 2; the next step's
    grid is centred there."""
    evaluate, calls = scripted({"label_smoothing": 3.0}, noise=0.2, lr_best={"label_smoothing": 2.0})
    steps = greedy(evaluate)
    assert steps[0].winner == "label_smoothing" and steps[0].tried[0].lr_scale == 2.0
    assert calls[2][2] == 2.0


def test_best_lr_takes_each_techniques_best_mean_and_orders_ties_by_the_recipe():
    rows = [Tried("cosine", 1.0, [50.0, 52.0]), Tried("cosine", 2.0, [53.0, 53.0]), Tried("ema", 1.0, [53.0, 53.0]), Tried("ema", 0.5, [])]
    best = best_lr(rows)
    assert [(t.technique, t.lr_scale) for t in best] == [("cosine", 2.0), ("ema", 1.0)]


def test_the_techniques_are_the_recipes_stage_deltas_composed_in_the_recipes_order():
    assert list(TECHNIQUES) == list(STAGES)[1:]
    assert TECHNIQUES["cosine"] == {"schedule": "cosine"} and TECHNIQUES["label_smoothing"] == {"label_smoothing": 0.1}
    for stage, recipe in STAGES.items():  # adopting the first k techniques rebuilds stage k, but for the LR jump left to tuning
        k = list(STAGES).index(stage)
        built = compose(BASE, tuple(list(TECHNIQUES)[:k]))
        expected = {**vars(recipe), "name": built.name, "lr": 0.1 if k >= 4 else recipe.lr}
        assert vars(built) == expected
    assert compose(BASE, ("cosine", "large_batch_warmup")).schedule == "cosine"  # cosine replaces StepLR in either order
    assert compose(BASE, ("ema", "cosine")).name == "base+cosine+ema"
    with pytest.raises(ValueError, match="unknown technique"):
        compose(BASE, ("mixup",))


@pytest.mark.slow
def test_the_greedy_command_writes_its_table_and_a_recipe_train_takes(cache, tmp_path, capsys):
    pytest.importorskip("optuna")
    from fgvc_ref.cli import main
    from runs import TINY

    out = tmp_path / "g"
    args = ["sweep", "--greedy", "--out", str(out), "--cache", str(cache), "--epochs", "2", "--seeds", "2", "--lr-factors", "0.5,1",
            "--techniques", "cosine,random_erasing", "--threads", "1", *[a for s in [*TINY, "path=fast"] for a in ("--set", s)]]
    assert main(args) == 0
    doc = json.loads((out / "greedy.json").read_text())
    assert doc["steps"][0]["adopted_before"] == [] and {t["technique"] for t in doc["steps"][0]["tried"]} <= {"cosine", "random_erasing"}
    assert doc["adopted"] == [s["winner"] for s in doc["steps"] if s["winner"]]
    assert "| step | incumbent | candidate |" in (out / "greedy.md").read_text()
    for step in doc["steps"]:  # each step's grid: the incumbent's lr_scale and half of it
        assert step["lr_scales"] == [step["incumbent"]["lr_scale"] / 2, step["incumbent"]["lr_scale"]]
    chosen = json.loads((out / "chosen_recipe.json").read_text())
    assert chosen["name"] == "+".join(["base", *[t for t in TECHNIQUES if t in doc["adopted"]]])
    capsys.readouterr()
    assert main(args) == 0  # again: every step's study is complete, so nothing trains, and the same result comes out
    again = capsys.readouterr().err
    assert "greedy step 0" in again and not re.search(r"^trial \d+: ", again, re.M)
    assert json.loads((out / "greedy.json").read_text())["adopted"] == doc["adopted"]
