"""``hw4grade grade``: grade a class's notebooks into OUT/ (results, feedback, gradebook).

* Each result is written atomically the moment it is done, so an interrupted batch
  (Ctrl-C, a crash, a reboot) loses nothing: rerunning skips every submission whose result
  is still valid (same notebook bytes, rubric, grader version and mode).
* ``--workers N`` grades N submissions at once, each in a process of its own (and each
  notebook in a kernel of its own), with the CPU threads shared out and one GPU each
  where there are GPUs.
* ``--cluster ADDRESS|local|slurm`` grades them on a Dask cluster instead
  (``grader.pipeline.backends.dask_cluster``).

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

from grader import __version__
from grader.frameworks import AUTO
from grader.pipeline.devices import Device, count_gpus
from grader.pipeline.grade_one import (
    Options,
    default_threads,
    failed_result,
    grade_notebook,
)
from grader.pipeline.lifetime import die_with_parent
from grader.pipeline.load import file_sha256, named_folder, submission_sha256
from grader.report.classpage import ClassPageWriter
from grader.report.feedback import feedback_paths, write_feedback
from grader.report.gradebook import write_gradebook
from grader.report.manual import (
    ManualScoreError,
    ManualScores,
    apply_manual_scores,
    read_manual_record,
    write_manual_template,
)
from grader.report.progress import BatchProgress
from grader.report.store import read_results, remove_result, submission_name, write_result_json
from grader.result import Provenance, SubmissionResult

Deliver = Callable[[SubmissionResult], None]

_worker_oracle = None


def still_valid(previous: SubmissionResult, sha256: str | None, options: Options) -> bool:
    """True when an earlier result can stand: same notebook, rubric, grader version and mode
    (and the profile asked for, when ``--profile`` names one and the earlier grade had
    one: a file refused before any framework was chosen is refused the same way)."""
    profile_ok = options.profile == AUTO or not previous.profile \
        or previous.profile.split("-")[0] == options.profile
    return not previous.retry and sha256 is not None and previous.notebook_sha256 == sha256 \
        and previous.rubric_sha256 == options.rubric.text_sha256 \
        and previous.grader_version == __version__ and previous.mode == options.mode \
        and profile_ok


def _previous_results(out: Path) -> dict[str, SubmissionResult]:
    problems: list[str] = []
    return {submission_name(r.submission): r
            for r in read_results(out, problems=problems)}


def _init_worker(driver_pid: int) -> None:
    global _worker_oracle
    from grader.oracles.choose import load_oracle

    die_with_parent(driver_pid)  # a killed driver takes its workers (and their kernels)

    _worker_oracle = load_oracle()


def _grade_in_worker(path: str, label: str, options: Options) -> dict:
    return grade_notebook(path, options, _worker_oracle, label).to_dict()


def _save(result: SubmissionResult, out: Path,
          manual: ManualScores | None = None) -> SubmissionResult:
    """Apply the hand-graded scores merged so far, write the result and its feedback pages;
    return the result as written."""
    points = (manual or {}).get(result.submission)
    if points:
        result = apply_manual_scores(result, points)
    write_result_json(result, out)
    write_feedback(result, out)
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
        from grader.oracles.choose import load_oracle

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
        gpus = count_gpus() if options.device == Device.GPU else 0
        context = multiprocessing.get_context("spawn")
        pending: dict[Future, tuple[Path, str]] = {}
        lost: dict[Path, str] = {}
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=context,
                                 initializer=_init_worker, initargs=(os.getpid(),)) as pool:
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
        from grader.pipeline.backends.dask_cluster import dask_backend

        return dask_backend(args, workers)
    return ProcessPoolBackend(workers) if workers > 1 else SerialBackend()


def not_collected_result(label: str, reason: str, options: Options) -> SubmissionResult:
    """The result of a student ``hw4grade collect`` found nothing to grade for: 0, reason."""
    return failed_result(label, options, None, reason)


def drop_superseded(out: Path, provenance: dict[str, Provenance]) -> None:
    """Remove the results and pages of a collected student filed under another label than
    the current one (a notebook renamed, or a student collected at last)."""
    current = {source.student: label for label, source in provenance.items()}
    for result in read_results(out, problems=[]):
        student = result.provenance.student if result.provenance else None
        if student in current and result.submission != current[student]:
            remove_result(out, result.submission)


def grade_batch(notebooks: dict[Path, str], out: Path, options: Options, workers: int = 1,
                force: bool = False, backend: Backend | None = None,
                provenance: dict[str, Provenance] | None = None,
                uncollected: dict[str, str] | None = None) -> list[SubmissionResult]:
    """Grade every notebook (path -> label) not already graded; return all results.

    ``backend`` grades them (default: this process, or a pool of ``workers`` processes);
    each result is saved the moment it arrives, and the gradebook is written at the end,
    also when the batch is interrupted. From a folder ``hw4grade collect`` wrote,
    ``provenance`` (label -> where it came from) goes into each result, and every label of
    ``uncollected`` gets a result of 0 with its reason (label -> reason).
    """
    provenance, uncollected = provenance or {}, uncollected or {}
    drop_superseded(out, provenance)
    backend = backend or (ProcessPoolBackend(workers) if workers > 1 else SerialBackend())
    previous = {} if force else _previous_results(out)
    try:
        manual = read_manual_record(out, options.rubric)
    except ManualScoreError as error:  # a damaged record: say so, never lose it
        print(f"hw4grade: hand-graded scores not applied: {error}", file=sys.stderr)
        manual = {}
    results: dict[str, SubmissionResult] = {}
    todo: dict[Path, str] = {}
    for path, label in notebooks.items():
        old = previous.get(submission_name(label))
        sha256 = None if old is None else \
            submission_sha256(path, named_folder(path, label), options.profile)
        if old is not None and still_valid(old, sha256, options):
            results[label] = old
            if old.provenance != provenance.get(label):  # the same bytes, from another commit
                old.provenance = provenance.get(label)
                results[label] = _save(old, out, manual)
            if not all(page.is_file() for page in feedback_paths(old, out)):
                write_feedback(old, out)  # a run stopped before its pages were written
        else:
            todo[path] = label
    if results:
        print(f"hw4grade: {len(results)} result(s) still valid, {len(todo)} to grade",
              file=sys.stderr)
    for label, reason in uncollected.items():
        result = not_collected_result(label, reason, options)
        result.provenance = provenance.get(label)
        results[label] = _save(result, out, manual)
    if uncollected:
        print(f"hw4grade: {len(uncollected)} student(s) not collected: 0 with the reason",
              file=sys.stderr)
    class_page = ClassPageWriter(out, options.rubric)
    try:
        with BatchProgress(len(todo)) as progress:

            def deliver(result: SubmissionResult) -> None:
                result.provenance = provenance.get(result.submission, result.provenance)
                result = _save(result, out, manual)
                results[result.submission] = result
                progress.finished(result)
                _class_page(class_page.update, list(results.values()))

            backend.grade(todo, options, deliver, progress)
    except KeyboardInterrupt:
        print("\nhw4grade: interrupted; finished results are kept, rerun to resume",
              file=sys.stderr)
        raise
    finally:
        labels = [*notebooks.values(), *uncollected]
        finished = [results[label] for label in labels if label in results]
        write_gradebook(finished, out / "gradebook.csv", options.rubric)
        write_manual_template(finished, out, options.rubric, manual)
        _class_page(class_page.final, finished)
    return finished


def _class_page(write: Callable[[list[SubmissionResult]], None],
                results: list[SubmissionResult]) -> None:
    """Rewrite the class page; a failure to draw it is said, and never stops the batch."""
    try:
        write(results)
    except Exception as error:  # the page is a summary: grading goes on without it
        print(f"hw4grade: the class page could not be written ({error!r}); "
              "hw4grade report OUT rebuilds it", file=sys.stderr)
