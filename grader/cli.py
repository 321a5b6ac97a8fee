"""The ``hw4grade`` command line: one sub-command per user task.

Each sub-command lives in the module that does its work; this file only wires
arguments to functions, so ``hw4grade --help`` stays a readable index.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from grader.exceptions import BadInput, UsageError
from grader.untrusted import MESSAGE_LIMIT, clean_text

# sub-command name -> module providing ``add_arguments(parser)`` and ``run(args) -> int``
COMMANDS = {
    "collect": ("grader.commands.collect",
                "fetch each student's notebook from their git repository as at the deadline"),
    "grade": ("grader.commands.grade",
              "grade notebooks and write results, gradebook and feedback"),
    "check": ("grader.commands.check", "self-check one notebook (exit 0 only with full marks)"),
    "gradebook": ("grader.commands.gradebook",
                  "rebuild the gradebook, merging hand-graded scores"),
    "report": ("grader.commands.report", "rebuild the class page OUT/index.html"),
    "template": ("grader.commands.template",
                 "regenerate the student template from the solution notebook"),
    "mnist": ("grader.commands.mnist", "show which MNIST source the loader finds"),
    "rubric": ("grader.commands.rubric", "validate a rubric file and print its items"),
    "theory": ("grader.commands.theory", "numerical checks of the theory (optimal D, VAE KL)"),
    "release": ("grader.commands.release", "write the students' bundle: template, README, "
                                           "GitHub Classroom workflow, grader wheel with "
                                           "public checks"),
    "gradescope-package": ("grader.commands.release",
                           "write Gradescope's autograder zip (setup.sh, run_autograder, "
                           "grader with the reference)"),
}
# The command modules a student's install leaves out on purpose (the instructor-only release
# commands and the modules that import ``reference``). Only their absence is
# reported as "not available in this install"; any other missing module is a bug and raises.
STUDENT_WHEEL_ABSENT = frozenset({"grader.commands.release", "grader.commands.theory"})


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Return the argument parser with every sub-command registered.

    With ``only``, just that sub-command's module is imported for its arguments (the others
    keep their help line), so a command does not pay for importing all the others.
    """
    parser = argparse.ArgumentParser(prog="hw4grade", description=__doc__.splitlines()[0])
    from grader import __version__

    parser.add_argument("--version", action="version", version=f"hw4grade {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        command_parser.set_defaults(module_name=module_name)
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name or module_name not in STUDENT_WHEEL_ABSENT:
                raise
            command_parser.set_defaults(unavailable=f"'{name}' is not available in this install")
            command_parser.add_argument("ignored", nargs=argparse.REMAINDER,
                                        help=argparse.SUPPRESS)
            continue
        module.add_arguments(command_parser)
    return parser


EXIT_BAD_INPUT = 2  # what the user gave cannot be used (one line says what and where)
EXIT_BUG = 3  # an error of hw4grade itself (one line says where the traceback is)
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


def main(argv: list[str] | None = None) -> int:
    """Run ``hw4grade`` with ``argv`` (default: the process's arguments); return the exit code.

    The one error boundary of the command line: input the user gave that cannot be used
    (``BadInput``) is one line on stderr and exit 2; any other error is a bug of hw4grade:
    one line saying so and where its traceback was written, exit 3; Ctrl-C exits 130.
    Never a traceback on the terminal.
    """
    argv = sys.argv[1:] if argv is None else argv
    args = None
    try:
        parser, args = parse_arguments(argv)
        return run_command(parser, args)
    except BadInput as error:
        print(f"hw4grade: {one_line(str(error))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("hw4grade: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        log = write_crash_log(traceback.format_exc(), argv, log_folder(args))
        where = f"the traceback is in {log}" if log else "its traceback could not be written"
        print(f"hw4grade: internal error, a bug in hw4grade ({type(error).__name__}: "
              f"{one_line(str(error), 200)}); {where}", file=sys.stderr)
        return EXIT_BUG


def parse_arguments(argv: list[str]) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The parser and the parsed command line (argparse itself exits 2 with its usage on a
    malformed one)."""
    chosen = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    return parser, parser.parse_args(argv)


def run_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run the sub-command ``args`` chose; return its exit code."""
    if args.command is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    if getattr(args, "unavailable", None):
        raise UsageError(args.unavailable)
    module = importlib.import_module(args.module_name)
    return int(module.run(args) or 0)


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` as one safe line: its lines joined by "; ", control characters shown
    escaped, about ``limit`` characters at most."""
    return clean_text("; ".join(part.strip() for part in text.splitlines() if part.strip()),
                      limit, keep=frozenset())


def log_folder(args: argparse.Namespace | None) -> Path | None:
    """The output folder of the command ``args`` ran, where its log goes (None: it has none).

    A command module with an output folder says which with ``output_folder(args)``.
    """
    if args is None or getattr(args, "module_name", None) is None:
        return None
    try:
        output_folder = getattr(importlib.import_module(args.module_name), "output_folder", None)
        return output_folder(args) if output_folder else None
    except Exception:  # the module is what failed: the user cache will do
        return None


def write_crash_log(trace: str, argv: list[str], folder: Path | None) -> Path | None:
    """Append ``trace`` to ``folder``/hw4grade.log when that folder exists, else to a new file
    in the user cache (``$XDG_CACHE_HOME/hw4grade``), else to a temporary file; return where
    it went (None: nowhere could be written)."""
    from grader import __version__

    stamp = datetime.datetime.now(datetime.timezone.utc)
    text = (f"---- hw4grade {__version__}, internal error at {stamp:%Y-%m-%d %H:%M:%S} UTC\n"
            f"command: hw4grade {' '.join(argv)}\n{trace}\n")
    for place in _log_places(folder, f"crash-{stamp:%Y%m%d-%H%M%S}-{os.getpid()}.log"):
        try:
            path = place()
            with open(path, "a", encoding="utf-8", errors="backslashreplace") as stream:
                stream.write(text)
            return path
        except OSError:
            continue
    return None


def _log_places(folder: Path | None, name: str) -> list[Callable[[], Path]]:
    """Where a crash log may go, best first (each a function: the cache is made on demand)."""

    def output() -> Path:
        if folder is None or not folder.is_dir():
            raise FileNotFoundError(folder)
        from grader.quiet import LOG_NAME

        return folder / LOG_NAME

    def cache() -> Path:
        from grader.mnist.data import user_cache_dir

        user_cache_dir().mkdir(parents=True, exist_ok=True)
        return user_cache_dir() / name

    def temporary() -> Path:
        handle, path = tempfile.mkstemp(prefix="hw4grade-crash-", suffix=".log")
        os.close(handle)
        return Path(path)

    return [output, cache, temporary]


if __name__ == "__main__":
    sys.exit(main())
