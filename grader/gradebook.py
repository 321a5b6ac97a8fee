"""``hw4grade gradebook``: rebuild OUT/gradebook.csv from results, merging hand-graded scores."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader import report
from grader.rubric import RubricError, load_rubric


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hw4grade gradebook``."""
    parser.add_argument("out", type=Path, help="the output folder of hw4grade grade")
    parser.add_argument("--manual", type=Path, metavar="CSV",
                        help="hand-graded scores: a 'submission' column and one column per "
                             "manual item (problem1_derivation, problem2_derivation)")
    parser.add_argument("--rubric", help="rubric file (default: the shipped rubric.yaml)")


def run(args: argparse.Namespace) -> int:
    """Write OUT/gradebook.csv, and OUT/gradebook-final.csv when --manual is given."""
    try:
        rubric = load_rubric(args.rubric)
    except RubricError as error:
        print(f"hw4grade gradebook: {error}", file=sys.stderr)
        return 2
    problems: list[str] = []
    results = report.read_results(args.out, problems=problems)
    for problem in problems:
        print(f"hw4grade gradebook: skipped {problem}", file=sys.stderr)
    if not results:
        print(f"hw4grade gradebook: no results in {args.out / report.RESULTS_DIR}", file=sys.stderr)
        return 2
    gradebook = report.write_gradebook(results, args.out / "gradebook.csv", rubric)
    print(f"wrote {gradebook} ({len(results)} submissions)")
    if args.manual:
        try:
            final = report.merge_manual_scores(gradebook, args.manual,
                                               args.out / "gradebook-final.csv", rubric)
        except (report.ManualScoreError, OSError) as error:
            print(f"hw4grade gradebook: {error}", file=sys.stderr)
            return 1
        print(f"wrote {final}")
    return 0
