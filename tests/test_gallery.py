"""fgvc_ref.gallery: the command runs, and every cell of the PNG is the output of the transform it names."""

import numpy as np
import pytest
import torch
from PIL import Image

from fgvc_ref.cli import main
from fgvc_ref.gallery import SAMPLES, default_photo, op_cell, sections, square, to_display
from fgvc_ref.mosaic import cell_box
from fgvc_ref.transforms import BatchAugment, TrainTransform
from fgvc_ref.trivial_augment import OPS, apply_op_pil

SIZE = 48


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    pytest.importorskip("skimage", reason="the default photo is scikit-image's")
    out = tmp_path_factory.mktemp("gallery") / "augmentations.png"
    assert main(["gallery", "--out", str(out), "--size", str(SIZE), "--seed", "3"]) == 0
    return np.array(Image.open(out).convert("RGB")), sections(default_photo(), SIZE, 3)


def cell(drawn, section, row, column) -> torch.Tensor:
    image, layout = drawn
    left, top, right, bottom = cell_box(layout, SIZE, section, row, column)
    return torch.from_numpy(image[top:bottom, left:right].copy()).permute(2, 0, 1)


def test_every_op_cell_is_that_op_at_its_magnitude_on_the_photo(drawn):
    x = square(default_photo(), SIZE)
    expected = [op_cell(x, op, k) for op in range(len(OPS)) for k in ((10, 20, 30) if OPS[op].magnitudes else (None,))]
    shown = [(caption, cell(drawn, 0, r, c)) for r, row in enumerate(drawn[1][0].rows) for c, (caption, _) in enumerate(row)]
    assert [c for c, _ in shown] == [c for c, _ in expected]
    for (caption, got), (_, want) in zip(shown, expected):
        assert torch.equal(got, want), caption
    assert [c for c, _ in shown][-1] == "Equalize" and len(shown) == 3 * 11 + 3


def test_op_cells_are_within_one_level_of_the_reference_paths_pil_ops():
    """The fast-path kernel shown against the reference path's PIL op: point ops within one grey level (PIL rounds its
    grey and mean images its own way), geometric ops off by more only along the filled border (< 3% of pixels)."""
    pytest.importorskip("skimage")
    x = square(default_photo(), SIZE)
    pil = Image.fromarray(x.permute(1, 2, 0).numpy())
    for op in range(len(OPS)):
        for k in (10, 20, 30) if OPS[op].magnitudes else (None,):
            _, got = op_cell(x, op, k)
            want = torch.from_numpy(np.asarray(apply_op_pil(pil, op, OPS[op].magnitudes[k] if k is not None else 0.0)).copy()).permute(2, 0, 1)
            off = (got.int() - want.int()).abs()
            if OPS[op].name in ("ShearX", "ShearY", "Rotate"):
                assert (off > 1).float().mean() < 0.03, (OPS[op].name, k)
            else:
                assert off.max() <= 1, (OPS[op].name, k)


@pytest.mark.parametrize("row, policy, erasing", [(0, "standard", 0.0), (2, "trivialaugment", 0.0), (4, "trivialaugment", 0.5)])
def test_sample_rows_are_the_reference_and_the_fast_path_outputs(drawn, row, policy, erasing):
    x = square(default_photo(), SIZE)
    pil = Image.fromarray(x.permute(1, 2, 0).numpy())
    reference = TrainTransform(policy, SIZE, erasing_p=erasing)
    fast = BatchAugment(policy, SIZE, erasing_p=erasing)(x.expand(SAMPLES, -1, -1, -1).contiguous(), torch.Generator().manual_seed(3))
    for k in range(SAMPLES):
        assert torch.equal(cell(drawn, 1, row, k), to_display(reference(pil, torch.Generator().manual_seed(3000 + k))))
        assert torch.equal(cell(drawn, 1, row + 1, k), to_display(fast[k]))


def test_the_command_needs_a_readable_photo(tmp_path, capsys):
    (tmp_path / "x.png").write_bytes(b"not a png")
    assert main(["gallery", "--out", str(tmp_path / "g.png"), "--image", str(tmp_path / "x.png")]) == 2
    assert "x.png: not a readable image" in capsys.readouterr().err and not (tmp_path / "g.png").exists()


def test_square_is_the_hand_computed_centre_square_of_a_landscape_and_a_portrait_photo():
    """Independent oracle: chelsea.png is 451 x 300 (landscape): its centre square is columns 75..374, all rows; the same
    photo turned a quarter (portrait, 300 x 451) has rows 75..374. A swap of height and width would take another square."""
    pytest.importorskip("skimage")
    photo = default_photo()
    assert photo.size == (451, 300)
    expected = photo.crop((75, 0, 375, 300)).resize((SIZE, SIZE), Image.BILINEAR)
    assert torch.equal(square(photo, SIZE), torch.from_numpy(np.asarray(expected).copy()).permute(2, 0, 1))
    portrait = photo.transpose(Image.Transpose.ROTATE_90)
    expected = portrait.crop((0, 75, 300, 375)).resize((SIZE, SIZE), Image.BILINEAR)
    assert torch.equal(square(portrait, SIZE), torch.from_numpy(np.asarray(expected).copy()).permute(2, 0, 1))


def test_to_display_undoes_imagenet_normalisation_with_the_literal_constants():
    """x -> (x / 255 - mean) / std -> to_display gives x back, with mean and std written out here (not imported): swapped
    or mistyped constants give other colours."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    x = torch.arange(256, dtype=torch.uint8).view(1, 16, 16).expand(3, -1, -1).clone()
    x[1] = x[1].flip(-1)
    assert torch.equal(to_display((x.float() / 255 - mean) / std), x)
    grey = torch.zeros(3, 2, 2)  # a normalised 0 is the mean colour: erased pixels show it
    assert to_display(grey)[:, 0, 0].tolist() == [round(255 * 0.485), round(255 * 0.456), round(255 * 0.406)]


def test_the_default_gallery_is_written_under_runs_which_git_ignores(tmp_path, monkeypatch):
    """A command from the README must not dirty the repository: the default --out is under runs/ (git-ignored)."""
    import subprocess
    from pathlib import Path

    from fgvc_ref.cli import build_parser

    default = build_parser().parse_args(["gallery"]).out
    assert default.startswith("runs/")
    root = Path(__file__).resolve().parents[1]
    assert subprocess.run(["git", "check-ignore", "-q", default], cwd=root).returncode == 0
    pytest.importorskip("skimage")
    monkeypatch.chdir(tmp_path)
    assert main(["gallery", "--size", "24"]) == 0 and (tmp_path / default).is_file()


def test_the_gallery_reads_a_large_jpeg_reduced_and_a_large_png_with_the_option(tmp_path, monkeypatch, capsys):
    """A phone photo over Pillow's pixel limit: as a JPEG it is read at 1/8 (its shorter side 75 >= the cell size 48), the
    same picture as a PNG needs --max-image-pixels; Pillow's limit is put back."""
    pytest.importorskip("skimage")
    photo = default_photo().resize((800, 600), Image.BILINEAR)
    photo.save(tmp_path / "big.jpg", quality=95)
    photo.save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)
    assert main(["gallery", "--image", str(tmp_path / "big.jpg"), "--out", str(tmp_path / "a.png"), "--size", str(SIZE)]) == 0
    assert main(["gallery", "--image", str(tmp_path / "big.png"), "--out", str(tmp_path / "b.png"), "--size", str(SIZE)]) == 2
    assert "480,000 pixels is over the 100,000-pixel limit" in capsys.readouterr().err and not (tmp_path / "b.png").exists()
    assert main(["gallery", "--image", str(tmp_path / "big.png"), "--out", str(tmp_path / "b.png"), "--size", str(SIZE),
                 "--max-image-pixels", "480000"]) == 0
    assert Image.MAX_IMAGE_PIXELS == 100_000
    monkeypatch.undo()  # the galleries themselves are larger than 100,000 pixels
    assert Image.open(tmp_path / "a.png").size == Image.open(tmp_path / "b.png").size
