"""fgvc_ref.data.hub: Hugging Face copies in both forms, written in their exact formats, read into the class-folder cache.

The forms are written by pyarrow and, where it is installed, by ``datasets`` itself (``save_to_disk``, and the card that
``push_to_hub`` writes): the files a user downloads or saves, with real photos (scikit-image's) as JPEG and PNG bytes.
"""

import io
import json
import shutil
from pathlib import Path

import pytest
import torch

import pyarrow as pa  # the hub extra, which the README's test command installs
import pyarrow.parquet as pq

from fgvc_ref.cli import main  # noqa: E402
from fgvc_ref.data import hub  # noqa: E402
from fgvc_ref.data.cache import load_cache  # noqa: E402
from fgvc_ref.data.datasets import load_dataset  # noqa: E402
from fgvc_ref.data.records import DatasetError  # noqa: E402
from fgvc_ref.data.stanford_cars import load_stanford_cars, official_classes  # noqa: E402

CLASSES = ["astronaut", "cat", "coffee", "rocket"]  # alphabetical, as a class-folder copy orders them
FEATURES = {"image": {"_type": "Image"}, "label": {"names": CLASSES, "_type": "ClassLabel"}}
SCHEMA = pa.schema([("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("label", pa.int64())])


@pytest.fixture(scope="module")
def photos():
    """(split, class index, file name, encoded bytes): 3 train and 2 test images per class, JPEG and PNG alternating."""
    skimage = pytest.importorskip("skimage")
    from PIL import Image

    data = Path(skimage.__file__).parent / "data"
    sources = {"astronaut": "astronaut.png", "cat": "chelsea.png", "coffee": "coffee.png", "rocket": "rocket.jpg"}
    out = []
    for c, name in enumerate(CLASSES):
        photo = Image.open(data / sources[name]).convert("RGB")
        for split, n in (("train", 3), ("test", 2)):
            for k in range(n):
                w, h = photo.size
                crop = photo.crop((k * w // 9, k * h // 11, w - k * w // 13, h)).resize((48 + 8 * k, 36 + 4 * c))
                buf = io.BytesIO()
                fmt = "JPEG" if (k + c) % 2 else "PNG"
                crop.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
                out.append((split, c, f"{name}_{split}_{k}.{fmt.lower().replace('jpeg', 'jpg')}", buf.getvalue()))
    return out


def class_folders(root: Path, photos) -> Path:
    for split, c, name, data in photos:
        (root / split / CLASSES[c]).mkdir(parents=True, exist_ok=True)
        (root / split / CLASSES[c] / name).write_bytes(data)
    return root


def rows(photos, split):
    return [(name, data, c) for s, c, name, data in photos if s == split]


def write_card(root: Path, names=CLASSES, configs=True) -> None:
    """The card as ``push_to_hub`` writes it (huggingface_hub + datasets' own YAML), else written out in that exact form."""
    try:
        import datasets
        from datasets.utils.metadata import MetadataConfigs
        from huggingface_hub import DatasetCard, DatasetCardData

        card = DatasetCardData()
        if configs:
            MetadataConfigs({"default": {"data_files": [{"split": "train", "path": "data/train-*"}, {"split": "test", "path": "data/test-*"}]}}
                            ).to_dataset_card_data(card)
        info = datasets.DatasetInfo(features=datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)}))
        datasets.info.DatasetInfosDict({"default": info}).to_dataset_card_data(card)
        text = DatasetCard("---\n" + str(card) + "\n---\n").content
    except ImportError:
        lines = ["---"] + (["configs:", "- config_name: default", "  data_files:", "  - split: train", "    path: data/train-*", "  - split: test",
                            "    path: data/test-*"] if configs else [])
        lines += ["dataset_info:", "  features:", "  - name: image", "    dtype: image", "  - name: label", "    dtype:", "      class_label:",
                  "        names:"] + [f"          '{k}': {n}" for k, n in enumerate(names)] + ["---"]
        text = "\n".join(lines) + "\n"
    (root / "README.md").write_text(text + "\nA small copy for fgvc_ref's tests.\n")


def write_parquet(root: Path, photos, *, shards=2, schema_names=CLASSES, extra=False, image_column="image", null_bytes=(), card=True):
    """A dataset-repo snapshot: data/{split}-0000k-of-0000N.parquet (train in ``shards`` shards) and the card."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    meta = {"huggingface": json.dumps({"info": {"features": {image_column: {"_type": "Image"}, "label": {"names": schema_names, "_type": "ClassLabel"}}}})}
    for split in ("train", "test"):
        items = rows(photos, split)
        parts = shards if split == "train" else 1
        for k in range(parts):
            part = items[len(items) * k // parts : len(items) * (k + 1) // parts]
            columns = {image_column: [{"bytes": None if name in null_bytes else data, "path": f"images/{name}" if name in null_bytes else name}
                                      for name, data, _ in part], "label": [c for _, _, c in part]}
            fields = [(image_column, SCHEMA.field("image").type), ("label", pa.int64())]
            if extra:
                columns |= {"caption": [f"a photo of {n}" for n, _, _ in part], "embedding": [[0.5] * 8 for _ in part], "id": list(range(len(part)))}
                fields += [("caption", pa.string()), ("embedding", pa.list_(pa.float32())), ("id", pa.int64())]
            table = pa.table(columns, schema=pa.schema(fields, metadata=meta if schema_names is not None else None))
            pq.write_table(table, root / "data" / f"{split}-{k:05d}-of-{parts:05d}.parquet", row_group_size=2)
    for name in null_bytes:  # the files the null rows point to, relative to the root
        data = next(d for _, _, n, d in photos if n == name)
        (root / "images").mkdir(exist_ok=True)
        (root / "images" / name).write_bytes(data)
    if card:
        write_card(root)
    return root


def write_saved(root: Path, photos) -> Path:
    """``datasets``' save_to_disk folder, written by datasets itself."""
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"image": datasets.Image(decode=False), "label": datasets.ClassLabel(names=CLASSES)})
    dd = datasets.DatasetDict({split: datasets.Dataset.from_dict({"image": [{"bytes": d, "path": n} for n, d, _ in rows(photos, split)],
                                                                 "label": [c for _, _, c in rows(photos, split)]}, features=features)
                               for split in ("train", "test")})
    dd.save_to_disk(str(root), num_shards={"train": 2, "test": 1})
    return root


def prepared(tmp_path, name, root, dataset, *extra) -> Path:
    out = tmp_path / f"cache-{name}"
    assert main(["prepare", "--data", str(root), "--dataset", dataset, "--out", str(out), "--any-size", "--workers", "1",
                 "--train-size", "40", "--test-size", "32", *extra]) == 0
    return out


def same_cache(a: Path, b: Path) -> None:
    for split in ("train", "test"):
        x, y = load_cache(a, split), load_cache(b, split)
        assert torch.equal(x.images, y.images) and torch.equal(x.labels, y.labels) and torch.equal(x.sizes, y.sizes)
        assert x.classes == y.classes == CLASSES


# --- both forms, into the class-folder cache ---------------------------------------------------


def test_a_snapshot_and_a_save_to_disk_folder_prepare_into_the_class_folder_cache_pixel_for_pixel(photos, tmp_path, capsys):
    folders = prepared(tmp_path, "folders", class_folders(tmp_path / "folders", photos), "folder")
    snapshot = prepared(tmp_path, "snapshot", write_parquet(tmp_path / "snap", photos, shards=2), "hub")
    err = capsys.readouterr().err
    assert "Hugging Face layout hf_repo: all its files are present" in err and "not the blog's box-crop protocol" in err
    same_cache(folders, snapshot)
    saved = prepared(tmp_path, "saved", write_saved(tmp_path / "saved", photos), "hub")
    same_cache(folders, saved)
    manifest = json.loads((snapshot / "train.manifest.json").read_text())
    assert len(manifest["archives"]) == 2 and all(s["bbox"] is None for s in manifest["sources"]) and manifest["images"] == "whole images"


def test_the_synthetic_forms_are_what_datasets_itself_reads(tmp_path):
    """fgvc_ref's own writer (make-synthetic --layout hf_*) against datasets' readers: the same rows, features and splits."""
    datasets = pytest.importorskip("datasets")
    from fgvc_ref.data.synthetic import make_fake_stanford_cars

    fake = make_fake_stanford_cars(tmp_path / "repo", "hf_repo", classes=3, per_class=2)
    ours = load_stanford_cars(fake.root, "train", expected=None)
    theirs = datasets.load_dataset("parquet", data_files={"train": str(fake.root / "data" / "train-*.parquet")}, split="train")
    assert theirs["label"] == [r.label for r in ours.records] and len(theirs) == 6
    saved = make_fake_stanford_cars(tmp_path / "saved", "hf_save_to_disk", classes=3, per_class=2)
    loaded = datasets.load_from_disk(str(saved.root))
    assert loaded["test"].features["label"].names == fake.classes == load_stanford_cars(saved.root, "test", expected=None).classes


def test_a_null_bytes_row_is_read_from_its_path_under_the_root(photos, tmp_path):
    name = rows(photos, "train")[1][0]
    folders = prepared(tmp_path, "folders", class_folders(tmp_path / "folders", photos), "folder")
    snapshot = prepared(tmp_path, "null", write_parquet(tmp_path / "snap", photos, null_bytes=(name,)), "hub")
    same_cache(folders, snapshot)


def test_extra_columns_are_ignored_and_a_renamed_image_column_is_found_by_type_or_by_flag(photos, tmp_path, capsys):
    folders = prepared(tmp_path, "folders", class_folders(tmp_path / "folders", photos), "folder")
    same_cache(folders, prepared(tmp_path, "extra", write_parquet(tmp_path / "extra", photos, extra=True), "hub"))
    renamed = write_parquet(tmp_path / "renamed", photos, image_column="picture", card=False)  # typed Image in the schema metadata
    same_cache(folders, prepared(tmp_path, "renamed", renamed, "hub"))
    untyped = write_parquet(tmp_path / "untyped", photos, image_column="picture", schema_names=None, card=False)
    assert main(["prepare", "--data", str(untyped), "--dataset", "hub", "--out", str(tmp_path / "x"), "--any-size"]) == 2
    err = capsys.readouterr().err
    assert "cannot tell which column holds the images" in err and "['picture', 'label']" in err and "--image-column" in err
    assert main(["prepare", "--data", str(untyped), "--dataset", "hub", "--out", str(tmp_path / "y"), "--any-size", "--image-column", "pix"]) == 2
    assert "no column 'pix' (images); the columns are ['picture', 'label']" in capsys.readouterr().err
    got = load_dataset("hub", untyped, "train", image_column="picture")
    assert got.classes == ["0", "1", "2", "3"] and any("named by their index" in n for n in got.notes)


# --- class names ---------------------------------------------------------------------------------


def test_class_names_come_from_each_source_and_must_agree(photos, tmp_path):
    card_only = write_parquet(tmp_path / "card", photos, schema_names=None)
    schema_only = write_parquet(tmp_path / "schema", photos, card=False)
    assert load_dataset("hub", card_only, "train").classes == CLASSES == load_dataset("hub", schema_only, "train").classes
    saved = write_saved(tmp_path / "saved", photos)
    assert load_dataset("hub", saved, "test").classes == CLASSES  # dataset_info.json (and the Arrow schema's metadata)
    other = list(CLASSES)
    other[2] = "espresso"
    disagree = write_parquet(tmp_path / "disagree", photos, schema_names=other)
    with pytest.raises(DatasetError, match=r"class names of column 'label' disagree: 4 classes in .*README\.md, 4 in .*parquet \(schema "
                                           r"metadata\); only in .*README\.md: 'coffee'; only in .*parquet \(schema metadata\): 'espresso'"):
        load_dataset("hub", disagree, "train")
    info = saved / "test" / "dataset_info.json"
    info.write_text(info.read_text().replace('"coffee"', '"espresso"'))
    with pytest.raises(DatasetError, match="disagree"):
        load_dataset("hub", saved, "test")


TWELVE = ["wren", "avocet", "kestrel", "gannet", "osprey", "bittern", "curlew", "merlin", "dunlin", "heron", "teal", "lapwing"]
SHUFFLED_KEYS = [7, 10, 0, 3, 11, 1, 9, 2, 5, 8, 4, 6]  # the order a hand-edited card lists them in


def label_snapshot(root: Path, labels: dict, *, card_keys=None, quoted=True, schema_names=None) -> Path:
    """A snapshot whose rows hold a placeholder image and the given labels (ints or strings) per split; with
    ``card_keys``, a card naming TWELVE as ``class_label: names: {key: name}`` in that key order (``quoted``: the keys
    are YAML strings, as ``datasets`` writes them); with ``schema_names``, the shards' schema metadata names them so."""
    (root / "data").mkdir(parents=True)
    kind = pa.string() if isinstance(labels["train"][0], str) else pa.int64()
    meta = ({"huggingface": json.dumps({"info": {"features": {"image": {"_type": "Image"}, "label": {"names": schema_names, "_type": "ClassLabel"}}}})}
            if schema_names is not None else None)
    for split, values in labels.items():
        table = pa.table({"image": [{"bytes": b"x", "path": f"{split}{k}.png"} for k in range(len(values))], "label": values},
                         schema=pa.schema([("image", SCHEMA.field("image").type), ("label", kind)], metadata=meta))
        pq.write_table(table, root / "data" / f"{split}-00000-of-00001.parquet")
    if card_keys is not None:
        names = [f"          {repr(str(k)) if quoted else k}: {TWELVE[int(k)] if str(k).isdigit() else 'x'}" for k in card_keys]
        (root / "README.md").write_text("\n".join(["---", "dataset_info:", "  features:", "  - name: image", "    dtype: image", "  - name: label",
                                                   "    dtype:", "      class_label:", "        names:", *names, "---", ""]))
    return root


def test_class_names_keyed_by_index_strings_are_in_integer_order_wherever_they_are_read(tmp_path):
    """12 classes named by a mapping index -> name whose keys are strings ("10" sorts before "2" as a string) and are
    listed shuffled: the classes are in index order (9 before 10, 1 before 2 ... 11), from the card, from the shards'
    schema metadata and from both, and every row keeps its label."""
    labels = {"train": [11, 10, 9, 2, 1, 0, 3, 4, 5, 6, 7, 8, 10], "test": list(range(12))}
    by_index = {str(k): TWELVE[k] for k in SHUFFLED_KEYS}
    for name, root in (("card", label_snapshot(tmp_path / "card", labels, card_keys=SHUFFLED_KEYS)),
                       ("card, unquoted keys", label_snapshot(tmp_path / "ints", labels, card_keys=SHUFFLED_KEYS, quoted=False)),
                       ("schema", label_snapshot(tmp_path / "schema", labels, schema_names=by_index)),
                       ("both", label_snapshot(tmp_path / "both", labels, card_keys=SHUFFLED_KEYS, schema_names=TWELVE))):
        for split in ("train", "test"):
            got = load_dataset("hub", root, split)
            assert got.classes == TWELVE, name
            assert [got.classes[r.label] for r in got.records] == [TWELVE[k] for k in labels[split]], name
    odd = label_snapshot(tmp_path / "odd", labels, card_keys=["0", "one", *SHUFFLED_KEYS[2:]])
    with pytest.raises(DatasetError, match=r"README\.md: class names must be keyed by their index .*found the key 'one'"):
        load_dataset("hub", odd, "train")


def test_string_labels_without_class_names_anywhere_are_in_alphabetical_order_whatever_the_row_order(tmp_path):
    """Labels stored as class names, with no names in a card, a schema or dataset_info.json: the classes are the names in
    alphabetical order (written out here), not in the order of first appearance, and both splits get the same order
    although their rows list the names in different orders."""
    alphabetical = ["avocet", "bittern", "curlew", "dunlin", "gannet", "heron", "kestrel", "lapwing", "merlin", "osprey", "teal", "wren"]
    labels = {"train": TWELVE + TWELVE[::-1], "test": TWELVE[::-1][5:] + TWELVE[::-1][:5]}
    root = label_snapshot(tmp_path / "strings", labels)
    for split in ("train", "test"):
        got = load_dataset("hub", root, split)
        assert got.classes == alphabetical
        assert [alphabetical[r.label] for r in got.records] == labels[split]
        assert any("classes in alphabetical order" in n for n in got.notes)


def test_a_stanford_cars_copy_in_another_class_order_is_relabelled_to_the_canonical_one(tmp_path, capsys):
    """An official-name copy in alphabetical order (as many mirrors have it): labels move to cars_meta.mat order, the
    196 classes are checked, and the order found is said."""
    official = official_classes()
    assert len(official) == 196 and official[0] == "AM General Hummer SUV 2000" and official[173] == "Ram C/V Cargo Van Minivan 2012"
    alphabetical = sorted(official)
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (20, 16), (200, 30, 30)).save(buf, "PNG")
    picks = [(3 * k) % 196 for k in range(196)]  # one row per class, labelled in the copy's (alphabetical) order
    root = tmp_path / "cars"
    (root / "data").mkdir(parents=True)
    meta = {"huggingface": json.dumps({"info": {"features": {"image": {"_type": "Image"}, "label": {"names": alphabetical, "_type": "ClassLabel"}}}})}
    for split in ("train", "test"):
        table = pa.table({"image": [{"bytes": buf.getvalue(), "path": None}] * 196, "label": picks}, schema=SCHEMA.with_metadata(meta))
        pq.write_table(table, root / "data" / f"{split}-00000-of-00001.parquet")
    got = load_stanford_cars(root, "train", expected=None)
    assert got.layout == "hf_repo" and got.classes == official
    assert [r.label for r in got.records] == [official.index(alphabetical[a]) for a in picks]
    assert got.classes[got.records[0].label] == alphabetical[picks[0]]
    assert any("class names in alphabetical order (first 'AM General Hummer SUV 2000'), relabelled to the canonical" in n for n in got.notes)
    assert main(["prepare", "--data", str(root), "--out", str(tmp_path / "c")]) == 2
    assert "should have 8144 images, found 196 (hf_repo layout)" in capsys.readouterr().err


# --- bad input ----------------------------------------------------------------------------------


def test_a_missing_split_names_the_splits_found_or_the_pattern_that_matched_nothing(photos, tmp_path):
    root = write_parquet(tmp_path / "snap", photos)
    for f in (root / "data").glob("test-*"):
        f.unlink()
    with pytest.raises(DatasetError, match=r"split 'test' has no files here: data/test-\* matches none \(not downloaded\?\)"):
        load_dataset("hub", root, "test")
    saved = write_saved(tmp_path / "saved", photos)
    (saved / "dataset_dict.json").write_text('{"splits": ["train"]}')
    with pytest.raises(DatasetError, match=r"no 'test' split in this Hugging Face copy \(hf_save_to_disk\); splits found: train \(12 rows\); "
                                           r"--test-split NAME tests on another"):
        load_dataset("hub", saved, "test")


def test_a_corrupt_image_is_named_by_shard_split_and_row(photos, tmp_path, capsys):
    broken = list(photos)
    k = next(i for i, p in enumerate(broken) if p[0] == "train" and p[2] == rows(photos, "train")[4][0])
    broken[k] = (*broken[k][:3], broken[k][3][:40])  # truncated bytes in row 4 of the train split
    root = write_parquet(tmp_path / "snap", broken, shards=2)
    assert main(["prepare", "--data", str(root), "--dataset", "hub", "--out", str(tmp_path / "c"), "--any-size", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "1 of 12 train image(s) cannot be used; nothing was written" in err
    assert f"{root / 'data' / 'train-00000-of-00002.parquet'} (train split, row 4; row 4 of this shard): not a readable image" in err
    assert "BytesIO" not in err and not (tmp_path / "c").exists()


def test_a_row_with_neither_bytes_nor_a_readable_path_is_named_by_its_own_split_and_row(photos, tmp_path, capsys):
    """Null bytes and no file at the path, in the second shard: the error names that row, not its shard's first."""
    items = rows(photos, "train")
    victim = items[-2][0]  # in train-00001-of-00002: the split's row 10, the shard's row 4
    root = write_parquet(tmp_path / "snap", photos, shards=2, null_bytes=(victim,))
    (root / "images" / victim).unlink()
    assert main(["prepare", "--data", str(root), "--dataset", "hub", "--out", str(tmp_path / "c"), "--any-size", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "1 of 12 train image(s) cannot be used" in err
    assert (f"{root / 'data' / 'train-00001-of-00002.parquet'} (train split, row 10; row 4 of this shard): its bytes are null and its path "
            f"'images/{victim}' cannot be read") in err


def test_truncated_shards_are_named(photos, tmp_path):
    root = write_parquet(tmp_path / "snap", photos)
    shard = root / "data" / "train-00001-of-00002.parquet"
    shard.write_bytes(shard.read_bytes()[:200])
    with pytest.raises(DatasetError, match=rf"{shard}: not a readable Parquet file .*download it again"):
        load_dataset("hub", root, "train")
    saved = write_saved(tmp_path / "saved", photos)
    arrow = sorted((saved / "train").glob("*.arrow"))[0]
    arrow.write_bytes(arrow.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=rf"{arrow}: not readable at row \d+ .*download it again"):
        load_dataset("hub", saved, "train")


def test_mac_junk_beside_the_shards_and_splits_found_from_file_names(photos, tmp_path):
    """Without a card and without push_to_hub's names, splits come from the keywords in file names (synonyms included)."""
    root = write_parquet(tmp_path / "snap", photos, card=False)
    for k in range(2):
        shutil.move(root / "data" / f"train-{k:05d}-of-00002.parquet", root / "data" / f"training-part{k}.parquet")
    (root / "data" / "._training-part0.parquet").write_bytes(b"\x00\x05\x16\x07")  # AppleDouble: not a Parquet file
    (root / "data" / "test-00000-of-00001.parquet").rename(root / "data" / "testing.parquet")
    splits = hub.copy_splits(root, "hf_repo").splits
    assert [p.name for p in splits["train"].shards] == ["training-part0.parquet", "training-part1.parquet"]
    assert [p.name for p in splits["test"].shards] == ["testing.parquet"] and set(splits) == {"train", "test"}


# --- boxes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, box, expected", [("xyxy", [2.0, 3.0, 30.0, 20.0], (3, 4, 30, 20)), ("xywh", [2, 3, 28, 17], (3, 4, 30, 20)),
                                                ("voc", [3, 4, 30, 20], (3, 4, 30, 20)), ("xyxy", [1.5, 2.49, 29.5, 20.5], (3, 3, 30, 21))])
def test_a_named_box_column_is_converted_by_its_convention_and_an_unnamed_one_is_reported(photos, tmp_path, fmt, box, expected):
    root = write_parquet(tmp_path / "snap", photos)
    for shard in (root / "data").glob("*.parquet"):
        table = pq.read_table(shard)
        pq.write_table(table.append_column("bbox", pa.array([box] * len(table), pa.list_(pa.float64()))).replace_schema_metadata(table.schema.metadata), shard)
    plain = load_dataset("hub", root, "train")
    assert all(r.bbox is None for r in plain.records)
    assert any("column 'bbox' looks like a bounding box and is not used" in n for n in plain.notes)
    boxed = load_dataset("hub", root, "train", box_column="bbox", box_format=fmt)
    assert {r.bbox for r in boxed.records} == {expected}
    with pytest.raises(DatasetError, match="needs its format"):
        load_dataset("hub", root, "train", box_column="bbox")


# --- streaming -----------------------------------------------------------------------------------


def test_images_are_streamed_a_batch_at_a_time(photos, tmp_path, monkeypatch):
    """The first image's bytes arrive after one record batch of the shard has been read, not the whole shard."""
    root = write_parquet(tmp_path / "snap", photos, shards=1)
    split = load_dataset("hub", root, "train")
    monkeypatch.setattr(hub, "BATCH", 2)
    read = []
    real_open = hub._open

    def counting_open(path):
        schema, batches = real_open(path)
        return schema, lambda columns: (read.append(len(b)) or b for b in batches(columns))
    monkeypatch.setattr(hub, "_open", counting_open)
    stream = hub.iter_image_bytes(split.records, [r.path for r in split.records])
    first = next(stream)
    assert first == rows(photos, "train")[0][1] and read == [2]
    assert len(list(stream)) == len(split.records) - 1 and sum(read) == len(split.records)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["hf_repo", "hf_save_to_disk"])
def test_reproduce_sh_takes_a_hugging_face_copy_and_says_it_is_not_the_box_crop_protocol(layout, tmp_path):
    """`./reproduce.sh --data ROOT` on either form (one tiny stage): the cache is prepared from the shards, and the run's
    recipe.json and the report's title say the images are whole, not the blog's box crops."""
    import os
    import subprocess
    import sys

    from fgvc_ref.data.synthetic import make_fake_stanford_cars

    fake = make_fake_stanford_cars(tmp_path / "raw", layout, classes=3, per_class=2)
    root = Path(__file__).resolve().parents[1]
    args = ["--data", str(fake.root), "--any-size", "--out", str(tmp_path / "out"), "--seeds", "1", "--epochs", "1", "--stages", "base",
            "--set", "model=tiny_cnn", "--set", "weights=none", "--set", "image_size=16"]
    done = subprocess.run(["bash", "reproduce.sh", *args], cwd=root, capture_output=True, text=True, env={**os.environ, "PYTHON": sys.executable},
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Stanford Cars layout {layout}: all its files are present" in done.stderr
    recipe = json.loads((tmp_path / "out" / "runs" / "base" / "seed0" / "recipe.json").read_text())
    assert recipe["protocol"] == "whole images, not the blog's box-crop protocol" and recipe["num_classes"] == 3
    assert "## Stanford Cars (224 px, ResNet-50): whole images, not the blog's box-crop protocol" in (tmp_path / "out" / "RESULTS.md").read_text()


def test_a_mirror_storing_class_names_as_label_strings_is_read_with_those_names(photos, tmp_path):
    """Some mirrors keep the label as the class name (a string column): the classes are those names, alphabetical,
    unless the card names them; a string that is not a class name is refused."""
    root = tmp_path / "strings"
    (root / "data").mkdir(parents=True)
    schema = pa.schema([("image", SCHEMA.field("image").type), ("label", pa.string())])
    for split in ("train", "test"):
        items = rows(photos, split)
        pq.write_table(pa.table({"image": [{"bytes": d, "path": n} for n, d, _ in items], "label": [CLASSES[c] for _, _, c in items]},
                                schema=schema), root / "data" / f"{split}-00000-of-00001.parquet")
    got = load_dataset("hub", root, "train")
    assert got.classes == CLASSES and [r.label for r in got.records] == [c for _, _, c in rows(photos, "train")]
    bad = pa.table({"image": [{"bytes": rows(photos, "test")[0][1], "path": "x"}], "label": ["zebra"]}, schema=schema)
    pq.write_table(bad, root / "data" / "test-00000-of-00001.parquet")
    write_card(root, names=CLASSES, configs=True)
    with pytest.raises(DatasetError, match=r"labels that are not class names: \['zebra'\]"):
        load_dataset("hub", root, "test")


# --- files as people have them: links, names -------------------------------------------------------------


def test_a_hub_cache_snapshot_whose_shards_are_links_to_blobs_reads_like_the_files(photos, tmp_path):
    """``huggingface-cli download`` without --local-dir keeps ``snapshots/<rev>/data/*.parquet`` as links to ``blobs/<hash>``,
    outside the snapshot; a snapshot without a card is found by walking it (``**/*.parquet``) through a linked folder too."""
    import os

    plain = write_parquet(tmp_path / "plain", photos)
    cache = tmp_path / "hub" / "datasets--someone--cars"
    snapshot = cache / "snapshots" / "0123abc"
    (snapshot / "data").mkdir(parents=True)
    (cache / "blobs").mkdir()
    for k, shard in enumerate(sorted((plain / "data").iterdir())):
        shutil.copy(shard, cache / "blobs" / f"blob{k}")
        os.symlink(f"../../../blobs/blob{k}", snapshot / "data" / shard.name)
    os.symlink(plain / "README.md", snapshot / "README.md")
    for split in ("train", "test"):
        a, b = load_dataset("hub", plain, split), load_dataset("hub", snapshot, split)
        assert [r.label for r in a.records] == [r.label for r in b.records] and a.classes == b.classes
    bare = tmp_path / "bare"
    bare.mkdir()
    os.symlink(snapshot / "data", bare / "shards")  # no card: shards found by name, through the link
    assert len(load_dataset("hub", bare, "train").records) == len(load_dataset("hub", plain, "train").records)
    os.symlink("../../../blobs/gone", snapshot / "data" / "test-00001-of-00002.parquet")  # an interrupted download
    with pytest.raises(DatasetError, match=r"test-00001-of-00002\.parquet -> \.\./\.\./\.\./blobs/gone is broken"):
        load_dataset("hub", snapshot, "test")


def test_class_names_written_in_nfd_by_one_source_agree_with_nfc_in_another_and_are_kept_in_nfc(photos, tmp_path):
    import unicodedata

    nfc, nfd = ([unicodedata.normalize(form, n) for n in ["astronaut", "Katzë", "café", "rocket"]] for form in ("NFC", "NFD"))
    root = write_parquet(tmp_path / "snap", photos, schema_names=nfc, card=False)
    write_card(root, names=nfd)  # the card is read first
    assert load_dataset("hub", root, "train").classes == nfc
    write_card(root, names=[*nfc[:2], "cafe", nfc[3]])
    with pytest.raises(DatasetError, match=r"only in .*README\.md: 'cafe'; only in .*\(schema metadata\): 'caf\\xe9'"):
        load_dataset("hub", root, "train")
