"""fgvc_ref.cli: help that answers, the resolved recipe explained, a preflight check that writes nothing."""

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fgvc_ref.cli import build_parser, main
from fgvc_ref.recipe import Recipe


def test_every_command_and_option_has_help_and_the_top_level_says_what_the_tool_is(capsys):
    parser = build_parser()
    assert "fine-grained" in parser.description and "train" in parser.epilog
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, command in sub.choices.items():
        assert command.description or sub._choices_actions, name
        for action in command._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings} has no help"


def test_set_help_lists_every_field(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert all(f.name in out for f in dataclasses.fields(Recipe))


def test_recipe_prints_every_field_with_its_meaning_and_allowed_values(capsys):
    assert main(["recipe", "--stage", "ema", "--epochs", "10", "--set", "lr_scale=0.5"]) == 0
    out = capsys.readouterr().out
    lines = {line.split(" = ")[0]: line for line in out.splitlines() if " = " in line and not line.startswith("(")}
    assert set(lines) == {f.name for f in dataclasses.fields(Recipe)}
    assert "lr_scale = 0.5" in lines["lr_scale"] and "[> 0]" in lines["lr_scale"]
    assert "Nesterov momentum" in lines["momentum"] and "[0 < momentum < 1]" in lines["momentum"]
    assert "epochs = 10" in out and "EMA decay per update" in out


def test_check_resolves_every_stage_and_reports_every_error_at_once(capsys):
    assert main(["check", "--stages", "base,ema", "--epochs", "5"]) == 0
    assert capsys.readouterr().out.count("ok ") == 2
    assert main(["check", "--stages", "base,cosinee,ema", "--set", "ema_steps=0"]) == 2
    err = capsys.readouterr().err
    assert "stage 'cosinee': unknown stage" in err and "stage 'ema': Recipe.ema_steps has an invalid value 0: it must be an integer >= 1" in err


@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 10**6)), min_size=1, max_size=8), st.data())
def test_free_cores_is_the_summed_idle_share_rounded_and_at_least_one(cpus, data):
    """free_between, literally: sum over CPUs of idle delta / total delta, rounded, clamped to [1, CPUs]."""
    from fgvc_ref.cli import free_between

    before = {c: (0, 0) for c in range(len(cpus))}
    after = {c: (min(idle, total), total) for c, (idle, total) in enumerate(cpus)}
    expected = sum(i / t for i, t in after.values())
    got = free_between(before, after)
    assert 1 <= got <= len(cpus) and (got == max(1, round(expected)))


def test_train_threads_default_to_the_free_cores_and_follow_threads_or_omp_num_threads(monkeypatch):
    import torch

    from fgvc_ref import cli

    default = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(cli, "free_cores", lambda window=0.25: 1)
        torch.set_num_threads(2)
        assert cli.torch_threads(None) == 1  # one core free: one compute thread, not torch's 2
        monkeypatch.setattr(cli, "free_cores", lambda window=0.25: 64)
        torch.set_num_threads(2)
        assert cli.torch_threads(None) == 2  # never more than torch's own choice
        assert cli.torch_threads(1) == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        monkeypatch.setattr(cli, "free_cores", lambda window=0.25: 1)
        torch.set_num_threads(2)
        assert cli.torch_threads(None) == 2  # the caller's OMP_NUM_THREADS wins
        assert 1 <= cli.free_cores(0.05) <= (len(__import__("os").sched_getaffinity(0)))
    finally:
        torch.set_num_threads(default)
