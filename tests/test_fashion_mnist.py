"""fgvc_ref.data.fashion_mnist: the Debian files, the 'tops' subset, IDX validation."""

import gzip

import numpy as np
import pytest

from fgvc_ref.data.fashion_mnist import DEFAULT_ROOT, TOPS, load_fashion_mnist, read_idx
from fgvc_ref.data.records import DatasetError

needs_debian_files = pytest.mark.skipif(
    not (DEFAULT_ROOT / "t10k-images-idx3-ubyte.gz").is_file(),
    reason=f"Fashion-MNIST not installed at {DEFAULT_ROOT}: apt-get install -y dataset-fashion-mnist (.ci/run does)",
)


@needs_debian_files
def test_loads_the_debian_files_with_the_published_counts():
    test = load_fashion_mnist("test")
    assert test.images.shape == (10_000, 3, 28, 28) and len(test.classes) == 10
    assert np.bincount(test.labels.numpy()).tolist() == [1000] * 10
    assert test.images.dtype.is_floating_point is False and (test.images[:, 0] == test.images[:, 2]).all()


@needs_debian_files
def test_tops_subset_keeps_four_lookalike_classes_relabelled_and_resizes():
    tops = load_fashion_mnist("test", subset="tops", size=32)
    full = load_fashion_mnist("test")
    assert tops.classes == ["T-shirt/top", "Pullover", "Coat", "Shirt"]
    assert tops.images.shape == (4000, 3, 32, 32) and sorted(set(tops.labels.tolist())) == [0, 1, 2, 3]
    keep = np.isin(full.labels.numpy(), TOPS)
    assert (np.array(TOPS)[tops.labels.numpy()] == full.labels.numpy()[keep]).all()


def test_idx_reader_checks_magic_and_size(tmp_path):
    good = tmp_path / "x-labels-idx1-ubyte.gz"
    good.write_bytes(gzip.compress(np.array([2049, 3], ">u4").tobytes() + bytes([1, 2, 3])))
    assert read_idx(good, 2049).tolist() == [1, 2, 3]
    bad = tmp_path / "short-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(np.array([2049, 5], ">u4").tobytes() + bytes([1])))
    with pytest.raises(DatasetError, match="header says"):
        read_idx(bad, 2049)
    with pytest.raises(DatasetError, match="magic 2051"):
        read_idx(good, 2051)
    with pytest.raises(DatasetError, match="dataset-fashion-mnist"):
        load_fashion_mnist("train", root=tmp_path)
    with pytest.raises(DatasetError, match="subset"):
        load_fashion_mnist("train", subset="shoes")


def test_resize_grey_is_pils_antialiased_bilinear_within_one_level():
    """The loader's (and predict's) resize: within one grey level of PIL's BILINEAR, down (28 -> 16, 13) and up (-> 48)."""
    import torch
    from PIL import Image

    from fgvc_ref.data.fashion_mnist import resize_grey

    x = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    for size in (16, 13, 48):
        ours = resize_grey(torch.from_numpy(x).unsqueeze(1), size)[:, 0].numpy().astype(int)
        pil = np.stack([np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR)) for a in x]).astype(int)
        assert np.abs(ours - pil).max() <= 1, size
    assert torch.equal(resize_grey(torch.from_numpy(x).unsqueeze(1), 28)[:, 0], torch.from_numpy(x))  # already that size: unchanged


def test_fgvc_fashion_mnist_names_another_folder_of_idx_files(tmp_path, monkeypatch):
    """A machine without the Debian package (the GPU machine) reads the files from $FGVC_FASHION_MNIST, e.g. the subset
    bench/gpu_prepare.sh writes; a folder without them is named in the error with the variable."""
    def idx(path, magic, array):
        dims = array.shape
        path.write_bytes(gzip.compress(np.array([magic, *dims], dtype=">u4").tobytes() + array.astype(np.uint8).tobytes()))

    g = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", 2051, g.integers(0, 256, (8, 28, 28)))
        idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", 2049, np.array([0, 2, 4, 6, 0, 2, 4, 6]))
    monkeypatch.setenv("FGVC_FASHION_MNIST", str(tmp_path))
    split = load_fashion_mnist("train", subset="tops")
    assert len(split.labels) == 8 and split.manifest["sources"][0]["path"].startswith(str(tmp_path))
    monkeypatch.setenv("FGVC_FASHION_MNIST", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="or set FGVC_FASHION_MNIST to the folder of the files"):
        load_fashion_mnist("train")
