"""``hw4grade template``: regenerate the student template from the solution notebook."""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat

from grader.commands import paths
from grader.exceptions import UsageError
from grader.release.template import DEFAULT_SOLUTION, DEFAULT_TEMPLATE, generate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hw4grade template``."""
    parser.add_argument("--solution", type=Path, default=DEFAULT_SOLUTION,
                        help="solution notebook (default: reference/HW4_solution.ipynb)")
    parser.add_argument("--out", type=Path, default=DEFAULT_TEMPLATE,
                        help="where to write the template (default: student_template/)")


def run(args: argparse.Namespace) -> int:
    """Regenerate the template; a missing or malformed solution is bad input (exit 2)."""
    if not Path(args.solution).exists():
        raise UsageError(f"--solution {args.solution}: no solution notebook here (the "
                         "instructor's reference/ folder is needed)")
    solution = paths.input_file(args.solution, "--solution")
    out = paths.output_file(args.out, "--out")
    try:
        path = generate(solution, out)
    except (nbformat.ValidationError, ValueError) as error:  # TemplateError included
        raise UsageError(f"--solution {args.solution}: {error}") from None
    print(f"wrote {path}")
    return 0

