"""fgvc_ref.data.hub, configs and splits: a Hugging Face copy is read exactly as it describes itself.

Copies are written in their exact forms: the shards by ``datasets`` itself (``Dataset.shard(...).to_parquet``, named as
``push_to_hub`` names them, with the ``huggingface`` schema metadata it writes; ``save_to_disk``), the cards by
``huggingface_hub``'s and ``datasets``' card writers (``DatasetCardData``, ``MetadataConfigs``, ``DatasetInfosDict``), and
as literal YAML only for the forms the card format allows but ``datasets``' writer refuses. ``datasets``' own resolver
(``load_dataset_builder(...).config.data_files``, ``get_data_patterns``) is the oracle for which files a config names.
"""

import copy
import io
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

datasets = pytest.importorskip("datasets")  # the hub extra's writers and resolver, which the README's test command installs
import pyarrow.parquet as pq  # noqa: E402
import yaml  # noqa: E402

from fgvc_ref.cli import main  # noqa: E402
from fgvc_ref.data import hub  # noqa: E402
from fgvc_ref.data.datasets import load_dataset, split_parts, unused_splits  # noqa: E402
from fgvc_ref.data.records import DatasetError  # noqa: E402

CLASSES = ["heron", "ibis", "stork"]
ROOT = Path(__file__).resolve().parents[1]


def png(k: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (6, 5), (40 * k % 256, 90, 255 - 40 * k % 256)).save(buf, "PNG")
    return buf.getvalue()


def table(n: int, start: int = 0):
    """``n`` rows as ``datasets`` holds an image-classification split: ``image`` (Image) and ``label`` (ClassLabel)."""
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=CLASSES)})
    return datasets.Dataset.from_dict({"image": [{"bytes": png(i), "path": f"{i}.png"} for i in range(start, start + n)],
                                       "label": [i % len(CLASSES) for i in range(start, start + n)]}, features=features)


def shards(root: Path, folder: str, split: str, n: int, parts: int = 1, start: int = 0) -> list[Path]:
    """A split's rows in ``parts`` shards ``{folder}/{split}-0000k-of-0000N.parquet``, written as push_to_hub writes them."""
    rows, out = table(n, start), []
    for k in range(parts):
        path = root / folder / f"{split}-{k:05d}-of-{parts:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows.shard(parts, k, contiguous=True).to_parquet(str(path))
        out.append(path)
    return out


def write_card(root: Path, configs: dict[str, dict] | None, sizes: dict[str, dict[str, int]] | None = None) -> None:
    """README.md as push_to_hub writes it: ``configs`` and each config's ``dataset_info`` (features, split sizes)."""
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard, DatasetCardData

    card = DatasetCardData()
    if configs:
        MetadataConfigs(copy.deepcopy(configs)).to_dataset_card_data(card)
    if sizes:
        infos = {name: datasets.DatasetInfo(features=table(0).features, splits=datasets.SplitDict(
            {s: datasets.SplitInfo(s, num_bytes=0, num_examples=n) for s, n in split_sizes.items()})) for name, split_sizes in sizes.items()}
        datasets.info.DatasetInfosDict(infos).to_dataset_card_data(card)
    (root / "README.md").write_text(DatasetCard("---\n" + str(card) + "\n---\n").content + "\nA copy for fgvc_ref's tests.\n")


def write_yaml_card(root: Path, header: dict) -> None:
    """A card whose header is written as literal YAML: the forms the card format allows that datasets' writer refuses."""
    (root / "README.md").write_text("---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n\nA copy for fgvc_ref's tests.\n")


def pushed(root: Path, sizes: dict[str, int], parts: dict[str, int] | None = None, config: str = "default", card: bool = True) -> Path:
    """A snapshot of a repository that push_to_hub made: ``data/`` (or the config's folder) and the card with the sizes."""
    folder = "data" if config == "default" else config
    start = 0
    for split, n in sizes.items():
        shards(root, folder, split, n, (parts or {}).get(split, 1), start)
        start += n
    if card:
        write_card(root, {config: {"data_files": [{"split": s, "path": f"{folder}/{s}-*"} for s in sizes]}}, {config: sizes})
    return root


def theirs(root: Path, config: str | None = None) -> dict[str, list[str]]:
    """The files each split of ``config`` is made of, as datasets resolves them (relative to the root)."""
    builder = datasets.load_dataset_builder(str(root), config, cache_dir=str(root.parent / f"hf-cache-{root.name}"))
    return {str(s): sorted(Path(p).relative_to(root).as_posix() for p in files) for s, files in builder.config.data_files.items()}


def ours(root: Path, config: str | None = None) -> dict[str, list[str]]:
    return {s: [p.relative_to(root).as_posix() for p in v.shards] for s, v in hub.copy_splits(root, "hf_repo", config).splits.items()}


def prepare(root: Path, out: Path, *extra: str) -> int:
    return main(["prepare", "--data", str(root), "--dataset", "hub", "--out", str(out), "--any-size", "--workers", "1", "--train-size", "16",
                 "--test-size", "16", *extra])


# --- configs: exactly the chosen config's files, by every form the card allows ---------------------

TRAIN2 = ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]
TEST1 = ["data/test-00000-of-00001.parquet"]
OTHER = ["other/test-00000-of-00001.parquet", "other/train-00000-of-00001.parquet"]
FORMS = {  # name: (the config's entry, the files of each split; None: the oracle is datasets' own resolution)
    "one pattern": ({"data_files": "data/train-*"}, None),
    "a list of patterns": ({"data_files": ["data/train-00000-*", "data/train-00001-*"]}, None),
    "split and pattern": ({"data_files": [{"split": "train", "path": "data/train-*"}, {"split": "test", "path": "data/test-*"}]}, None),
    "split and a list of paths": ({"data_files": [{"split": "train", "path": TRAIN2}, {"split": "test", "path": "data/test-*"}]}, None),
    "recursive glob": ({"data_files": [{"split": "train", "path": "data/**/train-*.parquet"}]}, None),
    "trailing **": ({"data_files": [{"split": "train", "path": "other/**"}]}, None),
    "data_dir only": ({"data_dir": "data"}, None),
    "a mapping split -> pattern": ({"data_files": {"train": "data/train-*", "test": ["data/test-*"]}}, {"train": TRAIN2, "test": TEST1}),
    "data_dir and data_files": ({"data_dir": "data", "data_files": [{"split": "train", "path": "train-*"}, {"split": "validation", "path": "test-*"}]},
                                {"train": TRAIN2, "validation": TEST1}),
}


@pytest.mark.parametrize("form", FORMS)
def test_every_data_files_form_reads_exactly_the_files_the_config_names(form, tmp_path):
    """Each form the card format allows names the same files for fgvc_ref as for datasets' resolver (or, where datasets'
    YAML check refuses a form the card format documents, the files it names); another config's files are never read."""
    root = tmp_path / "repo"
    shards(root, "data", "train", 4, parts=2)
    shards(root, "data", "test", 2)
    shards(root, "other", "train", 2, start=6)
    shards(root, "other", "test", 2, start=8)
    entry, expected = FORMS[form]
    header = {"configs": [{"config_name": "default", **entry}, {"config_name": "other", "data_files": [{"split": "train", "path": "other/*"}]}]}
    if expected is None:
        write_card(root, {c["config_name"]: {k: v for k, v in c.items() if k != "config_name"} for c in header["configs"]})
        expected = theirs(root)
    else:
        write_yaml_card(root, header)
    assert ours(root) == expected
    assert not any(p.startswith("other/") for files in expected.values() for p in files) or form == "trailing **"
    assert expected.get("train") in (TRAIN2, OTHER)


def test_the_config_named_with_hub_config_is_read_and_recorded_and_no_other(tmp_path, capsys):
    """Two configs as push_to_hub writes them (config_name="small" puts its shards in small/): the default one, or the one
    --hub-config names, is read alone; the cache records which, and --reuse refuses a cache of the other config."""
    root = tmp_path / "repo"
    shards(root, "data", "train", 6, parts=2)
    shards(root, "data", "test", 3, start=6)
    shards(root, "small", "train", 3, start=9)
    shards(root, "small", "test", 3, start=12)
    configs = {name: {"data_files": [{"split": s, "path": f"{folder}/{s}-*"} for s in ("train", "test")]} for name, folder in
               (("default", "data"), ("small", "small"))}
    write_card(root, configs, {"default": {"train": 6, "test": 3}, "small": {"train": 3, "test": 3}})
    assert ours(root, "small") == theirs(root, "small") and ours(root) == theirs(root, "default")
    small = load_dataset("hub", root, "train", config="small")
    assert {Path(r.path).parent.name for r in small.records} == {"small"} and len(small.records) == 3
    assert any("config 'small' (asked for with --hub-config): train (3 rows), test (3 rows)" in n for n in small.notes)
    assert {Path(r.path).parent.name for r in load_dataset("hub", root, "train").records} == {"data"}
    out = tmp_path / "cache"
    assert prepare(root, out, "--hub-config", "small", "--reuse") == 0
    params = json.loads((out / "train.manifest.json").read_text())["params"]
    assert params["config"] == "small" and params["splits"] == {"train": ["train"], "test": ["test"]}
    assert prepare(root, out, "--reuse") == 2
    assert "config 'small' (asked: None)" in capsys.readouterr().err
    with pytest.raises(DatasetError, match=r"README\.md: no config 'large'; the card lists \['default', 'small'\]"):
        load_dataset("hub", root, "train", config="large")


def test_two_configs_are_never_merged(tmp_path):
    """Without a default, with two defaults, or with a config that names no files beside others, the card is refused with
    the configs named; a Parquet conversion with one folder per config is refused until --hub-config names one folder."""
    root = tmp_path / "repo"
    shards(root, "a", "train", 3)
    shards(root, "b", "train", 3, start=3)
    for configs, message in (({"a": {"data_files": "a/*"}, "b": {"data_files": "b/*"}}, r"lists configs \['a', 'b'\] and marks none default"),
                             ({"a": {"data_files": "a/*", "default": True}, "default": {"data_files": "b/*"}}, r"several configs the default \(\['a', 'default'\]\)")):
        write_card(root, configs)
        with pytest.raises(DatasetError, match=message + r".*--hub-config NAME"):
            load_dataset("hub", root, "train")
        with pytest.raises(ValueError):
            theirs(root)  # datasets refuses these cards too
    write_yaml_card(root, {"configs": [{"config_name": "a", "data_files": "a/*"}, {"config_name": "default"}]})
    with pytest.raises(DatasetError, match="config 'default' names neither data_files nor data_dir"):
        load_dataset("hub", root, "train")
    conversion = tmp_path / "conversion"  # the Hub's Parquet conversion: {config}/{split}/0000.parquet, no card
    for config, start in (("a", 0), ("b", 6)):
        for split in ("train", "test"):
            path = conversion / config / split / "0000.parquet"
            path.parent.mkdir(parents=True)
            table(3, start + 3 * (split == "test")).to_parquet(str(path))
    with pytest.raises(DatasetError, match=r"shards of split 'train' lie in 2 folders \(a/, b/\).*--hub-config NAME"):
        load_dataset("hub", conversion, "train")
    got = load_dataset("hub", conversion, "train", config="b")
    assert {Path(r.path).parts[-3] for r in got.records} == {"b"} and len(got.records) == 3


@pytest.mark.parametrize("data_files, message", [
    (5, r"cannot resolve its data_files 5"),
    ([{"split": "train"}], r"cannot resolve its data_files \[\{'split': 'train'\}\]"),
    ([{"split": "train", "path": "data/*"}, {"split": "train", "path": "other/*"}], "its data_files name split 'train' twice"),
    ([{"split": "train", "path": "hf://datasets/someone/cars/data/train-*"}], "cannot resolve 'hf://datasets/.*not a path inside the repository"),
    ([{"split": "train", "path": "../elsewhere/*.parquet"}], "not a path inside the repository"),
    ([{"split": "train", "path": "data/train-**.parquet"}], r"'\*\*' can only be a whole path component"),
    ([{"split": "train", "path": "data/*.csv"}], r"split 'train': its files are not Parquet shards"),
    ([{"split": "train", "path": ["data/train-*", "data/extra-*"]}], r"'data/extra-\*' matches no file .* while its other patterns do"),
])
def test_a_config_that_cannot_be_resolved_is_refused_by_name(data_files, message, tmp_path):
    root = tmp_path / "repo"
    shards(root, "data", "train", 3)
    (root / "data" / "notes.csv").write_text("a,b\n")
    write_yaml_card(root, {"configs": [{"config_name": "main", "data_files": data_files}]})
    with pytest.raises(DatasetError, match=rf"README\.md: config 'main'.*{message}"):
        load_dataset("hub", root, "train")
    write_yaml_card(root, {"configs": [{"config_name": "main", "data_dir": "nowhere"}]})
    with pytest.raises(DatasetError, match=r"config 'main': its data_dir 'nowhere' is not a folder"):
        load_dataset("hub", root, "train")


# --- completeness: a partial download is refused, naming what is missing ----------------------------


def test_a_missing_shard_of_a_k_of_n_series_is_refused_by_name_and_nothing_is_written(tmp_path, capsys):
    root = pushed(tmp_path / "repo", {"train": 9, "test": 3}, parts={"train": 3})
    (root / "data" / "train-00001-of-00003.parquet").unlink()
    out = tmp_path / "cache"
    assert prepare(root, out) == 2
    err = capsys.readouterr().err
    assert f"split 'train' (data/train-*) is not whole: missing {root / 'data' / 'train-00001-of-00003.parquet'}. A partial download" in err
    assert "empty class" not in err and not out.exists()
    with pytest.raises(DatasetError, match="not whole"):  # the copy is refused whole, whichever split is asked for
        load_dataset("hub", root, "test")


@pytest.mark.parametrize("names, gaps", [
    (["train-00000-of-00003.parquet", "train-00002-of-00003.parquet"], ["missing {d}/train-00001-of-00003.parquet"]),
    (["train-00000-of-00002-6b3f0c.parquet"], ["missing {d}/train-00001-of-00002*.parquet"]),  # datasets < 2.14 appended a hash
    (["data-00000-of-00002.arrow", "data-00001-of-00002.arrow"], []),
    (["train-00000-of-00002.parquet", "train-00001-of-00002.parquet", "train-00000-of-00003.parquet"],
     ["{d}/train-*-of-N.parquet with N = 00002 and 00003 side by side (files of two downloads)"]),
    (["part-a.parquet", "train.parquet"], []),
])
def test_shard_gaps_name_each_missing_shard_and_mixed_series(names, gaps):
    d = Path("/copy/data")
    assert hub.shard_gaps([d / n for n in names]) == [g.format(d=d) for g in gaps]


def test_fewer_or_more_rows_than_the_card_states_are_refused_with_both_counts(tmp_path):
    """Shards without a k-of-N name (a card's own pattern): a lost file shows only in the row count the card states."""
    root = tmp_path / "repo"
    rows = table(6)
    for k, name in enumerate(("part-a", "part-b")):
        (root / "data").mkdir(parents=True, exist_ok=True)
        rows.shard(2, k, contiguous=True).to_parquet(str(root / "data" / f"{name}.parquet"))
    shards(root, "data", "test", 3, start=6)
    write_card(root, {"default": {"data_files": [{"split": "train", "path": "data/part-*"}, {"split": "test", "path": "data/test-*"}]}},
               {"default": {"train": 6, "test": 3}})
    assert len(load_dataset("hub", root, "train").records) == 6
    (root / "data" / "part-b.parquet").unlink()
    with pytest.raises(DatasetError, match=r"split 'train' has 3 rows in its 1 shard\(s\) \(data/part-\*\), but the card's dataset_info "
                                           r"\(.*README\.md, config 'default'\) says 6: a partial download"):
        load_dataset("hub", root, "train")
    rows.to_parquet(str(root / "data" / "part-b.parquet"))  # 3 + 6 rows: an older download's file beside the new ones
    with pytest.raises(DatasetError, match="has 9 rows .* says 6: shards of an older download beside the new ones, or a card out of date"):
        load_dataset("hub", root, "test")


def test_a_save_to_disk_copy_lacking_a_listed_shard_is_refused_and_a_stale_count_is_only_said(tmp_path):
    """save_to_disk's state.json lists every shard: one missing is a partial copy. Its dataset_info.json keeps the count
    from before a filter (datasets does not update it), so a smaller count there is said, not refused."""
    source = tmp_path / "source"
    source.mkdir()
    table(8).to_parquet(str(source / "train.parquet"))
    table(3, 8).to_parquet(str(source / "test.parquet"))
    loaded = datasets.load_dataset("parquet", data_files={s: str(source / f"{s}.parquet") for s in ("train", "test")}, cache_dir=str(tmp_path / "hf"))
    loaded["train"] = loaded["train"].filter(lambda label, i: i >= 2, input_columns="label", with_indices=True)  # 6 of 8
    saved = tmp_path / "saved"
    loaded.save_to_disk(str(saved), num_shards={"train": 2, "test": 1})
    assert json.loads((saved / "train" / "dataset_info.json").read_text())["splits"]["train"]["num_examples"] == 8
    got = load_dataset("hub", saved, "train")
    assert len(got.records) == 6
    assert any("split 'train' has 6 rows in its 2 shard(s)" in n and "says 8: datasets keeps that count from before a filter" in n for n in got.notes)
    (saved / "train" / "data-00001-of-00002.arrow").unlink()
    with pytest.raises(DatasetError, match=r"state\.json: 1 of the 2 shards it lists for split 'train' are missing: "
                                           r"\['data-00001-of-00002\.arrow'\]: a partial copy"):
        load_dataset("hub", saved, "test")


def test_a_git_lfs_pointer_in_place_of_a_shard_says_to_fetch_the_lfs_objects(tmp_path):
    root = pushed(tmp_path / "repo", {"train": 3, "test": 3})
    (root / "data" / "test-00000-of-00001.parquet").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:a430b56b640c6167382f8441f6af4afc09936a8e405d0de27be1c88ccfdc1318\nsize 740690018\n")
    with pytest.raises(DatasetError, match=r"test-00000-of-00001\.parquet: a Git LFS pointer, not the Parquet file itself .*git lfs pull"):
        load_dataset("hub", root, "train")


def test_a_partial_split_of_the_hubs_parquet_conversion_is_refused(tmp_path):
    root = tmp_path / "conversion"
    for split in ("partial-train", "test"):
        (root / "default" / split).mkdir(parents=True)
        table(3).to_parquet(str(root / "default" / split / "0000.parquet"))
    with pytest.raises(DatasetError, match=r"partial-train: a partial-<split> folder of the Hub's Parquet conversion holds only the first part"):
        load_dataset("hub", root, "test")


# --- splits inferred from file names, as datasets infers them -----------------------------------------


@pytest.mark.parametrize("files", [
    ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet", "data/extra-00000-of-00001.parquet",
     "data/test-00000-of-00001.parquet", "data/testing.parquet"],  # push_to_hub's names name any split; the rest is not read
    ["training/a.parquet", "valid/b.parquet", "eval/c.parquet", "train.parquet"],  # folder names before file names
    ["data/training-part0.parquet", "data/dev.parquet", "data/testing.parquet", "data/other.parquet"],
])
def test_splits_from_file_names_are_the_ones_datasets_infers(files, tmp_path):
    root = tmp_path / "repo"
    for k, name in enumerate(files):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        table(2, 2 * k).to_parquet(str(root / name))
    (root / "data" / "._train-00000-of-00002.parquet").parent.mkdir(exist_ok=True)
    (root / "data" / "._train-00000-of-00002.parquet").write_bytes(b"\x00\x05\x16\x07")  # AppleDouble: junk, never a shard
    expected = theirs(root)
    assert ours(root) == expected
    stray = sorted(set(files) - {p for v in expected.values() for p in v})
    notes = hub.copy_splits(root, "hf_repo").notes
    assert stray and any(f"{len(stray)} Parquet file(s) under {root} belong to no split by their names and are not read, e.g. {root / stray[0]}"
                         in n for n in notes)


# --- every split accounted for ----------------------------------------------------------------------


def test_a_train_validation_test_copy_says_which_splits_are_unused_and_trains_on_them_when_asked(tmp_path, capsys):
    root = pushed(tmp_path / "repo", {"train": 6, "validation": 3, "test": 3}, parts={"train": 2})
    assert prepare(root, tmp_path / "c1") == 0
    err = capsys.readouterr().err
    assert ("not used: split 'validation' (3 images) of this copy; to train on it too, as the Flowers-102 and FGVC-Aircraft loaders "
            "train on train + val: --train-splits train,validation; to test on 'validation' instead: --test-split validation") in err
    assert "train: 6 images (0 with a box)" in err
    out = tmp_path / "c2"
    assert prepare(root, out, "--train-splits", "train,validation", "--reuse") == 0
    err = capsys.readouterr().err
    assert "train: 9 images from split(s) train, validation" in err and "not used" not in err
    manifest = json.loads((out / "train.manifest.json").read_text())
    assert manifest["num_images"] == 9 and manifest["params"]["splits"] == {"train": ["train", "validation"], "test": ["test"]}
    assert {Path(s["path"]).name.split("-")[0] for s in manifest["sources"]} == {"train", "validation"}
    assert prepare(root, out, "--reuse") == 2
    assert "splits {'train': ['train', 'validation'], 'test': ['test']} (asked: {'train': ['train'], 'test': ['test']})" in capsys.readouterr().err


def test_a_copy_with_only_train_and_validation_is_tested_on_validation_when_asked(tmp_path, capsys):
    root = pushed(tmp_path / "repo", {"train": 6, "validation": 3})
    assert prepare(root, tmp_path / "c1") == 2
    err = capsys.readouterr().err
    assert ("no 'test' split in this Hugging Face copy (hf_repo, config 'default'); splits found: train (6 rows), validation (3 rows); "
            "--test-split NAME tests on another") in err
    out = tmp_path / "c2"
    assert prepare(root, out, "--test-split", "validation") == 0
    assert "not used" not in capsys.readouterr().err
    test = json.loads((out / "test.manifest.json").read_text())
    assert test["num_images"] == 3 and test["params"]["splits"]["test"] == ["validation"]


def test_a_split_of_the_card_that_was_not_downloaded_is_named_with_its_pattern(tmp_path, capsys):
    """huggingface-cli download --include 'data/train-*' 'data/test-*': the validation split is said to be absent, not
    silently dropped; reading it is refused with the pattern that matched nothing."""
    root = pushed(tmp_path / "repo", {"train": 6, "validation": 3, "test": 3})
    (root / "data" / "validation-00000-of-00001.parquet").unlink()
    assert prepare(root, tmp_path / "c") == 0
    assert "not used: split 'validation' (no files here) of this copy" in capsys.readouterr().err
    with pytest.raises(DatasetError, match=r"split 'validation' has no files here: data/validation-\* matches none \(not downloaded\?\)"):
        load_dataset("hub", root, "train", splits=("train", "validation"))


def test_a_card_naming_one_shard_in_train_and_test_is_refused_before_anything_is_written(tmp_path, capsys):
    """The card's train pattern data/* also names the test shard: the test images would be train images."""
    root = tmp_path / "repo"
    shards(root, "data", "train", 6)
    shards(root, "data", "test", 3, start=6)
    write_card(root, {"default": {"data_files": [{"split": "train", "path": "data/*"}, {"split": "test", "path": "data/test-*"}]}})
    assert len(load_dataset("hub", root, "train").records) == 9  # read as the card says
    assert prepare(root, tmp_path / "c") == 2
    err = capsys.readouterr().err
    assert f"3 of the 3 test images are also train images, e.g. {root / 'data' / 'test-00000-of-00001.parquet'} (row 0)" in err
    assert not (tmp_path / "c").exists()


def test_split_parts_refuse_an_overlap_a_repeat_and_an_empty_name():
    assert split_parts() == {"train": ("train",), "test": ("test",)}
    assert split_parts("train, validation", "test") == {"train": ("train", "validation"), "test": ("test",)}
    for args, message in ((("train,validation", "validation"), "a model would be tested on images it trained on"),
                          (("train,train", "test"), "names a split twice"), (("train,", "test"), "give split names"),
                          (("train", "test,validation"), "one test split")):
        with pytest.raises(DatasetError, match=message):
            split_parts(*args)


def test_unused_splits_names_each_with_its_size_and_the_options():
    from fgvc_ref.data.records import LoadedSplit

    copy_of = (("train", 10), ("validation", 4), ("extra", 2), ("test", 5))
    loaded = {part: LoadedSplit([], [], "hf_repo", (), copy_of) for part in ("train", "test")}
    assert unused_splits(loaded, {"train": ("train",), "test": ("test",)}) == (
        "not used: splits 'validation' (4 images), 'extra' (2 images) of this copy; to train on them too, as the Flowers-102 and "
        "FGVC-Aircraft loaders train on train + val: --train-splits train,validation,extra; to test on 'validation' instead: --test-split validation")
    assert unused_splits(loaded, {"train": ("train", "validation", "extra"), "test": ("test",)}) is None
    native = {part: LoadedSplit([], [], "cub") for part in ("train", "test")}
    assert unused_splits(native, {"train": ("train",), "test": ("test",)}) is None


def test_split_options_are_refused_for_a_dataset_with_official_splits(tmp_path):
    with pytest.raises(DatasetError, match=r"--train-splits / --test-split: options of the Hugging Face reader .* not of 'cub', which has its official"):
        load_dataset("cub", tmp_path, "train", splits=("train", "validation"))


def test_reproduce_sh_passes_the_config_and_split_options_to_prepare(tmp_path):
    """reproduce.sh --data ROOT with the options: prepare gets them as given (a stand-in interpreter records each call)."""
    stub = tmp_path / "python"
    stub.write_text(f"#!/bin/sh\necho \"$*\" >> '{tmp_path / 'calls'}'\n")
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    args = ["--data", str(tmp_path), "--dataset", "hub", "--hub-config", "small", "--train-splits", "train,validation", "--test-split", "dev",
            "--out", str(tmp_path / "out"), "--stages", "base", "--seeds", "1"]
    done = subprocess.run(["bash", "reproduce.sh", *args], cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHON": str(stub)}, timeout=60)
    assert done.returncode == 0, done.stderr
    prepare_call = next(line for line in (tmp_path / "calls").read_text().splitlines() if " prepare " in line)
    assert prepare_call.endswith("--reuse --hub-config small --train-splits train,validation --test-split dev")
