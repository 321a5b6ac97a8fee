"""``hw4grade report``: rebuild the class page, OUT/index.html, from OUT/results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader.report import store
from grader.report.classpage import CLASS_PAGE, write_class_page
from grader.rubric import RubricError, load_rubric


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hw4grade report``."""
    parser.add_argument("out", type=Path, help="the output folder of hw4grade grade")
    parser.add_argument("--rubric", type=Path,
                        help="rubric file (default: the shipped rubric.yaml)")


def run(args: argparse.Namespace) -> int:
    """Write ``OUT/index.html``; exit 2 when there is nothing to report."""
    try:
        rubric = load_rubric(args.rubric.resolve() if args.rubric else None)
    except RubricError as error:
        print(f"hw4grade report: {error}", file=sys.stderr)
        return 2
    problems: list[str] = []
    results = store.read_results(args.out, problems=problems)
    for problem in problems:
        print(f"hw4grade report: {problem}", file=sys.stderr)
    if not results:
        print(f"hw4grade report: no results in {args.out / store.RESULTS_DIR} "
              "(run hw4grade grade with --out there first)", file=sys.stderr)
        return 2
    write_class_page(results, args.out, rubric)
    print(f"class page: {args.out / CLASS_PAGE} ({len(results)} result(s))")
    return 0
