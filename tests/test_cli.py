"""fgvc_ref.cli: help that answers, the resolved recipe explained, a preflight check that writes nothing."""

import dataclasses

import pytest

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
