"""Does the model know when it does not know? An open-set run's calibration and rejection, and the rule it rejects by.

An open-set run is trained on a split's known classes (:mod:`fgvc_ref.data.open_set`). Its logits on
three sets of images are measured here with the metric leaves :mod:`fgvc_ref.calibration` and
:mod:`fgvc_ref.rejection`:

- the **validation** images, carved from the known classes' train images exactly as training carved
  them (:func:`validation_of` calls :func:`fgvc_ref.train.carve_validation`, the function training
  calls): everything fitted is fitted here, never on test;
- the **known test** images: calibration and selective classification;
- the **unknown test** images, each of an easy or a hard unknown class: rejection, against the known ones.

With ``z`` the logits and ``T*`` the temperature fitted on validation:

    T*          = argmin_T NLL(z_val / T)                                   calibration.fit_temperature
    NLL, ECE    on known test images at T = 1 and at T* (15 bins); top-1 is the same at both
    scores      msp(z), msp_ts(z) = msp(z / T*), max_logit(z), energy(z) = logsumexp(z)     higher = known
    per score   AUROC (known test vs all / easy / hard unknown test), FPR at 95% TPR, OSCR
    selective   AURC and accuracy at 90% coverage of the known test images ranked by each score
    the rule    score s (max_logit by default, Vaze et al.'s MLS), threshold t = t_0.95 of the validation
                images' scores (rejection.threshold_at_tpr): an image is known iff s >= t; applied to test,
                the share of known images kept and of unknown images accepted

:func:`head` is the rule as the exported model computes it (``probs``, ``score``, ``known``), in PyTorch.

Convention: a metric over an empty set is not computed: ``auroc_easy`` (``auroc_hard``) is None when
the split has no easy (hard) unknown class; no validation image, or no unknown test image, is an
error, because there is then nothing honest to fit on or nothing to reject.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fgvc_ref import calibration, rejection

SCORES = ("msp", "msp_ts", "max_logit", "energy")
DEFAULT_SCORE = "max_logit"
DEFAULT_TPR = 0.95  # the rule keeps this share of the validation split's known images
BINS = 15
COVERAGE = 0.9


def score(logits: Tensor, name: str, temperature: float = 1.0) -> Tensor:
    """Score ``name`` per image, higher = known; ``temperature`` is used by msp_ts only."""
    if name not in SCORES:
        raise ValueError(f"rejection score must be one of {', '.join(SCORES)}, got {name!r}")
    if name == "msp_ts":
        return rejection.msp(logits, temperature)
    return rejection.SCORES[name](logits)


def head(logits: Tensor, temperature: float, score_name: str, threshold: float) -> dict[str, Tensor]:
    """What an exported open-set model outputs beside its logits: ``probs`` = softmax(logits / T), ``score`` and
    ``known`` = score >= threshold, computed in the logits' dtype."""
    return {"probs": torch.softmax(logits / temperature, 1), "score": (s := score(logits, score_name, temperature)), "known": s >= threshold}


def fit_temperature(val_logits: Tensor, val_labels: Tensor) -> float:
    """T minimising the validation NLL (:func:`fgvc_ref.calibration.fit_temperature`), rounded to the logits' dtype: the
    value a graph constant holds, so that PyTorch and an exported model divide by the same number."""
    if len(val_labels) == 0:
        raise ValueError("no validation images: there is nothing honest to fit the temperature and the rejection threshold on, and "
                         "they are never fitted on the test split; train with val_fraction > 0 (train --open-set sets 0.1)")
    return float(torch.tensor(calibration.fit_temperature(val_logits, val_labels), dtype=val_logits.dtype))


def at_bound(temperature: float) -> bool:
    """T at an end of calibration's search interval [0.05, 20]: the validation NLL has no minimum inside it (every
    validation image right by a wide margin drives T to 0.05), so the fitted T says more about the split than the model."""
    return any(abs(math.log(temperature) - end) < 1e-4 for end in calibration.LOG_T_BRACKET)


def rule(temperature: float, score_name: str, val_scores: Tensor, tpr: float = DEFAULT_TPR, fitted_on: str = "") -> dict:
    """The rejection rule: known iff score >= t, with t the highest validation score keeping at least ``tpr`` of the
    validation images (:func:`fgvc_ref.rejection.threshold_at_tpr`); t is one of ``val_scores``, so exact in their dtype."""
    if isinstance(tpr, bool) or not isinstance(tpr, (int, float)) or not 0 < tpr <= 1:
        raise ValueError(f"the share of validation images the threshold keeps must be in (0, 1], got {tpr!r}")
    threshold = rejection.threshold_at_tpr(val_scores, tpr)
    kept = int((val_scores.double() >= threshold).sum())
    return {"temperature": temperature, "reject_score": score_name, "reject_threshold": threshold, "tpr": tpr, "validation_images": len(val_scores),
            "reject_rule": (f"known iff {score_name} >= threshold; threshold: the highest value keeping at least {100 * tpr:g}% of the run's "
                            f"validation split (the known classes' train images held out, never test), {kept} of {len(val_scores)} kept; "
                            f"temperature: argmin of the NLL on the same images{fitted_on}")}


def fit_rule(val_logits: Tensor, val_labels: Tensor, score_name: str = DEFAULT_SCORE, tpr: float = DEFAULT_TPR) -> dict:
    """The temperature and the rejection rule, from validation logits and labels only."""
    t = fit_temperature(val_logits, val_labels)
    return rule(t, score_name, score(val_logits, score_name, t), tpr)


def validation_of(spec: str, record: dict, val_fraction: float, seed: int, fingerprint: str | None, *, verify_sources: bool = True):
    """The validation images an open-set run held out, recomputed exactly as training carved them: the run's data ``spec``
    restricted to the recorded split, :func:`fgvc_ref.train.carve_validation` with its ``val_fraction`` and ``seed``.
    Returns ``(images, labels, boxes, data)``; refused when the data is not the data the run recorded (``fingerprint``) or
    holds no validation image (nothing honest to fit on: never the test split)."""
    from fgvc_ref.data.open_set import from_record, known_data
    from fgvc_ref.data.sources import load_data
    from fgvc_ref.train import carve_validation

    data = load_data(spec, verify_sources=verify_sources)
    known = known_data(data, from_record(record, data.classes))
    if fingerprint is not None and known.fingerprint != fingerprint:
        raise ValueError(f"{spec}: not the data the run was trained on (its fingerprint differs), so its validation split cannot be "
                         "recomputed; give --data with the data it was trained on")
    _, val, boxes = carve_validation(known, val_fraction, seed)
    if not len(val):
        raise ValueError(f"the run held out no validation images (val_fraction {val_fraction}): there is nothing honest to fit the "
                         "temperature and the rejection threshold on, and they are never fitted on the test split; train again with "
                         "val_fraction > 0 (train --open-set sets 0.1)")
    return known.train_images[val], known.train_labels[val], boxes, data


def _rejection(known: Tensor, correct: Tensor, unknown: Tensor, hard: Tensor) -> dict:
    part = lambda m: rejection.auroc(known, unknown[m]) if bool(m.any()) else None
    return {"auroc": rejection.auroc(known, unknown), "auroc_easy": part(~hard), "auroc_hard": part(hard),
            "fpr95": rejection.fpr_at_tpr(known, unknown, 0.95), "oscr": rejection.oscr(known, correct, unknown)}


def evaluate(known_logits: Tensor, known_labels: Tensor, unknown_logits: Tensor, unknown_hard: Tensor, val_logits: Tensor,
             val_labels: Tensor, *, score_name: str = DEFAULT_SCORE, tpr: float = DEFAULT_TPR) -> dict:
    """Everything the module docstring lists, as JSON-ready numbers (fractions in [0, 1], NLL in nats)."""
    if len(unknown_logits) == 0:
        raise ValueError("no unknown test images: the split's unknown classes have no image in this test set, so there is nothing "
                         "to reject and no AUROC; evaluate on data holding them")
    rule = fit_rule(val_logits, val_labels, score_name, tpr)
    t = rule["temperature"]
    correct = known_logits.argmax(1) == known_labels
    scores_known = {s: score(known_logits, s, t) for s in SCORES}
    scores_unknown = {s: score(unknown_logits, s, t) for s in SCORES}
    s_known, s_unknown = scores_known[score_name].double(), scores_unknown[score_name].double()
    accepted = s_unknown >= rule["reject_threshold"]
    return {
        "open_set": {s: _rejection(scores_known[s], correct, scores_unknown[s], unknown_hard) for s in SCORES},
        "calibration": {"nll": calibration.nll(known_logits, known_labels), "ece": calibration.ece(known_logits, known_labels, BINS),
                        "temperature": t, "temperature_at_bound": at_bound(t), "nll_ts": calibration.nll(known_logits, known_labels, t),
                        "ece_ts": calibration.ece(known_logits, known_labels, BINS, t), "bins": BINS,
                        "reliability": calibration.reliability(known_logits, known_labels, BINS),
                        "reliability_ts": calibration.reliability(known_logits, known_labels, BINS, t)},
        "selective": {s: {"aurc": rejection.aurc(scores_known[s], correct),
                          "accuracy_at_90": rejection.accuracy_at_coverage(scores_known[s], correct, COVERAGE)} for s in SCORES},
        "rule": {**rule, "test_known_kept": float((s_known >= rule["reject_threshold"]).double().mean()),
                 "test_unknown_accepted": float(accepted.double().mean()),
                 "test_unknown_accepted_easy": float(accepted[~unknown_hard].double().mean()) if bool((~unknown_hard).any()) else None,
                 "test_unknown_accepted_hard": float(accepted[unknown_hard].double().mean()) if bool(unknown_hard.any()) else None},
        "open_set_images": {"validation": len(val_labels), "known": len(known_labels), "unknown_easy": int((~unknown_hard).sum()),
                   "unknown_hard": int(unknown_hard.sum())},
    }


def lines(r: dict) -> list[str]:
    """The metrics as printed by ``evaluate`` and written to evaluation.md (``r``: what :func:`evaluate` returned)."""
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}"
    share = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"
    c, n, rule = r["calibration"], r["open_set_images"], r["rule"]
    out = [f"calibration on {n['known']} known test images: NLL {c['nll']:.3f}, ECE {share(c['ece'])}; temperature {c['temperature']:.3f} "
           f"(fitted on {n['validation']} validation images): NLL {c['nll_ts']:.3f}, ECE {share(c['ece_ts'])}"
           + (" (T at its search bound: the validation NLL has no minimum inside [0.05, 20], e.g. every validation image right by a "
              "wide margin; too few validation images to fit a temperature)" if c.get("temperature_at_bound") else ""),
           f"rejection of {n['unknown_easy'] + n['unknown_hard']} unknown test images ({n['unknown_easy']} easy, {n['unknown_hard']} hard) "
           "against the known, % (AUROC: a known image ranked above an unknown one; FPR@95: unknown accepted where 95% of known are; "
           "AURC and accuracy at 90% coverage: the known images ranked by the score):",
           "  score      AUROC  easy   hard   FPR@95  OSCR   AURC  acc@90%cov"]
    for s in SCORES:
        o, sel = r["open_set"][s], r["selective"][s]
        out.append(f"  {s:<10} {pct(o['auroc']):>5}  {pct(o['auroc_easy']):>5}  {pct(o['auroc_hard']):>5}  {pct(o['fpr95']):>6}  "
                   f"{pct(o['oscr']):>5}  {pct(sel['aurc']):>5}  {pct(sel['accuracy_at_90']):>5}")
    out.append(f"the rule ({rule['reject_score']} >= {rule['reject_threshold']:.4g}, keeping {100 * rule['tpr']:g}% of validation) on test: "
               f"{share(rule['test_known_kept'])} of known kept, {share(rule['test_unknown_accepted'])} of unknown accepted (easy "
               f"{share(rule['test_unknown_accepted_easy'])}, hard {share(rule['test_unknown_accepted_hard'])})")
    return out


def reliability_figure(calibration_result: dict, path, title: str) -> str | None:
    """``reliability.png``: accuracy against confidence per bin, before and after temperature scaling (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    c = calibration_result
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
    for ax, key, label, ece in ((axes[0], "reliability", "softmax (T = 1)", c["ece"]),
                                (axes[1], "reliability_ts", f"temperature-scaled (T = {c['temperature']:.2f}, fitted on validation)", c["ece_ts"])):
        bins = [b for b in c[key] if b["count"]]
        width = 1.0 / len(c[key])
        ax.bar([b["lower"] for b in bins], [b["accuracy"] for b in bins], width=width, align="edge", edgecolor="black", lw=0.5,
               color="C0", label="accuracy in the bin")
        ax.bar([b["lower"] for b in bins], [abs(b["confidence"] - b["accuracy"]) for b in bins],
               bottom=[min(b["accuracy"], b["confidence"]) for b in bins], width=width, align="edge", fill=False, edgecolor="C3",
               hatch="//", lw=0.8, label="gap to the bin's mean confidence")
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (max softmax probability)")
        ax.set_title(f"{label}\nECE {100 * ece:.1f}%, NLL {c['nll' if key == 'reliability' else 'nll_ts']:.3f}", fontsize=9)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return str(path)
