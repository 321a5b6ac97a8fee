"""The command line: every command's module exists, only the modules a student's install
leaves out on purpose are reported as unavailable, and the one error boundary: every
sub-command given each kind of bad argument exits 2 with one line naming it, an internal
error exits 3 with one line naming the log that holds its traceback, Ctrl-C exits 130.
The boundary tests run ``hw4grade`` as a real process; none of them starts a kernel."""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader import cli
from grader.pipeline.grade_one import Options, failed_result
from grader.release import bundle as release
from grader.report.store import write_result_json
from grader.rubric import load_rubric

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


def test_a_missing_module_is_a_bug_not_an_unavailable_command(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(cli.COMMANDS, "typo", ("grader.no_such_module", "a broken entry"))
    assert cli.main(["typo"]) == cli.EXIT_BUG
    [line] = capsys.readouterr().err.splitlines()
    assert "a bug in hw4grade" in line and "ModuleNotFoundError" in line
    [log] = (tmp_path / "cache" / "hw4grade").glob("crash-*.log")
    assert str(log) in line and "grader.no_such_module" in log.read_text()


# --------------------------------------------------------------------------- the boundary


def hw4grade(args: list[str], cwd: Path, *, privileged: bool = True,
             timeout: float = 120) -> subprocess.CompletedProcess:
    """``hw4grade ARGS`` as a real process. ``privileged=False``: without root's power to
    read any file (where the tests run as root, every capability dropped)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(cwd / "cache"))
    prefix: list[str] = []
    if not privileged and os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: every file is readable")
        prefix = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]
    return subprocess.run([*prefix, sys.executable, "-m", "grader.cli", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def places(tmp_path) -> dict[str, str]:
    """Good and bad paths of every kind a command may be given, by name."""
    files = {"a_file": "not what was asked for\n", "locked_file": "{}",
             "bad_rubric": "items: []\nbounds: {}\n", "bad_notebook": "not a notebook",
             "bad_manual": "submission,problem9\nzed,3\n",
             "roster": "student,repository\nzed,/nowhere\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    for name in ("class", "a_folder", "locked_folder"):
        (tmp_path / name).mkdir()
    shutil.copy(ROOT / "examples" / "submissions" / "alice.ipynb", tmp_path / "class")
    options = Options(rubric=load_rubric(), seed=1)
    write_result_json(failed_result("alice.ipynb", options, "0" * 64, "a reason"),
                      tmp_path / "graded")
    places = {name: str(tmp_path / name) for name in [*files, "class", "a_folder",
                                                      "locked_folder", "graded"]}
    places.update(no_zone="2026-03-01T23:59:00", missing=str(tmp_path / "missing"),
                  new=str(tmp_path / "new" / "out"),
                  under_file=str(tmp_path / "a_file" / "out"))
    for locked in ("locked_file", "locked_folder"):
        (tmp_path / locked).chmod(0)
    yield places
    for locked in ("locked_file", "locked_folder"):
        (tmp_path / locked).chmod(0o700)


def case(argument: str, bad: str, *args: str, privileged: bool = True):
    """One row of the table: the command line (``{name}`` stands for a path of ``places``),
    the argument that is wrong and the place given to it."""
    command = args[0]
    return pytest.param(list(args), argument, bad, privileged,
                        id=f"{command}-{argument.lstrip('-')}-{bad}")


GRADE = ("grade", "{class}", "--out", "{new}")
BAD_ARGUMENTS = [
    case("PATH", "missing", "grade", "{missing}", "--out", "{new}"),
    case("PATH", "locked_folder", "grade", "{locked_folder}", "--out", "{new}", privileged=False),
    case("--out", "a_file", "grade", "{class}", "--out", "{a_file}"),
    case("--out", "under_file", "grade", "{class}", "--out", "{under_file}"),
    case("--rubric", "missing", *GRADE, "--rubric", "{missing}"),
    case("--rubric", "bad_rubric", *GRADE, "--rubric", "{bad_rubric}"),
    case("--mnist", "missing", *GRADE, "--mnist", "{missing}"),
    case("--mnist", "a_folder", *GRADE, "--mnist", "{a_folder}"),
    case("--cluster-config", "missing", *GRADE, "--cluster", "local", "--cluster-config",
         "{missing}"),
    case("SUBMISSION", "missing", "check", "{missing}"),
    case("SUBMISSION", "locked_file", "check", "{locked_file}", privileged=False),
    case("SUBMISSION", "locked_folder", "check", "{locked_folder}", privileged=False),
    case("--rubric", "bad_rubric", "check", "{class}/alice.ipynb", "--rubric",
         "{bad_rubric}"),
    case("--mnist", "a_file", "check", "{class}/alice.ipynb", "--mnist", "{a_file}"),
    case("--json", "a_folder", "check", "{class}/alice.ipynb", "--json", "{a_folder}"),
    case("--json", "under_file", "check", "{class}/alice.ipynb", "--json", "{under_file}"),
    case("OUT", "missing", "gradebook", "{missing}"),
    case("OUT", "a_file", "gradebook", "{a_file}"),
    case("OUT", "locked_folder", "gradebook", "{locked_folder}", privileged=False),
    case("OUT", "a_folder", "gradebook", "{a_folder}"),  # no results in it
    case("--manual", "missing", "gradebook", "{graded}", "--manual", "{missing}"),
    case("--manual", "bad_manual", "gradebook", "{graded}", "--manual",
         "{bad_manual}"),
    case("--rubric", "bad_rubric", "gradebook", "{graded}", "--rubric",
         "{bad_rubric}"),
    case("--solution", "missing", "template", "--solution", "{missing}", "--out", "{new}"),
    case("--solution", "bad_notebook", "template", "--solution", "{bad_notebook}", "--out",
         "{new}"),
    case("--out", "a_folder", "template", "--out", "{a_folder}"),
    case("--out", "under_file", "template", "--out", "{under_file}"),
    case("--mnist", "missing", "mnist", "--mnist", "{missing}"),
    case("--mnist", "a_folder", "mnist", "--mnist", "{a_folder}"),
    case("--mnist", "locked_file", "mnist", "--mnist", "{locked_file}", privileged=False),
    case("PATH", "missing", "rubric", "{missing}"),
    case("PATH", "bad_rubric", "rubric", "{bad_rubric}"),
    case("PATH", "a_folder", "rubric", "{a_folder}"),
    case("--json", "a_folder", "theory", "--json", "{a_folder}"),
    case("--json", "under_file", "theory", "--json", "{under_file}"),
    case("--plot", "a_file", "theory", "--plot", "{a_file}"),
    case("--plot", "under_file", "theory", "--plot", "{under_file}"),
    case("--out", "a_file", "release", "--out", "{a_file}"),
    case("--out", "under_file", "release", "--out", "{under_file}"),
    case("--solution", "missing", "release", "--out", "{new}", "--solution", "{missing}"),
    case("--template", "missing", "release", "--out", "{new}", "--template", "{missing}"),
    case("--mnist", "a_folder", "release", "--out", "{new}", "--mnist", "{a_folder}"),
    case("--out", "a_folder", "gradescope-package", "--out", "{a_folder}"),
    case("--out", "under_file", "gradescope-package", "--out", "{under_file}"),
    case("--mnist", "missing", "gradescope-package", "--out", "{new}", "--mnist", "{missing}"),
    case("--mnist", "a_file", "gradescope-package", "--out", "{new}", "--mnist",
         "{a_file}"),
    case("ROSTER", "missing", "collect", "{missing}", "--deadline", "2026-03-01T23:59:00Z",
         "--out", "{new}"),
    case("ROSTER", "a_file", "collect", "{a_file}", "--deadline", "2026-03-01T23:59:00Z",
         "--out", "{new}"),
    case("--deadline", "no_zone", "collect", "{roster}", "--deadline", "2026-03-01T23:59:00",
         "--out", "{new}"),
    case("--out", "a_file", "collect", "{roster}", "--deadline", "2026-03-01T23:59:00Z",
         "--out", "{a_file}"),
    case("--from-clones", "missing", "collect", "{roster}", "--deadline",
         "2026-03-01T23:59:00Z", "--out", "{new}", "--from-clones", "{missing}"),
    case("OUT", "missing", "report", "{missing}"),
    case("OUT", "a_folder", "report", "{a_folder}"),  # no results in it
    case("--rubric", "bad_rubric", "report", "{graded}", "--rubric", "{bad_rubric}"),
]


def test_the_table_covers_every_command():
    assert {row.values[0][0] for row in BAD_ARGUMENTS} == set(cli.COMMANDS)


@pytest.mark.parametrize(("args", "argument", "bad", "privileged"), BAD_ARGUMENTS)
def test_a_bad_argument_exits_2_with_one_line_naming_it(args, argument, bad, privileged,
                                                       places, tmp_path):
    done = hw4grade([arg.format(**places) for arg in args], tmp_path, privileged=privileged)
    lines = done.stderr.splitlines()
    assert done.returncode == cli.EXIT_BAD_INPUT, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("hw4grade: ")
    assert argument in lines[0] and places[bad] in lines[0], lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert not Path(places["new"]).exists()  # refused before anything was written


def test_a_bad_mnist_variable_is_named_too(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HW4_MNIST_DIR=str(tmp_path / "nowhere"))
    done = subprocess.run([sys.executable, "-m", "grader.cli", "mnist"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == cli.EXIT_BAD_INPUT
    assert done.stderr.splitlines() == [f"hw4grade: $HW4_MNIST_DIR {tmp_path / 'nowhere'}: "
                                        "no such file or folder"]


def test_an_internal_error_exits_3_with_one_line_naming_the_log(places, tmp_path):
    """A gradebook whose file is a folder in OUT: writing it fails, and nothing foresaw
    that. The traceback goes to OUT's log, or where OUT's log cannot be written, to the
    user cache."""
    out = Path(places["graded"])
    (out / "gradebook.csv").mkdir()
    done = hw4grade(["gradebook", str(out)], tmp_path)
    assert done.returncode == cli.EXIT_BUG, done.stderr
    [line] = done.stderr.splitlines()
    log = out / "hw4grade.log"
    assert "a bug in hw4grade" in line and str(log) in line, line
    assert "Traceback" not in done.stdout + done.stderr
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "gradebook.csv" in text
    assert f"command: hw4grade gradebook {out}" in text

    log.unlink()
    log.mkdir()  # OUT's log cannot be written either
    done = hw4grade(["gradebook", str(out)], tmp_path)
    assert done.returncode == cli.EXIT_BUG, done.stderr
    [line] = done.stderr.splitlines()
    [cached] = (tmp_path / "cache" / "hw4grade").glob("crash-*.log")
    assert str(cached) in line and "Traceback (most recent call last)" in cached.read_text()


def test_ctrl_c_exits_130_without_a_traceback(places, tmp_path):
    """Ctrl-C while ``gradebook`` waits for its ``--manual`` file (a FIFO nobody writes)."""
    fifo = tmp_path / "scores.csv"
    os.mkfifo(fifo)
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path / "cache"))
    process = subprocess.Popen([sys.executable, "-m", "grader.cli", "gradebook",
                                places["graded"], "--manual", str(fifo)], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    writer, deadline = None, time.monotonic() + 60
    while writer is None and time.monotonic() < deadline and process.poll() is None:
        try:  # opens only once the command has opened the FIFO to read it
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            time.sleep(0.05)
    assert writer is not None, process.communicate()
    process.send_signal(signal.SIGINT)
    output, errors = process.communicate(timeout=60)
    os.close(writer)
    assert process.returncode == cli.EXIT_INTERRUPTED, errors
    assert errors.splitlines() == ["hw4grade: interrupted"]
    assert "Traceback" not in output + errors
