"""Hyper-parameter search over the recipe, on Optuna: a study of trainings, each selected on a validation split.

The blog tuned its recipe "through greedy or grid search to account for synergies and interdependencies";
this module runs such a search on a user's own data, with Optuna (Akiba et al., "Optuna: A Next-generation
Hyperparameter Optimization Framework", KDD 2019) for the samplers, pruners and storages, and the project's
trainer for every trial. Nothing here samples or prunes by hand.

**Search space.** ``FIELD=v1,v2,...`` takes those values of a :class:`~fgvc_ref.recipe.Recipe` field (a grid,
or a categorical choice for a sampler); ``FIELD=lo:hi`` or ``FIELD=lo:hi:log`` a numeric range (a sampler:
``qmc`` scrambled Sobol, ``tpe``, ``random``). Every value and both ends of every range are checked by building
the recipe before anything runs.

**A trial** trains the stage's recipe with the trial's values once per seed ``0..K-1``, on the train split only
(:func:`~fgvc_ref.data.sources.load_train`: a search never reads the test split), with a stratified validation
split carved from it (``val_fraction``, 0.1 unless ``--set`` says otherwise). Its value is the mean over seeds
of the validation top-1 of the weights each run keeps (its EMA's when the recipe has one) at its last epoch.
Seed k's run lives in ``OUT/runs/<stage>-<hash>``, the hash of its resolved recipe, seed and data: the same
point and seed always train in the same folder, so a retried trial resumes there, exactly.

**Pruning** (``median``: Optuna's MedianPruner; ``sha``: SuccessiveHalvingPruner) sees the validation top-1
after every epoch, at step ``k * epochs + epoch`` for the k-th seed, so that trials are compared at the same
seed and epoch. A pruned trial stops at once; a non-finite loss (a diverging LR) prunes the trial too.

**Storage and workers.** Several workers are the same command started several times, on one machine or many.
The default storage is Optuna's journal file ``OUT/study.journal``, made for several processes sharing one
file (an SQLite file is not: it locks the whole database per write, and Optuna's maintainers do not recommend
it for parallel workers); ``--storage URL`` takes any database URL Optuna accepts, PostgreSQL for several
machines. Each worker records a heartbeat while it trains (Optuna's for a database; :class:`HeartbeatJournal`
adds them to the journal); a trial whose heartbeat is older than ``grace`` seconds is failed by whichever
worker looks next and enqueued again with the same values (Optuna's RetryFailedTrialCallback), to resume from
its runs' checkpoints. Grid points are enqueued once, when the study is created, and each is popped by one
worker only, so no point runs twice. Samplers propose under a study-wide lock (a file lock beside the journal
or an SQLite file, an advisory lock on PostgreSQL), seeded from ``(seed, trials so far)``: one worker with one
seed proposes the same trials every time, and concurrent workers never propose from the same state. The cap
``--trials N`` counts finished (complete or pruned) trials across all workers; a worker starts a new trial only
while finished, running and waiting trials are fewer than N.

``OUT/trials.json`` holds every trial (number, state, values, seeds, per-seed values, run folders, why it was
pruned or failed), rewritten after each trial, so that the study reads without Optuna.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import re
import statistics
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from fgvc_ref.data.cache import atomic_write
from fgvc_ref.recipe import Recipe, apply_overrides, as_dict

SAMPLERS = ("grid", "qmc", "tpe", "random")
PRUNERS = ("none", "median", "sha")
SPEC_KEY = "fgvc_ref.spec"  # the study's definition, a study user attribute: a worker with another definition is refused
HEARTBEAT = "fgvc_ref:heartbeat"


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ValueError("the search needs Optuna: pip install -e '.[sweep]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


# --- the search space ---------------------------------------------------------------------------


class Param(NamedTuple):
    """One searched field: a list of ``values``, or a range ``[low, high]`` (``log``: sampled on a log scale)."""

    field: str
    values: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False



def parse_param(text: str, base: Recipe) -> Param:
    """``FIELD=v1,v2,...`` or ``FIELD=lo:hi[:log]`` as a :class:`Param` of ``base``'s recipe; every value, and both ends
    of a range, must make a valid recipe (ValueError naming the field and the value otherwise)."""
    from fgvc_ref.recipe import _TYPES, _parse

    field, sep, raw = (s.strip() for s in text.partition("="))
    if not sep or not field:
        raise ValueError(f"--param {text!r}: expected FIELD=v1,v2,... or FIELD=lo:hi[:log]")
    if field not in _TYPES or field == "name":
        raise ValueError(f"--param {text!r}: unknown recipe field {field!r}; valid fields: {sorted(set(_TYPES) - {'name'})}")
    kind = _TYPES[field]
    if ":" in raw:
        parts = raw.split(":")
        if kind not in (int, float) or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise ValueError(f"--param {text!r}: a range is lo:hi or lo:hi:log, for a numeric field ({field} is {kind.__name__})")
        low, high = (_parse(field, p, kind) for p in parts[:2])
        log = len(parts) == 3
        if not low < high or (log and low <= 0):
            raise ValueError(f"--param {text!r}: a range needs lo < hi" + (", and lo > 0 on a log scale" if log else ""))
        param = Param(field, low=low, high=high, log=log)
        checked = (low, high)
    else:
        values = tuple(dict.fromkeys(_parse(field, v.strip(), kind) for v in raw.split(",") if v.strip()))
        if not values:
            raise ValueError(f"--param {text!r}: an empty grid; give at least one value")
        param, checked = Param(field, values=values), values
    for value in checked:
        try:
            apply_overrides(base, [f"{field}={value}"])
        except ValueError as e:
            raise ValueError(f"--param {text!r}: {value!r} is not allowed: {e}") from None
    return param


def suggest(trial, param: Param):
    """The trial's value of ``param`` (an enqueued trial's fixed value, else the sampler's proposal)."""
    if param.values is not None:
        return trial.suggest_categorical(param.field, list(param.values))
    if isinstance(param.low, int):
        return trial.suggest_int(param.field, param.low, param.high, log=param.log)
    return trial.suggest_float(param.field, param.low, param.high, log=param.log)


def grid_points(params: list[Param]) -> list[dict]:
    """Every combination of the params' values, in order (the first param varies slowest)."""
    import itertools

    if any(p.values is None for p in params):
        raise ValueError("the grid sampler takes lists of values (FIELD=v1,v2,...); a range (lo:hi) needs --sampler qmc, tpe or random")
    return [dict(zip([p.field for p in params], combo)) for combo in itertools.product(*(p.values for p in params))]


# --- the study: its storage, definition, sampler and pruner -------------------------------------


def _heartbeat_journal():
    """:class:`HeartbeatJournal`, defined on first use (Optuna is an optional dependency)."""
    global HeartbeatJournal
    if "HeartbeatJournal" in globals():
        return HeartbeatJournal
    from optuna.storages import JournalStorage
    from optuna.storages._heartbeat import BaseHeartbeat  # Optuna's heartbeat interface (RDBStorage implements it)
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    class HeartbeatJournal(JournalStorage, BaseHeartbeat):
        """Optuna's journal file storage with heartbeats: a running trial's worker writes the time into the trial's
        system attributes every ``interval`` seconds, and a trial silent for more than ``grace`` seconds is stale
        (failed, then retried by ``on_stale``), as RDBStorage does for a database. Clocks of workers on several
        machines must agree within ``grace``."""

        def __init__(self, path: Path, *, interval: int, grace: int, on_stale) -> None:
            super().__init__(JournalFileBackend(str(path)))
            self.interval, self.grace, self.on_stale = interval, grace, on_stale

        def record_heartbeat(self, trial_id: int) -> None:
            self.set_trial_system_attr(trial_id, HEARTBEAT, time.time())

        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            now = time.time()
            return [t._trial_id for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
                    if now - t.system_attrs.get(HEARTBEAT, t.datetime_start.timestamp()) > self.grace]

        def get_heartbeat_interval(self) -> int:
            return self.interval

        def get_heartbeat_stale_trial_callback(self):
            return self.on_stale

    return HeartbeatJournal


def redact(url: str) -> str:
    """A storage URL with its password hidden, for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str | None, out: Path, *, heartbeat: int):
    """The study's storage: the journal file in ``out`` (None), or the database at ``url``, both with heartbeats every
    ``heartbeat`` seconds, a grace of 6 heartbeats, and up to 3 retries of a stale trial. A database that cannot be
    reached is a ValueError naming it (its password hidden)."""
    import inspect

    optuna = _optuna()
    with warnings.catch_warnings():  # heartbeats and retries are "experimental" in Optuna, and were renamed in 4.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        Retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
        retry = Retry(max_retry=3)
        if url is None:
            out.mkdir(parents=True, exist_ok=True)
            return _heartbeat_journal()(out / "study.journal", interval=heartbeat, grace=6 * heartbeat, on_stale=retry)
        on_stale = ("heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage).parameters
                    else "failed_trial_callback")
        try:
            return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat, grace_period=6 * heartbeat, **{on_stale: retry},
                                              engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else None)
        except Exception as e:  # SQLAlchemy's errors for a refused connection, a bad URL, a missing driver
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"--storage {redact(url)}: cannot open it ({type(e).__name__}: {first[:300]})") from None


@contextlib.contextmanager
def study_lock(storage, out: Path, url: str | None):
    """A lock every worker of the study takes to create the study and to ask for a trial: a file lock beside the journal
    or the SQLite file, an advisory lock on PostgreSQL; none elsewhere (then concurrent samplers may propose alike)."""
    path = out / ".study.lock" if url is None else (Path(url.split("///", 1)[1] + ".lock") if url.startswith("sqlite:///") else None)
    if path is not None:
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        return
    if url.startswith("postgresql"):
        from sqlalchemy import text

        key = int.from_bytes(hashlib.sha256(b"fgvc_ref.sweep").digest()[:7], "big")
        with storage.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        return
    yield


def derived_seed(seed: int, count: int) -> int:
    """The sampler seed for the trial asked when the study holds ``count`` trials (independent of hash randomisation)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{count}".encode()).digest()[:4], "little")


def make_sampler(kind: str, params: list[Param], seed: int, count: int):
    """Optuna's sampler ``kind`` for the next trial (module docstring: seeded from ``(seed, count)``)."""
    optuna = _optuna()
    if kind == "grid":  # every point is enqueued at creation; the sampler only names the grid
        return optuna.samplers.GridSampler({p.field: list(p.values) for p in params}, seed=seed)
    if kind == "qmc":  # the Sobol sequence's seed stays fixed; the study counts the points drawn
        independent = optuna.samplers.RandomSampler(seed=derived_seed(seed, count))
        warnings.filterwarnings("ignore", "QMCSampler is experimental")
        return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed, independent_sampler=independent,
                                          warn_independent_sampling=False, warn_asynchronous_seeding=False)
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=derived_seed(seed, count))
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=derived_seed(seed, count))
    raise ValueError(f"--sampler must be one of {SAMPLERS}, got {kind!r}")


def make_pruner(kind: str, epochs: int):
    """Optuna's pruner ``kind``, never before the first epoch's value is in."""
    optuna = _optuna()
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if kind == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    raise ValueError(f"--pruner must be one of {PRUNERS}, got {kind!r}")


class Study(NamedTuple):
    study: object  # optuna.Study
    spec: dict  # the definition every worker must share
    url: str | None
    out: Path
    storage: object  # the storage made by open_storage (Optuna wraps a database's in a cache: study._storage is that wrapper)


def open_study(name: str, spec: dict, *, out: Path, url: str | None, heartbeat: int, enqueue: list[dict]) -> Study:
    """Create the study (its definition ``spec`` stored with it, ``enqueue``: the grid points, enqueued once) or join it;
    a study defined otherwise (another search space, stage, seeds, epochs, overrides or data) is refused, naming what
    differs, before anything runs."""
    optuna = _optuna()
    storage = open_storage(url, out, heartbeat=heartbeat)
    with study_lock(storage, out, url):
        try:  # join it (creating a study that exists would append to the journal)
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        found = study.user_attrs.get(SPEC_KEY)
        if found is None:
            study.set_user_attr(SPEC_KEY, spec)
            for point in enqueue:
                study.enqueue_trial(point)
        elif found != spec:
            differ = "; ".join(f"{k}: the study has {found.get(k)!r}, this command {spec.get(k)!r}" for k in sorted(set(found) | set(spec))
                               if found.get(k) != spec.get(k))
            raise ValueError(f"study {name!r} in {redact(url) if url else out / 'study.journal'} was created with another definition "
                             f"({differ}); give another --study name (or --out folder), or the same options")
    return Study(study, spec, url, out, storage)


# --- one trial ----------------------------------------------------------------------------------


def run_name(recipe: Recipe, seed: int, fingerprint: str) -> str:
    """A trial run's folder name: the stage and a hash of the resolved recipe, the seed and the data."""
    digest = hashlib.sha256(json.dumps([as_dict(recipe), seed, fingerprint], sort_keys=True).encode()).hexdigest()[:12]
    return f"{recipe.name}-{digest}-seed{seed}"


def validation_key(recipe: Recipe) -> str:
    """The logged number a trial is judged on: the validation top-1 of the weights the run keeps."""
    return ("ema_" if recipe.ema else "") + "val_acc"


def train_trial(trial, recipe: Recipe, data, *, seeds: list[int], out: Path, threads: int | str = "free",
                progress: Callable[[str], None] | None = None) -> float:
    """Train ``recipe`` once per seed for ``trial`` (module docstring) and return the mean validation top-1; reports
    every epoch to the pruner, and raises ``optuna.TrialPruned`` when it prunes or a loss is not finite."""
    optuna = _optuna()
    from fgvc_ref.train import NonFiniteLoss, train

    key, values, runs = validation_key(recipe), [], []
    for k, seed in enumerate(seeds):
        run = out / "runs" / run_name(recipe, seed, data.fingerprint)
        runs.append(str(run.relative_to(out)))
        trial.set_user_attr("runs", runs)

        def report(row: dict, k: int = k, seed: int = seed) -> None:
            trial.report(row[key], step=k * recipe.epochs + row["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at seed {seed}, epoch {row['epoch'] + 1}: validation top-1 {row[key]:.2f}%")

        try:
            summary = train(recipe, data, run, seed=seed, threads=threads, progress=False, on_epoch=report)
        except NonFiniteLoss as e:
            raise optuna.TrialPruned(f"non-finite loss (a diverging LR): {e}") from None
        values.append(summary["last_val_acc"])
        trial.set_user_attr("values", values)
        if progress:
            progress(f"trial {trial.number}, seed {seed}: validation top-1 {values[-1]:.2f}%")
    return statistics.fmean(values)


@contextlib.contextmanager
def heartbeat(storage, trial_id: int):
    """Record the trial's heartbeat every interval in a thread while the block runs (storages with heartbeats only)."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    if not is_heartbeat_enabled(storage):
        yield
        return
    stop = threading.Event()

    def beat():
        while True:
            storage.record_heartbeat(trial_id)
            if stop.wait(storage.get_heartbeat_interval()):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# --- a worker -----------------------------------------------------------------------------------


def work(s: Study, params: list[Param], objective: Callable, *, sampler: str, seed: int, pruner: str, cap: int, epochs: int,
         poll: float = 2.0, say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> dict:
    """One worker: take trials (an enqueued one first, else a new one while the cap allows) until the study is done,
    waiting while other workers' trials run (one of them may die and come back). ``objective(trial, values)`` runs a
    trial and returns its value. Returns the counts of trial states at the end."""
    optuna = _optuna()
    from optuna.trial import TrialState

    study = s.study
    study.pruner = make_pruner(pruner, epochs)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # fail_stale_trials: experimental since 2.9
    write_trials(s)
    while True:
        optuna.storages.fail_stale_trials(study)  # a dead worker's trial: failed, and enqueued again
        trials = study.get_trials(deepcopy=False)
        states = Counter(t.state for t in trials)
        finished = states[TrialState.COMPLETE] + states[TrialState.PRUNED]
        if finished >= cap:
            break
        may_start = states[TrialState.WAITING] or (sampler != "grid" and finished + states[TrialState.RUNNING] < cap)
        if not may_start:
            if not states[TrialState.RUNNING]:
                break
            time.sleep(poll)  # another worker's trial may still fail and come back
            continue
        with study_lock(s.storage, s.out, s.url), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Heartbeat of storage")  # ask() outside optimize(): heartbeat() below beats
            study.sampler = make_sampler(sampler, params, seed, len(trials))
            trial = study.ask()
            values = {p.field: suggest(trial, p) for p in params}
        retry_of = study._storage.get_trial_system_attrs(trial._trial_id).get("failed_trial")
        say(f"trial {trial.number}: {values}" + (f" (a retry of trial {retry_of})" if retry_of is not None else ""))
        _run(study, trial, values, objective, say)
        write_trials(s)
        say(progress_line(s))
    write_trials(s)
    return {state.name.lower(): n for state, n in Counter(t.state for t in study.get_trials(deepcopy=False)).items()}


def _run(study, trial, values: dict, objective: Callable, say: Callable[[str], None]) -> None:
    """Run one trial and tell the study how it ended; a trial that another worker already failed (this one was too slow
    to beat) is left as it is."""
    optuna = _optuna()
    from optuna.trial import TrialState

    try:
        with heartbeat(study._storage, trial._trial_id):
            value = objective(trial, values)
        outcome = dict(values=value)
    except optuna.TrialPruned as e:
        trial.set_user_attr("pruned_because", str(e))
        outcome = dict(state=TrialState.PRUNED)
    except (ValueError, RuntimeError, OSError) as e:  # a trial that cannot train is failed, and said; the others go on
        trial.set_user_attr("failed_because", f"{type(e).__name__}: {e}")
        say(f"trial {trial.number} failed: {type(e).__name__}: {e}")
        outcome = dict(state=TrialState.FAIL)
    try:
        study.tell(trial, **outcome)
    except (ValueError, RuntimeError) as e:  # failed meanwhile by another worker (a missed heartbeat)
        say(f"trial {trial.number}: not recorded ({e}); it was failed by another worker and is retried")


# --- what a study holds, for people and scripts -------------------------------------------------


def trial_rows(study) -> list[dict]:
    """Every trial as plain data: number, state, values searched, value, per-seed values, runs, and why it ended."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        seed_values = t.user_attrs.get("values", [])
        rows.append({"number": t.number, "state": t.state.name, "params": t.params or t.system_attrs.get("fixed_params", {}),
                     "value": t.value, "seed_values": seed_values,
                     "sd": statistics.stdev(seed_values) if len(seed_values) > 1 else None, "runs": t.user_attrs.get("runs", []),
                     "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())},
                     "pruned_because": t.user_attrs.get("pruned_because"), "failed_because": t.user_attrs.get("failed_because"),
                     "retry_of": t.system_attrs.get("failed_trial"),
                     "start": t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else None,
                     "end": t.datetime_complete.isoformat(timespec="seconds") if t.datetime_complete else None})
    return rows


def write_trials(s: Study) -> Path:
    """``OUT/trials.json``: the study's definition, its best trial and every trial (:func:`trial_rows`), atomically."""
    rows = trial_rows(s.study)
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    best = max(complete, key=lambda r: (r["value"], -r["number"])) if complete else None
    doc = {"study": s.study.study_name, "storage": redact(s.url) if s.url else "study.journal", "spec": s.spec,
           "best": best and {"number": best["number"], "params": best["params"], "value": best["value"]}, "trials": rows}
    path = s.out / "trials.json"
    s.out.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(json.dumps(doc, indent=1).encode()))
    return path


def progress_line(s: Study) -> str:
    """Trials done / running / pruned / failed / waiting, and the best so far."""
    rows = trial_rows(s.study)
    n = Counter(r["state"] for r in rows)
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    best = max(complete, key=lambda r: (r["value"], -r["number"])) if complete else None
    return (f"study {s.study.study_name}: {n['COMPLETE']} complete, {n['RUNNING']} running, {n['PRUNED']} pruned, {n['FAIL']} failed, "
            f"{n['WAITING']} waiting" + (f"; best {best['value']:.2f}% (trial {best['number']}: {best['params']})" if best else ""))



# --- the command ----------------------------------------------------------------------------------


def prepared(recipe: Recipe, epochs: int | None, sets: list[str]) -> Recipe:
    """``recipe`` as ``train`` resolves a stage (scaled to ``epochs``, then ``--set``), with a validation split to select
    on: ``val_fraction`` 0.1 unless ``--set`` gives another (0 is refused: a search would have nothing honest to select on)."""
    import dataclasses

    from fgvc_ref.recipe import scale_epochs

    recipe = apply_overrides(scale_epochs(recipe, epochs) if epochs is not None else recipe, list(sets))
    if any(item.split("=", 1)[0].strip() == "val_fraction" for item in sets):
        if recipe.val_fraction == 0:
            raise ValueError("a search selects on a validation split carved from train; val_fraction=0 leaves none (default 0.1)")
        return recipe
    return dataclasses.replace(recipe, val_fraction=0.1)


@contextlib.contextmanager
def registered(out: Path):
    """This worker, known to the others on this machine for as long as it runs (a file it holds a lock on)."""
    import os
    import socket

    folder = out / "workers"
    folder.mkdir(parents=True, exist_ok=True)
    me = folder / f"{socket.gethostname()}-{os.getpid()}"
    with open(me, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            me.unlink(missing_ok=True)


def local_workers(out: Path) -> int:
    """How many workers of this sweep run on this machine now (their files are locked; a dead one's is not, and goes)."""
    import socket

    alive = 0
    for path in (out / "workers").glob(f"{socket.gethostname()}-*"):
        try:
            with open(path) as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink(missing_ok=True)  # nobody holds it: its worker is gone
        except BlockingIOError:
            alive += 1
        except OSError:
            continue
    return max(1, alive)


def trial_threads(out: Path, threads: int | None) -> int | str:
    """The compute threads of a trial's runs: ``threads`` when given (``--threads``, ``OMP_NUM_THREADS``), else the
    project's free-core rule (:mod:`fgvc_ref.threads`) capped at this machine's cores shared out among its workers, so
    that workers started together do not each take every core."""
    import torch

    from fgvc_ref.threads import allowed_cpus

    if threads:
        return threads
    torch.set_num_threads(max(1, len(allowed_cpus()) // local_workers(out)))
    return "free"


def run_sweep(*, stage: str, params: list[str], data: str, out: Path | str, trials: int | None = None, seeds: int = 1,
              sampler: str | None = None, pruner: str = "none", storage: str | None = None, study: str | None = None,
              epochs: int | None = None, sets: list[str] = (), seed: int = 0, threads: int | None = None, heartbeat: int = 10,
              create_only: bool = False, verify_sources: bool = True,
              say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> dict:
    """``python -m fgvc_ref sweep``: check everything, create or join the study, and work on it until it is done (module
    docstring). Every bad input is a ValueError before anything is written or trained. Returns the trial state counts."""
    import dataclasses

    from fgvc_ref.data.sources import load_train

    from fgvc_ref.recipe import get_recipe

    out = Path(out)
    base = prepared(get_recipe(stage), epochs, list(sets))
    if not params:
        raise ValueError("give at least one --param FIELD=v1,v2,... or FIELD=lo:hi[:log]")
    parsed = [parse_param(p, base) for p in params]
    if len({p.field for p in parsed}) != len(parsed):
        raise ValueError(f"--param: each field once; got {[p.field for p in parsed]}")
    sampler = sampler or ("grid" if all(p.values is not None for p in parsed) else "qmc")
    points = grid_points(parsed) if sampler == "grid" else []
    make_sampler(sampler, parsed, seed, 0)  # an unknown sampler, early
    make_pruner(pruner, base.epochs)
    if sampler != "grid" and trials is None:
        raise ValueError(f"--sampler {sampler} needs --trials N (how many trials to finish)")
    if trials is not None and trials < 1:
        raise ValueError(f"--trials must be >= 1, got {trials}")
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    cap = min(trials or len(points), len(points)) if sampler == "grid" else trials
    loaded = load_train(data, verify_sources=verify_sources)  # the train split only, checked before anything is written
    spec = json.loads(json.dumps({"stage": stage, "recipe": as_dict(base), "params": [p._asdict() for p in parsed], "seeds": seeds,
                                  "sampler": sampler, "sampler_seed": seed, "data": loaded.name, "data_fingerprint": loaded.fingerprint}))
    s = open_study(study or stage, spec, out=out, url=storage, heartbeat=heartbeat, enqueue=points)
    if create_only:
        write_trials(s)
        say(f"study {s.study.study_name} ready ({len(points)} grid points enqueued)" if points else f"study {s.study.study_name} ready")
        return {}
    with registered(out):
        def objective(trial, values: dict) -> float:
            recipe = dataclasses.replace(base, **values)
            return train_trial(trial, recipe, loaded, seeds=list(range(seeds)), out=out, threads=trial_threads(out, threads), progress=say)

        return work(s, parsed, objective, sampler=sampler, seed=seed, pruner=pruner, cap=cap, epochs=base.epochs, say=say)


def run_greedy(*, stage: str, data: str, out: Path | str, seeds: int = 2, lr_factors: list[float] = (0.5, 1.0, 2.0),
               techniques: list[str] | None = None, pruner: str = "none",
               storage: str | None = None, study: str | None = None, epochs: int | None = None, sets: list[str] = (), seed: int = 0,
               threads: int | None = None, heartbeat: int = 10, verify_sources: bool = True,
               say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> dict:
    """``sweep --greedy``: the blog's greedy procedure (:mod:`fgvc_ref.greedy`) from ``stage``, each step a grid study
    ``<study>-step<k>`` over (technique, lr_scale) in the same storage, so that a rerun continues and several workers
    share the steps. The lr_scale grid is the incumbent's lr_scale times ``lr_factors`` (the starting recipe's at step 0).
    ``techniques``: the candidates (default: all of :data:`fgvc_ref.greedy.TECHNIQUES`).
    Writes ``OUT/greedy.json``, ``OUT/greedy.md`` and ``OUT/chosen_recipe.json``; returns greedy.json."""
    import dataclasses

    from fgvc_ref.data.sources import load_train
    from fgvc_ref.greedy import NONE, TECHNIQUES, Tried, adopted_of, compose, greedy
    from fgvc_ref.recipe import get_recipe
    from optuna.trial import TrialState

    out, start = Path(out), get_recipe(stage)
    base = prepared(start, epochs, list(sets))
    if seeds < 2:
        raise ValueError(f"--greedy adopts a technique by Welch's test over seeds: --seeds must be >= 2, got {seeds}")
    techniques = list(techniques) if techniques else list(TECHNIQUES)
    compose(start, tuple(techniques))  # unknown techniques, early
    if not lr_factors or any(not f > 0 for f in lr_factors):
        raise ValueError(f"--lr-factors must be numbers > 0, got {list(lr_factors)}")
    make_pruner(pruner, base.epochs)
    loaded = load_train(data, verify_sources=verify_sources)
    name, steps_run = study or f"greedy-{stage}", []

    def recipe_of(adopted: tuple[str, ...], values: dict) -> Recipe:
        extra = () if values["technique"] == NONE else (values["technique"],)
        return dataclasses.replace(prepared(compose(start, adopted + extra), epochs, list(sets)), lr_scale=values["lr_scale"])

    def evaluate(adopted: tuple[str, ...], candidates: list[str], incumbent: Tried | None) -> list[Tried]:
        k = len(steps_run)
        centre = incumbent.lr_scale if incumbent else base.lr_scale
        scales = tuple(dict.fromkeys(float(f"{centre * f:.6g}") for f in lr_factors))
        params = [Param("technique", values=tuple(candidates)), Param("lr_scale", values=scales)]
        spec = json.loads(json.dumps({"greedy": True, "stage": stage, "step": k, "adopted": list(adopted), "params": [p._asdict() for p in params],
                                      "recipe": as_dict(base), "seeds": seeds, "data": loaded.name, "data_fingerprint": loaded.fingerprint}))
        s = open_study(f"{name}-step{k}", spec, out=out, url=storage, heartbeat=heartbeat, enqueue=grid_points(params))
        say(f"greedy step {k}: adopted {list(adopted) or 'nothing yet'}; trying {candidates} at lr_scale {list(scales)}")
        with registered(out):
            work(s, params, lambda trial, values: train_trial(trial, recipe_of(adopted, values), loaded, seeds=list(range(seeds)), out=out,
                                                              threads=trial_threads(out, threads), progress=say),
                 sampler="grid", seed=seed, pruner=pruner, cap=len(candidates) * len(scales), epochs=base.epochs, say=say)
        steps_run.append((s, scales))
        return [Tried(t.params["technique"], t.params["lr_scale"], t.user_attrs["values"])
                for t in s.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]

    steps = greedy(evaluate, techniques)
    adopted, last = adopted_of(steps), steps[-1]
    best = last.tried[0] if last.winner else last.incumbent  # the recipe with every adopted technique, at its best lr_scale
    chosen = dataclasses.replace(prepared(compose(start, adopted), epochs, list(sets)), lr_scale=best.lr_scale)
    doc = {"stage": stage, "seeds": seeds, "lr_factors": list(lr_factors), "data": loaded.name, "adopted": list(adopted),
           "chosen_recipe": as_dict(chosen), "default_recipe": as_dict(base), "storage": redact(storage) if storage else "study.journal",
           "steps_studies": [{"study": s.study.study_name, "lr_scales": list(scales)} for s, scales in steps_run],
           "steps": [_step_doc(k, st, *steps_run[k]) for k, st in enumerate(steps, 1)]}
    atomic_write(out / "greedy.json", lambda f: f.write(json.dumps(doc, indent=1).encode()))
    atomic_write(out / "chosen_recipe.json", lambda f: f.write(json.dumps(as_dict(chosen), indent=1).encode()))
    atomic_write(out / "greedy.md", lambda f: f.write(greedy_table(doc).encode()))
    say(f"greedy: adopted {list(adopted) or 'nothing'}; the chosen recipe is in {out / 'chosen_recipe.json'}")
    return doc


def _step_doc(number: int, step, s: Study, scales: tuple) -> dict:
    tried = lambda t: {"technique": t.technique, "lr_scale": t.lr_scale, "values": t.values, "mean": t.mean,
                       "sd": statistics.stdev(t.values) if len(t.values) > 1 else None}
    gain = step.gain
    return {"step": number, "study": s.study.study_name, "lr_scales": list(scales), "adopted_before": list(step.adopted_before),
            "incumbent": tried(step.incumbent),
            "tried": [tried(t) for t in step.tried], "winner": step.winner,
            "gain": gain and {"diff": gain.diff, "low": gain.low, "high": gain.high, "p": gain.p}}


def greedy_table(doc: dict) -> str:
    """The user's own version of the blog's table: each step's adopted technique, its lr_scale, validation top-1 and
    gain with Welch's interval and p, and the candidates it beat or that were rejected."""
    lines = [f"# Greedy search from `{doc['stage']}` on {doc['data']}", "",
             f"Validation top-1 (mean +- sd over {doc['seeds']} seeds), each technique at its best lr_scale of the incumbent's "
             f"times {doc['lr_factors']}; "
             "a technique is adopted when Welch's 95% interval of its gain over the incumbent lies above 0.", "",
             "| step | incumbent | candidate | lr_scale | validation top-1 | gain over the incumbent [95% interval] | p | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for st in doc["steps"]:
        inc = " + ".join([doc["stage"], *st["adopted_before"]])
        for k, t in enumerate(st["tried"]):
            sd = f" +- {t['sd']:.2f}" if t["sd"] is not None else ""
            if k == 0 and st["gain"]:
                g = st["gain"]
                gain, p = f"{g['diff']:+.2f} [{g['low']:+.2f}, {g['high']:+.2f}]", ("< 0.001" if g["p"] < 0.001 else f"{g['p']:.3f}")
                verdict = "adopted" if st["winner"] else "best, not adopted: its gain is not distinguishable from 0"
            else:
                gain, p, verdict = f"{t['mean'] - st['incumbent']['mean']:+.2f}", "", "not the best"
            lines.append(f"| {st['step']} | {inc} ({st['incumbent']['mean']:.2f}) | {t['technique']} | {t['lr_scale']:g} | "
                         f"{t['mean']:.2f}{sd} | {gain} | {p} | {verdict} |")
    lines += ["", f"Adopted, in order: {', '.join(doc['adopted']) or 'nothing'}."]
    return "\n".join(lines) + "\n"
