"""Grade the whole fixture corpus and the examples at a fixed seed; compare two such runs.

Used to show that a change of the grader's code (a refactoring) changes no grade:

    HW4_MNIST_DIR=../shared/data/mnist python benchmarks/regrade_corpus.py grade /tmp/before
    ... change the code ...
    HW4_MNIST_DIR=../shared/data/mnist python benchmarks/regrade_corpus.py grade /tmp/after
    python benchmarks/regrade_corpus.py compare /tmp/before /tmp/after

``grade`` writes every TF2 variant of ``tests/fixtures/submissions.py``, every TF1 notebook of
``tests/fixtures/tf1_notebooks.py`` and the notebooks of ``examples/submissions`` under
``FOLDER/submissions`` and grades them through the command line (``hw4grade grade``, quick
mode, seed 11, two workers), so it runs the same against any layout of the package.
``compare`` checks, submission by submission and item by item, the points, maxima, statuses,
messages and details (timings left out), the error, the warnings and the cell statuses; it
prints every difference and exits 1 if there is one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 11
# Keys whose values depend on the machine or the moment, not on the grade.
VOLATILE = {"seconds", "timing", "graded_at", "grader_version", "duration", "started",
            "submission", "host", "elapsed", "steps_per_second"}


def write_corpus(folder: Path) -> int:
    """Write every fixture notebook and example under ``folder``; return how many."""
    sys.path.insert(0, str(ROOT))
    from tests.fixtures import tf1_notebooks
    from tests.fixtures.submissions import SOLUTION_PATH, VARIANTS, write_variant

    for variant in VARIANTS:
        write_variant(variant, SOLUTION_PATH, folder / "tf2")
    (folder / "tf1").mkdir(parents=True)
    for name in tf1_notebooks.EXPECTED_LOSSES:
        tf1_notebooks.write(name, folder / "tf1")
    shutil.copytree(ROOT / "examples" / "submissions", folder / "examples")
    return sum(1 for path in folder.rglob("*") if path.is_file())


def grade(folder: Path, workers: int) -> None:
    """Write the corpus under ``folder/submissions`` and grade it into ``folder/out``."""
    submissions = folder / "submissions"
    if submissions.exists():
        shutil.rmtree(submissions)
    count = write_corpus(submissions)
    started = time.perf_counter()
    command = [sys.executable, "-m", "grader", "grade", str(submissions), "--out",
               str(folder / "out"), "--seed", str(SEED), "--workers", str(workers),
               "--timeout", "40", "--memory-limit", "3G", "--force"]
    subprocess.run(command, cwd=ROOT, check=False)
    print(f"{count} notebooks graded in {time.perf_counter() - started:.0f} s into "
          f"{folder / 'out'}")


def _without_volatile(value):
    if isinstance(value, dict):
        return {key: _without_volatile(item) for key, item in value.items()
                if key not in VOLATILE}
    if isinstance(value, list):
        return [_without_volatile(item) for item in value]
    return value


def _summary(result: dict) -> dict:
    return {
        "score": result.get("score"),
        "max_score": result.get("max_score"),
        "error": result.get("error"),
        "profile": result.get("profile"),
        "warnings": result.get("warnings"),
        "cells": [(cell.get("index"), cell.get("status"), cell.get("error_name"))
                  for cell in result.get("cells", [])],
        "items": {item["id"]: _without_volatile(item) for item in result.get("items", [])},
    }


def read_results(out: Path) -> dict[str, dict]:
    """The results of a graded corpus, by their file's path under ``out/results``."""
    folder = out / "out" / "results"
    return {str(path.relative_to(folder)): _summary(json.loads(path.read_text()))
            for path in sorted(folder.rglob("*.json"))}


def differences(before: dict, after: dict, where: str = "") -> list[str]:
    """Every place where ``after`` differs from ``before``, as readable lines."""
    if isinstance(before, dict) and isinstance(after, dict):
        lines = []
        for key in sorted(set(before) | set(after), key=str):
            if key not in after:
                lines.append(f"{where}/{key}: gone (was {before[key]!r:.120})")
            elif key not in before:
                lines.append(f"{where}/{key}: new ({after[key]!r:.120})")
            else:
                lines += differences(before[key], after[key], f"{where}/{key}")
        return lines
    if before != after:
        return [f"{where}: {before!r:.200} -> {after!r:.200}"]
    return []


# Where a difference changes a grade (the rest are messages and measured details).
GRADE_FIELDS = ("/score:", "/max_score:", "/error:", "/points:", "/max_points:", "/status:")


def compare(before_folder: Path, after_folder: Path) -> int:
    """Print the differences between two graded corpora; return 1 if there is any.

    The summary counts apart the differences in grades (scores, points, statuses, errors)
    and those in messages and details. Two runs of the same code can differ in details that
    measure the student's own random draws (``sample_noise``'s KS p-value and value span:
    the kernel's random state after the budget-cut training depends on timing).
    """
    before, after = read_results(before_folder), read_results(after_folder)
    lines = differences(before, after)
    for line in lines:
        print(line)
    items = sum(len(result["items"]) for result in before.values())
    grades = [line for line in lines if any(field in line for field in GRADE_FIELDS)]
    print(f"{len(before)} results, {items} items compared: {len(grades)} difference(s) in "
          f"grades, {len(lines) - len(grades)} in messages and details")
    return 1 if lines or not before else 0


def main() -> int:
    """Command line: ``grade FOLDER`` or ``compare BEFORE AFTER``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    grade_parser = sub.add_parser("grade", help="grade the corpus into FOLDER")
    grade_parser.add_argument("folder", type=Path)
    grade_parser.add_argument("--workers", type=int, default=2)
    compare_parser = sub.add_parser("compare", help="compare two graded corpora")
    compare_parser.add_argument("before", type=Path)
    compare_parser.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.action == "grade":
        grade(args.folder.resolve(), args.workers)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
