"""The trainer equals a twin loop built only from torch/torchvision parts, for every stage and variant.

The twin below is torchvision's reference ``train.py`` reduced to what the recipe uses, written from
torch/torchvision alone (nothing from ``fgvc_ref`` is imported into it):

- data: the prepared uint8 cache read with ``torch.load``; every image through torchvision's own
  transforms (``RandomResizedCrop``, ``RandomHorizontalFlip``, ``TrivialAugmentWide`` / ``ColorJitter``
  + AlexNet PCA lighting written out / ``AutoAugment``, ``PILToTensor``, ``ConvertImageDtype``,
  ``Normalize``, ``RandomErasing``), the global generator seeded per image; MixUp/CutMix through
  ``transforms.v2.RandomChoice``; the evaluation ``Resize`` + ``Normalize``;
- optimiser: ``torch.optim.SGD(nesterov=True)``; schedule: ``SequentialLR(LinearLR, StepLR |
  CosineAnnealingLR)`` stepped once per epoch;
- loss: ``F.cross_entropy(label_smoothing=eps)``, or the blog's eps/(K-1) target written out;
- EMA: ``AveragedModel(use_buffers=True)`` with ``d * a + (1 - d) * m``, updated when
  ``i % ema_steps == 0`` with ``n_averaged.fill_(0)`` during warmup, ``d`` from torchvision's
  adjustment computed here;
- early stopping on the selected accuracy (the EMA's when there is one).

The trainer runs ``path="reference"`` on the same cache, with the same order and per-image seeds: the
order of epoch ``e`` is ``randperm`` seeded with ``(seed, e)``, image ``p``'s draws are seeded with
``(seed, e, p)`` and batch ``i``'s MixUp/CutMix with ``(seed, e, i, 1)``, through SHA-256 (train.py's
docstring; :func:`subseed` writes it out again).

Tolerance. Every part is bit-exact with its twin except the label-smoothed loss: ours forms
``q = (1 - eps) onehot + eps / K`` and ``-sum q log p``, torch adds ``(1 - eps) nll + eps * mean(-log p)``.
The two agree to a few float32 ulps (tests/test_losses.py), and so do their gradients. Without
smoothing the gradients are identical (the one-hot products are exact), so those cases must be
bit-exact, and every stage with smoothing also runs with ``label_smoothing=0`` (the ``+eps0`` cases)
so that its EMA, erasing and MixUp/CutMix wiring is checked bit for bit. With smoothing, training
carries the ulp difference forward, and at lr 0.4 a batch-of-7 BatchNorm net amplifies it: the largest
drift measured over every smoothing case, both paths, both data sets and seeds 3 and 5 was 1.2e-3 of a
tensor's largest magnitude (6e-3 after 6 epochs at a constant lr 0.4), so :data:`SMOOTH_RTOL` is 1e-2.
The smoothing cases check that the loss is wired (convention, eps): the blog's and torch's targets
give losses that differ by several percent once the model is confident.
"""

import hashlib
import json
import math

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms as T
import torchvision.transforms.v2 as T2
from torch import nn
from torch.optim.swa_utils import AveragedModel

from fgvc_ref.data.sources import load_data
from fgvc_ref.recipe import STAGES, VARIANTS, apply_overrides
from fgvc_ref.train import train
from runs import final_state, make_cache, make_folder_cache

SMOOTH_RTOL = 1e-2  # label smoothing only: see the module docstring
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# AlexNet's PCA of ImageNet RGB (Krizhevsky et al. 2012), as in fb.resnet.torch and Bag of Tricks
EIGVAL = (0.2175, 0.0188, 0.0045)
EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))
EPOCHS, BATCH, EMA_STEPS, SIZE = 6, 7, 3, 16  # 24 train images: 3 full batches + 1 of 3, EMA at i = 0 and 3
SHORT = ["model=tiny_bn_cnn", "weights=none", f"image_size={SIZE}", f"epochs={EPOCHS}", f"batch_size={BATCH}",
         f"ema_steps={EMA_STEPS}", "patience=0", "workers=0", "path=reference", "eval_batch_size=5"]
# stages with a warmup get 2 epochs of it and StepLR steps of 2 epochs, so 6 epochs cross the warmup end, a
# StepLR drop (or 3 cosine steps) and EMA updates both reset (warmup) and averaged
WARM = ["warmup_epochs=2", "step_size=2"]
CASES = {  # name: (recipe, overrides beyond SHORT)
    **{name: (r, []) for name, r in {**STAGES, **VARIANTS}.items()},
    "label_smoothing+blog": (STAGES["label_smoothing"], ["smoothing_convention=blog"]),
    "ema+per_update": (STAGES["ema"], ["ema_decay_reading=per_update", "ema_decay=0.9"]),
    "ema+mixup_cutmix+blog": (VARIANTS["ema+mixup_cutmix"], ["smoothing_convention=blog"]),
    "ema+patience": (STAGES["ema"], ["patience=1"]),
    "random_erasing+eps0": (STAGES["random_erasing"], ["label_smoothing=0"]),
    "ema+eps0": (STAGES["ema"], ["label_smoothing=0"]),
    "ema+mixup_cutmix+eps0": (VARIANTS["ema+mixup_cutmix"], ["label_smoothing=0"]),
    "ema+autoaugment+eps0": (VARIANTS["ema+autoaugment"], ["label_smoothing=0"]),
    "cosine+min_lr": (STAGES["cosine"], ["min_lr=0.01", "lr_scale=0.5"]),
}


def twin_recipe(case):
    base, extra = CASES[case]
    return apply_overrides(base, SHORT + (WARM if base.warmup_epochs else []) + extra)


# --- the twin ---------------------------------------------------------------------------------


def subseed(*parts: int) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") >> 1


def twin_model(num_classes):
    """tiny_bn_cnn: built at 1000 classes, then the head replaced, as torchvision models with a new head."""
    m = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(32, 1000))
    m[-1] = nn.Linear(32, num_classes)
    return m


def twin_train_transform(r):
    B = T.InterpolationMode.BILINEAR
    tensor = [T.PILToTensor(), T.ConvertImageDtype(torch.float)]
    if r.policy == "none":
        return T.Compose([T.Resize((r.image_size, r.image_size), interpolation=B), *tensor, T.Normalize(MEAN, STD)])
    colour = {"trivialaugment": [T.TrivialAugmentWide(interpolation=B)], "standard": [T.ColorJitter(r.jitter, r.jitter, r.jitter)],
              "autoaugment": [T.AutoAugment(T.AutoAugmentPolicy.IMAGENET, interpolation=B)]}[r.policy]
    ev, vec = torch.tensor(EIGVAL), torch.tensor(EIGVEC)
    lighting = [T.Lambda(lambda x: x + ((torch.randn(1, 3) * r.lighting * ev) @ vec.T).view(3, 1, 1))] if r.policy == "standard" and r.lighting else []
    erase = [T.RandomErasing(p=r.erasing_p, value=0)] if r.erasing_p else []
    return T.Compose([T.RandomResizedCrop(r.image_size, interpolation=B, antialias=True), T.RandomHorizontalFlip(), *colour,
                      *tensor, *lighting, T.Normalize(MEAN, STD), *erase])


def twin_loss(r, num_classes):
    if r.smoothing_convention == "torch":
        return lambda z, t: F.cross_entropy(z, t, label_smoothing=r.label_smoothing)

    def blog(z, t):  # q = (1 - eps) t + eps / (K - 1) (1 - t), one-hot or mixed t
        t = F.one_hot(t, num_classes).float() if t.dim() == 1 else t
        q = (1 - r.label_smoothing) * t + r.label_smoothing / (num_classes - 1) * (1 - t)
        return -(q * z.log_softmax(1)).sum(1).mean()

    return blog


def twin_schedule(r, opt):
    L = torch.optim.lr_scheduler
    main = {"step": lambda: L.StepLR(opt, step_size=r.step_size, gamma=r.gamma),
            "cosine": lambda: L.CosineAnnealingLR(opt, T_max=r.epochs - r.warmup_epochs, eta_min=r.min_lr * r.lr_scale),
            "constant": lambda: L.LambdaLR(opt, lambda e: 1.0)}[r.schedule]()
    if not r.warmup_epochs:
        return main
    warm = L.LinearLR(opt, start_factor=r.warmup_decay, total_iters=r.warmup_epochs)
    return L.SequentialLR(opt, [warm, main], milestones=[r.warmup_epochs])


@torch.no_grad()
def twin_evaluate(model, loss_fn, images, labels, r):
    tf = T.Compose([T.Resize((r.image_size, r.image_size), interpolation=T.InterpolationMode.BILINEAR), T.PILToTensor(),
                    T.ConvertImageDtype(torch.float), T.Normalize(MEAN, STD)])
    model.eval()
    loss, correct = 0.0, 0
    for s in range(0, len(images), r.eval_batch_size):
        x = torch.stack([tf(T.ToPILImage()(im)) for im in images[s : s + r.eval_batch_size]]).contiguous(memory_format=torch.channels_last)
        y = labels[s : s + r.eval_batch_size]
        z = model(x)
        loss += loss_fn(z, y).item() * len(y)
        correct += int((z.argmax(1) == y).sum())
    model.train()
    return loss / len(images), 100.0 * correct / len(images)


def reference_batches(r, images, sizes, seed):
    """torchvision's per-image pipeline on each image's valid region, the global generator seeded per image."""
    tf = twin_train_transform(r)

    def batch(epoch, i, idx):
        xs = []
        for p in idx.tolist():
            h, w = sizes[p].tolist()
            torch.manual_seed(subseed(seed, epoch, p))
            xs.append(tf(T.ToPILImage()(images[p, :, :h, :w])))
        return torch.stack(xs)

    return batch


def fast_batches(r, images, sizes, seed):
    """The fast path's data: fgvc_ref's BatchAugment (proven equal in distribution to the pipeline above in
    tests/test_transforms.py) on each batch, its generator seeded with (seed, epoch, batch, rank 0)."""
    from fgvc_ref.transforms import BatchAugment

    augment = BatchAugment(r.policy, r.image_size, erasing_p=r.erasing_p, jitter=r.jitter, lighting=r.lighting)
    return lambda epoch, i, idx: augment(images[idx], torch.Generator().manual_seed(subseed(seed, epoch, i, 0)), sizes[idx])


def twin_run(r, cache, seed, batches=reference_batches):
    train_set, test_set = (torch.load(cache / f"{s}.pt", weights_only=True) for s in ("train", "test"))
    images, labels = train_set["images"], train_set["labels"]
    make_batch = batches(r, images, train_set["sizes"], seed)
    K = int(labels.max()) + 1
    torch.manual_seed(seed)
    model = twin_model(K).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=r.lr * r.lr_scale, momentum=r.momentum, nesterov=True, weight_decay=r.weight_decay)
    sched = twin_schedule(r, opt)
    loss_fn = twin_loss(r, K)
    ema, d = None, None
    if r.ema:  # torchvision's train.py: adjust = world * batch * steps / epochs; alpha = min(1, (1 - decay) * adjust)
        d = 1.0 - min(1.0, (1.0 - r.ema_decay) * 1 * r.batch_size * r.ema_steps / r.epochs) if r.ema_decay_reading == "adjusted" else r.ema_decay
        ema = AveragedModel(model, avg_fn=lambda a, m, n: d * a + (1 - d) * m, use_buffers=True)
    mix = None
    if r.mixup_alpha or r.cutmix_alpha:
        mix = T2.RandomChoice([k(alpha=a, num_classes=K) for k, a in ((T2.MixUp, r.mixup_alpha), (T2.CutMix, r.cutmix_alpha)) if a > 0])
    rows, best, since_best = [], -1.0, 0
    for epoch in range(r.epochs):
        perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(subseed(seed, epoch)))
        loss_sum, correct, lrs = 0.0, 0, set()
        for i, start in enumerate(range(0, len(perm), r.batch_size)):
            idx = perm[start : start + r.batch_size]
            x, y = make_batch(epoch, i, idx), labels[idx]
            target = y
            if mix is not None:
                torch.manual_seed(subseed(seed, epoch, i, 1))
                x, target = mix(x, y)
            z = model(x.contiguous(memory_format=torch.channels_last))
            loss = loss_fn(z, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            lrs.add(opt.param_groups[0]["lr"])
            if ema is not None and i % r.ema_steps == 0:
                ema.update_parameters(model)
                if epoch < r.warmup_epochs:
                    ema.n_averaged.fill_(0)
            loss_sum += loss.item() * len(y)
            correct += int((z.argmax(1) == y).sum())
        (lr,) = lrs  # one LR per epoch
        row = {"lr": lr, "train_loss": loss_sum / len(labels), "train_acc": 100.0 * correct / len(labels)}
        row["test_loss"], row["test_acc"] = twin_evaluate(model, loss_fn, test_set["images"], test_set["labels"], r)
        if ema is not None:
            row["ema_test_loss"], row["ema_test_acc"] = twin_evaluate(ema.module, loss_fn, test_set["images"], test_set["labels"], r)
        rows.append(row)
        sched.step()
        selected = row["ema_test_acc" if ema is not None else "test_acc"]
        best, since_best = (selected, 0) if selected > best else (best, since_best + 1)
        if r.patience and since_best >= r.patience:
            break
    return model, ema, d, rows


# --- the comparison ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    """Box crops: 4 classes x 6 images, train stored at 20 px (so RandomResizedCrop resamples), test at the training
    size. No boxes: real photos of odd shapes, 3 classes x 4 images, train stored whole (padded slots)."""
    return {"boxes": make_cache(tmp_path_factory.mktemp("twin")), "no boxes": make_folder_cache(tmp_path_factory.mktemp("twin_nobox"))}


def assert_same(a, b, exact, what):
    """Bit-exact, or max |a - b| <= SMOOTH_RTOL * max |b| (relative to the tensor's scale, not per element)."""
    if exact or not b.is_floating_point():
        assert torch.equal(a, b), what
    else:
        assert (a - b).abs().max() <= SMOOTH_RTOL * b.abs().max(), (what, float((a - b).abs().max()), float(b.abs().max()))


def compare(run, r, model, ema, d, twin_rows):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    exact = r.label_smoothing == 0
    assert len(rows) == len(twin_rows), "epochs run (early stopping)"
    assert [row["lr"] for row in rows] == [t["lr"] for t in twin_rows]
    assert all(row["ema_decay"] == d for row in rows)
    for row, t in zip(rows, twin_rows):
        for key in ("train_loss", "test_loss", "ema_test_loss"):
            if key in t:  # losses are summed in another order: float-close, not bit-exact, even when the weights are
                assert math.isclose(row[key], t[key], rel_tol=1e-6 if exact else SMOOTH_RTOL), (key, row["epoch"], row[key], t[key])
        for key in ("train_acc", "test_acc", "ema_test_acc"):
            if key in t:  # with smoothing, the drift may move an image or two across the decision boundary
                assert row[key] == pytest.approx(t[key], abs=0.0 if exact else 2 * 100 / 12 + 1e-9), (key, row["epoch"])
        assert ("ema_test_acc" in row) == ("ema_test_acc" in t)
    state = final_state(run)
    for k, v in model.state_dict().items():
        assert_same(state["model"][k], v, exact, k)
    if ema is not None:
        assert state["ema"]["num_updates"] == int(ema.n_averaged)
        for k, v in ema.module.state_dict().items():
            assert_same(state["ema"]["module"][k], v, exact, f"ema {k}")
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_trainer_equals_the_torch_torchvision_twin(case, caches, tmp_path):
    """Reference path. Per-epoch LR in param_groups, losses and accuracies, final weights and EMA weights (and its
    counter): the trainer's == the twin's."""
    r, seed = twin_recipe(case), 3
    train(r, load_data(caches["boxes"]), tmp_path, seed=seed, device="cpu", progress=False)
    rows = compare(tmp_path, r, *twin_run(r, caches["boxes"], seed))
    if r.patience:
        assert len(rows) < r.epochs, "the early-stopping case must stop early to test it"


@pytest.mark.slow
@pytest.mark.parametrize("case", ["base", "trivialaugment", "random_erasing+eps0", "ema+mixup_cutmix+eps0", "ema"])
@pytest.mark.parametrize("data", ["boxes", "no boxes"])
def test_trainer_equals_the_twin_on_images_stored_whole(case, data, caches, tmp_path):
    """Both paths on the train images they were given: box crops, and whole images of odd shapes in padded slots
    (RandomResizedCrop must draw within each image's own size). Reference path against torchvision's pipeline, fast
    path against BatchAugment: the trainer wires the data, the seeds and the recipe's augmentation fields through."""
    for path, batches in (("reference", reference_batches), ("fast", fast_batches)):
        r, seed = apply_overrides(twin_recipe(case), [f"path={path}"]), 5
        if data == "boxes" and path == "reference":
            continue  # the test above
        train(r, load_data(caches[data]), tmp_path / path, seed=seed, device="cpu", progress=False)
        compare(tmp_path / path, r, *twin_run(r, caches[data], seed, batches))


@pytest.mark.slow
def test_fast_path_equals_reference_path_without_augmentation(caches, tmp_path):
    """policy 'none', no erasing, train images stored at the training size: both paths feed the model the same
    normalised pixels (the fast path's resample is the identity, the reference path's PIL resize too), so the runs
    are equal bit for bit: metrics, weights, EMA."""
    runs = {}
    for path in ("fast", "reference"):
        r = apply_overrides(twin_recipe("ema"), ["policy=none", "erasing_p=0", "image_size=20", f"path={path}"])
        train(r, load_data(caches["boxes"]), tmp_path / path, seed=1, device="cpu", progress=False)
        runs[path] = (final_state(tmp_path / path), [{k: v for k, v in json.loads(line).items() if k not in ("img_per_s", "epoch_s", "wall_time", "recipe")}
                                                     for line in (tmp_path / path / "metrics.jsonl").read_text().splitlines()])
    (fast, fast_rows), (ref, ref_rows) = runs["fast"], runs["reference"]
    assert fast_rows == ref_rows
    for k in ref["model"]:
        assert torch.equal(fast["model"][k], ref["model"][k]), k
    for k in ref["ema"]["module"]:
        assert torch.equal(fast["ema"]["module"][k], ref["ema"]["module"][k]), k
