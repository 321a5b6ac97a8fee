"""``hw4grade template``: regenerate the student template from the solution notebook."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from grader.release.template import DEFAULT_SOLUTION, DEFAULT_TEMPLATE, TemplateError, generate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hw4grade template``."""
    parser.add_argument("--solution", type=Path, default=DEFAULT_SOLUTION,
                        help="solution notebook (default: reference/HW4_solution.ipynb)")
    parser.add_argument("--out", type=Path, default=DEFAULT_TEMPLATE,
                        help="where to write the template (default: student_template/)")


def run(args: argparse.Namespace) -> int:
    """Regenerate the template; exit 1 with a clear message when the solution is unusable."""
    if not args.solution.is_file():
        print(f"hw4grade template: {args.solution}: no solution notebook here "
              "(the instructor's reference/ folder is needed)", file=sys.stderr)
        return 1
    try:
        path = generate(args.solution, args.out)
    except (TemplateError, nbformat.ValidationError, ValueError) as error:
        print(f"hw4grade template: {args.solution}: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0
