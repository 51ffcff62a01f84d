"""fgvc_ref.data.sources: data spec strings, the per-class subsets of the proxy, the data fingerprint."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fgvc_ref.data.records import DatasetError
from fgvc_ref.data.fashion_mnist import first_per_class
from fgvc_ref.data.sources import load_data
from test_fashion_mnist import needs_debian_files


@given(st.lists(st.integers(0, 5), max_size=60), st.integers(1, 8))
def test_first_per_class_keeps_the_first_k_of_every_class_in_file_order(labels, k):
    labels = torch.tensor(labels, dtype=torch.int64)
    expected = [i for i, c in enumerate(labels.tolist()) if labels[:i].tolist().count(c) < k]  # the definition, literally
    assert first_per_class(labels, k).tolist() == expected


@pytest.mark.parametrize("spec", ["fashion-mnist:shoes!", "fashion-mnist@", "fashion-mnist,train=", "fashion-mnist,val=3",
                                  "fashion-mnist@32,train=10x"])
def test_malformed_fashion_spec_is_refused_with_the_grammar(spec):
    with pytest.raises(DatasetError, match=r"fashion-mnist\[:tops\]\[@SIZE\]\[,train=N\]\[,test=M\]"):
        load_data(spec)


def test_zero_images_per_class_is_refused():
    with pytest.raises(DatasetError, match=">= 1 images per class"):
        load_data("fashion-mnist,train=0")


@needs_debian_files
def test_per_class_subsets_are_balanced_prefixes_of_the_full_split_with_their_own_fingerprint():
    full = load_data("fashion-mnist:tops@32")
    small = load_data("fashion-mnist:tops@32,train=7,test=3")
    assert np.bincount(small.train_labels.numpy()).tolist() == [7] * 4
    assert np.bincount(small.test_labels.numpy()).tolist() == [3] * 4
    idx = first_per_class(full.train_labels, 7)
    assert torch.equal(small.train_images, full.train_images[idx]) and torch.equal(small.train_labels, full.train_labels[idx])
    assert small.classes == full.classes and small.name == "fashion-mnist:tops@32,train=7,test=3"
    assert len({full.fingerprint, small.fingerprint, load_data("fashion-mnist:tops@32,train=8,test=3").fingerprint,
                load_data("fashion-mnist:tops@28,train=7,test=3").fingerprint}) == 4  # a resumed run cannot mix them


def test_load_test_gives_the_test_split_and_fingerprint_of_load_data_without_the_train_images(cache):
    """Evaluation reads only the test split; the fingerprint still names the whole data, as training recorded it."""
    from fgvc_ref.data.sources import load_data, load_test

    whole, test = load_data(cache), load_test(cache)
    assert torch.equal(test.test_images, whole.test_images) and torch.equal(test.test_labels, whole.test_labels)
    assert (test.classes, test.fingerprint, test.name) == (whole.classes, whole.fingerprint, whole.name)
    (Path(cache) / "train.pt").rename(Path(cache) / "train.moved")  # not read at all
    try:
        assert load_test(cache).fingerprint == whole.fingerprint
    finally:
        (Path(cache) / "train.moved").rename(Path(cache) / "train.pt")


@pytest.mark.parametrize("changed", ["train", "test"])
def test_re_preparing_either_split_changes_the_fingerprint_and_a_run_refuses_to_resume_on_it(changed, tmp_path):
    """One split changed at a time: the fingerprint covers both, so a run started on the old data refuses to resume on
    the new, naming the data; the split left alone keeps its own hash."""
    from fgvc_ref.data.cache import prepare
    from fgvc_ref.data.stanford_cars import load_stanford_cars
    from fgvc_ref.data.synthetic import make_fake_stanford_cars
    from fgvc_ref.train import train
    from runs import tiny

    old = make_fake_stanford_cars(tmp_path / "old", "devkit", classes=3, per_class=3, seed=1, image_size=(40, 30)).root
    new = make_fake_stanford_cars(tmp_path / "new", "devkit", classes=3, per_class=3, seed=2, image_size=(40, 30)).root
    for split, size in (("train", 20), ("test", 16)):
        s = load_stanford_cars(old, split, expected=None)
        prepare(s.records, tmp_path / "cache", split=split, classes=s.classes, size=size, workers=1, progress=False)
    before = load_data(tmp_path / "cache")
    train(tiny("base", 3), before, tmp_path / "run", seed=0, progress=False, stop_after_epochs=1)
    s = load_stanford_cars(new, changed, expected=None)
    prepare(s.records, tmp_path / "cache", split=changed, classes=s.classes, size=20 if changed == "train" else 16, workers=1, progress=False)
    after = load_data(tmp_path / "cache")
    assert after.fingerprint != before.fingerprint
    kept = "test" if changed == "train" else "train"
    assert torch.equal(getattr(after, f"{kept}_images"), getattr(before, f"{kept}_images"))
    with pytest.raises(ValueError, match=r"refusing to resume a different run:\n  data: checkpoint"):
        train(tiny("base", 3), after, tmp_path / "run", seed=0, progress=False)
