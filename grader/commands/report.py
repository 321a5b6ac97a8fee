"""``hw4grade report``: rebuild the class page, OUT/index.html, from OUT/results."""

from __future__ import annotations

import argparse
from pathlib import Path

from grader.commands import paths
from grader.report.classpage import CLASS_PAGE, write_class_page


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hw4grade report``."""
    parser.add_argument("out", type=Path, help="the output folder of hw4grade grade")
    parser.add_argument("--rubric", type=Path,
                        help="rubric file (default: the shipped rubric.yaml)")


def run(args: argparse.Namespace) -> int:
    """Write ``OUT/index.html``; bad input (nothing to report) raises ``BadInput``."""
    out = paths.input_folder(args.out, "OUT")
    paths.output_folder(out, "OUT")
    rubric = paths.rubric_file(args.rubric)
    results = paths.graded_folder(args.out, "report")
    write_class_page(results, out, rubric)
    print(f"class page: {args.out / CLASS_PAGE} ({len(results)} result(s))")
    return 0


def output_folder(args: argparse.Namespace) -> Path:
    """Where this command writes (and where the log of a crash goes)."""
    return args.out.resolve()
