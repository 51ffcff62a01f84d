"""fgvc_ref.train: every stage end to end, both paths, variants, DDP, bad input (resume and faults: test_reliability_*)."""

import json
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fgvc_ref.cli import main
from fgvc_ref.data.sources import load_data
from fgvc_ref.recipe import STAGES, apply_overrides
from fgvc_ref.train import train
from runs import ROOT, TINY, children, final_state, history, tiny

# --- every stage, end to end -------------------------------------------------------------------


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_stage_trains_and_logs_its_recipe(stage, cache, tmp_path):
    """LR per epoch = the stage's schedule; EMA decay = torchvision's adjustment; policy as the stage says."""
    recipe = tiny(stage, 3, "path=fast")
    summary = train(recipe, load_data(cache), tmp_path, seed=0, device="cpu", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows] == recipe.lrs()
    assert all(r["policy"] == STAGES[stage].policy and r["recipe"] == json.loads(json.dumps(vars(recipe))) for r in rows)
    assert summary["reported"] == ("ema" if STAGES[stage].ema else "raw") and summary["epochs_run"] == 3
    if recipe.ema:
        assert all(r["ema_decay"] == recipe.ema_update_decay() and "ema_test_acc" in r for r in rows)
    run_recipe = json.loads((tmp_path / "recipe.json").read_text())
    assert run_recipe["name"] == stage and run_recipe["path"] == "fast"
    env = json.loads((tmp_path / "env.json").read_text())
    assert {"torch", "torchvision", "cuda", "cudnn", "gpu", "tf32_matmul", "deterministic"} <= set(env)


@pytest.mark.parametrize("workers", [0, 2])
def test_reference_path_runs_with_and_without_workers(workers, cache, tmp_path):
    recipe = tiny("random_erasing", 2, "path=reference", f"workers={workers}")
    summary = train(recipe, load_data(cache), tmp_path, seed=1, device="cpu", progress=False)
    assert summary["path"] == "reference" and summary["epochs_run"] == 2


def test_mixup_cutmix_variant_and_validation_split_run(cache, tmp_path):
    recipe = apply_overrides(tiny("ema", 2, "path=fast"), ["mixup_alpha=0.2", "cutmix_alpha=1.0", "val_fraction=0.25"])
    train(recipe, load_data(cache), tmp_path, seed=0, device="cpu", progress=False)
    rows = history(tmp_path)
    assert all("val_acc" in r and "ema_val_acc" in r for r in rows)


def test_early_stopping_selects_on_the_ema_when_there_is_one(cache, tmp_path, monkeypatch):
    """Scripted accuracies: the raw model improves every epoch, the EMA worsens. Selection on the EMA (the reported
    model) with patience 1 stops after epoch 1; selecting on the raw model would run all 5 epochs."""
    import fgvc_ref.train as trainer

    calls = {"raw": 0, "ema": 0}

    def scripted(model, criterion, images, labels, **kw):
        kind = "ema" if not next(model.parameters()).requires_grad else "raw"
        calls[kind] += 1
        return {"loss": 1.0, "acc": 10.0 * calls["raw"] if kind == "raw" else 50.0 - 10.0 * calls["ema"]}

    monkeypatch.setattr(trainer, "evaluate", scripted)
    summary = train(tiny("ema", 5, "patience=1"), load_data(cache), tmp_path, seed=0, device="cpu", progress=False)
    assert summary["epochs_run"] == 2 and summary["early_stopped"] and summary["selected_epoch"] == 0
    rows = history(tmp_path)
    assert [r["ema_test_acc"] for r in rows] == [40.0, 30.0] and rows[-1]["early_stop"]


def test_a_finished_run_keeps_its_final_weights_and_drops_the_training_state(cache, tmp_path, capsys):
    """final.pt holds the last checkpoint's raw and EMA weights as plain state dicts; the checkpoints go unless kept;
    running the finished run again returns its summary without training, and a changed recipe is refused."""
    from fgvc_ref.checkpoint import list_checkpoints, load_checkpoint

    recipe, data = tiny("ema", 2, "path=fast"), load_data(cache)
    kept = train(recipe, data, tmp_path / "kept", seed=0, device="cpu", progress=False, keep_checkpoints=True)
    summary = train(recipe, data, tmp_path / "run", seed=0, device="cpu", progress=False)
    timing = ("train_s", "mean_img_per_s")
    assert {k: v for k, v in summary.items() if k not in timing} == {k: v for k, v in kept.items() if k not in timing}
    assert not list_checkpoints(tmp_path / "run") and not list((tmp_path / "run").glob("*.sha256"))
    final = torch.load(tmp_path / "run" / "final.pt", weights_only=True)
    last, _ = load_checkpoint(tmp_path / "kept")
    assert all(torch.equal(final["model"][k], last["model"][k]) for k in last["model"])
    assert all(torch.equal(final["ema"]["module"][k], last["ema"]["module"][k]) for k in last["ema"]["module"])
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"final.pt", "summary.json", "metrics.jsonl", "recipe.json", "env.json", ".lock"}
    assert train(recipe, data, tmp_path / "run", seed=0, device="cpu", progress=True) == summary
    assert "finished already" in capsys.readouterr().err
    with pytest.raises(ValueError, match="refusing to resume a different run"):
        train(apply_overrides(recipe, ["lr=0.5"]), data, tmp_path / "run", seed=0, device="cpu", progress=False)
    train(recipe, data, tmp_path / "kept", seed=0, device="cpu", progress=False)  # a rerun without the flag tidies up
    assert not list_checkpoints(tmp_path / "kept")


# --- exact resume -----------------------------------------------------------------------------


def test_bad_input_is_reported_before_any_training(cache, tmp_path, capsys):
    base = ["train", "--cache", str(cache), "--out", str(tmp_path / "r")]
    assert main([*base, "--stage", "nope"]) == 2
    assert "valid stages: ['base'" in capsys.readouterr().err
    assert main([*base, "--stage", "ema", "--set", "lr=fast"]) == 2
    assert "Recipe.lr must be float" in capsys.readouterr().err
    assert main([*base, "--stage", "ema", "--set", "colour=red"]) == 2
    assert "unknown recipe field 'colour'" in capsys.readouterr().err
    assert main(["train", "--stage", "ema", "--cache", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert "not a prepared cache folder" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


# --- DDP --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_process_gloo_run_matches_single_process_with_the_same_global_batch(cache, tmp_path):
    """tiny_cnn has no BatchNorm and policy 'none' draws nothing, so the only difference is the order of
    the float sums in the gradient all-reduce (and the per-rank mean then average, equal here since the
    two halves of every global batch have the same size): a few ulps per step, so 1e-5 after 3 epochs.
    Every process computes with one thread (OMP_NUM_THREADS=1): left to itself, the single run would take the cores
    free at its start, and another thread count sums in another order too, so the result would depend on the load.
    The rendezvous is --standalone: its store binds a port of its own choosing and keeps it (a port found free here
    and then released could be taken by another process before the launcher binds it)."""
    common = ["--stage", "cosine", "--cache", str(cache), "--seed", "2", "--epochs", "3", "--quiet",
              *[a for s in [*TINY, "path=fast", "policy=none", "lr=0.05"] for a in ("--set", s)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "fgvc_ref", "train", *common, "--set", "batch_size=8", "--out", str(tmp_path / "one")],
                            cwd=ROOT, capture_output=True, text=True, env=env)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "fgvc_ref", "train", *common, "--set", "batch_size=4", "--device", "cpu", "--out", str(tmp_path / "two")],
                         cwd=ROOT, capture_output=True, text=True, env=env)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a, b = final_state(tmp_path / "one")["model"], final_state(tmp_path / "two")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-5)
    assert json.loads((tmp_path / "two" / "recipe.json").read_text())["world_size"] == 2


def test_eval_batches_resize_to_the_training_size_and_crop_the_given_boxes():
    """Test images stored at another size are resized (antialiased) to the training size; validation images use their
    evaluation boxes; images already at the size pass through untouched."""
    from fgvc_ref.train import eval_batches
    from fgvc_ref.transforms import normalize, resized_crop_batch

    x = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    as_is = torch.cat([b for b, _ in eval_batches(x, 16, 2, torch.device("cpu"))])
    assert torch.equal(as_is, normalize(x.float() / 255))
    up = torch.cat([b for b, _ in eval_batches(x, 20, 2, torch.device("cpu"))])
    assert up.shape == (5, 3, 20, 20)
    assert torch.equal(up, normalize(resized_crop_batch(x, torch.tensor([[0, 0, 16, 16]] * 5), 20).float() / 255))
    boxes = torch.tensor([[2, 3, 10, 10]] * 5)
    cropped = torch.cat([b for b, _ in eval_batches(x, 16, 2, torch.device("cpu"), boxes)])
    assert torch.equal(cropped, normalize(resized_crop_batch(x, boxes, 16).float() / 255))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("stage", ["trivialaugment", "ema", "ema+mixup_cutmix"])
def test_cuda_an_epoch_of_the_fast_path_makes_no_host_sync(stage, cache, tmp_path):
    """docs/performance.md: no host sync inside an epoch. Every step of each epoch runs under CUDA's sync debug mode
    "error" (train(sync_debug=True)), which turns any synchronisation into an exception; the epoch ends read the totals."""
    from fgvc_ref.recipe import get_recipe, scale_epochs

    recipe = apply_overrides(scale_epochs(get_recipe(stage), 2), TINY)
    summary = train(recipe, load_data(cache), tmp_path / "run", seed=0, device="cuda", progress=False, sync_debug=True)
    assert summary["epochs_run"] == 2 and summary["path"] == "fast"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_sync_debug_catches_a_sync_in_the_loop(cache, tmp_path, monkeypatch):
    """The check above has power: a .item() slipped into the step is caught."""
    import fgvc_ref.train as T

    real = T.train_step
    monkeypatch.setattr(T, "train_step", lambda *a, **k: (lambda out: (out[0].item(), out)[1])(real(*a, **k)))
    with pytest.raises(RuntimeError, match="synchroniz"):
        train(tiny("base", 1), load_data(cache), tmp_path / "run", seed=0, device="cuda", progress=False, sync_debug=True)


# --- validation split, the EMA's validation accuracy, ties ------------------------------------------


@pytest.mark.parametrize("path", ["fast", "reference"])
def test_validation_images_are_never_trained_on(path, cache, tmp_path, monkeypatch):
    """With val_fraction, the images fed to the augmentation (all of training's) and the validation images are disjoint
    by content, and together they are the train split: no leak, nothing lost."""
    import fgvc_ref.train as T
    from fgvc_ref.train import split_validation

    data = load_data(cache)
    key = lambda x: bytes(x.contiguous().numpy())
    trained = set()
    if path == "fast":
        real = T.BatchAugment.__call__
        monkeypatch.setattr(T.BatchAugment, "__call__", lambda self, x, g=None, sizes=None: (trained.update(key(i) for i in x), real(self, x, g, sizes))[1])
    else:
        real = T._ReferenceDataset.__getitem__
        monkeypatch.setattr(T._ReferenceDataset, "__getitem__",
                            lambda self, k: (trained.add(key(self.images[k[1]])), real(self, k))[1])
    recipe = tiny("trivialaugment", 2, f"path={path}", "val_fraction=0.25", "workers=0")
    train(recipe, data, tmp_path / "run", seed=3, progress=False)
    _, val_idx = split_validation(data.train_labels, 0.25, 3)
    validation = {key(data.train_images[i]) for i in val_idx.tolist()}
    assert validation and trained and not (validation & trained)
    assert trained | validation == {key(x) for x in data.train_images}


@given(st.lists(st.integers(1, 9), min_size=1, max_size=40), st.floats(0.05, 0.9), st.integers(0, 99))
def test_split_validation_is_stratified_disjoint_and_covers_the_train_split(counts, fraction, seed):
    from fgvc_ref.train import split_validation

    labels = torch.tensor([c for c, n in enumerate(counts) for _ in range(n)])
    train_idx, val_idx = split_validation(labels, fraction, seed)
    assert sorted(train_idx.tolist() + val_idx.tolist()) == list(range(len(labels)))
    for c, n in enumerate(counts):
        in_val = int((labels[val_idx] == c).sum())
        assert in_val == (min(n - 1, max(1, round(fraction * n))) if n > 1 else 0)


def test_the_emas_validation_accuracy_is_the_ema_weights_on_the_validation_images(tmp_path):
    """The last row's ema_val_acc and val_acc, recomputed here from the final EMA and raw weights on the validation images
    (stored whole, evaluated by their centre 7/8 as the test split is); the two differ (80% vs 40%), so a swap would show."""
    from fgvc_ref.run import load_run
    from fgvc_ref.train import predict_logits, split_validation
    from fgvc_ref.transforms import centre_crop_boxes
    from runs import make_planted_cache

    data = load_data(make_planted_cache(tmp_path / "data"))
    recipe = tiny("ema", 4, "val_fraction=0.3", "ema_steps=1", "ema_decay=0.9", "ema_decay_reading=per_update", "warmup_epochs=0", "lr=0.5")
    train(recipe, data, tmp_path / "run", seed=1, progress=False)
    last = history(tmp_path / "run")[-1]
    _, val_idx = split_validation(data.train_labels, 0.3, 1)
    assert data.train_cropped is not None and not data.train_cropped[val_idx].any()  # whole images
    x, y = data.train_images[val_idx], data.train_labels[val_idx]
    acc = {}
    for weights in ("ema", "raw"):
        logits = predict_logits(load_run(tmp_path / "run", weights).model, x, size=16, batch=64, device=torch.device("cpu"), amp=False,
                                memory_format=torch.channels_last, boxes=centre_crop_boxes(data.train_sizes[val_idx]))
        acc[weights] = 100.0 * (logits.argmax(1) == y).sum().item() / len(y)
    assert (last["ema_val_acc"], last["val_acc"]) == (acc["ema"], acc["raw"])
    assert acc["ema"] != acc["raw"]


@pytest.mark.parametrize("accuracies, selected, epochs", [([50, 60, 60, 60, 55], 1, 4), ([50, 60, 61, 60, 60], 2, 5), ([50, 50, 50], 0, 3)])
def test_a_tie_is_not_an_improvement_so_the_first_best_epoch_is_selected(accuracies, selected, epochs, cache, tmp_path, monkeypatch):
    """Scripted accuracies with ties, patience 2: a tie neither moves the selected epoch nor resets patience (both sides:
    a strictly better epoch does)."""
    import fgvc_ref.train as T

    calls = iter(accuracies)
    monkeypatch.setattr(T, "evaluate", lambda *a, **k: {"loss": 1.0, "acc": float(next(calls))})
    summary = train(tiny("base", len(accuracies), "patience=2"), load_data(cache), tmp_path, seed=0, progress=False)
    assert (summary["selected_epoch"], summary["epochs_run"]) == (selected, epochs)
    assert T.improved(60.0, 50.0) and not T.improved(60.0, 60.0) and not T.improved(59.9, 60.0)


# --- every batch composition ---------------------------------------------------------------------


@given(st.integers(1, 80), st.integers(1, 12), st.sampled_from([1, 2, 3]))
def test_global_batches_keep_the_last_partial_batch_and_join_a_one_image_per_process_rest_to_the_batch_before(n, batch, world):
    """Oracle, written out: full batches of batch * world images, then the rest as its own batch, except a rest of one
    image per process after at least one full batch, which makes the last full batch world images larger."""
    from fgvc_ref.train import global_batches

    total = -(-n // world) * world
    full, rest = divmod(total, batch * world)
    sizes = [batch * world] * (full - 1) + [batch * world + world] if rest == world and full else [batch * world] * full + [rest] * (rest > 0)
    got = global_batches(total, batch, world)
    assert [end - start for start, end in got] == sizes
    assert got[0][0] == 0 and got[-1][1] == total and all(a[1] == b[0] for a, b in zip(got, got[1:]))  # every image once, in order
    assert all((end - start) // world >= 2 for start, end in got) or len(got) == 1 or batch == 1  # no one-image steps, unless asked


@pytest.mark.parametrize("world", [1, 2])
@pytest.mark.parametrize("n, batch", [(24, 23), (24, 11), (24, 8), (24, 25), (13, 6), (14, 6), (9, 4)])
def test_each_process_sees_every_image_of_the_epoch_once_in_batches_it_can_normalise(n, batch, world):
    """The processes' slices, put back together, are the padded permutation; no slice holds a single image."""
    from fgvc_ref.train import _epoch_order

    orders = [_epoch_order(n, 3, 0, batch, world, rank) for rank in range(world)]
    perm = orders[0][0]
    assert all(torch.equal(p, perm) for p, _ in orders) and len(perm) == -(-n // world) * world
    seen = [perm[a:b] for step in zip(*(slices for _, slices in orders)) for a, b in step]
    assert sorted(torch.cat(seen).tolist()) == sorted(perm.tolist())
    assert all(len(s) >= 2 for s in seen)


@pytest.mark.parametrize("batch", [23, 11, 24, 25])  # 24 train images: a last batch of 1 (joined), of 2, none, one short batch
def test_every_last_batch_size_trains_a_net_whose_batchnorm_sees_1x1_maps(batch, cache, tmp_path):
    """resnet18 at 32 px ends on 1 x 1 maps, where BatchNorm cannot normalise one image in training mode: before the rule,
    a last batch of one image stopped every run in its first epoch."""
    recipe = apply_overrides(tiny("base", 1, "path=fast"), ["model=resnet18", "image_size=32", f"batch_size={batch}"])
    summary = train(recipe, load_data(cache), tmp_path, seed=0, device="cpu", progress=False)
    assert summary["epochs_run"] == 1 and history(tmp_path)[0]["train_loss"] > 0


def test_a_batch_size_of_one_on_1x1_batchnorm_maps_is_a_clear_error_and_leaves_nothing(cache, tmp_path):
    recipe = apply_overrides(tiny("base", 1, "path=fast"), ["model=resnet18", "image_size=32", "batch_size=1"])
    with pytest.raises(ValueError, match=r"epoch 0, step 0: resnet18 at 32 px cannot train on 1 image\(s\) per process.*batch_size >= 2"):
        train(recipe, load_data(cache), tmp_path / "run", seed=0, device="cpu", progress=False)
    assert not (tmp_path / "run").exists()


# --- short runs say what happened ------------------------------------------------------------------


def test_an_early_stop_is_said_with_its_epoch_patience_and_best_even_when_quiet(cache, tmp_path, capsys):
    """base scaled to 3 epochs has patience round(200 * 3 / 600) = 1: the scripted accuracies stop it after epoch 2."""
    import fgvc_ref.train as trainer

    accuracies = iter([50.0, 40.0, 60.0])
    real = trainer.evaluate
    scripted = lambda model, criterion, images, labels, **kw: {**real(model, criterion, images, labels, **kw), "acc": next(accuracies)}
    recipe = apply_overrides(tiny("base", 3, "path=fast"), ["patience=1"])
    import unittest.mock

    with unittest.mock.patch.object(trainer, "evaluate", scripted):
        summary = train(recipe, load_data(cache), tmp_path, seed=0, device="cpu", progress=False)
    err = capsys.readouterr().err
    assert summary["epochs_run"] == 2 and summary["early_stopped"]
    assert ("stopped early after epoch 2 of 3: test top-1 has not improved for 1 epoch(s) (patience; best 50.00% at epoch 1)" in err
            and "--set patience=0" in err)


def test_an_ema_decay_clamped_to_zero_is_explained_and_a_small_one_is_not_printed_as_zero(cache, tmp_path, capsys):
    clamped = apply_overrides(tiny("ema", 3, "path=fast"), ["batch_size=128"])  # 1 - min(1, 0.006 x 128 x 32 / 3) = 0
    assert clamped.ema_update_decay() == 0
    train(clamped, load_data(cache), tmp_path / "a", seed=0, device="cpu", progress=True)
    err = capsys.readouterr().err
    assert "EMA decay per update is 0, so the EMA is a copy of the weights" in err and "0.006 x 1 x 128 x 32 / 3" in err
    small = apply_overrides(tiny("ema", 3, "path=fast"), ["ema_decay_reading=per_update", "ema_decay=0.0000004"])
    train(small, load_data(cache), tmp_path / "b", seed=0, device="cpu", progress=True)
    err = capsys.readouterr().err
    assert "EMA decay per update 4e-07" in err and "is 0" not in err


# --- what a search needs: no test split, a word after each epoch, nothing left running ---------------------


def test_a_run_without_a_test_split_selects_on_validation_and_never_reads_test(cache, tmp_path, monkeypatch):
    """load_train on a cache whose test split is gone: the run trains, logs validation only, and its summary has no test
    number; the cache loader is never asked for the test split."""
    import shutil

    import fgvc_ref.data.cache as C
    from fgvc_ref.data.sources import load_train

    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    for f in copy.glob("test.*"):
        f.unlink()
    asked, real = [], C.load_cache
    monkeypatch.setattr(C, "load_cache", lambda out, split, **kw: (asked.append(split), real(out, split, **kw))[1])
    data = load_train(copy)
    assert asked == ["train"] and data.test_images is None
    summary = train(apply_overrides(tiny("ema", 3, "path=fast"), ["val_fraction=0.25", "patience=2"]), data, tmp_path / "run", seed=0,
                    device="cpu", progress=False)
    rows = history(tmp_path / "run")
    assert all("val_acc" in r and "ema_val_acc" in r and not any(k.endswith("test_acc") for k in r) for r in rows)
    assert summary["last_test_acc"] is None and summary["last_val_acc"] == rows[-1]["ema_val_acc"]
    with pytest.raises(ValueError, match="no test split is loaded and val_fraction is 0"):
        train(tiny("ema", 3, "path=fast", "patience=2"), data, tmp_path / "other", seed=0, device="cpu", progress=False)


@pytest.mark.parametrize("path, workers", [("fast", 0), ("reference", 2)])
def test_on_epoch_sees_each_row_after_its_checkpoint_and_its_exception_ends_the_run_leaving_no_process(path, workers, cache, tmp_path):
    """The hook a search prunes with: called once per epoch with the logged row, after the checkpoint is published; what
    it raises ends the run (the reference path's DataLoader workers stop with it), and the run resumes from there."""
    from fgvc_ref.checkpoint import list_checkpoints

    class Pruned(Exception):
        pass

    seen = []

    def hook(row):
        seen.append((row["epoch"], [p.name for p in list_checkpoints(tmp_path / "run")], row["test_acc"]))
        if row["epoch"] == 1:
            raise Pruned

    recipe = tiny("random_erasing", 4, f"path={path}", f"workers={workers}")
    before = children()
    with pytest.raises(Pruned):
        train(recipe, load_data(cache), tmp_path / "run", seed=0, device="cpu", progress=False, on_epoch=hook)
    assert [(e, c[-1]) for e, c, _ in seen] == [(0, "checkpoint-e00001-s0000000.pt"), (1, "checkpoint-e00002-s0000000.pt")]
    assert [acc for *_, acc in seen] == [r["test_acc"] for r in history(tmp_path / "run")]
    assert children() <= before  # no worker outlives the run
    summary = train(recipe, load_data(cache), tmp_path / "run", seed=0, device="cpu", progress=False)
    assert summary["epochs_run"] == 4


class _Keys(torch.utils.data.Dataset):
    """The reference path's dataset shape: an item per (epoch, index) key; here the index itself."""

    def __getitem__(self, key):
        return torch.tensor(key[1])


def test_closing_the_reference_loader_stops_its_workers_while_the_epoch_loop_still_holds_its_iterator():
    """A pruned or failed run unwinds through the epoch loop, and the traceback keeps the loop's batch iterator alive:
    close() must stop the persistent workers itself, not leave them to whoever drops the last reference."""
    from fgvc_ref.train import _EpochLoader

    before = children()
    loader = _EpochLoader(_Keys(), workers=2)
    held = loader.batches(0, torch.arange(8), [(0, 4), (4, 8)], 0)
    assert next(held).tolist() == [0, 1, 2, 3]
    assert len(children() - before) == 2
    loader.close()
    assert children() <= before, "workers alive after close()"
    del held


def test_the_summary_gives_the_validation_and_test_numbers_of_the_weights_it_reports():
    """A search reads ``last_val_acc``: the EMA's when the run reports the EMA, the raw model's otherwise."""
    from types import SimpleNamespace

    from fgvc_ref.train import _summary

    row = {"epoch": 0, "val_acc": 10.0, "ema_val_acc": 20.0, "test_acc": 30.0, "ema_test_acc": 40.0, "epoch_s": 1.0, "img_per_s": 5.0}
    for has_ema, val, test in ((True, 20.0, 40.0), (False, 10.0, 30.0)):
        s = _summary(STAGES["ema"], {"history": [row], "best_epoch": 0}, 0, SimpleNamespace(name="d"), "fast", 1, has_ema)
        assert (s["reported"], s["last_val_acc"], s["last_test_acc"]) == ("ema" if has_ema else "raw", val, test)
