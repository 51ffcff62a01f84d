"""fgvc_ref.checkpoint: atomic, hashed, last two kept, corrupt ones skipped loudly (malicious pickles: test_reliability_checkpoints)."""


import pytest
import torch

from fgvc_ref.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, save_checkpoint


def test_keeps_the_last_two_and_loads_the_newest(tmp_path):
    for e in range(4):
        save_checkpoint(tmp_path, {"epoch": e, "w": torch.full((2,), float(e))}, epoch=e, step=0)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-e00002-s0000000.pt", "checkpoint-e00003-s0000000.pt"]
    state, path = load_checkpoint(tmp_path)
    assert state["epoch"] == 3 and path.name.startswith("checkpoint-e00003")
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_and_says_so(tmp_path, capsys, damage):
    save_checkpoint(tmp_path, {"epoch": 1}, epoch=1, step=0)
    newest = save_checkpoint(tmp_path, {"epoch": 2, "w": torch.zeros(100)}, epoch=2, step=0)
    data = bytearray(newest.read_bytes())
    newest.write_bytes(bytes(data[: len(data) // 2]) if damage == "truncate" else bytes(data[:-50] + bytes([data[-50] ^ 1]) + data[-49:]))
    state, path = load_checkpoint(tmp_path)
    assert state["epoch"] == 1
    err = capsys.readouterr().err
    assert newest.name in err and "unusable" in err and "older checkpoint" in err


def test_all_checkpoints_corrupt_is_an_error_not_a_fresh_start(tmp_path):
    p = save_checkpoint(tmp_path, {"epoch": 1}, epoch=1, step=0)
    p.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        load_checkpoint(tmp_path)
    assert load_checkpoint(tmp_path / "empty") is None
