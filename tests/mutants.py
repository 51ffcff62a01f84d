"""How the tests are tested: apply realistic one-line bugs, one at a time, and check that a test fails.

Each mutant replaces one exact piece of source (which must occur once) in a temporary copy of the
repository and runs the test files that should catch it; the mutant is *caught* when they fail.
A surviving mutant is a missing test, unless it is listed in :data:`EQUIVALENT` with the reason it
cannot change any result. Not run by CI (about 7 minutes on 2 cores); run it after changing a
module or its tests:

    .venv/bin/python tests/mutants.py                  # all, 2 at a time
    .venv/bin/python tests/mutants.py --only "train|ema"   # names containing "train" or "ema"
    .venv/bin/python tests/mutants.py --json results/mutants.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from checkout import copy_checkout

ROOT = Path(__file__).resolve().parents[1]


class Mutant(NamedTuple):
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


R = "tests/test_reliability_reproduce.py"
EV, EX, ST, G, REP = "tests/test_evaluate.py", "tests/test_export.py", "tests/test_stats.py", "tests/test_gallery.py", "tests/test_report.py"
SW, GR = "tests/test_sweep.py", "tests/test_greedy.py"
IM, FO = "tests/test_images.py", "tests/test_folder.py"
T, TWIN, TF, TA, RE = "tests/test_train.py", "tests/test_twin_loop.py", "tests/test_transforms.py", "tests/test_trivial_augment.py", "tests/test_random_erasing.py"
CAL, REJ = "tests/test_calibration.py", "tests/test_rejection.py"
OS, OSE = "tests/test_open_set.py", "tests/test_open_set_eval.py"
DEP = tuple(f"tests/test_deploy.py::{t}" for t in (  # the open-set export's tests, without the EfficientNet proxy's fixture
    "test_an_open_set_export_keeps_the_logits_and_adds_probs_score_and_known_as_pytorch_computes_them",
    "test_the_rule_round_trips_through_the_metadata_and_is_the_graphs_constants", "test_each_file_fits_its_own_rule_on_its_own_outputs_over_the_validation_split",
    "test_the_int8_file_refits_on_its_own_logits", "test_predict_says_unknown_below_the_threshold_with_the_score_and_the_threshold",
    "test_the_state_dict_export_carries_the_rule_fitted_on_pytorchs_logits", "test_evaluate_on_an_exported_open_set_model_reports_the_same_metrics_as_its_run",
    "test_a_run_trained_on_all_classes_exports_no_rule_and_refuses_rejection_options"))
M = Mutant
MUTANTS = [
    # --- the trainer --------------------------------------------------------------------------
    M("train: LR one epoch ahead", "fgvc_ref/train.py", "set_lr(trainee.optimizer, lrs[epoch])", "set_lr(trainee.optimizer, lrs[min(epoch + 1, recipe.epochs - 1)])", (TWIN,)),
    M("train: EMA built with the unadjusted decay", "fgvc_ref/train.py", "ema_decay = recipe.ema_update_decay(place.world)", "ema_decay = recipe.ema_decay", (TWIN,)),
    M("train: EMA step counter not reset per epoch", "fgvc_ref/train.py", "should_update(i, recipe.ema_steps)", "should_update(epoch * len(slices) + i, recipe.ema_steps)", (TWIN,)),
    M("train: no EMA reset during warmup", "fgvc_ref/train.py", "resets_after_update(epoch, recipe.warmup_epochs)", "resets_after_update(epoch, 0)", (TWIN,)),
    M("train: smoothing convention ignored", "fgvc_ref/train.py", "LabelSmoothingCrossEntropy(recipe.label_smoothing, convention=recipe.smoothing_convention)", "LabelSmoothingCrossEntropy(recipe.label_smoothing)", (TWIN,)),
    M("train: label smoothing ignored", "fgvc_ref/train.py", "LabelSmoothingCrossEntropy(recipe.label_smoothing, convention", "LabelSmoothingCrossEntropy(0.0, convention", (TWIN,)),
    M("train: fast path drops RandomErasing", "fgvc_ref/train.py", "BatchAugment(recipe.policy, recipe.image_size, erasing_p=recipe.erasing_p,", "BatchAugment(recipe.policy, recipe.image_size,", (TWIN,)),
    M("train: reference path drops RandomErasing", "fgvc_ref/train.py", "TrainTransform(recipe.policy, recipe.image_size, erasing_p=recipe.erasing_p,", "TrainTransform(recipe.policy, recipe.image_size,", (TWIN,)),
    M("train: two optimizer steps per batch", "fgvc_ref/train.py", "    optimizer.step()\n    return loss.detach()", "    optimizer.step()\n    optimizer.step()\n    return loss.detach()", (TWIN,)),
    M("train: gradients never zeroed", "fgvc_ref/train.py", "optimizer.zero_grad(set_to_none=True)", "pass", (TWIN,)),
    M("train: last partial batch dropped", "fgvc_ref/train.py", "    starts = list(range(0, total, step))", "    starts = list(range(0, total - step + 1, step))", (TWIN,)),
    M("train: same shuffle every epoch", "fgvc_ref/train.py", "manual_seed(subseed(seed, epoch)))", "manual_seed(subseed(seed, 0)))", (TWIN,)),
    M("train: reference path draws ignore the epoch", "fgvc_ref/train.py", "manual_seed(subseed(self.seed, epoch, index))", "manual_seed(subseed(self.seed, index))", (TWIN,)),
    M("train: fast path draws ignore the batch", "fgvc_ref/train.py", "manual_seed(subseed(seed, epoch, i, place.rank))", "manual_seed(subseed(seed, epoch, place.rank))", (TWIN,)),
    M("train: MixUp/CutMix draws ignore the batch", "fgvc_ref/train.py", "manual_seed(subseed(seed, epoch, i, 1))", "manual_seed(subseed(seed, epoch, 0, 1))", (TWIN,)),
    M("train: EMA evaluated with the raw weights", "fgvc_ref/train.py", "ema_test = evaluate(ema.module,", "ema_test = evaluate(model,", (TWIN,)),
    M("train: evaluation in training mode", "fgvc_ref/train.py", "    model.eval()\n    out = []", "    out = []", (TWIN,)),
    M("train: evaluation leaves the model in eval mode", "fgvc_ref/train.py", "    model.train(training)\n", "\n", (TWIN,)),
    M("train: early stopping one epoch late", "fgvc_ref/train.py", 'state["since_best"] >= recipe.patience', 'state["since_best"] > recipe.patience', (T, TWIN)),
    M("train: early stopping selects on the raw model", "fgvc_ref/train.py", 'selected = row.get(("ema_" if has_ema else "") +', 'selected = row.get("" +', (T,)),
    M("train: epoch loss not weighted by batch size", "fgvc_ref/train.py", "self.loss += loss.double() * len(y)", "self.loss += loss.double()", (TWIN,)),
    M("train: fast path ignores image sizes", "fgvc_ref/train.py", "augment(splits.train_x[idx], g, splits.train_sizes[idx])", "augment(splits.train_x[idx], g)", (TWIN,)),
    M("train: reference path ignores image sizes", "fgvc_ref/train.py", "h, w = self.sizes[index].tolist()", "h, w = self.images.shape[-2:]", (TWIN,)),
    M("train: MixUp/CutMix never applied", "fgvc_ref/train.py", "if recipe.mixup_alpha > 0 or recipe.cutmix_alpha > 0:", "if recipe.mixup_alpha > 0 and recipe.cutmix_alpha > 0 and False:", (TWIN,)),
    M("train: no-augment path skips normalisation", "fgvc_ref/train.py", "return normalize(resized_crop_batch(x, whole_boxes(sizes).to(x.device), self.size).to(torch.float32).div_(255))", "return resized_crop_batch(x, whole_boxes(sizes).to(x.device), self.size).to(torch.float32).div_(255)", (TWIN,)),
    M("train: resume restarts the epoch's step", "fgvc_ref/train.py", 'for i in range(state["step"], len(slices)):', "for i in range(0, len(slices)):", ("tests/test_reliability_resume.py",)),
    M("train: evaluation never resizes", "fgvc_ref/train.py", "as_stored = boxes is None and tuple(images.shape[-2:]) == (size, size)", "as_stored = True", (T,)),
    M("train: no run lock", "fgvc_ref/train.py", "fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)", "pass", (R + "::test_a_second_trainer_on_the_same_folder_is_refused_and_a_killed_ones_lock_does_not_block",)),
    M("train: a finished run keeps its checkpoints", "fgvc_ref/train.py", "        if not keep_checkpoints:\n            ckpt.remove_checkpoints(out)\n", "", (T,)),
    M("train: resuming said only without --quiet", "fgvc_ref/train.py", "if rank == 0:  # always said, --quiet or not", "if rank == 0 and progress:", (R + "::test_a_signal_to_the_scripts_pid_stops_the_trainer_after_a_checkpoint_exits_130_143_and_leaves_no_orphan",)),
    M("reproduce.sh: signals not forwarded", "reproduce.sh", "for pid in \"${children[@]}\"; do kill -s \"$1\" \"$pid\" 2>/dev/null || true; done", "true", (R + "::test_a_signal_to_the_scripts_pid_stops_the_trainer_after_a_checkpoint_exits_130_143_and_leaves_no_orphan",)),
    M("reproduce.sh: no preflight", "reproduce.sh", '"$py" -m fgvc_ref check --stages "$stages" "${epoch_args[@]}" "${sets[@]}" "${open_set_args[@]}" >/dev/null || exit 2', "true", (R + "::test_bad_arguments_fail_in_seconds_before_anything_is_written",)),
    M("report: CUDA named without a GPU", "fgvc_ref/report.py", 'if env.get("gpu") else "no GPU"', 'if env.get("cuda") else "no GPU"', ("tests/test_report.py",)),
    # --- EMA, optimiser, schedule, loss ---------------------------------------------------------
    M("ema: update uses d on the live weights", "fgvc_ref/ema.py", "torch._foreach_mul(cur, 1.0 - decay)", "torch._foreach_mul(cur, decay)", ("tests/test_ema.py",)),
    M("ema: lerp instead of d*a + (1-d)*m", "fgvc_ref/ema.py", "        torch._foreach_mul_(avg, decay)\n        torch._foreach_add_(avg, torch._foreach_mul(cur, 1.0 - decay))", "        torch._foreach_lerp_(avg, cur, 1.0 - decay)", ("tests/test_ema.py",)),
    M("ema: update after the step instead of on i % steps == 0", "fgvc_ref/ema.py", "return step_in_epoch % ema_steps == 0", "return (step_in_epoch + 1) % ema_steps == 0", ("tests/test_ema.py", TWIN)),
    M("ema: warmup reset one epoch too long", "fgvc_ref/ema.py", "return epoch < warmup_epochs", "return epoch <= warmup_epochs", ("tests/test_ema.py", TWIN)),
    M("ema: buffers not averaged", "fgvc_ref/ema.py", "(*model.parameters(), *model.buffers())", "(*model.parameters(),)", ("tests/test_ema.py",)),
    M("ema: adjustment ignores the world size", "fgvc_ref/ema.py", "(world_size * batch_size * ema_steps / epochs)", "(batch_size * ema_steps / epochs)", ("tests/test_ema.py", "tests/test_recipe.py")),
    M("recipe: ema_update_decay ignores world_size", "fgvc_ref/recipe.py", "world_size=world_size, batch_size=self.batch_size", "world_size=1, batch_size=self.batch_size", ("tests/test_recipe.py",)),
    M("recipe: label smoothing stage keeps lr 0.1", "fgvc_ref/recipe.py", 'label_smoothing=0.1, lr=0.4)', 'label_smoothing=0.1, lr=0.1)', ("tests/test_recipe.py",)),
    M("recipe: lr_scale not applied to min_lr", "fgvc_ref/recipe.py", "min_lr=self.min_lr * self.lr_scale)", "min_lr=self.min_lr)", ("tests/test_recipe.py", TWIN)),
    M("optim: first momentum buffer zero", "fgvc_ref/optim.py", "bufs[i] = g.detach().clone()  # b = g on the first step", "bufs[i] = torch.zeros_like(g)  # b = g on the first step", ("tests/test_optim.py",)),
    M("optim: Sutskever's form", "fgvc_ref/optim.py", "p.add_(g.add(bufs[i], alpha=momentum), alpha=-lr)", "p.add_(bufs[i], alpha=-lr)", ("tests/test_optim.py",)),
    M("optim: weight decay after momentum", "fgvc_ref/optim.py", "g = grad.add(p, alpha=weight_decay) if weight_decay != 0 else grad", "g = grad", ("tests/test_optim.py",)),
    M("schedules: cosine T_max counts the warmup", "fgvc_ref/schedules.py", "W, a, T = warmup_epochs, warmup_decay, epochs - warmup_epochs\n    lrs", "W, a, T = warmup_epochs, warmup_decay, epochs\n    lrs", ("tests/test_schedules.py",)),
    M("schedules: StepLR counted from epoch 0", "fgvc_ref/schedules.py", "lr = lrs[-1] * gamma if t % step_size == 0 else lrs[-1]", "lr = lrs[-1] * gamma if e % step_size == 0 else lrs[-1]", ("tests/test_schedules.py",)),
    M("schedules: warmup starts at factor 0", "fgvc_ref/schedules.py", "            lr = base_lr * a\n", "            lr = 0.0\n", ("tests/test_schedules.py",)),
    M("losses: torch convention spreads eps/(K-1)", "fgvc_ref/losses.py", 'off = smoothing / num_classes if convention == "torch" else', 'off = smoothing / (num_classes - 1) if convention == "torch" else', ("tests/test_losses.py",)),
    M("losses: blog soft target drops (1 - t)", "fgvc_ref/losses.py", 'q = (1 - smoothing) * t + (off if convention == "torch" else off * (1 - t))', 'q = (1 - smoothing) * t + off', ("tests/test_losses.py",)),
    M("losses: mean ignores class weights in the denominator", "fgvc_ref/losses.py", "return _reduce(loss, reduction, denominator=w_y.sum())", "return _reduce(loss, reduction, denominator=keep.sum())", ("tests/test_losses.py",)),
    # --- augmentation ---------------------------------------------------------------------------
    M("BatchAugment never flips", "fgvc_ref/transforms.py", "flip = torch.rand(n, generator=generator, device=x.device) < 0.5", "flip = torch.rand(n, generator=generator, device=x.device) < 0.0", (TF,)),
    M("BatchAugment flips upside down", "fgvc_ref/transforms.py", "x = torch.where(K.per_image(flip, x), x.flip(-1), x)", "x = torch.where(K.per_image(flip, x), x.flip(-2), x)", (TF,)),
    M("BatchAugment erases before normalising", "fgvc_ref/transforms.py", "        y = y.sub_(m).div_(s)  # normalize(), in place on our own tensor\n        if self.erasing_p > 0:\n            y = random_erasing_batch(y, p=self.erasing_p, value=0, generator=generator, inplace=True)",
      "        if self.erasing_p > 0:\n            y = random_erasing_batch(y, p=self.erasing_p, value=0, generator=generator, inplace=True)\n        y = y.sub_(m).div_(s)", (TF,)),
    M("BatchAugment: lighting dropped", "fgvc_ref/transforms.py", 'if self.policy == "standard" and self.lighting > 0:', 'if self.policy == "standard" and self.lighting > 1:', (TF,)),
    M("BatchAugment: jitter for every policy", "fgvc_ref/transforms.py", '        if self.policy == "standard":\n            x = color_jitter_batch', '        if True:\n            x = color_jitter_batch', (TF,)),
    M("crop: strict acceptance", "fgvc_ref/transforms.py", "ok = (ws > 0) & (ws <= W) & (hs > 0) & (hs <= H)", "ok = (ws > 0) & (ws < W) & (hs > 0) & (hs < H)", (TF,)),
    M("crop: h and w swapped", "fgvc_ref/transforms.py", "ws, hs = (area * r).sqrt().round().long(), (area / r).sqrt().round().long()", "hs, ws = (area * r).sqrt().round().long(), (area / r).sqrt().round().long()", (TF,)),
    M("crop: never the last corner position", "fgvc_ref/transforms.py", "i = torch.minimum((torch.rand(n, 1, generator=generator, **dev) * (H - h + 1)).long(), H - h)", "i = torch.minimum((torch.rand(n, 1, generator=generator, **dev) * (H - h)).long(), H - h)", (TF,)),
    M("crop: fallback not ratio-clamped", "fgvc_ref/transforms.py", "w = torch.where(aspect > max(ratio), (Hf * max(ratio)).round(), Wf).long()", "w = Wf.long()", (TF,)),
    M("crop: resample ignores the box top", "fgvc_ref/transforms.py", "wy, wx = resize_weights(i, h, size, height), resize_weights(j, w, size, width)", "wy, wx = resize_weights(i * 0, h, size, height), resize_weights(j, w, size, width)", (TF,)),
    M("crop: resample without antialiasing", "fgvc_ref/transforms.py", "/ s.clamp(min=1.0)).clamp_(min=0)", ").clamp_(min=0)", (TF,)),
    M("crop: resample reads outside the crop", "fgvc_ref/transforms.py", "* ((x >= 0) & (x < length.view(-1, 1, 1)))", "* (x > -2)", (TF,)),
    M("EvalTransform: centre crop offsets with //2", "fgvc_ref/transforms.py", "top, left = int(round((img.height - size) / 2.0)), int(round((img.width - size) / 2.0))", "top, left = (img.height - size) // 2, (img.width - size) // 2", (TF, "tests/test_cache.py")),
    M("eval resize: 8/7 rule off", "fgvc_ref/transforms.py", "return size * 8 // 7", "return size * 9 // 8", ("tests/test_cache.py",)),
    M("AutoAugment ignores the per-image generator", "fgvc_ref/transforms.py", "img = _with_global_rng(generator, self.auto_augment, img)", "img = self.auto_augment(img)", (TF,)),
    M("erasing batch: non-strict acceptance", "fgvc_ref/random_erasing.py", "ok = (hs < height) & (ws < width)", "ok = (hs <= height) & (ws <= width)", (RE,)),
    M("erasing batch: h and w swapped", "fgvc_ref/random_erasing.py", "hs, ws = (area * r).sqrt().round().long(), (area / r).sqrt().round().long()", "ws, hs = (area * r).sqrt().round().long(), (area / r).sqrt().round().long()", (RE,)),
    M("erasing batch: erases after 10 rejections", "fgvc_ref/random_erasing.py", "    erase &= ok.any(1)\n", "", (RE,)),
    M("erasing: per-image h takes /ratio", "fgvc_ref/random_erasing.py", "h, w = int(round(math.sqrt(area * r))), int(round(math.sqrt(area / r)))", "h, w = int(round(math.sqrt(area / r))), int(round(math.sqrt(area * r)))", (RE,)),
    M("TA batch: sign never applied", "fgvc_ref/trivial_augment.py", "torch.where(draw.negate, -m, m)", "m", (TA,)),
    M("TA batch: bins drawn from 30", "fgvc_ref/trivial_augment.py", "k = torch.randint(NUM_BINS, (n,), generator=generator, device=device)", "k = torch.randint(NUM_BINS - 1, (n,), generator=generator, device=device)", (TA,)),
    M("TA batch: unsigned ops get signs", "fgvc_ref/trivial_augment.py", "signed & (s == 1)", "(s == 1)", (TA,)),
    M("TA: translation rounded instead of truncated", "fgvc_ref/trivial_augment.py", "t = m.trunc()  # int(m) pixels", "t = m.round()  # int(m) pixels", (TA,)),
    M("image_ops: solarize strict threshold", "fgvc_ref/image_ops.py", "torch.where(v >= per_image(threshold", "torch.where(v > per_image(threshold", (TA,)),
    M("image_ops: posterize keeps low bits", "fgvc_ref/image_ops.py", "return ((levels(x).long() >> shift) << shift).to(torch.uint8)", "return (levels(x).long() >> shift).to(torch.uint8)", (TA,)),
    M("image_ops: equalize step off by one", "fgvc_ref/image_ops.py", "step = (flat.shape[1] - hist.gather(1, last)) // 255", "step = (flat.shape[1] - hist.gather(1, last)) // 256", (TA,)),
    M("image_ops: grey weights swapped", "fgvc_ref/image_ops.py", "r.mul(0.2989).add_(g, alpha=0.587)", "r.mul(0.587).add_(g, alpha=0.2989)", (TA, "tests/test_color.py")),
    M("color: jitter range one-sided", "fgvc_ref/color.py", ".uniform_(1 - strength, 1 + strength, generator=generator)", ".uniform_(1, 1 + strength, generator=generator)", ("tests/test_color.py",)),
    M("color: lighting eigenvectors transposed", "fgvc_ref/color.py", "return (alpha * eigval) @ eigvec.T", "return (alpha * eigval) @ eigvec", ("tests/test_color.py",)),
    # --- MixUp/CutMix ---------------------------------------------------------------------------
    M("mix: CutMix side 1 - lam", "fgvc_ref/mix.py", "r = 0.5 * math.sqrt(1.0 - lam)", "r = 0.5 * (1.0 - lam)", ("tests/test_mix.py",)),
    M("mix: always CutMix", "fgvc_ref/mix.py", "kind, alpha = choices[int(", "kind, alpha = choices[-1 + 0 * int(", ("tests/test_mix.py",)),
    M("mix: targets not mixed like the pixels", "fgvc_ref/mix.py", "return target.roll(1, 0).mul_(1.0 - lam).add_(target.mul(lam))", "return target.roll(1, 0).mul_(lam).add_(target.mul(1.0 - lam))", ("tests/test_mix.py",)),
    M("mix: CutMix lam not the kept area", "fgvc_ref/mix.py", "return out, _mix_targets(target, 1.0 - (x2 - x1) * (y2 - y1) / (w * h))", "return out, _mix_targets(target, lam)", ("tests/test_mix.py",)),
    # --- data ---------------------------------------------------------------------------------
    M("cache: box taken 0-based", "fgvc_ref/data/cache.py", "left, top, right, bottom = max(0, x1 - 1), max(0, y1 - 1), min(img.width, x2), min(img.height, y2)", "left, top, right, bottom = max(0, x1), max(0, y1), min(img.width, x2), min(img.height, y2)", ("tests/test_cache.py",)),
    M("cache: whole train images squashed to a square", "fgvc_ref/data/cache.py", "    if cropped:\n        img = img.resize((size, size), Image.BILINEAR)", "    if cropped or whole:\n        img = img.resize((size, size), Image.BILINEAR)", ("tests/test_cache.py",)),
    M("cache: test split keeps whole images", "fgvc_ref/data/cache.py", 'jobs = ((r, size, split == "train", d, n)', 'jobs = ((r, size, True, d, n)', ("tests/test_cache.py",)),
    M("cache: data hash not checked", "fgvc_ref/data/cache.py", 'if digest != manifest["data_sha256"]:', "if False:", ("tests/test_cache.py",)),
    M("stanford_cars: class kept 1-based", "fgvc_ref/data/stanford_cars.py", 'as_int(r["class"], annos, "class") - 1', 'as_int(r["class"], annos, "class")', ("tests/test_stanford_cars.py",)),
    M("checkpoint: keeps only the last", "fgvc_ref/checkpoint.py", "for old in list_checkpoints(run_dir)[:-KEEP]:", "for old in list_checkpoints(run_dir)[:-1]:", ("tests/test_checkpoint.py", "tests/test_reliability_checkpoints.py")),
    M("checkpoint: hash not verified", "fgvc_ref/checkpoint.py", "if hashlib.sha256(data).hexdigest() != expected:", "if False:", ("tests/test_checkpoint.py", "tests/test_reliability_checkpoints.py")),
    M("report: population std", "fgvc_ref/report.py", "statistics.stdev(values)", "statistics.pstdev(values)", ("tests/test_report.py",)),
    # --- after training: evaluate, export, predict, statistics, gallery --------------------------
    M("evaluate: confusion matrix transposed", "fgvc_ref/evaluate.py", "torch.bincount(target * k + predicted,", "torch.bincount(predicted * k + target,", (EV,)),
    M("evaluate: the diagonal counted as a confusion", "fgvc_ref/evaluate.py", "off = cm.clone().fill_diagonal_(0)", "off = cm.clone()", (EV,)),
    M("evaluate: per-class images counted by prediction", "fgvc_ref/evaluate.py", '"images": int(cm[c].sum()), "correct"', '"images": int(cm[:, c].sum()), "correct"', (EV,)),
    M("evaluate: top-k compares against the top-1 only", "fgvc_ref/evaluate.py", "(logits.topk(k, dim=1).indices == target.unsqueeze(1)).any(1)", "(logits.topk(k, dim=1).indices[:, :1] == target.unsqueeze(1)).any(1)", (EV,)),
    M("evaluate: clusters grow at one end only", "fgvc_ref/evaluate.py", "for at_start, end in ((False, chain[-1]), (True, chain[0]))", "for at_start, end in ((False, chain[-1]),)", (EV,)),
    M("evaluate: EMA default takes the raw weights", "fgvc_ref/run.py", 'state = final["ema"]["module"] if weights == "ema" else final["model"]', 'state = final["model"]', (EV, EX)),
    M("evaluate: images resized to the stored size, not the training size", "fgvc_ref/run.py", 'size=run.recipe["image_size"],', 'size=loaded.test_images.shape[-1],', (EV, EX)),
    M("export: boxes ignored by predict", "fgvc_ref/export.py", 'meta["preprocessing"], boxes[k] if boxes else None, max_pixels', 'meta["preprocessing"], None, max_pixels', (EX,)),
    M("export: stored size read from the train split", "fgvc_ref/run.py", 'manifest_path = Path(spec) / "test.manifest.json"', 'manifest_path = Path(spec) / "train.manifest.json"', (EX,)),
    M("export: unboxed images resized whole instead of centre-cropped", "fgvc_ref/export.py", 'bbox=box, trim_bottom=trim, name=str(path))', 'bbox=box, trim_bottom=trim, name=str(path), whole=True)', (EX,)),
    M("export: Fashion-MNIST files resized without antialiasing", "fgvc_ref/data/fashion_mnist.py", 'mode="bilinear", antialias=True,', 'mode="bilinear", antialias=False,', (EX, "tests/test_fashion_mnist.py")),
    M("export: probabilities over the batch", "fgvc_ref/export.py", 'else out["logits"].softmax(1)', 'else out["logits"].softmax(0)', (EX,)),
    M("export: one bad file stops the rest", "fgvc_ref/export.py", 'results.append((path, f"{e}"))', "raise", (EX,)),
    M("stats: pooled-variance degrees of freedom", "fgvc_ref/stats.py", "df = (wa + wb) ** 2 / (wa**2 / (len(a) - 1) + wb**2 / (len(b) - 1))", "df = len(a) + len(b) - 2", (ST,)),
    M("stats: one-sided p", "fgvc_ref/stats.py", "2.0 * (1.0 - t_cdf(abs(d / se), df))", "(1.0 - t_cdf(abs(d / se), df))", (ST,)),
    M("stats: normal instead of t quantile", "fgvc_ref/stats.py", "half = t_ppf(0.5 + level / 2.0, df) * se", "half = 1.959963984540054 * se", (ST,)),
    M("stats: variance divided by n", "fgvc_ref/stats.py", "wa, wb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)", "wa, wb = statistics.pvariance(a) / len(a), statistics.pvariance(b) / len(b)", (ST,)),
    M("stats: seeds for 50% power", "fgvc_ref/stats.py", "if n >= 2 * ((t_ppf(0.5 + level / 2.0, df) + t_ppf(power, df)) * spread / delta) ** 2:", "if n >= 2 * (t_ppf(0.5 + level / 2.0, df) * spread / delta) ** 2:", (ST,)),
    M("report: blog step from the wrong stage", "fgvc_ref/report.py", "blog = BLOG_TOP1[b] - BLOG_TOP1[a]", "blog = BLOG_TOP1[b] - BLOG_TOP1['base']", (REP,)),
    M("report: curves averaged over the longest run only", "fgvc_ref/report.py", "at = [[v[e] for v in series if e < len(v)] for e in range(max(map(len, series), default=0))]", "at = [[max(series, key=len)[e]] for e in range(max(map(len, series), default=0))]", (REP,)),
    M("gallery: fast-path samples seeded per sample", "fgvc_ref/gallery.py", "contiguous(), torch.Generator().manual_seed(seed))", "contiguous(), torch.Generator().manual_seed(seed + 1))", (G,)),
    M("cub: class id kept 1-based", "fgvc_ref/data/cub.py", '"class_id") - 1, box))', '"class_id"), box))', ("tests/test_cub.py",)),
    M("cub: width read as the right edge", "fgvc_ref/data/cub.py", "return edges_box(x, y, x + width, y + height)", "return edges_box(x, y, width, height)", ("tests/test_cub.py",)),
    M("records: edges truncated, not rounded", "fgvc_ref/data/records.py", "return math.floor(left + 0.5) + 1, math.floor(top + 0.5) + 1,", "return math.floor(left) + 1, math.floor(top) + 1,", ("tests/test_cub.py", "tests/test_hub.py")),
    M("records: edges box taken 1-based", "fgvc_ref/data/records.py", "return math.floor(left + 0.5) + 1, math.floor(top + 0.5) + 1,", "return math.floor(left + 0.5), math.floor(top + 0.5),", ("tests/test_cub.py", "tests/test_records.py")),
    M("cub: split flag inverted", "fgvc_ref/data/cub.py", 'want = "1" if split == "train" else "0"', 'want = "0" if split == "train" else "1"', ("tests/test_cub.py",)),
    M("aircraft: banner kept", "fgvc_ref/data/aircraft.py", "box_of.get(image), BANNER))", "box_of.get(image), 0))", ("tests/test_aircraft.py",)),
    M("aircraft: train read from the train file, not trainval", "fgvc_ref/data/aircraft.py", 'SPLIT_FILE = {"train": "trainval", "test": "test"}', 'SPLIT_FILE = {"train": "train", "test": "test"}', ("tests/test_aircraft.py",)),
    M("aircraft: boxes shifted as if 0-based", "fgvc_ref/data/aircraft.py", 'box_of[image] = tuple(as_int(v, data / "images_box.txt", f"box of {image}") for v in corners)', 'box_of[image] = tuple(as_int(v, data / "images_box.txt", f"box of {image}") + 1 for v in corners)', ("tests/test_aircraft.py",)),
    M("cache: banner trim ignored", "fgvc_ref/data/cache.py", "        img = img.crop((0, 0, img.width, img.height - trim_bottom))\n", "", ("tests/test_aircraft.py", "tests/test_datasets.py")),
    M("dogs: first dog's box only", "fgvc_ref/data/dogs.py", "    x1, y1, x2, y2 = zip(*boxes)\n    return min(x1), min(y1), max(x2), max(y2)", "    return boxes[0]", ("tests/test_dogs.py",)),
    M("dogs: labels kept 1-based", "fgvc_ref/data/dogs.py", 'labels = [as_int(v, lists, "labels") - 1 for v', 'labels = [as_int(v, lists, "labels") for v', ("tests/test_dogs.py",)),
    M("dogs: breed names keep the synset id", "fgvc_ref/data/dogs.py", 'folder_of[c].split("-", 1)[-1] if c in folder_of', 'folder_of[c] if c in folder_of', ("tests/test_dogs.py",)),
    M("flowers102: train without the validation set", "fgvc_ref/data/flowers102.py", 'SETS = {"train": ("trnid", "valid"), "test": ("tstid",)}', 'SETS = {"train": ("trnid",), "test": ("tstid",)}', ("tests/test_flowers102.py",)),
    M("flowers102: labels kept 1-based", "fgvc_ref/data/flowers102.py", "labels[image_id - 1] - 1, None))", "labels[image_id - 1], None))", ("tests/test_flowers102.py",)),
    M("export: banner not trimmed by predict", "fgvc_ref/export.py", 'bbox=box, trim_bottom=trim, name=str(path))', 'bbox=box, trim_bottom=0, name=str(path))', ("tests/test_datasets.py",)),
    M("datasets: --no-boxes ignored for Stanford Cars", "fgvc_ref/data/datasets.py", "    if not boxes:\n        loaded = loaded._replace(", "    if False:\n        loaded = loaded._replace(", ("tests/test_datasets.py",)),
    M("gallery: ops shown at the wrong bins", "fgvc_ref/gallery.py", "BINS = (10, 20, 30)", "BINS = (10, 20, 29)", (G,)),
    # --- one decoder, one lister, layouts, Hugging Face copies (field reports) ------------------------
    M("images: 16-bit clipped as convert('RGB') does", "fgvc_ref/data/images.py", '    if mode in EIGHT_BIT:\n        return img.convert("RGB")', '    if mode in EIGHT_BIT or mode.startswith("I;16"):\n        return img.convert("RGB")', ("tests/test_images.py",)),
    M("images: 16-bit scaled by truncation", "fgvc_ref/data/images.py", "return _grey((v * 255 + top // 2) // top)", "return _grey((v * 255) // top)", ("tests/test_images.py",)),
    M("images: out-of-range integer samples clipped", "fgvc_ref/data/images.py", "if v.size and (v.min() < 0 or v.max() > top):", "if False:", ("tests/test_images.py",)),
    M("images: float range ignores the stated one", "fgvc_ref/data/images.py", "if tags is not None and 340 in tags and 341 in tags and first(tags[341]) > first(tags[340]):", "if False:", ("tests/test_images.py",)),
    M("images: float mapped without its lower bound", "fgvc_ref/data/images.py", "return _grey(np.floor(255 * (v - lo) / (hi - lo) + 0.5))", "return _grey(np.floor(255 * v / (hi - lo) + 0.5))", ("tests/test_images.py",)),
    M("images: float scaled by its upper bound alone", "fgvc_ref/data/images.py", "return _grey(np.floor(255 * (v - lo) / (hi - lo) + 0.5))", "return _grey(np.floor(255 * (v - lo) / hi + 0.5))", ("tests/test_images.py",)),
    M("images: stated float range taken from 0", "fgvc_ref/data/images.py", "return first(tags[340]), first(tags[341])", "return 0.0, first(tags[341])", ("tests/test_images.py",)),
    M("images: float samples below the stated minimum accepted", "fgvc_ref/data/images.py", "if v.size and (v.min() < lo or v.max() > hi):", "if v.size and (v.min() < 0 or v.max() > hi):", ("tests/test_images.py",)),
    M("images: 32-bit integers accepted", "fgvc_ref/data/images.py", "if bits is None or not 1 <= bits <= 16:", "if bits is None:", ("tests/test_images.py",)),
    M("images: orientation applied on dataset paths", "fgvc_ref/data/images.py", 'turn = orientation == "apply" and tag in UPRIGHT', "turn = tag in UPRIGHT", ("tests/test_images.py", "tests/test_cache.py")),
    M("images: no warning for a kept orientation", "fgvc_ref/data/images.py", "    elif tag in UPRIGHT:\n        warnings.warn(", "    elif False:\n        warnings.warn(", ("tests/test_images.py",)),
    M("images: rotate 90 for orientation 6", "fgvc_ref/data/images.py", "6: Image.Transpose.ROTATE_270", "6: Image.Transpose.ROTATE_90", ("tests/test_images.py", EX)),
    M("images: error names the BytesIO", "fgvc_ref/data/images.py", '    except UnidentifiedImageError:\n        raise DatasetError(f"{name}: not a readable image (no image format recognised in its {len(source)} bytes)") from None',
      '    except UnidentifiedImageError as e:\n        raise DatasetError(f"{name}: not a readable image ({e})") from None', ("tests/test_images.py",)),
    M("images: AppleDouble files listed as images", "fgvc_ref/data/images.py", '    if name.startswith("._"):\n        return APPLEDOUBLE', '    if False:\n        return APPLEDOUBLE', ("tests/test_images.py", "tests/test_datasets.py")),
    M("images: junk folders listed as classes", "fgvc_ref/data/images.py", '"__MACOSX": "__MACOSX/ (macOS zip metadata)",', '', ("tests/test_images.py", "tests/test_datasets.py")),
    M("images: listing unsorted", "fgvc_ref/data/images.py", "entries = sorted(listing, key=lambda e: (nfc(e.name), e.name))", "entries = list(listing)[::-1]", ("tests/test_images.py", "tests/test_export.py")),
    M("layouts: candidate by any present file", "fgvc_ref/data/layouts.py", "    complete = [layout for layout, missing in candidates if not missing]", "    complete = [layout for layout, missing in candidates]", ("tests/test_layouts.py",)),
    M("layouts: junk makes a folder present", "fgvc_ref/data/layouts.py", 'return path.is_dir() and bool(find(path, "*"))', "return path.is_dir() and any(path.iterdir())", ("tests/test_layouts.py",)),
    M("images: find keeps paths through junk", "fgvc_ref/data/images.py", "listed = [(p, kind) for p, kind in _entries(folder, inside) if kind in (FILE, FOLDER)]",
      "listed = [(p, FOLDER if p.is_dir() else FILE) for p, kind in _entries(folder, inside)]",
      ("tests/test_layouts.py", "tests/test_hub.py")),
    M("layouts: --layout not checked for completeness", "fgvc_ref/data/layouts.py", "        if missing:\n            raise DatasetError(f\"{root}: the {force} layout", "        if False:\n            raise DatasetError(f\"{root}: the {force} layout", ("tests/test_layouts.py",)),
    M("stanford_cars: car_ims preferred over devkit", "fgvc_ref/data/stanford_cars.py", 'Layout("car_ims", ("cars_annos.mat", "car_ims/*.jpg"), "the car_ims.tgz download"),', 'Layout("car_ims", ("cars_annos.mat",), "the car_ims.tgz download"),', ("tests/test_layouts.py",)),
    M("stanford_cars: other class orders kept", "fgvc_ref/data/stanford_cars.py", "    to = [index[folder_name(c)] for c in classes]", "    to = list(range(len(classes)))", ("tests/test_hub.py",)),
    M("hub: class names not compared across sources", "fgvc_ref/data/hub.py", "        if differ := names_differ(first, names, first_where, where):", "        if False:", ("tests/test_hub.py",)),
    M("hub: null bytes not read from the path", "fgvc_ref/data/hub.py", "    file = Path(record.root) / path", "    file = Path(path)", ("tests/test_hub.py",)),
    M("hub: a box-like column used without being named", "fgvc_ref/data/hub.py", "    boxy = [c for c in columns if BOX_LIKE.match(c) and c != box_column]\n",
      "    boxy = [c for c in columns if BOX_LIKE.match(c) and c != box_column]\n    box_column, box_format = (boxy[0], 'xyxy') if boxy and not box_column else (box_column, box_format)\n", ("tests/test_hub.py",)),
    M("hub: xywh read as corners", "fgvc_ref/data/hub.py", 'return edges_box(a, b, a + c, b + d) if box_format == "xywh" else edges_box(a, b, c, d)', "return edges_box(a, b, c, d)", ("tests/test_hub.py",)),
    M("hub: splits by file name ignore synonyms", "fgvc_ref/data/hub.py", '"test": ("test", "testing", "eval", "evaluation")', '"test": ("test",)', ("tests/test_hub.py",)),
    M("hub: rows streamed out of order", "fgvc_ref/data/hub.py", "                    if row in rows:\n                        yield _bytes_of(value, records[rows[row]], names[rows[row]])", "                    if row in rows:\n                        yield _bytes_of(value, records[k], names[k])", ("tests/test_hub.py", "tests/test_stanford_cars.py")),
    # --- Hugging Face copies read as they describe themselves: configs, completeness, every split accounted for ------------
    M("hub: a config's data_dir ignored", "fgvc_ref/data/hub.py", "    base = root / data_dir if data_dir else root\n", "    base = root\n", ("tests/test_hub_splits.py",)),
    M("hub: a mapping split -> patterns refused", "fgvc_ref/data/hub.py", "    if isinstance(files, dict):\n        return {str(split)", "    if False:\n        return {str(split)", ("tests/test_hub_splits.py",)),
    M("hub: a list of paths taken as one path", "fgvc_ref/data/hub.py", "        value = [value] if isinstance(value, str) else value\n", "        value = [value]\n", ("tests/test_hub_splits.py",)),
    M("hub: a trailing ** matches folders only", "fgvc_ref/data/hub.py", '    if parts and parts[-1] == "**":\n        parts.append("*")\n', "", ("tests/test_hub_splits.py",)),
    M("hub: a default: true mark ignored", "fgvc_ref/data/hub.py", 'if len(configs) == 1 or n == "default" or c.get("default")]', 'if len(configs) == 1 or n == "default"]', ("tests/test_hub_splits.py",)),
    M("hub: a config naming no files reads the whole tree", "fgvc_ref/data/hub.py", "        if not (data_dir or alone):\n", "        if False:\n", ("tests/test_hub_splits.py",)),
    M("hub: a conversion's config folders merged", "fgvc_ref/data/hub.py", "            if len(tops) > 1:\n", "            if len(tops) > 2:\n", ("tests/test_hub_splits.py",)),
    M("hub: one pattern of a split matching nothing accepted", "fgvc_ref/data/hub.py", "        if shards and unmatched:\n", "        if False:\n", ("tests/test_hub_splits.py",)),
    M("hub: push_to_hub names not taken first", "fgvc_ref/data/hub.py", "    if sharded:\n        return _in_order(sharded)", "    if False:\n        return _in_order(sharded)", ("tests/test_hub_splits.py",)),
    M("hub: file names before folder names", "fgvc_ref/data/hub.py", "for names_of in (lambda rel: rel.parts[:-1], lambda rel: rel.parts[-1:]):", "for names_of in (lambda rel: rel.parts[-1:], lambda rel: rel.parts[:-1]):", ("tests/test_hub_splits.py",)),
    M("hub: a partial conversion read as whole", "fgvc_ref/data/hub.py", "    if partial is not None:\n", "    if False:\n", ("tests/test_hub_splits.py",)),
    M("hub: missing shards of a series not checked", "fgvc_ref/data/hub.py", "        if gaps:\n", "        if False:\n", ("tests/test_hub_splits.py",)),
    M("hub: the last shard of a series never missed", "fgvc_ref/data/hub.py", "for k in range(int(n)) if k not in present]", "for k in range(int(n) - 1) if k not in present]", ("tests/test_hub_splits.py",)),
    M("hub: only fewer rows than the card refused", "fgvc_ref/data/hub.py", "if rows is not None and split in stated and rows != stated[split]:", "if rows is not None and split in stated and rows < stated[split]:", ("tests/test_hub_splits.py",)),
    M("hub: a stale save_to_disk count refused", "fgvc_ref/data/hub.py", '            if layout == "hf_save_to_disk":', "            if False:", ("tests/test_hub_splits.py",)),
    M("hub: the card's sizes of another config", "fgvc_ref/data/hub.py", '    named = [e for e in entries if str(e.get("config_name", "default")) == config]', "    named = entries[:1]", ("tests/test_hub_splits.py",)),
    M("hub: shards state.json lists not checked", "fgvc_ref/data/hub.py", "        if missing and len(missing) < len(listed):\n", "        if False:\n", ("tests/test_hub_splits.py",)),
    M("hub: a Git LFS pointer called unreadable", "fgvc_ref/data/hub.py", '    if head.startswith(b"version https://git-lfs"):\n', "    if False:\n", ("tests/test_hub_splits.py",)),
    M("hub: several splits read as the first", "fgvc_ref/data/hub.py", "split_of = {path: s for s in read for path", "split_of = {path: s for s in read[:1] for path", ("tests/test_hub_splits.py",)),
    M("hub: only the splits read listed", "fgvc_ref/data/hub.py", "tuple((s, v.rows) for s, v in copy.splits.items()))", "tuple((s, v.rows) for s, v in copy.splits.items() if s in read))", ("tests/test_hub_splits.py",)),
    M("datasets: a split trained and tested on", "fgvc_ref/data/datasets.py", "    if test in train:\n", "    if False:\n", ("tests/test_hub_splits.py",)),
    M("datasets: a shard in both the train and test splits accepted", "fgvc_ref/data/datasets.py", "    if shared:\n        first = shared[0].path", "    if False:\n        first = shared[0].path", ("tests/test_hub_splits.py",)),
    M("cli: unused splits not said", "fgvc_ref/cli.py", "    if (line := unused_splits(loaded, parts)) is not None:", "    if (line := unused_splits(loaded, parts)) is None:", ("tests/test_hub_splits.py",)),
    M("cli: --test-split ignored", "fgvc_ref/cli.py", "layout=args.layout, splits=parts[part], **hub)", 'layout=args.layout, splits=parts["train"] if part == "train" else None, **hub)', ("tests/test_hub_splits.py",)),
    M("cache: recorded splits not read back for --reuse", "fgvc_ref/data/cache.py", '"splits": {"train": ["train"], "test": ["test"]}, **params,', '**params, "splits": {"train": ["train"], "test": ["test"]},', ("tests/test_hub_splits.py",)),
    M("reproduce.sh: split options not passed to prepare", "reproduce.sh", "|--hub-config|--train-splits|--test-split) value", "|--hub-config) value", ("tests/test_hub_splits.py",)),
    M("hub: class-name keys sorted as strings", "fgvc_ref/data/hub.py", "names = [names[k] for k in sorted(names, key=int)]", "names = [names[k] for k in sorted(names)]", ("tests/test_hub.py",)),
    M("hub: class names in the card's listing order", "fgvc_ref/data/hub.py", "names = [names[k] for k in sorted(names, key=int)]", "names = list(names.values())", ("tests/test_hub.py",)),
    M("hub: string labels ordered by first appearance", "fgvc_ref/data/hub.py", "classes = sorted(string_labels)", "classes = list(dict.fromkeys(r.label for r in records if isinstance(r.label, str)))", ("tests/test_hub.py",)),
    M("hub: string labels in set order", "fgvc_ref/data/hub.py", "classes = sorted(string_labels)", "classes = list(string_labels)", ("tests/test_hub.py",)),
    M("cub: class ids kept as strings", "fgvc_ref/data/cub.py", '{as_int(r[0], base / name, "id"): r[1:] for r in', "{r[0]: r[1:] for r in", ("tests/test_cub.py",)),
    M("cub: classes in the line order of classes.txt", "fgvc_ref/data/cub.py", 'classes = [name for _, (name,) in sorted(table("classes.txt", 2, "class_id name").items())]',
      'classes = [name for (name,) in table("classes.txt", 2, "class_id name").values()]', ("tests/test_cub.py",)),
    M("cache: a failed split leaves the folder", "fgvc_ref/data/cache.py", "        if made and out.is_dir() and not any(out.iterdir()):\n            out.rmdir()", "        pass", ("tests/test_datasets.py",)),
    M("cache: folder made before decoding", "fgvc_ref/data/cache.py", "    out = Path(out)\n    names = [source_name(r, split, k)", "    out = Path(out)\n    out.mkdir(parents=True, exist_ok=True)\n    names = [source_name(r, split, k)", ("tests/test_datasets.py",)),
    M("threads: torch threads ignore the free cores", "fgvc_ref/threads.py", "n = chosen_threads(n)[0] or min(torch.get_num_threads(), free_cores())", "n = chosen_threads(n)[0] or torch.get_num_threads()", ("tests/test_threads.py",)),
    M("threads: ONNX Runtime threads in the inter-op pool", "fgvc_ref/threads.py", "options.intra_op_num_threads, options.inter_op_num_threads = threads, 1", "options.inter_op_num_threads, options.intra_op_num_threads = threads, 1", ("tests/test_threads.py",)),
    M("threads: free cores from busy time", "fgvc_ref/threads.py", "free = sum((after[c][0] - before[c][0]) / max(1, after[c][1] - before[c][1])", "free = sum(1 - (after[c][0] - before[c][0]) / max(1, after[c][1] - before[c][1])", ("tests/test_threads.py",)),
    M("deploy: session built without the thread options", "fgvc_ref/deploy.py", 'ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])',
      'ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])', ("tests/test_threads.py",)),
    M("deploy: thread count not passed to the session options", "fgvc_ref/deploy.py", "options = onnxruntime_options(threads)", "options = onnxruntime_options(None)", ("tests/test_threads.py",)),
    M("bench: latency sessions at ONNX Runtime's default threads", "fgvc_ref/bench.py", "sessions = {t: OnnxClassifier(path, threads=t) for t in sorted({1, cores})}",
      "sessions = {t: OnnxClassifier(path) for t in sorted({1, cores})}", ("tests/test_threads.py",)),
    M("cli: predict's ONNX session at ONNX Runtime's default threads", "fgvc_ref/cli.py", "device=args.device, threads=threads,\n                                max_pixels", "device=args.device,\n                                max_pixels", (EX,)),
    M("cli: evaluate's ONNX session at ONNX Runtime's default threads", "fgvc_ref/cli.py", "device=args.device, open_set=args.open_set, threads=threads, max_pixels", "device=args.device, open_set=args.open_set, max_pixels", (EX,)),
    M("fashion_mnist: FGVC_FASHION_MNIST ignored", "fgvc_ref/data/fashion_mnist.py", "return Path(os.environ.get(ROOT_VARIABLE) or DEFAULT_ROOT)", "return DEFAULT_ROOT", ("tests/test_fashion_mnist.py",)),
    # --- using a trained model, the gallery, statistics, model details, validation (held-out classes) --
    M("export: loaded model left in training mode", "fgvc_ref/export.py", "    return model.eval(), meta", "    return model, meta", (EX,)),
    M("export: an exported state dict run at the stored size", "fgvc_ref/export.py", 'size=meta["preprocessing"]["image_size"], batch=256', 'size=meta["preprocessing"]["stored_size"], batch=256', (EX,)),
    M("export: probabilities over the top-k", "fgvc_ref/export.py", "top = probs.topk(min(topk, meta[\"num_classes\"]), dim=1)", "top = probs.topk(min(topk, meta[\"num_classes\"]), dim=1)\n        top = type(top)((top.values.log().softmax(1), top.indices))", (EX,)),
    M("export: no warning without a box", "fgvc_ref/export.py", '    if not boxes and meta["preprocessing"].get("test_images_had_boxes"):', '    if False:', (EX,)),
    M("export: photos read in the stored frame", "fgvc_ref/export.py", 'decoded = decode_image(path, str(path), orientation="apply",', 'decoded = decode_image(path, str(path), orientation="keep",', (EX,)),
    M("evaluate: figure normalised by columns", "fgvc_ref/evaluate.py", "rates = cm / cm.sum(1, keepdim=True).clamp_min(1)", "rates = cm / cm.sum(0, keepdim=True).clamp_min(1)", (EV,)),
    M("evaluate: cluster order ignores one-way confusions", "fgvc_ref/evaluate.py", "s = (cm + cm.T).clone().fill_diagonal_(0)", "s = torch.minimum(cm, cm.T).clone().fill_diagonal_(0)", (EV,)),
    M("evaluate: cluster order reads confusions one way (true -> predicted)", "fgvc_ref/evaluate.py", "s = (cm + cm.T).clone().fill_diagonal_(0)", "s = cm.clone().fill_diagonal_(0)", (EV,)),
    M("evaluate: cluster order reads confusions one way (predicted -> true)", "fgvc_ref/evaluate.py", "s = (cm + cm.T).clone().fill_diagonal_(0)", "s = cm.T.clone().fill_diagonal_(0)", (EV,)),
    M("evaluate: clusters grow by the raw count from the end", "fgvc_ref/evaluate.py", "strength, at_start, minus_j = max((int(s[end, j]), at_start, -j)",
      "strength, at_start, minus_j = max((int(cm[end, j]), at_start, -j)", (EV,)),
    M("evaluate: clusters grow by the raw count into the end", "fgvc_ref/evaluate.py", "strength, at_start, minus_j = max((int(s[end, j]), at_start, -j)",
      "strength, at_start, minus_j = max((int(cm[j, end]), at_start, -j)", (EV,)),
    M("evaluate: pair titles cut at the end", "fgvc_ref/mosaic.py", 'return text[: (keep + 1) // 2] + ".." + text[len(text) - keep // 2 :]', 'return text[:limit]', (EV,)),
    M("gallery: un-normalisation constants swapped", "fgvc_ref/gallery.py", "mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)", "std, mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)", (G,)),
    M("gallery: off-centre square on a landscape photo", "fgvc_ref/gallery.py", "left, top = (img.width - side) // 2, (img.height - side) // 2", "left, top = (img.height - side) // 2, (img.width - side) // 2", (G,)),
    M("report: one seed on a side crashes the table", "fgvc_ref/report.py", "        if len(x) < 2 or len(y) < 2:  # Welch's interval needs a spread on each side", "        if len(x) < 2 and len(y) < 2:  # Welch's interval needs a spread on each side", (REP,)),
    M("report: chance from the wrong count", "fgvc_ref/report.py", 'notes = [f"Chance is {100 / k:.1f}% ({k} classes)."', 'notes = [f"Chance is {100 / (k + 1):.1f}% ({k} classes)."', (REP,)),
    M("efficientnet_lite: SAME padding with height and width swapped", "fgvc_ref/efficientnet_lite.py", "for n, k, s in ((x.shape[-1], self.kernel_size[1], self.stride[1]), (x.shape[-2], self.kernel_size[0], self.stride[0])):", "for n, k, s in ((x.shape[-2], self.kernel_size[1], self.stride[1]), (x.shape[-1], self.kernel_size[0], self.stride[0])):", ("tests/test_efficientnet_lite.py",)),
    M("efficientnet_lite: head dropout 0.3", "fgvc_ref/efficientnet_lite.py", "def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:", "def __init__(self, num_classes: int = 1000, dropout: float = 0.3) -> None:", ("tests/test_efficientnet_lite.py",)),
    M("efficientnet_lite: BatchNorm eps 1e-5", "fgvc_ref/efficientnet_lite.py", "BN_MOMENTUM, BN_EPS = 0.1, 1e-3", "BN_MOMENTUM, BN_EPS = 0.1, 1e-5", ("tests/test_efficientnet_lite.py",)),
    M("records: a label equal to K accepted", "fgvc_ref/data/records.py", "bad = [lab for lab in counts if not 0 <= lab < k]", "bad = [lab for lab in counts if not 0 <= lab <= k]", ("tests/test_records.py",)),
    M("sources: fingerprint ignores the test split", "fgvc_ref/data/sources.py", "                        test_manifest.get(\"data_sha256\") or test_manifest.get(\"sources\"), classes]", "                        classes]", ("tests/test_sources.py",)),
    M("train: validation images stay in training", "fgvc_ref/train.py", "train_x, train_y, train_sizes = data.train_images[train_idx], data.train_labels[train_idx], sizes[train_idx]", "train_x, train_y, train_sizes = data.train_images, data.train_labels, sizes", (T,)),
    M("train: EMA validated with the raw weights", "fgvc_ref/train.py", 'row["ema_val_acc"] = evaluate(ema.module,', 'row["ema_val_acc"] = evaluate(model,', (T,)),
    M("train: a tie counts as an improvement", "fgvc_ref/train.py", "    return accuracy > best", "    return accuracy >= best", (T,)),
    M("train: a one-image last batch kept", "fgvc_ref/train.py", "    if len(starts) > 1 and total - starts[-1] == world < step:", "    if False:", (T,)),
    M("train: a full last batch of one image joined", "fgvc_ref/train.py", "    if len(starts) > 1 and total - starts[-1] == world < step:", "    if len(starts) > 1 and total - starts[-1] == world:", (T,)),
    M("train: a resume ignores the recorded thread count", "fgvc_ref/train.py", "    elif recorded:\n        n = recorded", "    elif False:\n        n = recorded", ("tests/test_reliability_resume.py",)),
    M("train: another thread count on resume not said", "fgvc_ref/train.py", "    if recorded and n != recorded:  # always said", "    if False:  # always said", ("tests/test_reliability_resume.py",)),
    M("train: a run that failed before its first checkpoint leaves its folder", "fgvc_ref/train.py", "            shutil.rmtree(made, ignore_errors=True)", "            pass", ("tests/test_model.py", T)),
    M("train: a failed run removes its folder but not the parent it made", "fgvc_ref/train.py", "    made = next((f for f in reversed([out, *out.parents]) if not f.exists()), None)", "    made = out if not out.exists() else None", ("tests/test_model.py", T)),
    M("train: a folder the user made is removed too", "fgvc_ref/train.py", "    made = next((f for f in reversed([out, *out.parents]) if not f.exists()), None)", "    made = out", ("tests/test_model.py",)),
    M("train: an early stop said only without --quiet", "fgvc_ref/train.py", 'if row.get("early_stop") and place.rank == 0:', 'if row.get("early_stop") and progress and place.rank == 0:', (T,)),
    M("train: an EMA decay of 0 not explained", "fgvc_ref/train.py", 'if ema is not None and ema.decay == 0 and recipe.ema_decay_reading == "adjusted":', "if False:", (T,)),
    M("model: offline weights fail with urllib's error", "fgvc_ref/model.py", "        except OSError as e:  # urllib's URLError", "        except ImportError as e:  # urllib's URLError", ("tests/test_model.py",)),
    M("cli: any OSError blamed on the disk", "fgvc_ref/cli.py", "if e.errno not in (errno.ENOSPC, errno.EDQUOT):", "if False:", ("tests/test_reliability_resume.py",)),
    M("reproduce.sh: a child stopped by a signal ends the script silently", "reproduce.sh", '  case "$rc" in 130) stopped INT 130 ;; 143) stopped TERM 143 ;; esac\n  return "$rc"', '  return "$rc"',
      (R + "::test_a_sigint_that_reaches_the_trainer_itself_stops_the_script_with_its_own_line",)),
    M("train: on_epoch never called", "fgvc_ref/train.py", "                on_epoch(row)", "                pass", (T,)),
    M("train: the reference path's workers outlive the run", "fgvc_ref/train.py", "            iterator._shutdown_workers()", "            pass", (T,)),
    M("sources: load_train reads the test split too", "fgvc_ref/data/sources.py", '    return _load(spec, ("train",), verify_sources)', '    return _load(spec, ("train", "test"), verify_sources)', (T,)),
    M("train: the summary's validation number from the raw weights", "fgvc_ref/train.py", '"last_val_acc": last.get(("ema_" if has_ema else "") + "val_acc"),', '"last_val_acc": last.get("val_acc"),', (T,)),
    # --- the search -----------------------------------------------------------------------------------
    M("sweep: the grid enqueued by every worker", "fgvc_ref/sweep.py", "        if found is None:\n            study.set_user_attr(SPEC_KEY, spec)\n            for point in enqueue:",
      "        for point in enqueue:\n            study.enqueue_trial(point)\n        if found is None:\n            study.set_user_attr(SPEC_KEY, spec)\n            for point in enqueue:", (SW + "::test_two_workers_started_at_once_finish_a_2x2_grid_with_every_point_run_once",)),
    M("sweep: a study with another definition joined", "fgvc_ref/sweep.py", "        elif found != spec:", "        elif False:", (SW,)),
    M("sweep: trials read the test split", "fgvc_ref/sweep.py", "    loaded = load_train(data, verify_sources=verify_sources)  # the train split only", "    from fgvc_ref.data.sources import load_data\n    loaded = load_data(data, verify_sources=verify_sources)  # the train split only", (SW + "::test_a_cache_without_its_test_split_sweeps",)),
    M("sweep: the pruner sees the raw weights", "fgvc_ref/sweep.py", '    return ("ema_" if recipe.ema else "") + "val_acc"', '    return "val_acc"', (SW,)),
    M("sweep: every seed reported at the same steps", "fgvc_ref/sweep.py", "trial.report(row[key], step=k * recipe.epochs + row[\"epoch\"])", "trial.report(row[key], step=row[\"epoch\"])", (SW,)),
    M("sweep: a diverging trial fails instead of being pruned", "fgvc_ref/sweep.py", '            raise optuna.TrialPruned(f"non-finite loss (a diverging LR): {e}") from None', "            raise", (SW,)),
    M("sweep: the sampler seeded alike for every trial", "fgvc_ref/sweep.py", "study.sampler = make_sampler(sampler, params, seed, len(trials))", "study.sampler = make_sampler(sampler, params, seed, 0)", (SW,)),
    M("sweep: the sampler's seed ignored", "fgvc_ref/sweep.py", '        return optuna.samplers.RandomSampler(seed=derived_seed(seed, count))', '        return optuna.samplers.RandomSampler(seed=derived_seed(0, count))', (SW,)),
    M("sweep: a dead worker's trial never failed", "fgvc_ref/sweep.py", "        optuna.storages.fail_stale_trials(study)  # a dead worker's trial", "        pass  # a dead worker's trial",
      (SW + "::test_a_worker_killed_in_a_trial_is_failed_retried_by_the_other_and_resumes_to_the_uninterrupted_weights",)),
    M("sweep: no heartbeat recorded", "fgvc_ref/sweep.py", "            storage.record_heartbeat(trial_id)", "            pass", ("tests/test_sweep_postgres.py",)),
    M("sweep: a retried trial in a new run folder", "fgvc_ref/sweep.py", "    digest = hashlib.sha256(json.dumps([as_dict(recipe), seed, fingerprint], sort_keys=True).encode()).hexdigest()[:12]",
      "    digest = hashlib.sha256(json.dumps([as_dict(recipe), seed, fingerprint, time.time()], sort_keys=True).encode()).hexdigest()[:12]",
      (SW + "::test_a_worker_killed_in_a_trial_is_failed_retried_by_the_other_and_resumes_to_the_uninterrupted_weights",)),
    M("sweep: the cap counts only complete trials", "fgvc_ref/sweep.py", "        finished = states[TrialState.COMPLETE] + states[TrialState.PRUNED]", "        finished = states[TrialState.COMPLETE]", (SW,)),
    M("sweep: the storage password shown", "fgvc_ref/sweep.py", '    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\\1***@", url)', "    return url", (SW,)),
    M("greedy: adopted on a positive mean, without Welch", "fgvc_ref/greedy.py", "        winner = tried[0].technique if gain.low > 0 else None", "        winner = tried[0].technique if gain.diff > 0 else None", (GR,)),
    M("greedy: techniques composed in the order adopted", "fgvc_ref/greedy.py", "    changes = {k: v for t in TECHNIQUES if t in adopted for k, v in TECHNIQUES[t].items()}", "    changes = {k: v for t in adopted for k, v in TECHNIQUES[t].items()}", (GR,)),
    M("greedy: the LR grid stays at the start", "fgvc_ref/sweep.py", "        centre = incumbent.lr_scale if incumbent else base.lr_scale", "        centre = base.lr_scale", (GR,)),
    M("greedy: the incumbent not passed on", "fgvc_ref/greedy.py", "        tried = best_lr(evaluate(adopted, remaining, incumbent))", "        tried = best_lr(evaluate(adopted, remaining, None))", (GR,)),
    M("greedy: label smoothing keeps its LR jump", "fgvc_ref/greedy.py", '    del deltas["label_smoothing"]["lr"]  # a nuisance', '    pass  # a nuisance', (GR,)),
    M("finalize: the choice trained with a validation split", "fgvc_ref/finalize.py", "        fixed = replace(recipe, val_fraction=0.0, patience=0)", "        fixed = replace(recipe, patience=0)", (SW,)),
    M("finalize: training reads the test split", "fgvc_ref/finalize.py", "    loaded = load_train(data, verify_sources=verify_sources)", "    from fgvc_ref.data.sources import load_data\n    loaded = load_data(data, verify_sources=verify_sources)", (SW,)),
    M("finalize: the default is the choice", "fgvc_ref/finalize.py", "    return replace(default, **doc[\"best\"][\"params\"]), default, [study]", "    return replace(default, **doc[\"best\"][\"params\"]), replace(default, **doc[\"best\"][\"params\"]), [study]", (SW,)),
    M("train: --recipe fields ignored", "fgvc_ref/recipe.py", "    return Recipe(**{k: v for k, v in fields.items() if k in _TYPES})", "    return Recipe(name=fields.get(\"name\", \"base\"))", (SW,)),
    M("train: sync check never armed", "fgvc_ref/train.py", '        torch.cuda.set_sync_debug_mode("error")', "        pass", (T,)),
    M("reproduce.sh: one seed too many", "reproduce.sh", "for ((seed = 0; seed < seeds; seed++)); do jobs_list", "for ((seed = 0; seed <= seeds; seed++)); do jobs_list", (R + "::test_seeds_n_runs_exactly_seeds_0_to_n_minus_1",)),
    M("reproduce.sh: embedded default with 3 seeds", "reproduce.sh", 'epochs="${epochs:-10}" seeds="${seeds:-2}"', 'epochs="${epochs:-10}" seeds="${seeds:-3}"', (R + "::test_the_default_seeds_and_epochs_are_the_documented_ones",)),
    # --- the edge: ONNX export, int8, latency, and the GPU script ------------------------------------
    M("deploy: normalised with the wrong order", "fgvc_ref/deploy.py", "return x.to(torch.float32).div(255).sub(self.mean).div(self.std)", "return x.to(torch.float32).sub(self.mean * 255).div(self.std * 255)", ("tests/test_deploy.py",)),
    M("deploy: NHWC not transposed", "fgvc_ref/deploy.py", 'x = pixels.permute(0, 3, 1, 2) if self.layout == "nhwc" else pixels', 'x = pixels.reshape(pixels.shape[0], pixels.shape[3], pixels.shape[1], pixels.shape[2]) if self.layout == "nhwc" else pixels', ("tests/test_deploy.py",)),
    M("deploy: calibration on the test split", "fgvc_ref/deploy.py", "    x = resized_crop_batch(data.train_images[pick], boxes, size)", "    x = resized_crop_batch(data.test_images[pick], whole_boxes(torch.tensor(data.test_images.shape[-2:]).expand(len(pick), 2)), size)", ("tests/test_deploy.py",)),
    M("deploy: calibration sample unseeded", "fgvc_ref/deploy.py", "pick = torch.randperm(n, generator=torch.Generator().manual_seed(seed))", "pick = torch.randperm(n)", ("tests/test_deploy.py",)),
    M("deploy: dtype not checked", "fgvc_ref/deploy.py", "if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:", "if not isinstance(pixels, np.ndarray):", ("tests/test_deploy.py",)),
    M("evaluate: agreement against itself", "fgvc_ref/evaluate.py", "    diff = (logits - reference).abs()", "    reference = logits\n    diff = (logits - reference).abs()", ("tests/test_deploy.py",)),
    M("evaluate: agreement against the run's default weights", "fgvc_ref/evaluate.py", 'reference = run_logits(load_run(run_dir, meta.get("weights")), images, device)',
      "reference = run_logits(load_run(run_dir), images, device)", (EX,)),
    M("evaluate: agreement against the raw weights", "fgvc_ref/evaluate.py", 'reference = run_logits(load_run(run_dir, meta.get("weights")), images, device)',
      'reference = run_logits(load_run(run_dir, "raw"), images, device)', (EX,)),
    M("deploy: ONNX description names the EMA whenever the run has one", "fgvc_ref/deploy.py", '"weights": run.weights, "run": str(run.path.resolve())',
      '"weights": "ema" if run.recipe.get("ema") else "raw", "run": str(run.path.resolve())', (EX,)),
    M("deploy: an NCHW file's size read from the wrong axis", "fgvc_ref/deploy.py", 'self.size = self.shape[0] if self.layout == "nhwc" else self.shape[1]',
      'self.size = self.shape[1] if self.layout == "nhwc" else self.shape[0]', (EX,)),
    M("deploy: an ONNX file's size read as if it were NHWC", "fgvc_ref/deploy.py", 'self.size = self.shape[0] if self.layout == "nhwc" else self.shape[1]',
      "self.size = self.shape[0]", (EX,)),
    M("export: ONNX pixels always given in NHWC", "fgvc_ref/export.py", "model.run(eval_pixels(images[i : i + 64], model.size, model.layout,",
      "model.run(eval_pixels(images[i : i + 64], model.size, \"nhwc\",", (EX,)),
    M("bench: latency inputs always NHWC", "fgvc_ref/bench.py", 'g.integers(0, 256, (batch, *f["shape"]), dtype=np.uint8)',
      'g.integers(0, 256, (batch, f["size"], f["size"], 3), dtype=np.uint8)', (EX,)),
    M("bench: latency formats not alternated", "fgvc_ref/bench.py", "                for _ in range(-(-repeats // per_round)):  # rounds: every format in turn, so that machine noise hits them alike\n                    for p, f in formats.items():", "                for p, f in formats.items():  # mutant: one format after the other\n                    for _ in range(-(-repeats // per_round)):", ("tests/test_bench.py",)),
    M("bench: latency percentiles in seconds", "fgvc_ref/bench.py", "t = np.array(times[p][:repeats]) * 1e3", "t = np.array(times[p][:repeats])", ("tests/test_bench.py",)),
    M("bench: latency percentiles in microseconds", "fgvc_ref/bench.py", "t = np.array(times[p][:repeats]) * 1e3", "t = np.array(times[p][:repeats]) * 1e6", ("tests/test_bench.py",)),
    M("bench: latency percentiles read as fractions", "fgvc_ref/bench.py", 'float(np.percentile(t, q)) for q in (50, 90, 99)', 'float(np.percentile(t, q / 100)) for q in (50, 90, 99)', ("tests/test_bench.py",)),
    M("report: latency cells in microseconds", "fgvc_ref/report.py", """cells.append(f"{t['p50_ms']:.2f} / {t['p90_ms']:.2f} / {t['p99_ms']:.2f}{share}")""",
      """cells.append(f"{t['p50_ms'] * 1e3:.2f} / {t['p90_ms'] * 1e3:.2f} / {t['p99_ms'] * 1e3:.2f}{share}")""", (REP,)),
    M("report: latency share inverted", "fgvc_ref/report.py", """share = f" ({t['p50_ms'] / base:.2f})" if base else """"", """share = f" ({base / t['p50_ms']:.2f})" if base else """"", (REP,)),
    M("evaluate: an exported model's evaluation written to the working directory", "fgvc_ref/evaluate.py",
      "path.with_name(f\"{path.name.replace('.', '-')}-evaluation\")", "Path(f\"{path.name.replace('.', '-')}-evaluation\")",
      ("tests/test_readme.py",)),
    M("deploy: the int8 model written to the working directory", "fgvc_ref/deploy.py", 'out = fp32.with_name(fp32.stem + ".int8.onnx")',
      'out = Path(fp32.stem + ".int8.onnx")', ("tests/test_readme.py",)),
    M("gpu.sh: --smoke writes into results/", "bench/gpu.sh", '[ -n "$smoke" ] && out="${OUT:-runs/gpu-smoke}"', '[ -n "$smoke" ] && out="${OUT:-results}"', ("tests/test_repo.py",)),
    M("gpu.sh: the full run writes into results/", "bench/gpu.sh", 'out="${OUT:-runs/gpu}"', 'out="${OUT:-results}"', ("tests/test_repo.py",)),
    M("reproduce.sh: the embedded default writes into results/", "reproduce.sh", 'mode=embedded-default; out="${out:-runs/embedded-default}"',
      'mode=embedded-default; out="${out:-results/embedded-default}"', ("tests/test_repo.py",)),
    M("gallery: the default overwrites docs/augmentations.png", "fgvc_ref/cli.py", 'default="runs/gallery/augmentations.png"', 'default="docs/augmentations.png"', ("tests/test_repo.py",)),
    M("report: a runs JSON's report written beside it", "fgvc_ref/report.py",
      '    if out is None and runs.is_file():  # beside it would be results/, a tracked folder\n        raise ValueError(f"{runs} is a runs JSON: give --out (e.g. RESULTS.md with --section NAME, or a file under runs/)")\n    out = Path(out) if out else runs / "RESULTS.md"',
      '    out = Path(out) if out else (runs.parent if runs.is_file() else runs) / "RESULTS.md"', ("tests/test_repo.py",)),
    M("report: --bench written beside its first JSON", "fgvc_ref/report.py",
      '    if out is None:\n        raise ValueError("report --bench needs --out (e.g. RESULTS.md with --section NAME, or a file under runs/)")\n    out = Path(out)',
      '    out = Path(out) if out is not None else Path(paths[0]).with_name("RESULTS.md")', ("tests/test_repo.py",)),
    M("gpu.sh: interpreter not checked", "bench/gpu.sh", 'if ! "$py" -c "import torch, torchvision, fgvc_ref" 2>/dev/null; then', "if false; then", ("tests/test_gpu_script.py",)),
    M("gpu.sh: no python3 fallback", "bench/gpu.sh", 'if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"; fi', "py=.venv/bin/python", ("tests/test_gpu_script.py",)),
    # --- metrics: calibration, open-set rejection, selective classification --------------------------
    M("calibration: ECE bins closed below", "fgvc_ref/calibration.py", "m = torch.bucketize(conf, edges, right=False) - 1", "m = torch.bucketize(conf, edges, right=True) - 1", (CAL,)),
    M("calibration: ECE bins weighted equally", "fgvc_ref/calibration.py", 'sum(b["count"] / n * abs(', 'sum(1 / len(table) * abs(', (CAL,)),
    M("calibration: confidence of the true class", "fgvc_ref/calibration.py", "conf = torch.softmax(z / temperature, 1).amax(1)", "conf = torch.softmax(z / temperature, 1).gather(1, y[:, None])[:, 0]", (CAL,)),
    M("calibration: bins ignore the temperature", "fgvc_ref/calibration.py", "conf = torch.softmax(z / temperature, 1).amax(1)", "conf = torch.softmax(z, 1).amax(1)", (CAL,)),
    M("calibration: NLL multiplies by T", "fgvc_ref/calibration.py", "    s = z / temperature\n", "    s = z * temperature\n", (CAL,)),
    M("calibration: NLL summed, not averaged", "fgvc_ref/calibration.py", ".mean())  # -log p[y]", ".sum())  # -log p[y]", (CAL,)),
    M("calibration: golden section keeps the wrong side", "fgvc_ref/calibration.py", "if fc <= fd:", "if fc >= fd:", (CAL,)),
    M("calibration: golden section stops at a bracket of 0.1", "fgvc_ref/calibration.py", "while b - a > LOG_T_TOLERANCE:", "while b - a > 0.1:", (CAL,)),
    M("rejection: AUROC ties count 0", "fgvc_ref/rejection.py", "return torch.searchsorted(b, known, right=False) + torch.searchsorted(b, known, right=True)", "return 2 * torch.searchsorted(b, known, right=False)", (REJ,)),
    M("rejection: AUROC ties count 1", "fgvc_ref/rejection.py", "return torch.searchsorted(b, known, right=False) + torch.searchsorted(b, known, right=True)", "return 2 * torch.searchsorted(b, known, right=True)", (REJ,)),
    M("rejection: tpr and coverage need k/n > share", "fgvc_ref/rejection.py", "/ n, float(share))) + 1", "/ n, float(share), right=True)) + 1", (REJ,)),
    M("rejection: k = ceil(share * n) in floats", "fgvc_ref/rejection.py", "    return int(torch.searchsorted(torch.arange(1, n + 1, dtype=torch.float64) / n, float(share))) + 1", "    return math.ceil(share * n)", (REJ,)),
    M("rejection: threshold one known image lower", "fgvc_ref/rejection.py", 'return float(a[_smallest_count(len(a), tpr, "tpr") - 1])', 'return float(a[min(_smallest_count(len(a), tpr, "tpr"), len(a) - 1)])', (REJ,)),
    M("rejection: FPR counts only unknown above the threshold", "fgvc_ref/rejection.py", '(_scores(unknown, "unknown") >= t)', '(_scores(unknown, "unknown") > t)', (REJ,)),
    M("rejection: OSCR over every known image", "fgvc_ref/rejection.py", "int(_twice_wins(a, b)[correct].sum())", "int(_twice_wins(a, b).sum())", (REJ,)),
    M("rejection: energy with the free energy's sign", "fgvc_ref/rejection.py", "return torch.logsumexp(_logits(logits), 1)", "return -torch.logsumexp(_logits(logits), 1)", (REJ,)),
    M("rejection: MSP ignores the temperature", "fgvc_ref/rejection.py", "torch.softmax(_logits(logits) / _temperature(temperature), 1)", "torch.softmax(_logits(logits) / max(_temperature(temperature), 1.0), 1)", (REJ,)),
    M("rejection: AURC risk over n instead of k", "fgvc_ref/rejection.py", "(e[1:] / torch.arange(1, len(s) + 1, dtype=torch.float64)).mean()", "(e[1:] / len(s)).mean()", (REJ,)),
    M("rejection: AURC from the least confident first", "fgvc_ref/rejection.py", "size.flip(0).cumsum(0).double()])  # images up to each group's end, highest first\n    errors = torch.cat([zero, wrong.flip(0).cumsum(0)])",
      "size.cumsum(0).double()])  # images up to each group's end, highest first\n    errors = torch.cat([zero, wrong.cumsum(0)])", (REJ,)),
    M("rejection: a cut tie group counted whole", "fgvc_ref/rejection.py", "    return errors[g - 1] + (k - ends[g - 1]) * (errors[g] - errors[g - 1]) / (ends[g] - ends[g - 1])", "    return errors[g]", (REJ,)),
    # --- open set: splits, the run's evaluation, the exported rule, the report -----------------------------------
    M("open_set: a class in two lists accepted", "fgvc_ref/data/open_set.py", "            if c in where:", "            if c in where and where[c] == key:", (OS,)),
    M("open_set: both unknown lists empty accepted", "fgvc_ref/data/open_set.py", 'if not content["unknown_easy"] and not content["unknown_hard"]:', "if False:", (OS,)),
    M("open_set: unknown keys ignored", "fgvc_ref/data/open_set.py", "    if extra:\n", "    if False:\n", (OS,)),
    M("open_set: indices taken in any class order", "fgvc_ref/data/open_set.py", "    if not is_canonical(classes):", "    if False:", (OS,)),
    M("open_set: known classes numbered in the file's order", "fgvc_ref/data/open_set.py", "        resolved[key] = tuple(sorted(indices))", "        resolved[key] = tuple(indices)", (OS,)),
    M("open_set: CUB's ids read 0-based", "fgvc_ref/data/open_set.py", 'c.startswith(f"{i + 1:03d}.")', 'c.startswith(f"{i:03d}.")', (OS,)),
    M("open_set: the test split keeps every class", "fgvc_ref/data/open_set.py", "fields.update(test_images=data.test_images[test], test_labels=relabel(data.test_labels[test], split))",
      "fields.update(test_images=data.test_images, test_labels=relabel(data.test_labels, split))", (OS,)),
    M("open_set: easy and hard swapped", "fgvc_ref/data/open_set.py", "return TestPartition(known, new[known], unknown, hard[unknown])", "return TestPartition(known, new[known], unknown, easy[unknown])", (OS,)),
    M("open_set: the hash depends on key order", "fgvc_ref/data/open_set.py", "json.dumps(content, sort_keys=True, separators=", "json.dumps(content, separators=", (OS,)),
    M("open_set: a seeded split ignores its seed", "fgvc_ref/data/open_set.py", "torch.randperm(k, generator=torch.Generator().manual_seed(seed))", "torch.randperm(k, generator=torch.Generator().manual_seed(0))", (OS,)),
    M("open_set: the data fingerprint ignores the split", "fgvc_ref/data/open_set.py", "json.dumps([fingerprint, split.sha256])", "json.dumps([fingerprint])", (OS,)),
    M("open-set train: the split not in the run identity", "fgvc_ref/train.py", '"open_set": data.open_set["sha256"] if data.open_set else None}', '"open_set": None}', (OS,)),
    M("open-set train: an open-set run without validation images trains", "fgvc_ref/train.py", "    if data.open_set is not None and not len(val_idx):", "    if False:", (OS,)),
    M("open-set cli: val_fraction left at 0", "fgvc_ref/cli.py", "        if recipe.val_fraction == 0:\n            recipe = dataclasses.replace(", "        if False:\n            recipe = dataclasses.replace(", (OS,)),
    M("open-set reproduce.sh: the split not passed to the trainings", "reproduce.sh", '"${sets[@]}" "${open_set_args[@]}" "${keep[@]}" --quiet)', '"${sets[@]}" "${keep[@]}" --quiet)', (OS,)),
    M("open-set reproduce.sh: the split not checked before any work", "reproduce.sh", '"${sets[@]}" "${open_set_args[@]}" >/dev/null || exit 2', '"${sets[@]}" >/dev/null || exit 2', (OS,)),
    M("open_set_eval: temperature fitted on the known test images", "fgvc_ref/open_set_eval.py", "    rule = fit_rule(val_logits, val_labels, score_name, tpr)", "    rule = fit_rule(known_logits, known_labels, score_name, tpr)", (OSE,)),
    M("open_set_eval: easy AUROC over the hard unknowns", "fgvc_ref/open_set_eval.py", '"auroc_easy": part(~hard), "auroc_hard": part(hard)', '"auroc_easy": part(hard), "auroc_hard": part(~hard)', (OSE,)),
    M("open_set_eval: msp_ts without the temperature", "fgvc_ref/open_set_eval.py", "        return rejection.msp(logits, temperature)", "        return rejection.msp(logits)", (OSE,)),
    M("open_set_eval: NLL after scaling at T = 1", "fgvc_ref/open_set_eval.py", '"nll_ts": calibration.nll(known_logits, known_labels, t)', '"nll_ts": calibration.nll(known_logits, known_labels)', (OSE,)),
    M("open_set_eval: the head's probs without T", "fgvc_ref/open_set_eval.py", '{"probs": torch.softmax(logits / temperature, 1)', '{"probs": torch.softmax(logits, 1)', (OSE,)),
    M("open_set_eval: a score at the threshold rejected", "fgvc_ref/open_set_eval.py", '"known": s >= threshold}', '"known": s > threshold}', (OSE,)),
    M("open_set_eval: T kept in float64", "fgvc_ref/open_set_eval.py", "    return float(torch.tensor(calibration.fit_temperature(val_logits, val_labels), dtype=val_logits.dtype))",
      "    return calibration.fit_temperature(val_logits, val_labels)", (OSE, *DEP)),
    M("open_set_eval: validation carved with another seed", "fgvc_ref/open_set_eval.py", "    _, val, boxes = carve_validation(known, val_fraction, seed)", "    _, val, boxes = carve_validation(known, val_fraction, seed + 1)", (OSE,)),
    M("open-set evaluate: the rule fitted on the test images", "fgvc_ref/evaluate.py", "                                       run_logits(run, val_x, dev, val_boxes), val_y)",
      "                                       logits, loaded.test_labels)", (OSE,)),
    M("open-set evaluate: unknown images taken from the known classes", "fgvc_ref/evaluate.py", "    return known, loaded.test_images[part.unknown], part.hard", "    return known, loaded.test_images[part.known[: len(part.unknown)]], part.hard", (OSE,)),
    M("open-set evaluate: a test set without unknown images not refused first", "fgvc_ref/evaluate.py", "    if not len(part.unknown):\n", "    if False:\n", (OSE,)),
    M("open-set train: validation images taken whole", "fgvc_ref/train.py", "torch.where(cropped[val_idx].unsqueeze(1), whole_boxes(sizes[val_idx]), centre_crop_boxes(sizes[val_idx]))",
      "whole_boxes(sizes[val_idx])", (OSE,)),
    M("open-set deploy: the int8 file fits on fp32's logits", "fgvc_ref/deploy.py", "    temperature = fit_temperature(torch.from_numpy(_run_all(path, pixels)[OUTPUT]), labels)",
      '    temperature = fit_temperature(torch.from_numpy(_run_all(path.with_name(path.name.replace(".int8", "")), pixels)[OUTPUT]), labels)', DEP),
    M("open-set deploy: known by a strict comparison", "fgvc_ref/deploy.py", 'helper.make_node("GreaterOrEqual", ["score", "fgvc_ref_reject_threshold"], ["known"])',
      'helper.make_node("Greater", ["score", "fgvc_ref_reject_threshold"], ["known"])', DEP),
    M("open-set deploy: probs without the temperature", "fgvc_ref/deploy.py", 'helper.make_node("Softmax", ["fgvc_ref_scaled_logits"], ["probs"], axis=1)', 'helper.make_node("Softmax", [OUTPUT], ["probs"], axis=1)', DEP),
    M("open-set deploy: energy reduced by its max", "fgvc_ref/deploy.py", 'nodes.append(reduce("ReduceLogSumExp", OUTPUT, "score"))', 'nodes.append(reduce("ReduceMax", OUTPUT, "score"))', DEP),
    M("open-set deploy: validation images resized whole", "fgvc_ref/deploy.py", "    x = resized_crop_batch(images, boxes, size)\n    info =",
      "    x = resized_crop_batch(images, torch.tensor([[0, 0, images.shape[-2], images.shape[-1]]]).expand(len(images), 4), size)\n    info =", DEP),
    M("open-set export: predict never says unknown", "fgvc_ref/export.py", '            if "known" in out and not bool(out["known"][row]):', "            if False:", DEP),
    M("open-set report: each step against the first stage", "fgvc_ref/report.py", "    for a, b in zip(adopted, adopted[1:]):", "    for a, b in zip([adopted[0]] * len(adopted), adopted[1:]):", (REP,)),
    # --- files as people have them: extensions, links, names, very large photos ---------------------------
    M("images: extensions compared in their case", "fgvc_ref/data/images.py", "if kind == FILE and path.suffix.lower() not in extensions:", "if kind == FILE and path.suffix not in extensions:", (IM,)),
    M("images: every extension Pillow registers taken for an image", "fgvc_ref/data/images.py", "if fmt in PICTURE_FORMATS and fmt in Image.OPEN and (PICTURE_FORMATS[fmt] is None",
      "if fmt in Image.OPEN and (PICTURE_FORMATS.get(fmt) is None", (IM,)),
    M("images: formats read without their decoder", "fgvc_ref/data/images.py", "(PICTURE_FORMATS[fmt] is None or features.check(PICTURE_FORMATS[fmt]))", "True", (IM,)),
    M("images: find's image placeholder in lower case only", "fgvc_ref/data/images.py", "return suffix.lower() in extensions and fnmatchcase(", "return suffix in extensions and fnmatchcase(", (IM,)),
    M("images: files skipped for their extension counted together", "fgvc_ref/data/images.py", "return f\"{NOT_IMAGE} ({path.suffix.lower() or 'none'})\"", "return NOT_IMAGE", (IM,)),
    M("images: the note does not say which extensions are read", "fgvc_ref/data/images.py", "if any(kind.startswith(NOT_IMAGE) for kind in skipped):", "if False:", (IM,)),
    M("images: a folder of unread files said to hold nothing", "fgvc_ref/data/images.py", "others = [p for p, kind in found.others if kind.startswith(NOT_IMAGE) or kind == SPECIAL]", "others = []", (IM, FO)),
    M("images: junk counted as what a folder holds", "fgvc_ref/data/images.py", "if kind.startswith(NOT_IMAGE) or kind == SPECIAL]", "if True]", (IM,)),
    M("images: pipes and sockets taken for files", "fgvc_ref/data/images.py", "kind = FOLDER if entry.is_dir() else FILE if entry.is_file() else SPECIAL", "kind = FOLDER if entry.is_dir() else FILE", (IM,)),
    M("images: broken links skipped silently", "fgvc_ref/data/images.py", "                bad.append(problem)\n                continue", "                continue", (IM, FO)),
    M("images: a link to a folder above followed", "fgvc_ref/data/images.py", "if real in above and real.is_dir():", "if False:", (IM,)),
    M("images: a deep walk forgets the folders it came through", "fgvc_ref/data/images.py", "walk(path, rest, inside | {path.resolve()})", "walk(path, rest, inside)", (IM,)),
    M("images: listing sorted by the disk's spelling", "fgvc_ref/data/images.py", "key=lambda e: (nfc(e.name), e.name)", "key=lambda e: e.name", (IM,)),
    M("images: find matches names as the disk spells them", "fgvc_ref/data/images.py", "    name, part = nfc(name), nfc(part)\n", "", (IM,)),
    M("images: on_disk finds only the exact spelling", "fgvc_ref/data/images.py", "spellings = listings[base].get(nfc(name), [])", "spellings = listings[base].get(name, [])", (IM, "tests/test_cub.py")),
    M("images: located keeps the annotation's spelling", "fgvc_ref/data/images.py", "records = [r._replace(path=str(on_disk(Path(r.path), listings))) for r in records]", "records = list(records)",
      ("tests/test_records.py", "tests/test_cub.py")),
    M("images: large JPEGs refused on user paths", "fgvc_ref/data/images.py", "if max_reduction is not None and data.startswith(JPEG_START):", "if False:", (IM, EX + "::test_predict_reads_a_jpeg_over_the_pixel_limit_reduced_and_answers_as_for_the_whole_decode")),
    M("images: reduction ignores what the caller needs", "fgvc_ref/data/images.py", "factor = next((f for f in REDUCTIONS if f <= max_reduction(*shown)), 1)", "factor = REDUCTIONS[0]", (IM,)),
    M("images: reduced picture not checked against the limit", "fgvc_ref/data/images.py", "        if img.width * img.height <= limit:", "        if True:", (IM,)),
    M("images: reduction asked about the stored frame", "fgvc_ref/data/images.py", "shown = (h, w) if tag in (5, 6, 7, 8) else (w, h)", "shown = (w, h)", (IM,)),
    M("images: the partial block of a reduced JPEG kept", "fgvc_ref/data/images.py", "                img = img.crop((0, 0, w // reduced, h // reduced))", "                pass", (IM,)),
    M("images: max_pixels ignored", "fgvc_ref/data/images.py", "with pixel_limit(max_pixels), warnings.catch_warnings():", "with warnings.catch_warnings():", (IM,)),
    M("images: Pillow's limit left raised", "fgvc_ref/data/images.py", "    finally:\n        Image.MAX_IMAGE_PIXELS = saved", "    finally:\n        pass", (IM,)),
    M("stanford_cars: class-folder layout found by .jpg files only", "fgvc_ref/data/stanford_cars.py", 'Layout("folders", tuple(f"{split}/*/*{IMAGE}" for split in SPLITS)',
      'Layout("folders", tuple(f"{split}/*/*.jpg" for split in SPLITS)', ("tests/test_datasets.py::test_a_copy_whose_images_have_other_extensions_and_cases_prepares_like_the_original",)),
    M("folder: class names as the disk spells them", "fgvc_ref/data/folder.py", "folders = {nfc(p.name): p for p in top.folders}", "folders = {p.name: p for p in top.folders}", (FO,)),
    M("folder: box rows looked up as the disk spells the file", "fgvc_ref/data/folder.py", 'boxes.get(nfc(f"{name}/{path.name}"))', 'boxes.get(f"{name}/{path.name}")', (FO,)),
    M("folder: box CSV keys as written", "fgvc_ref/data/folder.py", "boxes[nfc(row[0].strip())]", "boxes[row[0].strip()]", (FO,)),
    M("folder: one name in two forms merged silently", "fgvc_ref/data/folder.py", "if len(folders) < len(top.folders):", "if False:", (FO,)),
    M("folder: sub-folders of class folders not counted", "fgvc_ref/data/folder.py", "            skipped[NESTED] += len(inside.folders)\n", "", (FO,)),
    M("folder: the first class with a broken link stops the listing", "fgvc_ref/data/folder.py", "        except DatasetError as e:  # a link that cannot be followed: every class folder's are listed in one error\n            errors.append(str(e))\n            continue",
      "        except DatasetError:\n            raise", (FO,)),
    M("dogs: annotations looked up as the lists spell them", "fgvc_ref/data/dogs.py", "voc_box(on_disk(annotations / note, listings))", "voc_box(annotations / note)", ("tests/test_dogs.py",)),
    M("records: class lists compared as spelled", "fgvc_ref/data/records.py", "x, y = [nfc(n) for n in a], [nfc(n) for n in b]", "x, y = list(a), list(b)", ("tests/test_records.py",)),
    M("records: names shown without escapes", "fgvc_ref/data/records.py", '", ".join(ascii(n) for n in names[:5])', '", ".join(repr(n) for n in names[:5])', ("tests/test_records.py",)),
    M("records: text tables not in NFC", "fgvc_ref/data/records.py", "row = nfc(line).strip().split(maxsplit=columns - 1)", "row = line.strip().split(maxsplit=columns - 1)", ("tests/test_cub.py",)),
    M("hub: class names kept as the first source spells them", "fgvc_ref/data/hub.py", "    return [nfc(n) for n in first]", "    return first", ("tests/test_hub.py",)),
    M("export: box not scaled with a reduced photo", "fgvc_ref/export.py", "        box = edges_box((box[0] - 1) / r, (box[1] - 1) / r, box[2] / r, box[3] / r) if box is not None else None\n", "",
      (EX + "::test_predict_reads_a_jpeg_over_the_pixel_limit_reduced_and_answers_as_for_the_whole_decode",)),
    M("export: whole-photo reduction ignores the resize before the centre crop", "fgvc_ref/export.py", 'need = eval_resize(size) if box is None and preprocessing["kind"] == "cache" else size', "need = size",
      (EX + "::test_affordable_reduction_keeps_the_region_the_stored_form_is_made_from_at_least_its_resize",)),
    M("export: an allowed large file cropped under Pillow's limit", "fgvc_ref/export.py", "    with pixel_limit(max_pixels):  # an allowed large file: its crop is checked against the same limit\n", "    if True:\n",
      (EX + "::test_a_png_over_the_pixel_limit_is_refused_by_predict_with_the_option_that_reads_it",)),
    M("evaluate: photos ignore --max-image-pixels", "fgvc_ref/evaluate.py", "images.append(stored_image(r.path, preprocessing, max_pixels=max_pixels))", "images.append(stored_image(r.path, preprocessing))",
      (EX + "::test_evaluate_on_photos_matches_nfd_class_folders_to_the_models_names_and_reads_a_large_jpeg_as_predict_does",)),
    M("gallery: a large JPEG not read reduced", "fgvc_ref/gallery.py", "max_reduction=lambda w, h: min(w, h) / size,", "max_reduction=None,", (G + "::test_the_gallery_reads_a_large_jpeg_reduced_and_a_large_png_with_the_option",)),
    # --- the README's commands, as a user runs them -------------------------------------------
    M("README: a command names a run the quick start does not write", "README.md", ".venv/bin/python -m fgvc_ref evaluate runs/export/model.int8.onnx",
      ".venv/bin/python -m fgvc_ref evaluate runs/export/model.int8.onnx.bak", ("tests/test_readme.py::test_every_readme_command_runs_as_written_after_the_quick_start_and_leaves_the_repository_clean",)),
    M("README: an output written into a tracked folder", "README.md", "--json runs/latency.json", "--json results/latency-readme.json",
      ("tests/test_readme.py::test_every_readme_command_runs_as_written_after_the_quick_start_and_leaves_the_repository_clean", "tests/test_readme.py::test_every_output_path_a_readme_command_names_is_git_ignored")),
    M("README: the transcript's error line not what predict prints", "README.md", "no image format recognised in its 1072 bytes", "no image format recognised in its 1073 bytes", ("tests/test_readme.py::test_every_readme_command_runs_as_written_after_the_quick_start_and_leaves_the_repository_clean",)),
    M("README: the offline message not the code's", "fgvc_ref/model.py", "(TORCH_HOME moves that folder)", "(TORCH_HOME moves it)",
      ("tests/test_readme.py::test_the_offline_message_the_readme_shows_is_the_one_training_prints",)),
    M("int8 table: the at-risk share inverted", "bench/int8_margins.py", "| {r['at_risk_share']:.1f}% |", "| {100 - r['at_risk_share']:.1f}% |",
      ("tests/test_results.py",)),
]

# Mutants that cannot change any result, with the reason (none at present).
EQUIVALENT: dict[str, str] = {}
# Mutants only a CUDA machine can catch (their tests skip without one): reported as such where CUDA is absent.
NEEDS_CUDA = {"train: sync check never armed"}


def run(mutant: Mutant, timeout: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        dest = Path(tmp)
        copy_checkout(dest, repository=True)  # a test that lists the tracked files needs a repository, as in a checkout
        path = dest / mutant.file
        source = path.read_text()
        if source.count(mutant.old) != 1:
            return {"name": mutant.name, "result": "stale", "detail": f"{mutant.file}: the text to replace occurs {source.count(mutant.old)} times"}
        path.write_text(source.replace(mutant.old, mutant.new))
        env = {**os.environ, "PYTHONPATH": str(dest), "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        t0 = time.monotonic()
        try:
            p = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutant.tests], cwd=dest, env=env,
                               capture_output=True, text=True, timeout=timeout)
            result = {0: "survived", 5: "no tests"}.get(p.returncode, "caught")
            tail = p.stdout.strip().splitlines()[-1:] if p.stdout.strip() else []
        except subprocess.TimeoutExpired:
            result, tail = "caught (timeout)", []
        return {"name": mutant.name, "result": result, "seconds": round(time.monotonic() - t0, 1), "detail": " ".join(tail)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the mutants whose name contains this text (several: A|B|C)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants at a time (default: %(default)s)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per mutant (default: %(default)s)")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--check", action="store_true", help="list the stale mutants (text not found once in this checkout) and exit")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if any(part in m.name for part in args.only.split("|"))]
    if args.list:
        print("\n".join(f"{m.name}  [{m.file}] -> {' '.join(m.tests)}" for m in chosen))
        return 0
    if args.check:
        stale = [f"{m.name}: {m.file} holds its text {(ROOT / m.file).read_text().count(m.old)} times" for m in chosen
                 if (ROOT / m.file).read_text().count(m.old) != 1]
        print("\n".join(stale) or f"{len(chosen)} mutants, none stale")
        return 1 if stale else 0
    # the copy must import its own fgvc_ref, not the installed one
    with tempfile.TemporaryDirectory() as tmp:
        copy_checkout(Path(tmp))
        where = subprocess.run([sys.executable, "-c", "import fgvc_ref; print(fgvc_ref.__file__)"], cwd=tmp, capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": tmp}).stdout.strip()
        if not where.startswith(tmp):
            print(f"the copy imports {where}, not its own package; cannot test mutants", file=sys.stderr)
            return 2
    results = []
    cuda = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"], capture_output=True, text=True).stdout.strip() == "True"
    with ThreadPoolExecutor(args.jobs) as pool:
        for r in pool.map(lambda m: run(m, args.timeout), chosen):
            if r["result"] == "survived" and r["name"] in EQUIVALENT:
                r["result"] = "equivalent"
            if r["result"] == "survived" and r["name"] in NEEDS_CUDA and not cuda:
                r["result"] = "needs CUDA"
            results.append(r)
            print(f"{r['result']:>16}  {r['name']}  ({r.get('seconds', 0)}s) {r.get('detail', '') if r['result'] != 'caught' else ''}", flush=True)
    counts = {k: sum(r["result"].startswith(k) for r in results) for k in ("caught", "survived", "equivalent", "needs CUDA", "stale", "no tests")}
    print(f"{len(results)} mutants: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    if args.json:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        Path(args.json).write_text(json.dumps({"commit": commit, "date": time.strftime("%Y-%m-%d"), "counts": counts, "results": results}, indent=1))
    return 1 if counts["survived"] or counts["stale"] or counts["no tests"] else 0


if __name__ == "__main__":
    sys.exit(main())
