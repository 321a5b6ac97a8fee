"""``hw4grade grade``: grade a class's notebooks into an output folder."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from grader.collect.manifest import MANIFEST, Handoff, handoff, read_manifest
from grader.commands import paths
from grader.commands.options import (
    add_grading_arguments,
    check_grading_arguments,
    options_from_args,
)
from grader.exceptions import SandboxUnavailable, UsageError
from grader.pipeline.backends.dask_cluster import DEFAULT_ALLOWED_FAILURES
from grader.pipeline.devices import Device
from grader.pipeline.grade_many import choose_backend, grade_batch
from grader.pipeline.grade_one import prepare_mnist
from grader.pipeline.load import find_notebooks
from grader.quiet import LOG_NAME, native_stderr_to, quiet_tensorflow
from grader.report.classpage import CLASS_PAGE
from grader.report.manual import MANUAL_TEMPLATE
from grader.report.store import FEEDBACK_DIR, submission_name
from grader.report.text import flagged_line, verdict
from grader.result import SubmissionResult


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hw4grade grade``."""
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="notebooks, or folders searched for notebooks")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--workers", type=int, default=1,
                        help="submissions graded at once (default 1)")
    parser.add_argument("--force", action="store_true",
                        help="regrade even submissions whose result is still valid")
    add_grading_arguments(parser)
    add_cluster_arguments(parser)


def absolute(path: str | os.PathLike[str] | None) -> Path | None:
    """``path`` made absolute against the current folder (None stays None): every path
    handed to a kernel, a worker or a subprocess must not depend on where it runs."""
    return None if path is None else Path(os.path.abspath(os.fspath(path)))


def output_folder(args: argparse.Namespace) -> Path:
    """Where this command writes (and where the log of a crash goes)."""
    return absolute(args.out)


def check_arguments(args: argparse.Namespace) -> tuple[dict[Path, str], Handoff]:
    """Check every argument before anything starts; return the notebooks to grade and what
    the folders written by ``hw4grade collect`` hand over (provenance, students not collected).

    Raises a ``BadInput`` naming the argument: a PATH that is missing or unreadable or
    holds no notebook, an ``--out`` that is a file or cannot be created, a bad ``--rubric``,
    ``--mnist`` or ``--cluster-config``, an install without the reference, no sandbox.
    """
    inputs = [paths.input_path(path, "PATH") for path in args.paths]
    paths.output_folder(args.out, "--out")
    check_grading_arguments(args)
    if getattr(args, "cluster_config", None):
        args.cluster_config = paths.input_file(args.cluster_config, "--cluster-config")
    notebooks = find_notebooks(inputs)
    collected = collected_folders(inputs, notebooks)
    if not notebooks and not collected.uncollected:
        raise UsageError("PATH " + ", ".join(map(str, args.paths)) + ": no notebooks found")
    from grader.oracles.reference import reference_available

    if not reference_available():
        raise UsageError("grading a class needs the instructor's install (with the reference "
                         "package); students use hw4grade check")
    from grader.pipeline.sandbox import bubblewrap_problem

    problem = None if args.no_sandbox or getattr(args, "cluster", None) \
        else bubblewrap_problem()  # a cluster's workers check for themselves
    if problem:
        raise SandboxUnavailable(f"{problem}; submissions are only graded in a sandbox (pass "
                                 "--no-sandbox to grade without one, at your own risk)")
    return notebooks, collected


def run(args: argparse.Namespace) -> int:
    """Grade a batch; exit 0 when it completes (whatever the grades), 130 when interrupted."""
    if getattr(args, "dry_run", False):
        from grader.pipeline.backends.dask_cluster import print_dry_run

        return print_dry_run(args)
    quiet_tensorflow()
    notebooks, collected = check_arguments(args)
    workers = max(1, args.workers)
    out = absolute(args.out)
    try:
        backend = choose_backend(args, workers)
        with backend:
            gpus = backend.gpus() if args.device != Device.CPU else 0
            options = options_from_args(args, workers, gpus=gpus)
            options = replace(options, threads=backend.kernel_threads())
            out.mkdir(parents=True, exist_ok=True)
            with native_stderr_to(out / LOG_NAME):
                options.mnist_npz = prepare_mnist(args.mnist, out / ".cache")
                where = f"cluster {args.cluster}" if getattr(args, "cluster", None) \
                    else f"{workers} worker(s)"
                print(f"hw4grade: grading {len(notebooks)} notebook(s), mode {options.mode}, "
                      f"seed {options.seed}, device {options.device}, {where}; "
                      f"TensorFlow's log: {args.out / LOG_NAME}", file=sys.stderr)
                results = grade_batch(notebooks, out, options, workers, args.force, backend,
                                      provenance=collected.provenance,
                                      uncollected=collected.uncollected)
    except KeyboardInterrupt:
        return 130
    print("\n".join(closing_lines(results, args.out)))
    return 0


def closing_lines(results: list[SubmissionResult], out: Path) -> list[str]:
    """What ``grade`` prints at the end: a line per submission, where the gradebook, the
    class page and the feedback pages are, and, when any, the submissions flagged for
    review."""
    lines = [f"{submission_name(result.submission):<40} {verdict(result)}"
             for result in results]
    lines.append(f"gradebook: {out / 'gradebook.csv'}; the class at a glance: "
                 f"{out / CLASS_PAGE}")
    lines.append(f"feedback pages: {out / FEEDBACK_DIR}/; hand-graded items: fill in "
                 f"{out / MANUAL_TEMPLATE}, then run hw4grade gradebook {out} --manual FILE")
    flagged = flagged_line(results, str(out / "gradebook.csv"))
    return lines + ([flagged] if flagged else [])


def collected_folders(folders: list[Path], notebooks: dict[Path, str]) -> Handoff:
    """For each folder written by ``hw4grade collect`` (it holds ``collect.json``): grade the
    notebooks its manifest names (``notebooks`` is changed in place), with their provenance,
    and a 0 with the reason for each student not collected."""
    plan = Handoff()
    for folder in folders:
        manifest = read_manifest(folder) if folder.is_dir() else None
        if manifest is None:
            continue
        under = {path: label for path, label in notebooks.items() if folder in path.parents}
        for path in under:
            del notebooks[path]
        part = handoff(folder, manifest, under)
        notebooks.update(part.notebooks)
        plan.provenance.update(part.provenance)
        plan.uncollected.update(part.uncollected)
        if part.ignored:
            print(f"hw4grade grade: {len(part.ignored)} notebook(s) in {folder} that "
                  f"{MANIFEST} does not name are not graded", file=sys.stderr)
    return plan


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hw4grade grade`` for grading on Dask."""
    group = parser.add_argument_group("grading on a Dask cluster")
    group.add_argument("--cluster", metavar="ADDRESS|local|slurm",
                       help="grade on Dask: a running scheduler's address (tcp://host:8786), "
                            "'local' (a LocalCluster of --workers processes) or 'slurm' "
                            "(Slurm jobs through dask-jobqueue)")
    group.add_argument("--cluster-config", metavar="FILE", type=Path,
                       help="YAML file whose 'cluster:' section sets the options below")
    group.add_argument("--jobs", type=int, metavar="N", help="Slurm jobs to submit (default 1)")
    group.add_argument("--partition", help="Slurm partition")
    group.add_argument("--account", help="Slurm account")
    group.add_argument("--job-cores", type=int, metavar="N",
                       help="CPU cores per Slurm job (default 2)")
    group.add_argument("--job-memory", metavar="SIZE",
                       help="memory per Slurm job, e.g. 8GiB (default 8GiB)")
    group.add_argument("--walltime", metavar="HH:MM:SS",
                       help="Slurm job time limit (default 02:00:00)")
    group.add_argument("--gpus-per-job", type=int, metavar="N",
                       help="GPUs per Slurm job (--gres=gpu:N)")
    group.add_argument("--notebooks-per-job", type=int, metavar="N",
                       help="notebooks a Slurm job grades at once (default: one per GPU, "
                            "else one per two cores)")
    group.add_argument("--allowed-failures", type=int, metavar="N",
                       help="reruns of a task whose worker died, on a cluster hw4grade starts "
                            f"(default {DEFAULT_ALLOWED_FAILURES}; a running scheduler uses "
                            "its own distributed.scheduler.allowed-failures)")
    group.add_argument("--dry-run", action="store_true",
                       help="with --cluster slurm: print the job script and submit nothing")
