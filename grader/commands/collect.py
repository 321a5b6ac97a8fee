"""``hw4grade collect``: fetch every student's notebook from their git repository as it was
at the deadline, into SUBMISSIONS/ (one folder per student and ``collect.json``)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from grader.collect.collect import Settings, collect_class
from grader.collect.git import Limits
from grader.collect.manifest import MANIFEST, Status
from grader.collect.progress import CollectProgress
from grader.collect.roster import parse_deadline, read_roster
from grader.commands import paths
from grader.commands.options import add_profile_argument
from grader.exceptions import RosterError
from grader.rubric import parse_size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hw4grade collect``."""
    parser.add_argument("roster", type=Path, metavar="ROSTER",
                        help="CSV with a header: student, repository (a git URL or path); "
                             "optional name, sis_login_id, section")
    parser.add_argument("--deadline", required=True, metavar="TIME",
                        help="ISO 8601 with a time zone, e.g. 2026-03-01T23:59:00-05:00")
    parser.add_argument("--out", required=True, type=Path, metavar="SUBMISSIONS",
                        help="folder for the collected notebooks and collect.json")
    parser.add_argument("--branch", help="branch to read (default: the repository's default)")
    parser.add_argument("--notebook", action="append", default=[], metavar="PATTERN",
                        help="only notebooks whose path or name matches this pattern "
                             "(e.g. 'HW4*.ipynb'; repeatable)")
    add_profile_argument(parser)  # settles between a repository's TF and PyTorch notebooks
    parser.add_argument("--from-clones", type=Path, metavar="DIR",
                        help="read clones made beforehand (e.g. by gh classroom clone) "
                             "instead of cloning: DIR/<student>, DIR/*-<student> or the "
                             "roster's repository cell relative to DIR")
    parser.add_argument("--jobs", type=int, default=8,
                        help="repositories fetched at once (default 8)")
    parser.add_argument("--max-repo-size", default="2GiB", metavar="SIZE",
                        help="largest clone accepted (default 2GiB)")
    parser.add_argument("--max-files", type=int, default=Limits.files, metavar="N",
                        help=f"most files in a commit (default {Limits.files})")
    parser.add_argument("--git-timeout", type=float, default=Limits.seconds, metavar="SECONDS",
                        help=f"time limit of one git command (default {Limits.seconds:.0f})")


def run(args: argparse.Namespace) -> int:
    """Collect the class; exit 0 when every row has ended (whatever its status), 130 when
    interrupted (rerun to resume); bad input raises ``BadInput``."""
    roster = paths.input_file(args.roster, "ROSTER")
    out = paths.output_folder(args.out, "--out")
    from_clones = paths.input_folder(args.from_clones, "--from-clones") \
        if args.from_clones is not None else None
    deadline = parse_deadline(args.deadline)
    try:
        rows = read_roster(roster, repository_required=from_clones is None)
    except RosterError as error:
        raise RosterError(f"ROSTER {error}") from None
    limits = Limits(repository_bytes=parse_size(args.max_repo_size, "--max-repo-size"),
                    files=args.max_files, seconds=args.git_timeout)
    settings = Settings(deadline=deadline, out=out, branch=args.branch,
                        patterns=tuple(args.notebook), from_clones=from_clones,
                        limits=limits, jobs=args.jobs, profile=args.profile)
    print(f"hw4grade: collecting {len(rows)} student(s) as at {deadline.isoformat()}",
          file=sys.stderr)
    try:
        with CollectProgress(len(rows)) as progress:
            manifest = collect_class(rows, settings, progress.finished)
    except KeyboardInterrupt:
        print("\nhw4grade collect: interrupted; finished students are kept, rerun to resume",
              file=sys.stderr)
        return 130
    counts = Counter(entry.status for entry in manifest.entries.values())
    summary = ", ".join(f"{counts[status]} {status.words}" for status in Status
                        if counts[status])
    print(f"{len(manifest.entries)} student(s): {summary}")
    print(f"manifest: {args.out / MANIFEST}; grade with: hw4grade grade {args.out} --out OUT")
    return 0
