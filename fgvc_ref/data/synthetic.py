"""A small synthetic fine-grained "cars" dataset, written as real files in every Stanford Cars layout.

Each image is a drawn car (body, cabin, wheels) of a random colour at a random place and size on
a noisy background. The class shows only in details: the cabin shape (label mod 3), hubcaps
((label // 3) mod 2), a side stripe ((label // 6) mod 2), and the full label as an 8-bit pattern of
small marks on the door (light = 1, dark = 0). Colour, position and size carry no class
information, so a model must find and read the details. The car's box is written 1-based and
inclusive, as in Stanford Cars.

The files follow the real ones: ``.mat`` files go through ``scipy.io.savemat`` with the real
variable and field names (``class_names``; ``annotations`` with ``bbox_x1 .. bbox_y2``, ``class``,
``fname`` or ``relative_im_path`` and ``test``), CSVs are headerless, class 2 is named
"Ram C/V Cargo Van Minivan 2012" (its folder "Ram C-V ..."), and the canonical class order is not
alphabetical. The Hugging Face forms (``pyarrow``) are what ``push_to_hub`` and ``save_to_disk``
write: a card whose YAML header has ``configs`` and ``dataset_info`` beside Parquet shards
``data/{split}-0000k-of-0000N.parquet`` whose schema metadata ``huggingface`` repeats the features;
or ``dataset_dict.json`` and per-split Arrow IPC streams with ``dataset_info.json`` and
``state.json``; rows hold ``image`` ``{bytes, path}`` and ``label``, and no box (as most copies);
train has two shards. The same ``seed`` gives the same images, labels and boxes in every layout.

``hazards=True`` mixes in what real copies contain: greyscale, CMYK, RGBA and palette images (the
last two are PNG data under a ``.jpg`` name), boxes touching the border, and three unreadable files:
a zero-byte file, a truncated JPEG and a text file named ``.jpg``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from fgvc_ref.data.stanford_cars import LAYOUTS, folder_name

RAM = "Ram C/V Cargo Van Minivan 2012"


class FakeDataset(NamedTuple):
    root: Path
    layout: str
    classes: list[str]
    bad_files: list[str]  # paths that preparation must report (hazards only)


class _Image(NamedTuple):
    split: str
    index: int  # within the split
    label: int
    box: tuple[int, int, int, int]  # 1-based inclusive
    data: bytes  # encoded file content
    bad: bool


def class_names(classes: int) -> list[str]:
    """Synthetic names in a canonical order that is not alphabetical, with the Ram C/V case."""
    names = [f"{'ZYXWVUTSRQPONMLKJIHGFEDCBA'[c % 26]}-Synth Model {c} Coupe {2000 + c % 13}" for c in range(classes)]
    if classes > 2:
        names[2] = RAM
    return names


def draw_car(label: int, rng: np.random.Generator, size: tuple[int, int]) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """One RGB image of a car of class ``label`` and its 1-based inclusive box."""
    w, h = size
    bg = rng.integers(40, 200, 3)
    noise = rng.normal(0, 18, (h, w, 3))
    img = Image.fromarray((bg + noise).clip(0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    cw = int(w * rng.uniform(0.45, 0.8))
    ch = int(cw * rng.uniform(0.45, 0.6))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    body_top = y0 + ch * 2 // 5
    wheel = max(3, ch // 4)
    d.rectangle([x0, body_top, x0 + cw - 1, y0 + ch - 1 - wheel // 2], fill=colour)  # body
    roof = [  # the class's cabin shape: label % 3
        [(x0 + cw // 5, body_top), (x0 + cw // 3, y0), (x0 + 2 * cw // 3, y0), (x0 + 4 * cw // 5, body_top)],
        [(x0 + cw // 5, body_top), (x0 + cw // 5, y0), (x0 + 4 * cw // 5, y0), (x0 + 4 * cw // 5, body_top)],
        [(x0 + cw // 5, body_top), (x0 + cw // 4, y0), (x0 + cw // 2, y0), (x0 + 19 * cw // 20, body_top)],
    ][label % 3]
    d.polygon(roof, fill=colour)
    if (label // 6) % 2:  # the class's side stripe
        d.rectangle([x0, body_top + (ch - body_top + y0) // 3, x0 + cw - 1, body_top + (ch - body_top + y0) // 3 + max(1, ch // 12)],
                    fill=tuple(255 - c for c in colour))
    for cx in (x0 + cw // 5, x0 + 4 * cw // 5):  # wheels, with the class's hubcaps: (label // 3) % 2
        d.ellipse([cx - wheel, y0 + ch - 1 - 2 * wheel, cx + wheel, y0 + ch - 1], fill=(20, 20, 20))
        if (label // 3) % 2:
            r = max(1, wheel // 2)
            d.ellipse([cx - r, y0 + ch - 1 - wheel - r, cx + r, y0 + ch - 1 - wheel + r], fill=(210, 210, 210))
    cell = max(2, cw // 24)  # the full class code: 2 rows x 4 columns of marks on the door
    for bit in range(8):
        on = (label >> bit) & 1
        mx = x0 + cw // 2 - 2 * cell * 2 + (bit % 4) * cell * 2
        my = body_top + cell + (bit // 4) * cell * 2
        d.rectangle([mx, my, mx + cell - 1, my + cell - 1], fill=(235, 235, 235) if on else (15, 15, 15))
    return img, (x0 + 1, y0 + 1, x0 + cw, y0 + ch)


def _encode(img: Image.Image, kind: str) -> bytes:
    buf = io.BytesIO()
    if kind == "L":
        img.convert("L").save(buf, "JPEG", quality=90)
    elif kind == "CMYK":
        img.convert("CMYK").save(buf, "JPEG", quality=90)
    elif kind == "RGBA":
        img.convert("RGBA").save(buf, "PNG")
    elif kind == "P":
        img.convert("P", palette=Image.ADAPTIVE).save(buf, "PNG")
    else:
        img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _images(classes: int, per_class: int, seed: int, hazards: bool, size: tuple[int, int]) -> list[_Image]:
    rng = np.random.default_rng(seed)
    out = []
    for split in ("train", "test"):
        labels = np.repeat(np.arange(classes), per_class)
        rng.shuffle(labels)
        for index, label in enumerate(labels.tolist()):
            img, box = draw_car(label, rng, size)
            kind, bad = "RGB", False
            if hazards and split == "train":
                kind = {0: "L", 1: "CMYK", 2: "RGBA", 3: "P"}.get(index, "RGB")
                if index == 4:  # box touching the border
                    box = (1, 1, img.width, box[3])
            data = _encode(img, kind)
            if hazards and split == "train" and index in (5, 6, 7):
                data, bad = {5: b"", 6: data[: len(data) // 2], 7: b"this is not an image\n"}[index], True
            out.append(_Image(split, index, label, box, data, bad))
    return out


def make_fake_stanford_cars(root: Path | str, layout: str, *, classes: int = 6, per_class: int = 3, seed: int = 0,
                            hazards: bool = False, image_size: tuple[int, int] = (160, 120)) -> FakeDataset:
    """Write the dataset under ``root`` in ``layout`` (one of ``LAYOUTS``); return what was written."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if not (isinstance(classes, int) and 1 <= classes <= 256):
        raise ValueError(f"classes must be an integer in [1, 256] (8-bit class detail), got {classes!r}")
    if not (image_size[0] >= 32 and image_size[1] >= 24):
        raise ValueError(f"image_size must be at least 32 x 24 pixels (a car with its details), got {image_size[0]} x {image_size[1]}")
    if hazards and per_class * classes < 8:
        raise ValueError("hazards=True needs at least 8 training images (classes * per_class >= 8)")
    root = Path(root)
    names = class_names(classes)
    images = _images(classes, per_class, seed, hazards, image_size)
    bad = []
    if layout.startswith("hf_"):
        return FakeDataset(root, layout, names, _hugging_face(root, layout, names, images))
    writer = {"devkit": _devkit, "kaggle_devkit": _devkit, "car_ims": _car_ims, "kaggle_folders": _folders, "folders": _folders}[layout]
    for im, path in writer(root, layout, names, images):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(im.data)
        if im.bad:
            bad.append(str(path))
    return FakeDataset(root, layout, names, sorted(bad))


def _hugging_face(root: Path, layout: str, names: list[str], images: list[_Image]) -> list[str]:
    """Write the Hugging Face form ``layout``; returns the bad rows as ``shard (split, row)`` names."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    features = {"image": {"_type": "Image"}, "label": {"names": names, "_type": "ClassLabel"}}
    schema = pa.schema([("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("label", pa.int64())],
                       metadata={"huggingface": json.dumps({"info": {"features": features}})})
    bad = []
    for split in ("train", "test"):
        rows = [im for im in images if im.split == split]
        parts = 2 if split == "train" and len(rows) > 1 else 1
        cut = [len(rows) * k // parts for k in range(parts + 1)]
        folder = root / ("data" if layout == "hf_repo" else split)
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for k in range(parts):
            part = rows[cut[k] : cut[k + 1]]
            table = pa.table({"image": [{"bytes": im.data, "path": f"{im.index + 1:05d}.jpg"} for im in part],
                              "label": [im.label for im in part]}, schema=schema)
            name = f"{split}-{k:05d}-of-{parts:05d}.parquet" if layout == "hf_repo" else f"data-{k:05d}-of-{parts:05d}.arrow"
            if layout == "hf_repo":
                pq.write_table(table, folder / name)
            else:
                with pa.ipc.new_stream(folder / name, schema) as writer:
                    writer.write_table(table)
            files.append(name)
            bad += [f"{folder / name} ({split} split, row {cut[k] + i}; row {i} of this shard)" for i, im in enumerate(part) if im.bad]
        if layout == "hf_save_to_disk":
            (folder / "dataset_info.json").write_text(json.dumps({"citation": "", "description": "", "features": features}, indent=2))
            (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": f} for f in files], "_fingerprint": "synthetic",
                                                           "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
                                                           "_output_all_columns": False, "_split": None}, indent=2))
    if layout == "hf_save_to_disk":
        (root / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    else:
        card = ["---", "configs:", "- config_name: default", "  data_files:", "  - split: train", "    path: data/train-*",
                "  - split: test", "    path: data/test-*", "dataset_info:", "  features:", "  - name: image", "    dtype: image",
                "  - name: label", "    dtype:", "      class_label:", "        names:"]
        card += [f"          '{k}': {json.dumps(name)}" for k, name in enumerate(names)] + ["---", "", "A synthetic fine-grained set (fgvc_ref).", ""]
        (root / "README.md").write_text("\n".join(card))
    return sorted(bad)


def _struct(rows: list[dict]) -> np.ndarray:
    fields = list(rows[0])
    arr = np.empty((1, len(rows)), dtype=[(f, object) for f in fields])
    for i, row in enumerate(rows):
        arr[0, i] = tuple(row[f] for f in fields)
    return arr


def _mat_box(box) -> dict:
    return {f"bbox_{k}": np.array([[v]], dtype=np.uint16) for k, v in zip(("x1", "y1", "x2", "y2"), box)}


def _savemat(path: Path, **variables) -> None:
    from scipy.io import savemat

    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), variables)


def _cell(names: list[str]) -> np.ndarray:
    cell = np.empty((1, len(names)), dtype=object)
    cell[0, :] = names
    return cell


def _devkit(root: Path, layout: str, names: list[str], images: list[_Image]):
    nested = layout == "kaggle_devkit"
    devkit = root / "car_devkit" / "devkit" if nested else root / "devkit"
    _savemat(devkit / "cars_meta.mat", class_names=_cell(names))
    for split in ("train", "test"):
        folder = root / f"cars_{split}" / f"cars_{split}" if nested else root / f"cars_{split}"
        rows = []
        for im in (im for im in images if im.split == split):
            fname = f"{im.index + 1:05d}.jpg"
            rows.append({**_mat_box(im.box), "class": np.array([[im.label + 1]], dtype=np.uint8), "fname": fname})
            yield im, folder / fname
        if split == "train":
            _savemat(devkit / "cars_train_annos.mat", annotations=_struct(rows))
        else:  # the labelled file at the root (devkit) or in the devkit folder (Kaggle), plus the unlabelled one
            _savemat((devkit if nested else root) / "cars_test_annos_withlabels.mat", annotations=_struct(rows))
            _savemat(devkit / "cars_test_annos.mat", annotations=_struct([{k: v for k, v in r.items() if k != "class"} for r in rows]))


def _car_ims(root: Path, layout: str, names: list[str], images: list[_Image]):
    order = np.random.default_rng(len(images)).permutation(len(images))  # global numbering != split numbering
    rows = []
    for number, k in enumerate(order.tolist(), 1):
        im = images[k]
        rel = f"car_ims/{number:06d}.jpg"
        rows.append({"relative_im_path": rel, **_mat_box(im.box), "class": np.array([[im.label + 1]], dtype=np.uint8),
                     "test": np.array([[int(im.split == "test")]], dtype=np.uint8)})
        yield im, root / rel
    _savemat(root / "cars_annos.mat", annotations=_struct(rows), class_names=_cell(names))


def _folders(root: Path, layout: str, names: list[str], images: list[_Image]):
    kaggle = layout == "kaggle_folders"
    base = root / "car_data" / "car_data" if kaggle else root
    for split in ("train", "test"):
        rows = []
        for im in (im for im in images if im.split == split):
            fname = f"{im.index + 1:05d}.jpg"
            rows.append([fname, *im.box, im.label + 1])
            yield im, base / split / folder_name(names[im.label]) / fname
        if kaggle:
            with open(root / f"anno_{split}.csv", "w", newline="") as f:
                csv.writer(f).writerows(rows)
    if kaggle:
        with open(root / "names.csv", "w", newline="") as f:
            csv.writer(f).writerows([[n] for n in names])
