"""Small copies of CUB-200-2011, FGVC-Aircraft, Stanford Dogs and Flowers-102, written in each set's exact file
formats (text files, .mat through scipy with the real variable names, VOC XML) with real photos (scikit-image's).

Each writer returns what it wrote, so that tests compare the loaders against the truth, not against themselves.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image

from photos import real_photos

BANNER_COLOUR = (255, 0, 255)  # the fake copyright banner of the Aircraft images: a colour no photo here has in 20 full rows


@functools.lru_cache(maxsize=1)
def _photos() -> tuple[Image.Image, ...]:
    return tuple(p.convert("RGB") for p in real_photos(96))


def photo(k: int, size: tuple[int, int]) -> Image.Image:
    """The k-th test photo, RGB, at ``size``; ``k`` also shifts the crop so that images differ."""
    photos = _photos()
    img = photos[k % len(photos)].convert("RGB")
    shift = (k // len(photos)) % 8
    return img.crop((shift, shift, img.width - 8 + shift, img.height - 8 + shift)).resize(size, Image.BILINEAR)


def write_cub(root: Path, *, classes: int = 3, per_class: int = 4, nested: bool = False) -> dict:
    """``CUB_200_2011/`` (inside ``CUB_200_2011/`` again when ``nested``, as Kaggle's copy). Half of each class is train.
    Boxes are written as CUB writes them, ``x y width height`` floats; image 2's has fractional values."""
    base = root / "CUB_200_2011" / ("CUB_200_2011" if nested else "")
    names = [f"{c + 1:03d}.Bird_{chr(65 + c)}" for c in range(classes)]
    rows = {"images": [], "labels": [], "split": [], "boxes": []}
    truth = []
    image_id = 0
    for c, name in enumerate(names):
        (base / "images" / name).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            image_id += 1
            size = (60 + 3 * k, 44 + 2 * c)
            rel = f"{name}/{name.split('.')[1]}_{image_id:04d}.jpg"
            photo(image_id, size).save(base / "images" / rel, quality=95)
            x, y, w, h = (4.0, 3.0, 40.0, 30.0) if image_id != 2 else (4.4, 2.5, 39.6, 30.49)
            train = k % 2 == 0
            rows["images"].append(f"{image_id} {rel}")
            rows["labels"].append(f"{image_id} {c + 1}")
            rows["split"].append(f"{image_id} {int(train)}")
            rows["boxes"].append(f"{image_id} {x} {y} {w} {h}")
            truth.append({"id": image_id, "path": str(base / "images" / rel), "label": c, "train": train, "xywh": (x, y, w, h)})
    (base / "images.txt").write_text("\n".join(rows["images"]) + "\n")
    (base / "image_class_labels.txt").write_text("\n".join(rows["labels"]) + "\n")
    (base / "train_test_split.txt").write_text("\n".join(rows["split"]) + "\n")
    (base / "bounding_boxes.txt").write_text("\n".join(rows["boxes"]) + "\n")
    (base / "classes.txt").write_text("".join(f"{c + 1} {n}\n" for c, n in enumerate(names)))
    return {"root": root, "base": base, "classes": names, "images": truth}


def write_aircraft(root: Path, *, variants: int = 4, per_variant: int = 3) -> dict:
    """``fgvc-aircraft-2013b/data/`` with the three levels (variant names with spaces and slashes, as the real ones),
    ``trainval``/``test`` (and ``train``/``val``) files, ``images_box.txt`` (1-based) and images whose bottom 20 rows
    are a banner; the boxes of the first variant's second and third images (one train, one test) reach into the banner."""
    data = root / "fgvc-aircraft-2013b" / "data"
    (data / "images").mkdir(parents=True)
    variant_names = [f"7{c}7-{c}00" if c % 2 else f"F/A-{c}8 Super" for c in range(variants)]
    family = {v: f"Family {c // 2}" for c, v in enumerate(variant_names)}
    maker = {v: f"Maker {c // 3}" for c, v in enumerate(variant_names)}
    images, boxes = [], []
    for c, v in enumerate(variant_names):
        for k in range(per_variant):
            image = f"{1000000 + 17 * len(images) + 3:07d}"
            w, h = 64 + 2 * k, 60 + c
            img = photo(len(images) + 5, (w, h))
            img.paste(BANNER_COLOUR, (0, h - 20, w, h))
            img.save(data / "images" / f"{image}.jpg", quality=95)
            box = (3, 2, w - 5, h - 10) if c == 0 and k > 0 else (3, 2, w - 5, h - 25)  # the first variant's reach into the banner
            boxes.append(f"{image} {' '.join(map(str, box))}")
            images.append({"image": image, "variant": v, "split": "test" if k == per_variant - 1 else "trainval", "size": (w, h), "box": box})
    for level, names_file, of in (("variant", "variants.txt", lambda v: v), ("family", "families.txt", family.get),
                                  ("manufacturer", "manufacturers.txt", maker.get)):
        names = list(dict.fromkeys(of(v) for v in variant_names))
        (data / names_file).write_text("".join(f"{n}\n" for n in names))
        for split in ("trainval", "test", "train", "val"):
            chosen = [i for i in images if i["split"] == split or (split in ("train", "val") and i["split"] == "trainval")]
            if split == "val":
                chosen = chosen[1::2]
            elif split == "train":
                chosen = chosen[::2]
            (data / f"images_{level}_{split}.txt").write_text("".join(f"{i['image']} {of(i['variant'])}\n" for i in reversed(chosen)))
    (data / "images_box.txt").write_text("\n".join(boxes) + "\n")
    return {"root": root, "data": data, "variants": variant_names, "images": images}


def _cell(strings: list[str]) -> np.ndarray:
    cell = np.empty((len(strings), 1), dtype=object)
    for i, s in enumerate(strings):
        cell[i, 0] = np.array([s])
    return cell


def _voc(boxes: list[tuple[int, int, int, int]], breed: str, size: tuple[int, int]) -> str:
    objects = "".join(f"<object><name>{breed}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
                      f"<bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>" for a, b, c, d in boxes)
    return (f"<annotation><folder>02085620</folder><filename>%s</filename><source><database>ImageNet database</database></source>"
            f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size><segment>0</segment>{objects}</annotation>")


def write_dogs(root: Path, *, breeds: int = 3, per_breed: int = 4, kaggle: bool = False) -> dict:
    """``Images/``, ``Annotation/`` (VOC XML without extension) and ``lists/{train,test}_list.mat`` (cell arrays
    ``file_list``, ``annotation_list``, double ``labels``), or Kaggle's nesting (``images/Images``, ``annotations/Annotation``,
    the lists at the root). The second image of the first breed shows two dogs (two boxes)."""
    from scipy.io import savemat

    images_dir = root / ("images/Images" if kaggle else "Images")
    notes_dir = root / ("annotations/Annotation" if kaggle else "Annotation")
    lists_dir = root if kaggle else root / "lists"
    lists_dir.mkdir(parents=True, exist_ok=True)
    folders = [f"n0208{5620 + 11 * b}-Breed_{chr(65 + b)}" for b in range(breeds)]
    split_rows = {"train": [], "test": []}
    truth = []
    for b, folder in enumerate(folders):
        (images_dir / folder).mkdir(parents=True)
        (notes_dir / folder).mkdir(parents=True)
        for k in range(per_breed):
            stem = f"{folder.split('-')[0]}_{100 + 7 * k}"
            size = (70 + k, 52 + b)
            photo(3 * b + k + 11, size).save(images_dir / folder / f"{stem}.jpg", quality=95)
            dogs = [(5, 4, 40, 30), (30, 20, 66, 50)] if (b, k) == (0, 1) else [(2 + k, 3, 50 + k, 40)]
            (notes_dir / folder / stem).write_text(_voc(dogs, folder.split("-", 1)[1], size) % stem)
            split = "train" if k < per_breed // 2 else "test"
            split_rows[split].append((f"{folder}/{stem}.jpg", f"{folder}/{stem}", b + 1))
            truth.append({"path": str(images_dir / folder / f"{stem}.jpg"), "label": b, "split": split, "boxes": dogs})
    for split, rows in split_rows.items():
        savemat(str(lists_dir / f"{split}_list.mat"), {"file_list": _cell([r[0] for r in rows]), "annotation_list": _cell([r[1] for r in rows]),
                                                      "labels": np.array([[float(r[2])] for r in rows])})
    return {"root": root, "breeds": [f.split("-", 1)[1] for f in folders], "images": truth}


def write_flowers102(root: Path, *, per_set: tuple[int, int, int] = (1, 1, 1), torchvision_layout: bool = True) -> dict:
    """``flowers-102/jpg/image_%05d.jpg``, ``imagelabels.mat`` (``labels``, 1 x N integers) and ``setid.mat`` (``trnid``,
    ``valid``, ``tstid``, 1 x n integers), for all 102 classes: the files carry no names, so every class must appear."""
    from scipy.io import savemat

    base = root / "flowers-102" if torchvision_layout else root
    (base / "jpg").mkdir(parents=True)
    labels, sets = [], {"trnid": [], "valid": [], "tstid": []}
    g = np.random.default_rng(0)
    for c in range(102):
        for name, count in zip(sets, per_set):
            for _ in range(count):
                labels.append(c + 1)
                sets[name].append(len(labels))
    order = g.permutation(len(labels)) + 1  # ids are not in class order, as in the real files
    relabel = {old: int(new) for old, new in zip(range(1, len(labels) + 1), order)}
    new_labels = [0] * len(labels)
    for old, lab in zip(range(1, len(labels) + 1), labels):
        new_labels[relabel[old] - 1] = lab
    for image_id in range(1, len(labels) + 1):
        photo(image_id, (24 + image_id % 5, 20)).save(base / "jpg" / f"image_{image_id:05d}.jpg", quality=90)
    savemat(str(base / "imagelabels.mat"), {"labels": np.array([new_labels], dtype=np.uint8)})
    savemat(str(base / "setid.mat"), {k: np.array([[relabel[i] for i in v]], dtype=np.uint16) for k, v in sets.items()})
    return {"root": root, "base": base, "labels": new_labels, "sets": {k: [relabel[i] for i in v] for k, v in sets.items()}}
