"""fgvc_ref.open_set_eval, and evaluate --open-set end to end: what is fitted is fitted on validation, every metric is its
leaf's on the right set of images, and the model ranks an easy unknown below the known.

The metric leaves themselves are checked against their oracles in tests/test_calibration.py and tests/test_rejection.py;
here the oracle is a direct call of the leaf on the images the docstring names (and, for the temperature, a validation
split carved again by split_validation itself)."""

import json
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fgvc_ref import calibration, rejection
from fgvc_ref.cli import main
from fgvc_ref.open_set_eval import SCORES, evaluate, fit_rule, head, score

PROBS_TOLERANCE = 1e-6  # float32 softmax of logits of size < 30, written out with exp and a sum: a few ulps of 1


def logits_of(seed: int, n: int, k: int, scale: float = 3.0) -> torch.Tensor:
    return scale * torch.randn(n, k, generator=torch.Generator().manual_seed(seed))


# --- the head and the rule ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCORES)
def test_the_head_is_softmax_at_t_the_named_score_and_score_at_least_the_threshold(name):
    z, t = logits_of(0, 50, 7), 1.7
    threshold = float(score(z, name, t)[0])  # an image exactly at the threshold is known
    out = head(z, t, name, threshold)
    e = torch.exp(z.double() / t)
    assert (out["probs"].double() - e / e.sum(1, keepdim=True)).abs().max() <= PROBS_TOLERANCE
    literal = {"max_logit": z.double().max(1).values, "energy": torch.log(torch.exp(z.double()).sum(1)),
               "msp": (torch.exp(z.double()) / torch.exp(z.double()).sum(1, keepdim=True)).max(1).values,
               "msp_ts": (e / e.sum(1, keepdim=True)).max(1).values}[name]
    assert (out["score"].double() - literal).abs().max() <= 1e-5 * max(1.0, float(literal.abs().max()))
    assert torch.equal(out["known"], out["score"] >= threshold) and bool(out["known"][0])


def test_an_unknown_score_name_is_refused():
    with pytest.raises(ValueError, match=r"rejection score must be one of msp, msp_ts, max_logit, energy, got 'entropy'"):
        score(logits_of(0, 2, 3), "entropy")


@given(st.integers(0, 10_000), st.integers(2, 60), st.sampled_from([0.5, 0.9, 0.95, 1.0]), st.sampled_from(SCORES))
def test_the_rule_fits_t_by_validation_nll_and_the_highest_threshold_keeping_the_share(seed, n, tpr, name):
    """T is calibration's fit, as float32 holds it; t is a validation score keeping >= ceil(tpr n) images, and the next
    higher validation score would keep fewer."""
    z = logits_of(seed, n, 5)
    y = torch.randint(0, 5, (n,), generator=torch.Generator().manual_seed(seed + 1))
    r = fit_rule(z, y, name, tpr)
    assert r["temperature"] == float(torch.tensor(calibration.fit_temperature(z, y), dtype=torch.float32))
    s = score(z, name, r["temperature"]).double()
    need = math.ceil(round(tpr * n, 9))
    assert r["reject_threshold"] in s.tolist() and int((s >= r["reject_threshold"]).sum()) >= need
    higher = s[s > r["reject_threshold"]]
    assert not len(higher) or int((s >= higher.min()).sum()) < need
    assert f"{int((s >= r['reject_threshold']).sum())} of {n} kept" in r["reject_rule"]


def test_nothing_to_fit_on_or_nothing_to_reject_is_refused():
    z, y = logits_of(0, 10, 3), torch.zeros(10, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"no validation images: there is nothing honest to fit .* never fitted on the test split"):
        evaluate(z, y, z, torch.zeros(10, dtype=torch.bool), z[:0], y[:0])
    with pytest.raises(ValueError, match=r"no unknown test images: the split's unknown classes have no image in this test set"):
        evaluate(z, y, z[:0], torch.zeros(0, dtype=torch.bool), z, y)


# --- every metric is its leaf's, on the images named ------------------------------------------------------


def test_each_metric_is_its_leafs_on_the_right_images():
    known, labels = logits_of(1, 40, 4), torch.randint(0, 4, (40,), generator=torch.Generator().manual_seed(2))
    unknown, hard = logits_of(3, 30, 4, scale=1.0), torch.arange(30) % 3 == 0
    val, val_y = logits_of(4, 12, 4), torch.randint(0, 4, (12,), generator=torch.Generator().manual_seed(5))
    r = evaluate(known, labels, unknown, hard, val, val_y)
    t = float(torch.tensor(calibration.fit_temperature(val, val_y), dtype=torch.float32))
    correct = known.argmax(1) == labels
    for name in SCORES:
        a, b = score(known, name, t), score(unknown, name, t)
        assert r["open_set"][name] == {"auroc": rejection.auroc(a, b), "auroc_easy": rejection.auroc(a, b[~hard]),
                                       "auroc_hard": rejection.auroc(a, b[hard]), "fpr95": rejection.fpr_at_tpr(a, b, 0.95),
                                       "oscr": rejection.oscr(a, correct, b)}
        assert r["selective"][name] == {"aurc": rejection.aurc(a, correct), "accuracy_at_90": rejection.accuracy_at_coverage(a, correct, 0.9)}
    c = r["calibration"]
    assert (c["nll"], c["ece"], c["temperature"]) == (calibration.nll(known, labels), calibration.ece(known, labels, 15), t)
    assert (c["nll_ts"], c["ece_ts"]) == (calibration.nll(known, labels, t), calibration.ece(known, labels, 15, t))
    assert r["open_set_images"] == {"validation": 12, "known": 40, "unknown_easy": 20, "unknown_hard": 10}
    kept = score(known, "max_logit").double() >= r["rule"]["reject_threshold"]
    assert r["rule"]["test_known_kept"] == float(kept.double().mean())


def test_a_grade_with_no_unknown_class_is_not_measured():
    z, y = logits_of(0, 20, 3), torch.randint(0, 3, (20,), generator=torch.Generator().manual_seed(0))
    r = evaluate(z, y, logits_of(1, 5, 3), torch.zeros(5, dtype=torch.bool), z, y)
    assert r["open_set"]["energy"]["auroc_hard"] is None and r["rule"]["test_unknown_accepted_hard"] is None
    assert r["open_set"]["energy"]["auroc_easy"] == r["open_set"]["energy"]["auroc"]


def test_a_planted_overconfidence_is_found_on_validation_and_undone_on_test():
    """Labels drawn from softmax(l), logits 3 l: the fitted T is about 3, ECE and NLL fall, top-1 stays."""
    g = torch.Generator().manual_seed(0)
    calibrated = 2.0 * torch.randn(4000, 5, generator=g)
    y = torch.multinomial(torch.softmax(calibrated, 1), 1, generator=g)[:, 0]
    z = 3.0 * calibrated
    r = evaluate(z[:2000], y[:2000], logits_of(1, 50, 5), torch.zeros(50, dtype=torch.bool), z[2000:], y[2000:])
    c = r["calibration"]
    assert 2.7 < c["temperature"] < 3.3 and c["ece_ts"] < c["ece"] / 3 and c["nll_ts"] < c["nll"]


def test_a_temperature_at_its_search_bound_is_flagged_and_said():
    """Every validation image right by a wide margin: the NLL falls as T -> 0, so T ends at 0.05 and the output says why."""
    from fgvc_ref.open_set_eval import at_bound, lines

    y = torch.arange(12) % 3
    val = 20.0 * torch.nn.functional.one_hot(y, 3).float()
    r = evaluate(logits_of(0, 30, 3), torch.arange(30) % 3, logits_of(1, 6, 3), torch.zeros(6, dtype=torch.bool), val, y)
    assert r["calibration"]["temperature_at_bound"] and abs(r["calibration"]["temperature"] - 0.05) < 1e-4
    assert "T at its search bound" in lines(r)[0]
    assert not at_bound(1.3) and at_bound(20.0)


# --- evaluate --open-set end to end, on the synthetic colours with two classes held out ------------------------


@pytest.fixture(scope="module")
def open_run(tmp_path_factory):
    from runs import make_open_set_run

    return make_open_set_run(tmp_path_factory.mktemp("open"))


def test_evaluate_open_set_writes_the_metrics_and_the_easy_unknown_is_above_chance(open_run, capsys):
    cache, _, run = open_run
    capsys.readouterr()
    assert main(["evaluate", str(run), "--open-set"]) == 0
    out = capsys.readouterr().out
    assert "open set (" in out and "calibration on 120 known test images" in out and "(40 easy, 40 hard)" in out
    r = json.loads((run / "evaluation-raw" / "evaluation.json").read_text())
    assert set(r["open_set"]) == {"msp", "msp_ts", "max_logit", "energy"}
    assert all(set(v) == {"auroc", "auroc_easy", "auroc_hard", "fpr95", "oscr"} for v in r["open_set"].values())
    assert {"nll", "ece", "temperature", "nll_ts", "ece_ts"} <= set(r["calibration"])
    assert set(r["selective"]["msp"]) == {"aurc", "accuracy_at_90"}
    assert r["top1"] == json.loads((run / "summary.json").read_text())["last_test_acc"] and r["images"] == 120
    assert r["open_set"]["max_logit"]["auroc_easy"] > 0.5 and r["open_set"]["msp"]["auroc_easy"] > 0.5  # grey is no known colour
    assert (run / "evaluation-raw" / "reliability.png").stat().st_size > 0
    assert "## Open set" in (run / "evaluation-raw" / "evaluation.md").read_text()


def test_the_temperature_and_threshold_come_from_the_validation_split_never_from_test(open_run):
    """The oracle carves the validation split again with split_validation itself (seed 0, 10% of each known class), takes
    each image by its centre 7/8 (whole images are stored whole), and fits there; a fit on the test images differs."""
    from fgvc_ref.data.sources import load_data
    from fgvc_ref.evaluate import evaluate_run
    from fgvc_ref.run import load_run
    from fgvc_ref.train import predict_logits, split_validation
    from fgvc_ref.transforms import centre_crop_boxes

    cache, _, run = open_run
    r = evaluate_run(run, open_set="recorded", out=run / "ev-oracle")
    data, model = load_data(cache), load_run(run).model
    known = [data.classes.index(c) for c in ("blue", "green", "red")]
    keep = torch.isin(data.train_labels, torch.tensor(known))
    labels = torch.tensor([known.index(y) for y in data.train_labels[keep].tolist()])
    _, val = split_validation(labels, 0.1, 0)
    images, sizes = data.train_images[keep][val], data.train_sizes[keep][val]
    fmt = torch.channels_last if json.loads((run / "recipe.json").read_text())["channels_last"] else torch.contiguous_format
    logits = predict_logits(model.to(memory_format=fmt), images, size=12, batch=64, device=torch.device("cpu"), amp=False,
                            memory_format=fmt, boxes=centre_crop_boxes(sizes))
    t = float(torch.tensor(calibration.fit_temperature(logits, labels[val]), dtype=torch.float32))
    assert r["calibration"]["temperature"] == t and r["open_set_images"]["validation"] == len(val) == 12
    assert r["rule"]["reject_threshold"] == rejection.threshold_at_tpr(logits.amax(1), 0.95)
    test_logits = predict_logits(model, data.test_images[torch.isin(data.test_labels, torch.tensor(known))], size=12, batch=64,
                                 device=torch.device("cpu"), amp=False, memory_format=fmt)
    assert calibration.fit_temperature(test_logits, torch.tensor([known.index(y) for y in data.test_labels.tolist() if y in known])) != t


def test_open_set_evaluation_of_a_run_trained_on_all_classes_is_refused_and_writes_nothing(open_run, tmp_path, capsys):
    from runs import tiny

    from fgvc_ref.data.sources import load_data
    from fgvc_ref.train import train

    cache, _, _ = open_run
    train(tiny("base", 1, "image_size=12", "batch_size=10"), load_data(cache), tmp_path / "closed", seed=0, progress=False)
    before = sorted(p.name for p in (tmp_path / "closed").iterdir())
    assert main(["evaluate", str(tmp_path / "closed"), "--open-set"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was trained on all the classes of its data (no train --open-set)" in err
    assert sorted(p.name for p in (tmp_path / "closed").iterdir()) == before


def test_a_test_set_without_unknown_images_is_refused_and_writes_nothing(open_run, tmp_path, capsys):
    """My photos of the known colours only: nothing to reject, so no AUROC: one line, no evaluation folder."""
    from PIL import Image

    from fgvc_ref.data.sources import load_data

    cache, _, run = open_run
    data = load_data(cache)
    for c in ("blue", "green", "red"):
        (tmp_path / "photos" / c).mkdir(parents=True)
        for k, img in enumerate(data.test_images[data.test_labels == data.classes.index(c)][:3]):
            Image.fromarray(img.permute(1, 2, 0).numpy()).save(tmp_path / "photos" / c / f"{k}.png")
    before = sorted(p.name for p in run.iterdir())
    assert main(["evaluate", str(run), "--data", str(tmp_path / "photos"), "--open-set"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "no unknown test images" in last
    assert sorted(p.name for p in run.iterdir()) == before


def test_another_split_must_know_the_same_classes(open_run, tmp_path, capsys):
    cache, _, run = open_run
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"known": ["blue", "green"], "unknown_easy": ["grey", "red"], "unknown_hard": ["red_twin"]}))
    assert main(["evaluate", str(run), "--open-set", str(other)]) == 2
    assert "knows other classes than" in capsys.readouterr().err
    regraded = tmp_path / "regraded.json"
    regraded.write_text(json.dumps({"known": ["blue", "green", "red"], "unknown_easy": [], "unknown_hard": ["grey", "red_twin"]}))
    assert main(["evaluate", str(run), "--open-set", str(regraded)]) == 0
    r = json.loads((run / "evaluation-raw-split-regraded.json" / "evaluation.json").read_text())  # its own folder
    assert r["open_set"]["max_logit"]["auroc_easy"] is None and r["open_set_images"]["unknown_hard"] == 80
