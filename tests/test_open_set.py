"""fgvc_ref.data.open_set: split files, the shipped splits and their mapping, applying a split to data, bad splits refused.

The oracle for the shipped SSB splits is the SSB authors' own files, transcribed below verbatim: github.com/sgvaze/SSB
SSB/splits/scars_ssb_splits.json and cub_ssb_splits.json (commit 615320b), which equal the pickles of
github.com/sgvaze/osr_closed_set_all_you_need (data/open_set_splits/*_osr_splits.pkl, commit 3258f05) when those are read
with an Unpickler whose find_class refuses every global (they hold only dicts, lists and ints).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fgvc_ref.cli import main
from fgvc_ref.data.fashion_mnist import CLASSES
from fgvc_ref.data.open_set import (SplitError, canonical_sha256, known_data, load_split, partition, read_split, relabel, resolve,
                                    seeded_split, shipped)
from fgvc_ref.data.sources import Data
from fgvc_ref.data.stanford_cars import official_classes

ROOT = Path(__file__).resolve().parents[1]

SSB_CARS = {  # scars_ssb_splits.json, in its own order
    "known": [1, 11, 25, 38, 46, 50, 53, 75, 84, 100, 105, 117, 123, 129, 133, 134, 135, 136, 137, 138, 140, 144, 145, 146, 147, 149,
              150, 151, 153, 160, 161, 162, 163, 164, 167, 168, 169, 174, 175, 180, 185, 186, 187, 192, 193, 0, 81, 97, 104, 122, 139,
              141, 142, 143, 148, 152, 154, 155, 156, 157, 158, 159, 165, 166, 170, 171, 172, 173, 176, 177, 181, 184, 188, 191, 194,
              195, 2, 7, 9, 16, 20, 26, 28, 44, 54, 95, 98, 102, 127, 178, 182, 22, 41, 82, 93, 112, 125, 189],
    "Hard": [23, 42, 83, 94, 113, 126, 190],
    "Medium": [3, 8, 10, 17, 21, 27, 29, 45, 55, 96, 99, 103, 128, 179, 183],
    "Easy": [4, 5, 6, 12, 13, 14, 15, 18, 19, 24, 30, 31, 32, 33, 34, 35, 36, 37, 39, 40, 43, 47, 48, 49, 51, 52, 56, 57, 58, 59, 60, 61,
             62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 76, 77, 78, 79, 80, 85, 86, 87, 88, 89, 90, 91, 92, 101, 106, 107, 108,
             109, 110, 111, 114, 115, 116, 118, 119, 120, 121, 124, 130, 131, 132],
}
SSB_CUB = {  # cub_ssb_splits.json
    "known": [150, 70, 34, 178, 199, 131, 129, 147, 134, 11, 26, 93, 95, 121, 123, 99, 149, 167, 18, 31, 69, 198, 116, 158, 126, 17, 5,
              179, 111, 163, 184, 81, 174, 42, 53, 89, 77, 55, 23, 48, 43, 44, 56, 28, 193, 143, 0, 176, 84, 15, 38, 154, 141, 190, 172,
              124, 189, 19, 80, 157, 12, 9, 79, 30, 94, 67, 197, 97, 168, 137, 119, 76, 98, 88, 40, 106, 171, 87, 166, 186, 27, 51, 144,
              135, 161, 64, 177, 7, 146, 61, 50, 162, 133, 82, 39, 74, 72, 91, 196, 136],
    "Easy": [20, 159, 173, 148, 1, 57, 113, 165, 52, 109, 14, 4, 180, 6, 182, 68, 33, 108, 46, 35, 75, 188, 187, 100, 47, 105, 41, 86, 16,
             54, 139, 138],
    "Medium": [152, 195, 132, 83, 22, 192, 153, 175, 191, 155, 49, 194, 73, 66, 170, 151, 169, 96, 103, 37, 181, 127, 78, 21, 10, 164, 62,
               2, 183, 85, 45, 60, 92, 185],
    "Hard": [29, 110, 3, 8, 13, 58, 142, 25, 145, 63, 59, 65, 24, 140, 120, 32, 114, 107, 160, 130, 118, 101, 115, 128, 117, 71, 156, 112,
             36, 122, 104, 102, 90, 125],
}
CUB_CLASSES = [f"{i:03d}.Species_{i}" for i in range(1, 201)]  # classes.txt's form: each name starts with its 1-based id


def write(path: Path, content) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


# --- the shipped splits ---------------------------------------------------------------------------


def test_the_ssb_stanford_cars_split_is_the_ssbs_indices_named_in_cars_meta_order():
    """Every SSB index i is official_classes()[i]: 98 known, 76 easy, 22 hard (the SSB's Hard + Medium), disjoint, all 196."""
    names = official_classes()
    split = load_split("ssb-stanford-cars", names)
    assert (len(split.known), len(split.unknown_easy), len(split.unknown_hard)) == (98, 76, 22)
    assert split.known == tuple(sorted(SSB_CARS["known"]))
    assert split.unknown_easy == tuple(sorted(SSB_CARS["Easy"]))
    assert split.unknown_hard == tuple(sorted(SSB_CARS["Hard"] + SSB_CARS["Medium"]))
    content = json.loads((ROOT / "fgvc_ref/data/splits/ssb-stanford-cars.json").read_text())
    assert set(content["known"]) == {names[i] for i in SSB_CARS["known"]}  # the file holds names, mapped through cars_meta.mat order
    assert sorted(split.known + split.unknown_easy + split.unknown_hard) == list(range(196)) and not split.unused
    assert names[1] in content["known"] and names[23] in content["unknown_hard"] and names[4] in content["unknown_easy"]


def test_the_ssb_cub_split_is_kept_as_classes_txt_indices_and_needs_cubs_order():
    split = load_split("ssb-cub", CUB_CLASSES)
    assert (len(split.known), len(split.unknown_easy), len(split.unknown_hard)) == (100, 32, 68)
    assert split.known == tuple(sorted(SSB_CUB["known"])) and split.unknown_easy == tuple(sorted(SSB_CUB["Easy"]))
    assert split.unknown_hard == tuple(sorted(SSB_CUB["Hard"] + SSB_CUB["Medium"]))
    assert sorted(split.known + split.unknown_easy + split.unknown_hard) == list(range(200))
    assert split.names("known")[0] == "001.Species_1"  # index 0 is class_id 1
    shuffled = CUB_CLASSES[1:] + CUB_CLASSES[:1]
    with pytest.raises(SplitError, match=r"indices are in cub's classes.txt order .* not in that order"):
        load_split("ssb-cub", shuffled)


def test_the_fashion_mnist_split_holds_out_bag_easy_and_shirt_and_coat_hard():
    split = load_split("fashion-mnist", list(CLASSES))
    assert split.names("unknown_easy") == ["Bag"] and split.names("unknown_hard") == ["Coat", "Shirt"]
    assert split.names("known") == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Sandal", "Sneaker", "Ankle boot"]
    assert not split.unused


@pytest.mark.parametrize("name", ["fashion-mnist", "ssb-cub", "ssb-stanford-cars"])
def test_each_shipped_split_says_where_it_comes_from_and_its_licence(name):
    content, _ = read_split(name)
    assert {"source", "licence", "note", "dataset"} <= set(content) and all(content[k] for k in ("source", "licence", "note"))
    assert name in shipped()


def test_the_shipped_splits_are_package_data():
    assert '"splits/*.json"' in (ROOT / "pyproject.toml").read_text()


# --- the form, and bad splits: one line each -------------------------------------------------------


BAD = [
    ("{not json", r"not a JSON split file \(Expecting property name enclosed in double quotes at line 1, column 2\)"),
    ([1, 2], r"a split is a JSON object"),
    ({"known": ["a"], "unknown_easy": []}, r"missing key\(s\) unknown_hard"),
    ({"known": ["a"], "unknown_easy": ["b"], "unknown_hard": [], "unkown": []}, r"unknown key\(s\) unkown"),
    ({"known": ["a"], "unknown_easy": ["zz"], "unknown_hard": []}, r"unknown_easy names 'zz', which is not a class of this dataset"),
    ({"known": ["a", "b"], "unknown_easy": ["b"], "unknown_hard": []}, r"class 'b' is listed in both known and unknown_easy"),
    ({"known": ["a", "a"], "unknown_easy": ["b"], "unknown_hard": []}, r"class 'a' is listed twice in known"),
    ({"known": ["a"], "unknown_easy": [], "unknown_hard": []}, r"unknown_easy and unknown_hard are both empty"),
    ({"known": [], "unknown_easy": ["a"], "unknown_hard": []}, r"the known list is empty"),
    ({"known": ["a"], "unknown_easy": [True], "unknown_hard": []}, r"holds True, neither a class name nor an integer index"),
    ({"known": [0], "unknown_easy": ["b"], "unknown_hard": []}, r"indices need \"dataset\" naming a set with a fixed class order"),
    ({"known": ["a"], "unknown_easy": ["b"], "unknown_hard": [], "note": 3}, r"note must be a string"),
]


@pytest.mark.parametrize("content, message", BAD)
def test_a_bad_split_is_one_clear_line(content, message, tmp_path):
    path = write(tmp_path / "split.json", content)
    with pytest.raises(SplitError, match=message) as e:
        load_split(path, ["a", "b", "c"])
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_a_missing_name_suggests_the_closest_classes(tmp_path):
    path = write(tmp_path / "s.json", {"known": ["Acura RL Sedan 2013"], "unknown_easy": ["Acura TL Sedan 2012"], "unknown_hard": []})
    with pytest.raises(SplitError, match=r"closest: 'Acura RL Sedan 2012'"):
        load_split(path, official_classes())


@pytest.mark.parametrize("entry, message", [(196, r"the index 196, outside 0..195"), (-1, r"the index -1, outside 0..195")])
def test_indices_are_range_checked_in_the_canonical_order(entry, message, tmp_path):
    path = write(tmp_path / "s.json", {"dataset": "stanford_cars", "known": [0], "unknown_easy": [entry], "unknown_hard": []})
    with pytest.raises(SplitError, match=message):
        load_split(path, official_classes())
    ok = write(tmp_path / "ok.json", {"dataset": "stanford_cars", "known": [0, "Acura RL Sedan 2012"], "unknown_easy": [195], "unknown_hard": []})
    assert load_split(ok, official_classes()).known == (0, 1)  # names and indices mix


def test_indices_are_refused_for_a_copy_in_another_order(tmp_path):
    path = write(tmp_path / "s.json", {"dataset": "stanford_cars", "known": [0], "unknown_easy": [1], "unknown_hard": []})
    with pytest.raises(SplitError, match=r"indices are in stanford_cars's cars_meta.mat's class_names order, but this data's classes are not"):
        load_split(path, sorted(official_classes(), reverse=True))


def test_a_spec_that_is_neither_a_file_nor_shipped_lists_the_shipped_ones():
    with pytest.raises(SplitError, match=r"--open-set nosuch: no such split file, and not a shipped split \(fashion-mnist, ssb-cub, ssb-stanford-cars\)"):
        load_split("nosuch", ["a"])


def test_the_content_hash_ignores_layout_and_key_order(tmp_path):
    a = write(tmp_path / "a.json", '{"known": ["a"], "unknown_easy": ["b"], "unknown_hard": []}')
    b = write(tmp_path / "b.json", '{\n  "unknown_hard": [],\n  "unknown_easy": ["b"],\n  "known": ["a"]\n}\n')
    assert load_split(a, ["a", "b"]).sha256 == load_split(b, ["a", "b"]).sha256 == canonical_sha256(json.loads(b.read_text()))
    c = write(tmp_path / "c.json", '{"known": ["a"], "unknown_easy": [], "unknown_hard": ["b"]}')
    assert load_split(c, ["a", "b"]).sha256 != load_split(a, ["a", "b"]).sha256


# --- seeded splits ----------------------------------------------------------------------------------


@given(st.integers(2, 40), st.integers(0, 2**31), st.floats(0.05, 0.95))
def test_a_seeded_split_is_a_partition_fixed_by_its_seed(k, seed, known):
    """Known and unknown cover the classes once; round(known K) known, clamped to 1..K-1; the same seed, the same split."""
    classes = [f"c{i}" for i in range(k)]
    split = load_split(f"seeded:{seed}:{known}", classes)
    assert sorted(split.known + split.unknown_easy) == list(range(k)) and not split.unknown_hard
    assert len(split.known) == min(k - 1, max(1, round(known * k)))
    assert load_split(f"seeded:{seed}:{known}", classes) == split


def test_seeded_splits_differ_by_seed_and_default_to_half():
    classes = [f"c{i}" for i in range(20)]
    a, b = load_split("seeded:0", classes), load_split("seeded:1", classes)
    assert len(a.known) == 10 and a.known != b.known
    assert "not graded by difficulty" in seeded_split(classes, 0)["note"]
    with pytest.raises(SplitError, match=r"the known share must be in \(0, 1\)"):
        load_split("seeded:0:1.5", classes)


# --- a split applied to data -----------------------------------------------------------------------


def data_of(train_labels: list[int], test_labels: list[int], classes: list[str]) -> Data:
    image = lambda labels: torch.tensor(labels, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).contiguous()  # pixel = label
    return Data(image(train_labels), torch.tensor(train_labels), image(test_labels), torch.tensor(test_labels), classes, "fp", "spec",
                torch.tensor([[2, 2]] * len(train_labels)), torch.ones(len(train_labels), dtype=torch.bool))


@given(st.lists(st.integers(0, 5), min_size=1, max_size=40), st.permutations(range(6)), st.integers(1, 4))
def test_known_data_keeps_the_known_classes_images_renumbered_in_the_datasets_order(labels, perm, n_known):
    """Each kept image is of a known class, every such image is kept, in order, and label k is the k-th known class in the
    dataset's order, its name kept."""
    classes = [f"c{i}" for i in range(6)]
    known, rest = sorted(perm[:n_known]), perm[n_known:]
    split = resolve({"known": [classes[c] for c in perm[:n_known]], "unknown_easy": [classes[c] for c in rest[:1]],
                     "unknown_hard": [classes[c] for c in rest[1:]]}, classes, "s")
    d = known_data(data_of(labels, labels[::-1], classes), split)
    expected = [known.index(y) for y in labels if y in known]
    assert d.train_labels.tolist() == expected and d.classes == [classes[c] for c in known]
    assert d.train_images[:, 0, 0, 0].tolist() == [y for y in labels if y in known]  # the images themselves, in order
    assert d.test_labels.tolist() == [known.index(y) for y in labels[::-1] if y in known]
    assert len(d.train_sizes) == len(d.train_cropped) == len(expected)
    assert d.open_set["known"] == d.classes and d.fingerprint != "fp"
    regraded = resolve({**split.content, "unknown_easy": split.content["unknown_hard"], "unknown_hard": split.content["unknown_easy"]},
                       classes, "s")
    assert known_data(data_of(labels, labels, classes), regraded).fingerprint != d.fingerprint  # the split is part of the data's identity


def test_partition_finds_known_and_unknown_test_images_with_their_grade():
    classes = ["a", "b", "c", "d", "e"]
    split = resolve({"known": ["b", "d"], "unknown_easy": ["a"], "unknown_hard": ["e"]}, classes, "s")  # c: unused
    part = partition(torch.tensor([0, 1, 2, 3, 4, 3, 0]), split)
    assert part.known.tolist() == [1, 3, 5] and part.known_labels.tolist() == [0, 1, 1]
    assert part.unknown.tolist() == [0, 4, 6] and part.hard.tolist() == [False, True, False]
    assert split.unused == ["c"] and relabel(torch.tensor([2]), split).tolist() == [-1]


# --- the CLI: train --open-set, and resuming with another split --------------------------------------


def test_train_open_set_records_the_split_and_trains_on_the_known_classes(tmp_path, capsys):
    from runs import OPEN_SET_SPLIT, make_open_set_run

    cache, split_file, run = make_open_set_run(tmp_path)
    err = capsys.readouterr().err
    assert "open-set split" in err and "3 known, 1 easy and 1 hard unknown classes" in err and "val_fraction 0 -> 0.1" in err
    recipe = json.loads((run / "recipe.json").read_text())
    assert recipe["open_set"]["known"] == ["blue", "green", "red"] and recipe["open_set"]["content"] == OPEN_SET_SPLIT
    assert recipe["val_fraction"] == 0.1 and recipe["num_classes"] == 3
    final = torch.load(run / "final.pt", weights_only=True)
    assert final["classes"] == ["blue", "green", "red"] and final["identity"]["open_set"] == recipe["open_set"]["sha256"]
    other = write(tmp_path / "other.json", {**OPEN_SET_SPLIT, "unknown_easy": [], "unknown_hard": ["grey", "red_twin"]})
    sets = ["--set=model=tiny_cnn", "--set=weights=none", "--set=image_size=12", "--set=batch_size=10", "--set=patience=0",
            "--set=eval_batch_size=64"]
    assert main(["train", "--stage", "base", "--cache", str(cache), "--epochs", "6", *sets, "--open-set", str(other), "--out", str(run)]) == 2
    assert "refusing to resume a different run" in capsys.readouterr().err
    assert main(["train", "--stage", "base", "--cache", str(cache), "--epochs", "6", *sets, "--out", str(run)]) == 2  # nor without one
    assert "open_set:" in capsys.readouterr().err


def test_an_open_set_run_without_validation_images_is_refused_before_any_work(tmp_path):
    from runs import OPEN_SET_COLOURS, OPEN_SET_SPLIT, make_planted_cache, tiny

    from fgvc_ref.data.sources import load_data
    from fgvc_ref.train import train

    data = load_data(make_planted_cache(tmp_path, per_class=4, colours=OPEN_SET_COLOURS))
    known = known_data(data, resolve(OPEN_SET_SPLIT, data.classes, "s"))
    with pytest.raises(ValueError, match=r"an open-set run needs validation images to fit its temperature and rejection threshold on"):
        train(tiny("base", 1), known, tmp_path / "run", seed=0, progress=False)  # val_fraction 0
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("content", ["{broken", {"known": ["blue", "pink"], "unknown_easy": ["grey"], "unknown_hard": []},
                                     {"known": ["blue", "grey"], "unknown_easy": ["grey"], "unknown_hard": []},
                                     {"known": ["blue"], "unknown_easy": [], "unknown_hard": []}])
def test_train_with_a_bad_split_fails_in_one_line_and_writes_nothing(content, tmp_path, capsys):
    from runs import OPEN_SET_COLOURS, make_planted_cache

    cache = make_planted_cache(tmp_path, per_class=2, colours=OPEN_SET_COLOURS)
    path = write(tmp_path / "bad.json", content)
    assert main(["train", "--stage", "base", "--cache", str(cache), "--open-set", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(path) in err
    assert not (tmp_path / "run").exists()


def test_reproduce_sh_passes_the_split_to_every_training_and_checks_its_form_first(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["./reproduce.sh", "--proxy", "fashion-mnist", "--open-set", "fashion-mnist", "--stages", "base,ema", "--seeds", "1",
                           "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("into runs/proxy-fashion-mnist/open-set-fashion-mnist/runs") and len(lines) == 3
    assert all("--open-set fashion-mnist" in line and "open-set-fashion-mnist/runs/" in line for line in lines[1:])
    bad = write(tmp_path / "bad.json", "{")
    done = subprocess.run(["./reproduce.sh", "--proxy", "fashion-mnist", "--open-set", str(bad), "--dry-run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "not a JSON split file" in done.stderr and not done.stdout
