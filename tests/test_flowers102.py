"""fgvc_ref.data.flowers102: the same images, labels and order as torchvision's Flowers102; train = train + val."""

import pytest

from benchmark_trees import write_flowers102
from fgvc_ref.data.flowers102 import FULL, load_flowers102
from fgvc_ref.data.records import DatasetError


@pytest.fixture(scope="module")
def flowers(tmp_path_factory):
    return write_flowers102(tmp_path_factory.mktemp("flowers"), per_set=(1, 1, 2))


def torchvision_split(root, split, monkeypatch):
    from torchvision.datasets import Flowers102

    monkeypatch.setattr(Flowers102, "_check_integrity", lambda self: True)  # the md5 of the real .mat files; ours are small copies
    return Flowers102(str(root), split=split)


def test_train_is_torchvisions_train_then_val_and_test_is_its_test(flowers, monkeypatch):
    ours_train, ours_test = load_flowers102(flowers["root"], "train", expected=None), load_flowers102(flowers["root"], "test", expected=None)
    tv = {s: torchvision_split(flowers["root"], s, monkeypatch) for s in ("train", "val", "test")}
    assert [r.path for r in ours_train.records] == [str(p) for p in tv["train"]._image_files + tv["val"]._image_files]
    assert [r.label for r in ours_train.records] == tv["train"]._labels + tv["val"]._labels
    assert [(r.path, r.label) for r in ours_test.records] == [(str(p), lab) for p, lab in zip(tv["test"]._image_files, tv["test"]._labels)]
    assert ours_train.classes == list(tv["train"].classes) and len(ours_train.classes) == 102
    assert all(r.bbox is None for r in ours_train.records + ours_test.records)


def test_labels_are_the_mat_labels_made_0_based_and_ids_1_based(flowers):
    got = load_flowers102(flowers["root"], "test", expected=None)
    ids = flowers["sets"]["tstid"]
    assert [r.path.endswith(f"image_{i:05d}.jpg") for r, i in zip(got.records, ids)] == [True] * len(ids)
    assert [r.label for r in got.records] == [flowers["labels"][i - 1] - 1 for i in ids]


def test_official_counts_and_the_original_layout(flowers, tmp_path):
    with pytest.raises(DatasetError, match="should have 2040 images, found 204"):
        load_flowers102(flowers["root"], "train", expected=FULL)
    plain = write_flowers102(tmp_path, torchvision_layout=False)
    assert len(load_flowers102(plain["root"], "test", expected=None).records) == 102


def test_missing_files_and_out_of_range_ids_are_named(tmp_path):
    from scipy.io import savemat

    tree = write_flowers102(tmp_path / "a")
    (tree["base"] / "setid.mat").rename(tree["base"] / "setid.bak")
    with pytest.raises(DatasetError, match=r"no complete Flowers-102 layout: .*lacks \['(flowers-102/)?setid.mat'\]"):
        load_flowers102(tmp_path / "a", "test", expected=None)
    (tree["base"] / "setid.bak").rename(tree["base"] / "setid.mat")
    savemat(str(tree["base"] / "setid.mat"), {"trnid": [[1]], "valid": [[2]], "tstid": [[99999]]})
    with pytest.raises(DatasetError, match=r"tstid holds image id 99999, outside 1..306"):
        load_flowers102(tmp_path / "a", "test", expected=None)
    with pytest.raises(DatasetError, match="no Flowers-102 layout found"):
        load_flowers102(tmp_path, "test", expected=None)
