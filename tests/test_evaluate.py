"""fgvc_ref.evaluate: a finished run evaluated as training evaluated it, its confusions found and drawn."""

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fgvc_ref.cli import main
from fgvc_ref.data.sources import load_data
from fgvc_ref.checkpoint import checkpoint_name
from fgvc_ref.evaluate import cluster_order, confusion_matrix, evaluate_run, most_confused, top_k_accuracy
from fgvc_ref.run import load_run
from fgvc_ref.train import train
from runs import make_planted_cache, tiny


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A run trained on the planted set: blue, green, red, red_twin, yellow (red and red_twin indistinguishable)."""
    root = tmp_path_factory.mktemp("planted")
    cache = make_planted_cache(root)
    summary = train(tiny("base", 4, "batch_size=10", "image_size=12"), load_data(cache), root / "run", seed=0, progress=False)
    return root, cache, summary  # test images stored at 16 px, evaluated at the training size, 12


# --- equivalence: the numbers training logged, and counts written out -------------------------------


def test_evaluation_of_the_own_test_set_equals_the_logged_last_epoch_accuracy(planted):
    root, _, summary = planted
    r = evaluate_run(root / "run", out=root / "ev")
    assert r["top1"] == summary["last_test_acc"] and r["same_data_as_training"]
    assert r["images"] == 50 and [c["images"] for c in r["per_class"]] == [10] * 5
    assert [c["correct"] for c in r["per_class"]] == [r["confusion_matrix"][k][k] for k in range(5)]
    assert [c["acc"] for c in r["per_class"]] == [10.0 * c["correct"] for c in r["per_class"]]


def test_the_planted_confusion_is_the_most_confused_pair_and_sits_together_in_the_figure_order(planted):
    root, _, _ = planted
    r = evaluate_run(root / "run", out=root / "ev")
    top = r["most_confused"][0]
    assert {top["true"], top["predicted"]} == {"red", "red_twin"} and top["count"] >= 5
    order = [r["classes"][i] for i in r["class_order"]]
    assert abs(order.index("red") - order.index("red_twin")) == 1
    written = json.loads((root / "ev" / "evaluation.json").read_text())
    assert written["confusion_matrix"] == r["confusion_matrix"]
    md = (root / "ev" / "evaluation.md").read_text()
    assert f"| {top['true']} | {top['predicted']} | {top['count']} |" in md
    assert (root / "ev" / "confusion.png").stat().st_size > 0 and (root / "ev" / "confused_pairs.png").stat().st_size > 0


def test_confused_pairs_strip_shows_the_misclassified_images(planted):
    """The strip's first cell is the first test image of the top pair's true class that was predicted as the other
    class, resized to the cell; the first cell after the mistakes is a correctly classified image of that other class."""
    import numpy as np
    from PIL import Image

    from fgvc_ref.mosaic import Section, cell_box
    from fgvc_ref.train import predict_logits
    from fgvc_ref.transforms import resized_crop_batch, whole_boxes

    root, cache, _ = planted
    r = evaluate_run(root / "run", out=root / "ev")
    data, run = load_data(cache), load_run(root / "run")
    predicted = predict_logits(run.model, data.test_images, size=run.recipe["image_size"], batch=64, device=torch.device("cpu"), amp=False,
                               memory_format=torch.channels_last).argmax(1)
    t, p = r["most_confused"][0]["true_index"], r["most_confused"][0]["predicted_index"]
    wrong = ((data.test_labels == t) & (predicted == p)).nonzero().squeeze(1)
    right = ((data.test_labels == p) & (predicted == p)).nonzero().squeeze(1)
    strip = np.array(Image.open(root / "ev" / "confused_pairs.png").convert("RGB"))
    layout = [Section("", [[None] * 8 for _ in range(min(6, len(r["most_confused"])))])]

    def cell(column):
        left, top, right_, bottom = cell_box(layout, 96, 0, 0, column)
        return torch.from_numpy(strip[top:bottom, left:right_]).permute(2, 0, 1)

    resize = lambda i: resized_crop_batch(data.test_images[i : i + 1], whole_boxes(torch.tensor([[16, 16]])), 96)[0]
    assert torch.equal(cell(0), resize(int(wrong[0])))
    assert torch.equal(cell(min(4, len(wrong))), resize(int(right[0])))


def test_each_confused_pair_is_titled_with_both_full_class_names():
    """Long fine-grained names that differ only at their ends: the strip's titles hold them whole, and where a caption is
    cut it is cut in the middle, keeping both ends."""
    from fgvc_ref.evaluate import pair_sections

    names = ["Chevrolet Silverado 1500 Extended Cab 2012", "Chevrolet Silverado 1500 Classic Extended Cab 2007"]
    cm = torch.tensor([[1, 3], [0, 2]])
    r = {"classes": names, "most_confused": most_confused(cm, names)}
    labels, predicted = torch.tensor([0, 0, 0, 0, 1, 1]), torch.tensor([0, 1, 1, 1, 1, 1])
    sections = pair_sections(r, torch.zeros(6, 3, 8, 8, dtype=torch.uint8), labels, predicted, cell=32)
    assert sections[0].title == f"1. {names[0]} taken for {names[1]}: 3 images (75%)"
    assert [c for c, _ in sections[0].rows[0]] == ["mistake"] * 3 + [f"a {names[1]}"] * 2


@given(st.text(min_size=0, max_size=80), st.integers(4, 40))
def test_abbreviate_keeps_both_ends_within_the_limit(text, limit):
    from fgvc_ref.mosaic import abbreviate

    short = abbreviate(text, limit)
    assert len(short) <= limit
    if len(text) <= limit:
        assert short == text
    else:
        head, _, tail = short.partition("..")
        assert text.startswith(head) and text.endswith(tail) and len(head) >= 1 and len(tail) >= 1


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=60))
def test_confusion_matrix_counts_each_pair_once(pairs):
    target, predicted = torch.tensor([t for t, _ in pairs]), torch.tensor([p for _, p in pairs])
    cm = confusion_matrix(target, predicted, 6)
    assert int(cm.sum()) == len(pairs)
    for t in range(6):
        for p in range(6):
            assert int(cm[t, p]) == sum(1 for a, b in pairs if (a, b) == (t, p))


def test_top_k_accuracy_is_top1_at_k1_and_100_at_k_equal_classes():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(40, 7, generator=g), torch.randint(0, 7, (40,), generator=g)
    assert top_k_accuracy(logits, target, 1) == 100.0 * (logits.argmax(1) == target).double().mean().item()
    assert top_k_accuracy(logits, target, 7) == 100.0
    second = logits.topk(2, 1).indices[:, 1]
    assert top_k_accuracy(logits, second, 2) == 100.0 and top_k_accuracy(logits, second, 1) == 0.0


# --- properties -----------------------------------------------------------------------------------


@given(st.permutations(range(8)), st.integers(1, 30), st.integers(1, 30))
def test_cluster_order_puts_each_planted_pair_side_by_side(perm, a, b):
    """Classes confused only within pairs (perm[0]<->perm[1], ...) come out with each pair adjacent."""
    cm = torch.eye(8, dtype=torch.int64) * 50
    for k in range(0, 8, 2):
        cm[perm[k], perm[k + 1]] = a + k
        cm[perm[k + 1], perm[k]] = b
    order = cluster_order(cm)
    assert sorted(order) == list(range(8))
    for k in range(0, 8, 2):
        assert abs(order.index(perm[k]) - order.index(perm[k + 1])) == 1


def test_cluster_order_grows_a_chain_at_either_end():
    """0-1 strongly confused, 0-3 less, 1-2 weakly: 3 must sit next to 0, which a chain grown at one end misses."""
    cm = torch.eye(4, dtype=torch.int64) * 50
    cm[0, 1], cm[0, 3], cm[1, 2] = 10, 5, 1
    order = cluster_order(cm)
    assert abs(order.index(0) - order.index(3)) == 1 and abs(order.index(0) - order.index(1)) == 1


def test_most_confused_lists_the_largest_off_diagonal_counts_by_name_with_their_share():
    cm = torch.tensor([[8, 2, 0], [5, 4, 1], [0, 0, 10]])
    pairs = most_confused(cm, ["a", "b", "c"], n=2)
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [("b", "a", 5), ("a", "b", 2)]
    assert pairs[0]["share_of_true_class"] == 0.5


# --- bad input ------------------------------------------------------------------------------------


def test_a_missing_or_unfinished_run_is_refused_with_what_to_do(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / checkpoint_name(3, 0)).write_bytes(b"")
    assert main(["evaluate", str(tmp_path / "half")]) == 2
    assert "not a finished run" in (err := capsys.readouterr().err) and f"checkpoint {checkpoint_name(3, 0)} says" in err
    assert "train command again" in err


def test_ema_weights_of_a_run_without_ema_and_a_wrong_class_count_are_refused(planted, tmp_path, cache):
    root, _, _ = planted
    with pytest.raises(ValueError, match="has no EMA"):
        load_run(root / "run", "ema")
    with pytest.raises(ValueError, match="classifies 5 classes but .* has 4"):
        evaluate_run(root / "run", str(cache), out=tmp_path / "ev")


def test_the_cli_prints_top1_and_the_top_pair(planted, capsys, monkeypatch):
    root, cache, summary = planted
    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))  # the thread count the run was trained and evaluated with
    assert main(["evaluate", str(root / "run"), "--cache", str(cache), "--out", str(root / "ev-cli")]) == 0
    out = capsys.readouterr().out
    assert f"top-1 {summary['last_test_acc']:.2f}%" in out and "red" in out


def test_data_whose_class_names_differ_from_the_runs_is_refused(planted, tmp_path):
    import shutil

    root, cache, _ = planted
    shutil.copytree(root / "run", tmp_path / "run")
    final = torch.load(tmp_path / "run" / "final.pt", weights_only=True)
    assert final["classes"] == ["blue", "green", "red", "red_twin", "yellow"]  # a finished run records its class names
    final["classes"] = ["blue", "green", "red", "yellow", "red_twin"]
    torch.save(final, tmp_path / "run" / "final.pt")
    with pytest.raises(ValueError, match="class 3 is 'yellow' in the run, 'red_twin' in the data"):
        evaluate_run(tmp_path / "run", str(cache), out=tmp_path / "ev")


@given(st.permutations(range(6)), st.integers(1, 30), st.booleans())
def test_cluster_order_puts_a_one_way_confusion_side_by_side(perm, count, reverse):
    """A confusion that goes one way only (a taken for b, never b for a) still puts a and b next to each other."""
    cm = torch.eye(6, dtype=torch.int64) * 50
    a, b = (perm[1], perm[0]) if reverse else (perm[0], perm[1])
    cm[a, b] = count
    order = cluster_order(cm)
    assert sorted(order) == list(range(6)) and abs(order.index(a) - order.index(b)) == 1


@given(st.permutations(range(9)), st.integers(2, 5), st.integers(0, 4),
       st.lists(st.tuples(st.integers(1, 30), st.sampled_from(["forward", "backward", "both"])), min_size=8, max_size=8))
def test_cluster_order_lays_out_confusions_that_form_paths_as_runs_whatever_their_directions(perm, n, m, edges):
    """Confusions that chain classes into paths (x1 - x2 - ... - xn, each link one way, the other way or both, of any
    strength) come out as contiguous runs in path order, forwards or backwards: a class confused one way with a class
    already in a cluster joins it at that class, from either side. Two disjoint paths here (n and m classes)."""
    cm = torch.eye(9, dtype=torch.int64) * 50
    paths = [perm[:n], perm[n : n + m]] if m >= 2 else [perm[:n]]
    links = iter(edges)
    for path in paths:
        for a, b in zip(path, path[1:]):
            count, direction = next(links)
            if direction in ("forward", "both"):
                cm[a, b] = count
            if direction in ("backward", "both"):
                cm[b, a] = count
    order = cluster_order(cm)
    assert sorted(order) == list(range(9))
    for path in paths:
        at = order.index(path[0])
        assert order[at : at + len(path)] == list(path) or order[at - len(path) + 1 : at + 1] == list(path)[::-1], (path, order)


def test_a_class_taken_for_a_member_of_a_cluster_sits_beside_that_member():
    """0 and 1 confused both ways (a cluster), 2 taken for 1 and never the reverse, 3 and 4 unconfused: 2 sits next to 1
    (growing from 1's side of the chain), not next to 0 nor after the unconfused classes."""
    cm = torch.eye(5, dtype=torch.int64) * 50
    cm[0, 1], cm[1, 0], cm[2, 1] = 10, 10, 3
    order = cluster_order(cm)
    assert abs(order.index(2) - order.index(1)) == 1 and abs(order.index(0) - order.index(1)) == 1 and order[3:] == [3, 4]


def test_the_confusion_figure_shows_the_row_normalised_matrix_in_cluster_order(planted, monkeypatch):
    """The array drawn is C[t, p] / sum_j C[t, j] (each true class's row sums to 1), rows and columns in the figure's
    class order, computed here independently of the module."""
    pytest.importorskip("matplotlib")
    import matplotlib.axes

    from fgvc_ref.evaluate import _confusion_figure

    root, _, _ = planted
    r = evaluate_run(root / "run", out=root / "ev-fig")
    drawn = []
    real = matplotlib.axes.Axes.imshow
    monkeypatch.setattr(matplotlib.axes.Axes, "imshow", lambda self, data, *a, **k: (drawn.append(data), real(self, data, *a, **k))[1])
    _confusion_figure(r, root / "ev-fig" / "again.png")
    cm, order = r["confusion_matrix"], r["class_order"]
    expected = [[cm[t][p] / sum(cm[t]) for p in order] for t in order]
    assert len(drawn) == 1
    assert drawn[0].shape == (len(order), len(order)) and abs(drawn[0] - torch.tensor(expected).numpy()).max() < 1e-12
    assert abs(drawn[0].sum(1) - 1).max() < 1e-12 and abs(drawn[0].sum(0) - 1).max() > 1e-3  # rows, not columns
