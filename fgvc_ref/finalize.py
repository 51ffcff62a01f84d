"""After a search: train its choice and the stage's default on all of train, compare them once on test, report.

A search (:mod:`fgvc_ref.sweep`, :mod:`fgvc_ref.greedy`) selects on a validation split and never reads the
test split; its winner's validation number is biased upward (it is the largest of many noisy means). So the
honest comparison is made afresh: the chosen recipe and the stage's default recipe (the same ``--epochs`` and
``--set``) are each trained on the whole train split with seeds ``0..K-1``, for the recipe's epochs with early
stopping off (stopping would need a validation split or the test split to select on), and each run is
evaluated on the test split once, after training (:func:`fgvc_ref.evaluate.evaluate_run`). Welch's test
(:mod:`fgvc_ref.stats`) then says whether the winner is really better.

``OUT/report.md`` holds the trials table (values searched, validation mean and sd over seeds, state), Optuna's
parameter importances, the optimisation history and per-parameter plots (``OUT/report/*.png``), the chosen
recipe (``OUT/chosen_recipe.json``, which ``train --recipe`` takes) and the test comparison.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from fgvc_ref.data.cache import atomic_write
from fgvc_ref.recipe import Recipe, as_dict, recipe_from_dict


def choice(out: Path, storage: str | None = None) -> tuple[Recipe, Recipe, list]:
    """The chosen recipe, the default it is compared with, and the Optuna studies of the search in ``out``: a greedy
    search's result (``greedy.json``), else the best complete trial of the study that ``trials.json`` names."""
    from fgvc_ref.sweep import _optuna, open_storage

    greedy = out / "greedy.json"
    trials = out / "trials.json"
    if greedy.is_file():
        doc = json.loads(greedy.read_text())
        optuna = _optuna()
        store = open_storage(storage, out, heartbeat=10)
        studies = [optuna.load_study(study_name=s["study"], storage=store) for s in doc["steps_studies"]]
        return recipe_from_dict(doc["chosen_recipe"]), recipe_from_dict(doc["default_recipe"]), studies
    if not trials.is_file():
        raise ValueError(f"{out}: no search here (neither greedy.json nor trials.json); run `python -m fgvc_ref sweep` first")
    doc = json.loads(trials.read_text())
    if doc["best"] is None:
        raise ValueError(f"{trials}: no trial of study {doc['study']!r} completed yet; run the sweep until one does")
    if doc["storage"] != "study.journal" and storage is None:
        raise ValueError(f"study {doc['study']!r} lives in {doc['storage']}: give the same --storage URL")
    optuna = _optuna()
    study = optuna.load_study(study_name=doc["study"], storage=open_storage(storage, out, heartbeat=10))
    default = recipe_from_dict(doc["spec"]["recipe"])
    return replace(default, **doc["best"]["params"]), default, [study]


def run_finalize(*, out: Path | str, data: str, seeds: int = 3, storage: str | None = None, threads: int | str = "free",
                 verify_sources: bool = True, command: str | None = None,
                 say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> dict:
    """``sweep --finalize`` (module docstring): trains, evaluates on test once, writes ``OUT/report.md``; returns its data."""
    from fgvc_ref.data.sources import load_train
    from fgvc_ref.evaluate import evaluate_run
    from fgvc_ref.stats import welch
    from fgvc_ref.train import train

    out = Path(out)
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    chosen, default, studies = choice(out, storage)
    loaded = load_train(data, verify_sources=verify_sources)
    atomic_write(out / "chosen_recipe.json", lambda f: f.write(json.dumps(as_dict(chosen), indent=1).encode()))
    test: dict[str, list[float]] = {}
    for name, recipe in (("default", default), ("chosen", chosen)):
        fixed = replace(recipe, val_fraction=0.0, patience=0)
        test[name] = []
        for seed in range(seeds):
            run = out / "final" / name / f"seed{seed}"
            say(f"finalize: {name} recipe ({recipe.name}), seed {seed}: training on the whole train split")
            train(fixed, loaded, run, seed=seed, threads=threads, progress=False)
            result = evaluate_run(run, data, out=run / "test", verify_sources=verify_sources)
            test[name].append(result["top1"])
            say(f"finalize: {name}, seed {seed}: test top-1 {result['top1']:.2f}%")
    gain = welch(test["default"], test["chosen"]) if seeds >= 2 else None
    result = {"chosen_recipe": as_dict(chosen), "default_recipe": as_dict(default), "seeds": list(range(seeds)), "test_top1": test,
              "gain": gain and {"diff": gain.diff, "low": gain.low, "high": gain.high, "p": gain.p, "distinguishable": gain.distinguishable},
              "date": time.strftime("%Y-%m-%d"), "command": command}
    atomic_write(out / "final.json", lambda f: f.write(json.dumps(result, indent=1).encode()))
    report = render(out, result, studies)
    say(f"finalize: report in {report}")
    return result


def importances(study) -> dict[str, float] | str:
    """Optuna's parameter importances (fANOVA) over the complete trials, or why they cannot be computed."""
    import optuna

    try:
        return dict(optuna.importance.get_param_importances(study))
    except (ValueError, RuntimeError) as e:
        return f"not computed: {e}"


def plots(studies: list, folder: Path) -> list[Path]:
    """``history.png`` (each complete trial's value by its order, the running best, pruned trials marked) and one
    ``param-<name>.png`` per parameter (value against the parameter); none without matplotlib."""
    from optuna.trial import TrialState

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    trials = [t for s in studies for t in s.get_trials(deepcopy=False)]
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    written = []
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(len(done)), [t.value for t in done], "o", label="complete trial")
    ax.plot(range(len(done)), [max(t.value for t in done[: k + 1]) for k in range(len(done))], "-", label="best so far")
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    if pruned:
        ax.plot([len(done)] * len(pruned), [t.intermediate_values[max(t.intermediate_values)] for t in pruned], "x", label="pruned (last value)")
    ax.set_xlabel("complete trial, in order")
    ax.set_ylabel("validation top-1, %")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "history.png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    written.append(folder / "history.png")
    for name in sorted({k for t in done for k in t.params}):
        xs = [t.params[name] for t in done if name in t.params]
        ys = [t.value for t in done if name in t.params]
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs):
            ax.plot(xs, ys, "o")
            if min(xs) > 0 and max(xs) / min(xs) >= 8:
                ax.set_xscale("log")
        else:
            labels = sorted({str(x) for x in xs})
            ax.plot([labels.index(str(x)) for x in xs], ys, "o")
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
        ax.set_xlabel(name)
        ax.set_ylabel("validation top-1, %")
        fig.tight_layout()
        fig.savefig(folder / f"param-{name}.png", dpi=100, metadata={"Software": None})
        plt.close(fig)
        written.append(folder / f"param-{name}.png")
    return written


def render(out: Path, result: dict, studies: list) -> Path:
    """``OUT/report.md`` from ``result`` (:func:`run_finalize`) and the search's studies."""
    from fgvc_ref.sweep import trial_rows

    lines = [f"# Search in `{out}`: the choice against the default, on test", "",
             f"- Date {result['date']}; command: `{result['command'] or 'not recorded'}`",
             "- The search selected on a validation split carved from train; it never read the test split. Both recipes below "
             "were then trained on the whole train split (early stopping off) and evaluated on test once.", "",
             "## On test", "", "| recipe | seeds | test top-1 per seed | mean +- sd |", "|---|---|---|---|"]
    for name in ("default", "chosen"):
        values = result["test_top1"][name]
        sd = f" +- {statistics.stdev(values):.2f}" if len(values) > 1 else ""
        lines.append(f"| {name} (`{result[name + '_recipe']['name']}`) | {len(values)} | {', '.join(f'{v:.2f}' for v in values)} | "
                     f"{statistics.fmean(values):.2f}{sd} |")
    g = result["gain"]
    lines += ["", (f"Chosen minus default: {g['diff']:+.2f} points, Welch's 95% interval [{g['low']:+.2f}, {g['high']:+.2f}], p = "
                   f"{'< 0.001' if g['p'] < 0.001 else format(g['p'], '.3f')}: "
                   + ("a real gain." if g["distinguishable"] and g["diff"] > 0 else "not distinguishable from no gain at these seeds."
                      if not g["distinguishable"] else "the chosen recipe is worse."))
              if g else "Welch's test needs 2 seeds a side: run --finalize with --seeds 2 or more.", "",
              "Chosen recipe (`chosen_recipe.json`; `python -m fgvc_ref train --recipe chosen_recipe.json ...` takes it):", "",
              "| field | default | chosen |", "|---|---|---|"]
    lines += [f"| {k} | {result['default_recipe'][k]!r} | {v!r} |" for k, v in result["chosen_recipe"].items() if result["default_recipe"][k] != v]
    for study in studies:
        rows = trial_rows(study)
        lines += ["", f"## Study `{study.study_name}`: {len(rows)} trials", "",
                  "| trial | state | values | validation top-1 per seed | mean +- sd | note |", "|---|---|---|---|---|---|"]
        for r in rows:
            vals = ", ".join(f"{v:.2f}" for v in r["seed_values"])
            mean = f"{r['value']:.2f}" + (f" +- {r['sd']:.2f}" if r["sd"] is not None else "") if r["value"] is not None else ""
            note = r["pruned_because"] or r["failed_because"] or (f"retry of trial {r['retry_of']}" if r["retry_of"] is not None else "")
            lines.append(f"| {r['number']} | {r['state'].lower()} | {r['params']} | {vals} | {mean} | {note} |")
        imp = importances(study)
        lines += ["", "Parameter importances (Optuna, fANOVA): " + (", ".join(f"{k} {v:.2f}" for k, v in imp.items()) if isinstance(imp, dict) else imp)]
    pictures = plots(studies, out / "report")
    lines += [""] + [f"![{p.stem}](report/{p.name})" for p in pictures]
    path = out / "report.md"
    atomic_write(path, lambda f: f.write(("\n".join(lines) + "\n").encode()))
    return path
