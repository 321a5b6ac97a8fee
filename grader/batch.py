"""``hw4grade grade``: grade a class's notebooks into OUT/ (results, feedback, gradebook).

* Each result is written atomically the moment it is done, so an interrupted batch
  (Ctrl-C, a crash, a reboot) loses nothing: rerunning skips every submission whose result
  is still valid (same notebook bytes, rubric, grader version and mode).
* ``--workers N`` grades N submissions at once, each in a process of its own (and each
  notebook in a kernel of its own), with the CPU threads shared out and one GPU each
  where there are GPUs.
* ``--cluster ADDRESS|local|slurm`` grades them on a Dask cluster instead (``grader.cluster``).

Where the notebooks are graded is a :class:`Backend`: in this process, in a local process
pool, or on Dask; :func:`choose_backend` is the one place that picks it. Every backend calls
the same ``grade_notebook`` and hands each result back as it arrives; this module saves it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from grader import __version__, report
from grader.grade import (
    Options,
    add_grading_arguments,
    count_gpus,
    default_threads,
    failed_result,
    grade_notebook,
    options_from_args,
    prepare_mnist,
)
from grader.load import file_sha256, find_notebooks
from grader.progress import BatchProgress
from grader.quiet import LOG_NAME, native_stderr_to, quiet_tensorflow
from grader.result import SubmissionResult
from grader.rubric import RubricError

Deliver = Callable[[SubmissionResult], None]

_worker_oracle = None


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
    from grader.cluster import add_cluster_arguments

    add_cluster_arguments(parser)


def still_valid(previous: SubmissionResult, sha256: str, options: Options) -> bool:
    """True when an earlier result can stand: same notebook, rubric, grader version and mode
    (and the profile asked for, when ``--profile`` names one)."""
    profile_ok = options.profile == "auto" or previous.profile.split("-")[0] == options.profile
    return not previous.retry and previous.notebook_sha256 == sha256 \
        and previous.rubric_sha256 == options.rubric.text_sha256 \
        and previous.grader_version == __version__ and previous.mode == options.mode \
        and profile_ok


def _previous_results(out: Path) -> dict[str, SubmissionResult]:
    problems: list[str] = []
    return {report.submission_name(r.submission): r
            for r in report.read_results(out, problems=problems)}


def _init_worker() -> None:
    global _worker_oracle
    from grader.oracle import load_oracle

    _worker_oracle = load_oracle()


def _grade_in_worker(path: str, label: str, options: Options) -> dict:
    return grade_notebook(path, options, _worker_oracle, label).to_dict()


def _save(result: SubmissionResult, out: Path,
          manual: report.ManualScores | None = None) -> SubmissionResult:
    """Apply the hand-graded scores merged so far, write the result and its feedback pages;
    return the result as written."""
    points = (manual or {}).get(result.submission)
    if points:
        result = report.apply_manual_scores(result, points)
    report.write_result_json(result, out)
    report.write_feedback(result, out)
    return result


class Backend(Protocol):
    """Where a batch's notebooks are graded (this process, a process pool, a Dask cluster).

    Used as a context manager around the batch (a cluster is started or joined on entry and
    left on exit); ``grade`` calls ``deliver`` with each result the moment it is known.
    """

    def __enter__(self) -> Backend: ...

    def __exit__(self, *exc_info) -> None: ...

    def gpus(self) -> int:
        """GPUs the backend can give notebooks (0: none)."""

    def kernel_threads(self) -> int | None:
        """CPU threads per kernel (None: each worker decides from its own cores)."""

    def grade(self, todo: dict[Path, str], options: Options, deliver: Deliver,
              progress: BatchProgress) -> None:
        """Grade every notebook of ``todo`` (path -> label), delivering each result."""


class _ThisMachine:
    """What the local backends share: nothing to start or stop, this machine's GPUs."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def gpus(self) -> int:
        """GPUs visible on this machine."""
        return count_gpus()


class SerialBackend(_ThisMachine):
    """One notebook after the other, in this process."""

    def kernel_threads(self) -> int | None:
        """Every core of this machine."""
        return default_threads(1)

    def grade(self, todo: dict[Path, str], options: Options, deliver: Deliver,
              progress: BatchProgress) -> None:
        """Grade the notebooks in order."""
        from grader.oracle import load_oracle

        oracle = load_oracle()
        for path, label in todo.items():
            progress.set_running(1)
            deliver(grade_notebook(path, options, oracle, label))


class ProcessPoolBackend(_ThisMachine):
    """``workers`` notebooks at once, each in a process of a local pool."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def kernel_threads(self) -> int | None:
        """This machine's cores shared out among the workers."""
        return default_threads(self.workers)

    def grade(self, todo: dict[Path, str], options: Options, deliver: Deliver,
              progress: BatchProgress) -> None:
        """Grade the notebooks in a pool of ``workers`` processes. A worker that dies breaks
        the pool: the submissions it took down are graded once more in a fresh pool, and
        whatever is lost again is recorded as a failure of the grader (marked for retry)."""
        lost = self._grade_round(todo, options, deliver, progress)
        if lost:
            print(f"hw4grade: a grading process died; grading {len(lost)} submission(s) again",
                  file=sys.stderr)
            lost = self._grade_round(lost, options, deliver, progress)
        for path, label in lost.items():
            result = failed_result(label, options, _sha256_or_none(path),
                                   "the grading process died twice on this submission")
            result.retry = True
            deliver(result)

    def _grade_round(self, todo: dict[Path, str], options: Options, deliver: Deliver,
                     progress: BatchProgress) -> dict[Path, str]:
        """One pool's worth of grading; returns the submissions lost to a broken pool."""
        gpus = count_gpus() if options.device == "gpu" else 0
        context = multiprocessing.get_context("spawn")
        pending: dict[Future, tuple[Path, str]] = {}
        lost: dict[Path, str] = {}
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=context,
                                 initializer=_init_worker) as pool:
            try:
                for number, (path, label) in enumerate(todo.items()):
                    task_options = replace(options, gpu_index=number % gpus if gpus else None)
                    future = pool.submit(_grade_in_worker, str(path), label, task_options)
                    pending[future] = (path, label)
                while pending:
                    progress.set_running(min(self.workers, len(pending)))
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        path, label = pending.pop(future)
                        try:
                            result = SubmissionResult.from_dict(future.result())
                        except BrokenProcessPool:
                            lost[path] = label
                            continue
                        except Exception as error:  # the grading failed: record it, go on
                            result = failed_result(label, options, _sha256_or_none(path),
                                                   f"the grading process failed ({error!r})")
                            result.retry = True
                        deliver(result)
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        return lost


def _sha256_or_none(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


def choose_backend(args: argparse.Namespace, workers: int) -> Backend:
    """The backend the command line asks for: Dask with ``--cluster``, else local processes."""
    if getattr(args, "cluster", None):
        from grader.cluster import dask_backend

        return dask_backend(args, workers)
    return ProcessPoolBackend(workers) if workers > 1 else SerialBackend()


def grade_batch(notebooks: dict[Path, str], out: Path, options: Options, workers: int = 1,
                force: bool = False, backend: Backend | None = None) -> list[SubmissionResult]:
    """Grade every notebook (path -> label) not already graded; return all results.

    ``backend`` grades them (default: this process, or a pool of ``workers`` processes);
    each result is saved the moment it arrives, and the gradebook is written at the end,
    also when the batch is interrupted.
    """
    backend = backend or (ProcessPoolBackend(workers) if workers > 1 else SerialBackend())
    previous = {} if force else _previous_results(out)
    try:
        manual = report.read_manual_record(out, options.rubric)
    except report.ManualScoreError as error:  # a damaged record: say so, never lose it
        print(f"hw4grade: hand-graded scores not applied: {error}", file=sys.stderr)
        manual = {}
    results: dict[str, SubmissionResult] = {}
    todo: dict[Path, str] = {}
    for path, label in notebooks.items():
        old = previous.get(report.submission_name(label))
        if old is not None and path.is_file() and still_valid(old, file_sha256(path), options):
            results[label] = old
        else:
            todo[path] = label
    if results:
        print(f"hw4grade: {len(results)} result(s) still valid, {len(todo)} to grade",
              file=sys.stderr)
    try:
        with BatchProgress(len(todo)) as progress:

            def deliver(result: SubmissionResult) -> None:
                result = _save(result, out, manual)
                results[result.submission] = result
                progress.finished(result)

            backend.grade(todo, options, deliver, progress)
    except KeyboardInterrupt:
        print("\nhw4grade: interrupted; finished results are kept, rerun to resume",
              file=sys.stderr)
        raise
    finally:
        finished = [results[label] for label in notebooks.values() if label in results]
        report.write_gradebook(finished, out / "gradebook.csv", options.rubric)
        report.write_manual_template(finished, out, options.rubric, manual)
    return finished


def absolute(path: str | os.PathLike[str] | None) -> Path | None:
    """``path`` made absolute against the current folder (None stays None): every path
    handed to a kernel, a worker or a subprocess must not depend on where it runs."""
    return None if path is None else Path(os.path.abspath(os.fspath(path)))


def run(args: argparse.Namespace) -> int:
    """Grade a batch; exit 0 when it completes (whatever the grades), 130 when interrupted."""
    if getattr(args, "dry_run", False):
        from grader.cluster import print_dry_run

        return print_dry_run(args)
    quiet_tensorflow()
    notebooks = find_notebooks([absolute(path) for path in args.paths])
    if not notebooks:
        print("hw4grade grade: no notebooks found in " + ", ".join(args.paths), file=sys.stderr)
        return 2
    from grader.oracle import reference_available

    if not reference_available():
        print("hw4grade grade: grading a class needs the instructor's install (with the "
              "reference package); students use hw4grade check", file=sys.stderr)
        return 2
    from grader.sandbox import bubblewrap_problem

    problem = None if args.no_sandbox or getattr(args, "cluster", None) \
        else bubblewrap_problem()  # a cluster's workers check for themselves
    if problem:
        print(f"hw4grade grade: {problem}; submissions are only graded in a sandbox (pass "
              "--no-sandbox to grade without one, at your own risk)", file=sys.stderr)
        return 2
    workers = max(1, args.workers)
    out = absolute(args.out)
    args.rubric, args.mnist = absolute(args.rubric), absolute(args.mnist)
    from grader.cluster import ClusterError

    try:
        backend = choose_backend(args, workers)
        with backend:
            gpus = backend.gpus() if args.device != "cpu" else 0
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
                results = grade_batch(notebooks, out, options, workers, args.force, backend)
    except (RubricError, ClusterError) as error:
        print(f"hw4grade grade: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    for result in results:
        name = report.submission_name(result.submission)
        print(f"{name:<40} {report.verdict(result)}")
    print(f"gradebook: {args.out / 'gradebook.csv'}")
    print(f"feedback pages: {args.out / report.FEEDBACK_DIR}/; hand-graded items: fill in "
          f"{args.out / report.MANUAL_TEMPLATE}, then run "
          f"hw4grade gradebook {args.out} --manual FILE")
    return 0
