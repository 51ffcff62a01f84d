"""docs/reliability.md rows 9, 10, 11, and fuzzing of every user-facing parser: only clear, typed errors."""

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fgvc_ref.cli import main
from fgvc_ref.data.cache import load_cache
from fgvc_ref.data.folder import load_folder
from fgvc_ref.data.records import DatasetError
from fgvc_ref.data.stanford_cars import load_stanford_cars
from fgvc_ref.data.synthetic import make_fake_stanford_cars
from fgvc_ref.recipe import STAGES, apply_overrides

FUZZ = settings(deadline=2000, max_examples=60, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def devkit(tmp_path_factory):
    return make_fake_stanford_cars(tmp_path_factory.mktemp("dk") / "d", "devkit", classes=4, per_class=2, hazards=False)


def prepare_cli(root, out, capsys, *extra):
    code = main(["prepare", "--data", str(root), "--out", str(out), "--any-size", "--workers", "1", *extra])
    return code, capsys.readouterr().err


def test_reliability_9_missing_split_wrong_count_empty_class_and_wrong_devkit_fail_preflight(devkit, tmp_path, capsys):
    from scipy.io import loadmat, savemat

    cases = {}
    root = tmp_path / "missing"
    shutil.copytree(devkit.root, root)
    shutil.rmtree(root / "cars_test")
    cases["missing split"] = (root, r"no complete Stanford Cars layout: devkit .*lacks \['cars_test/\*\.jpg'\]")
    root = tmp_path / "missing_image"
    shutil.copytree(devkit.root, root)
    next((root / "cars_test").iterdir()).unlink()
    cases["missing image"] = (root, r"image file\(s\) named by the devkit annotations are missing")
    root = tmp_path / "wrongdevkit"
    shutil.copytree(devkit.root, root)
    meta = loadmat(str(root / "devkit" / "cars_meta.mat"))
    savemat(str(root / "devkit" / "cars_meta.mat"), {"class_names": meta["class_names"][:, :2]})  # 2 names, labels up to 4
    cases["wrong devkit"] = (root, r"labels outside 0\.\.1")
    for label, (root, message) in cases.items():
        code, err = prepare_cli(root, tmp_path / f"out-{label}", capsys)
        assert code == 2 and str(root) in err, label
        assert __import__("re").search(message, err), (label, err)
        assert not (tmp_path / f"out-{label}").exists(), "nothing is written before the checks pass"
    code = main(["prepare", "--data", str(devkit.root), "--out", str(tmp_path / "full"), "--workers", "1"])
    assert code == 2 and "expected 196 classes, found 4" in capsys.readouterr().err
    folders = make_fake_stanford_cars(tmp_path / "f", "folders", classes=3, per_class=2)
    victim = sorted((folders.root / "train").iterdir())[0]
    shutil.rmtree(victim)
    victim.mkdir()
    code, err = prepare_cli(folders.root, tmp_path / "out-empty", capsys)
    assert code == 2 and "empty class" in err and "expected >= 1 image" in err


def test_reliability_10_bad_images_fail_preparation_with_every_bad_file_listed(tmp_path, capsys):
    fake = make_fake_stanford_cars(tmp_path / "hz", "devkit", classes=4, per_class=3, hazards=True)
    code, err = prepare_cli(fake.root, tmp_path / "out", capsys)
    assert code == 2 and all(bad in err for bad in fake.bad_files) and f"{len(fake.bad_files)} of 12" in err
    assert not list((tmp_path / "out").glob("*.pt")) and not list((tmp_path / "out").glob("*.json"))


def test_reliability_11_config_errors_name_the_key_before_any_side_effect(cache, tmp_path, capsys):
    for bad, message in (["--set", "nonsense=1"], "unknown recipe field 'nonsense'"), (["--set", "batch_size=-4"], "Recipe.batch_size"), \
                        (["--set", "lr=0.1.2"], "Recipe.lr must be float"), (["--set", "schedule=poly"], "Recipe.schedule"), \
                        (["--set", "ema=maybe"], "Recipe.ema must be bool"):
        out = tmp_path / "run"
        assert main(["train", "--stage", "ema", "--cache", str(cache), "--out", str(out), *bad]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()


# --- fuzzing ----------------------------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@FUZZ
@given(st.lists(text, max_size=4))
def test_fuzz_recipe_overrides_raise_only_value_errors(items):
    try:
        apply_overrides(STAGES["ema"], items)
    except ValueError:
        pass


@FUZZ
@given(names=st.binary(max_size=200), annos=st.binary(max_size=400))
def test_fuzz_kaggle_csv_readers_raise_only_dataset_errors(names, annos):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "car_data" / "car_data" / "train").mkdir(parents=True)
        (root / "names.csv").write_bytes(names)
        (root / "anno_train.csv").write_bytes(annos)
        try:
            load_stanford_cars(root, "train", expected=None)
        except DatasetError:
            pass


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_box_csv_reader_raises_only_dataset_errors(data):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "train" / "a").mkdir(parents=True)
        (root / "train" / "a" / "x.jpg").write_bytes(b"")
        (root / "boxes.csv").write_bytes(data)
        try:
            load_folder(root, "train", bbox_csv=root / "boxes.csv")
        except DatasetError:
            pass


@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_mat_reader_raises_only_dataset_errors(data):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "devkit").mkdir()
        (root / "cars_train").mkdir()
        (root / "devkit" / "cars_meta.mat").write_bytes(data)
        try:
            load_stanford_cars(root, "train", expected=None)
        except DatasetError:
            pass


@FUZZ
@given(st.one_of(st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                              lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4)).map(json.dumps)))
def test_fuzz_cache_manifest_raises_only_dataset_errors(manifest):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "train.manifest.json").write_text(manifest, encoding="latin-1")
        (Path(tmp) / "train.pt").write_bytes(b"not a tensor file")
        try:
            load_cache(tmp, "train")
        except DatasetError:
            pass
