"""The ``hw4grade`` command line: one sub-command per user task.

Each sub-command lives in the module that does its work; this file only wires
arguments to functions, so ``hw4grade --help`` stays a readable index.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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


def main(argv: list[str] | None = None) -> int:
    """Run ``hw4grade`` with ``argv`` (default: the process's arguments); return the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if getattr(args, "unavailable", None):
        print(f"hw4grade: {args.unavailable}", file=sys.stderr)
        return 2
    module = importlib.import_module(args.module_name)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
