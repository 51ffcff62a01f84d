"""fgvc_ref.data.records: the checks every loader shares, at their boundaries, and the box conversion."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from fgvc_ref.data.records import DatasetError, LoadedSplit, Record, check_split, edges_box, names_differ, nfc


def split_with(labels: list[int], k: int) -> LoadedSplit:
    return LoadedSplit([Record(f"{i}.jpg", label, None) for i, label in enumerate(labels)], [f"c{c}" for c in range(k)], "test")


@given(st.integers(1, 12), st.data())
def test_labels_in_0_to_k_minus_1_pass_and_k_or_minus_1_is_refused(k, data):
    """Both sides of each edge: every class present with labels 0..K-1 passes; adding K (one past the last) or -1 is
    refused, naming the label."""
    labels = list(range(k)) + data.draw(st.lists(st.integers(0, k - 1), max_size=10))
    assert check_split(split_with(labels, k), "root", "train").records
    for bad in (k, -1, k + data.draw(st.integers(0, 5))):
        with pytest.raises(DatasetError, match=rf"labels outside 0\.\.{k - 1}: \[{bad}\]"):
            check_split(split_with(labels + [bad], k), "root", "train")


@given(st.integers(2, 8), st.integers(0, 7))
def test_an_empty_class_is_refused_by_name(k, missing):
    missing %= k
    labels = [c for c in range(k) if c != missing]
    with pytest.raises(DatasetError, match=rf"1 empty class\(es\).*'c{missing}'"):
        check_split(split_with(labels, k), "root", "train")


def test_counts_are_checked_exactly():
    split = split_with([0, 1, 1], 2)
    assert check_split(split, "root", "train", expected_images=3, expected_classes=2)
    with pytest.raises(DatasetError, match="should have 4 images, found 3"):
        check_split(split, "root", "train", expected_images=4)
    with pytest.raises(DatasetError, match="expected 3 classes, found 2"):
        check_split(split, "root", "train", expected_classes=3)


@given(st.integers(0, 40), st.integers(0, 40), st.integers(1, 40), st.integers(1, 40))
def test_edges_box_of_whole_edges_crops_what_pil_crops(left, top, width, height):
    """A box given by whole pixel edges becomes the project's 1-based inclusive box whose crop is PIL's crop."""
    from fgvc_ref.data.cache import crop_box

    img = Image.effect_noise((90, 90), 40).convert("RGB")
    box = edges_box(left, top, left + width, top + height)
    assert box == (left + 1, top + 1, left + width, top + height)
    assert crop_box(img, box, "x").tobytes() == img.crop((left, top, left + width, top + height)).tobytes()


# --- names ------------------------------------------------------------------------------------------


def test_class_lists_differing_only_in_unicode_normal_form_agree_and_a_real_difference_is_shown_with_escapes():
    import unicodedata

    nfd = [unicodedata.normalize("NFD", n) for n in ("Citroën C4", "Škoda")]
    assert names_differ(nfd, ["Citroën C4", "Škoda"], "train", "test") is None and nfc(nfd[0]) == "Citro\xebn C4"
    said = names_differ(["Citroën C4", "Škoda"], ["Citroen C4", "Škoda\u00a0"], "train", "test")  # an ASCII e, a no-break space
    assert said == ("2 classes in train, 2 in test; only in train: 'Citro\\xebn C4', '\\u0160koda'; only in test: 'Citroen C4', "
                    "'\\u0160koda\\xa0'")
    assert names_differ(["a", "b"], ["b", "a"], "the run", "the data") == (
        "2 classes in the run, 2 in the data; the same names in another order: class 0 is 'a' in the run, 'b' in the data")


def test_located_finds_annotated_files_spelled_in_nfd_on_disk_and_names_missing_ones_and_broken_links(tmp_path):
    import os
    import unicodedata

    from fgvc_ref.data.images import located

    folder = tmp_path / unicodedata.normalize("NFD", "Grünfink")
    folder.mkdir()
    (folder / "1.jpg").write_bytes(b"x")
    os.symlink("moved.jpg", folder / "2.jpg")
    records = [Record(str(tmp_path / "Grünfink" / "1.jpg"), 0, None)]
    assert [r.path for r in located(records, tmp_path, "cub")] == [str(folder / "1.jpg")]
    with pytest.raises(DatasetError, match=r"2 image file\(s\) named by the cub annotations are missing, e\.g\. \[.*2\.jpg \(a broken link to moved\.jpg\)', "
                                           r"'.*3\.jpg'\]"):
        located(records + [Record(str(tmp_path / "Grünfink" / n), 0, None) for n in ("2.jpg", "3.jpg")], tmp_path, "cub")
