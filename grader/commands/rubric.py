"""``hw4grade rubric``: validate a rubric file and print its items."""

from __future__ import annotations

import argparse

from grader.commands import paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hw4grade rubric``."""
    parser.add_argument("path", nargs="?", help="rubric file (default: the shipped rubric.yaml)")


def run(args: argparse.Namespace) -> int:
    """Validate a rubric and print its items; an invalid one is bad input (exit 2)."""
    rubric = paths.rubric_file(args.path, "PATH")
    print(f"{rubric.source}: valid, {len(rubric.items)} items, {rubric.max_score:g} points")
    for item in rubric.items:
        print(f"  {item.id:<20} {item.points:>5g}  {item.kind:<6}  {item.checks}")
    return 0
