"""The command table: every command's module exists, and only the modules a student's
install leaves out on purpose are reported as unavailable."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from grader import cli
from grader.release import bundle as release

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_module_exists_and_takes_its_arguments(command, capsys):
    module = importlib.import_module(cli.COMMANDS[command][0])
    assert callable(module.add_arguments) and callable(module.run)
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0
    assert "not available" not in capsys.readouterr().err


def test_the_hidden_modules_are_those_the_student_wheel_leaves_out():
    files, left_out = release.student_files(ROOT, {}, b"")
    absent = {"grader." + name[:-3].replace("/", ".") for name in release.INSTRUCTOR_ONLY
              if name.endswith(".py")}
    absent |= {name[: -len(".py")].replace("/", ".") for name in left_out}
    command_modules = {module for module, _ in cli.COMMANDS.values()}
    assert cli.STUDENT_WHEEL_ABSENT == absent & command_modules
    for module in command_modules - absent:
        assert f"{module.replace('.', '/')}.py" in files


def test_a_missing_module_is_a_bug_not_an_unavailable_command(monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "typo", ("grader.no_such_module", "a broken entry"))
    with pytest.raises(ModuleNotFoundError):
        cli.main(["typo"])
