"""fgvc_ref.bench and the bench CLI: the harness measures both sides and reports ratios."""

import json

import pytest

from fgvc_ref import bench
from fgvc_ref.cli import main


def test_time_call_runs_warmup_then_repeats():
    calls = []
    times = bench.time_call(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and len(times) == 3 and all(t >= 0 for t in times)


def test_summary_is_median_min_max():
    assert bench.summary([3.0, 1.0, 2.0]) == {"median_s": 2.0, "min_s": 1.0, "max_s": 3.0, "repeats": 3}


@pytest.mark.slow
def test_bench_cli_writes_ratios_for_optim_and_ema(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--only", "optim,ema", "--repeats", "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert {r["section"] for r in data["rows"]} == {"optim", "ema"}
    for row in data["rows"]:
        assert row["ratio_vs_twin"] == pytest.approx(row["ours"]["median_s"] / row["twin_timing"]["median_s"])
        assert row["ours"]["repeats"] == 2
    assert data["environment"]["torch"]
    assert "ratio" in capsys.readouterr().out


def test_unknown_section_is_a_clear_error(capsys):
    assert main(["bench", "--only", "optim,nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "optim" in err
