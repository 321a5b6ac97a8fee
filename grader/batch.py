"""``hw4grade grade``: grade a class's notebooks into OUT/ (results, feedback, gradebook).

* Each result is written atomically the moment it is done, so an interrupted batch
  (Ctrl-C, a crash, a reboot) loses nothing: rerunning skips every submission whose result
  is still valid (same notebook bytes, rubric, grader version and mode).
* ``--workers N`` grades N submissions at once, each in a process of its own (and each
  notebook in a kernel of its own), with the CPU threads shared out and one GPU each
  where there are GPUs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path

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
from grader.result import SubmissionResult
from grader.rubric import RubricError

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


def _save(result: SubmissionResult, out: Path) -> None:
    report.write_result_json(result, out)
    report.write_feedback(result, out)


def _progress(done: int, total: int, result: SubmissionResult, started: float) -> None:
    name = report.submission_name(result.submission)
    verdict = f"error: {result.error[:80]}" if result.error else \
        f"{result.score:g}/{result.max_score:g}"
    elapsed = time.monotonic() - started
    bar = "#" * int(20 * done / total)
    print(f"[{bar:<20}] {done}/{total}  {name}: {verdict}  ({elapsed:.0f} s so far)",
          file=sys.stderr, flush=True)


def grade_batch(notebooks: dict[Path, str], out: Path, options: Options, workers: int,
                force: bool = False) -> list[SubmissionResult]:
    """Grade every notebook (path -> label) not already graded; return all results."""
    previous = {} if force else _previous_results(out)
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
    started = time.monotonic()
    gpus = count_gpus() if options.device == "gpu" else 0
    try:
        if workers <= 1:
            from grader.oracle import load_oracle

            oracle = load_oracle()
            for done, (path, label) in enumerate(todo.items(), start=1):
                result = grade_notebook(path, options, oracle, label)
                _save(result, out)
                results[label] = result
                _progress(done, len(todo), result, started)
        else:
            _grade_parallel(todo, out, options, workers, gpus, results, started)
    except KeyboardInterrupt:
        print("\nhw4grade: interrupted; finished results are kept, rerun to resume",
              file=sys.stderr)
        raise
    finally:
        finished = [results[label] for label in notebooks.values() if label in results]
        report.write_gradebook(finished, out / "gradebook.csv", options.rubric)
    return finished


def _grade_parallel(todo: dict[Path, str], out: Path, options: Options, workers: int, gpus: int,
                    results: dict[str, SubmissionResult], started: float) -> None:
    """Grade in a pool of worker processes. A worker that dies breaks the pool: the
    submissions it took down are graded once more in a fresh pool, and whatever fails again
    is recorded as a failure of the grader (marked for retry)."""
    progress = {"done": 0, "total": len(todo)}
    lost = _grade_round(todo, out, options, workers, gpus, results, started, progress)
    if lost:
        print(f"hw4grade: a grading process died; grading {len(lost)} submission(s) again",
              file=sys.stderr)
        lost = _grade_round(lost, out, options, workers, gpus, results, started, progress)
    for path, label in lost.items():
        result = failed_result(label, options, _sha256_or_none(path),
                               "the grading process died twice on this submission")
        result.retry = True
        _record(result, out, results, label, progress, started)


def _sha256_or_none(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


def _record(result: SubmissionResult, out: Path, results: dict[str, SubmissionResult],
            label: str, progress: dict[str, int], started: float) -> None:
    _save(result, out)
    results[label] = result
    progress["done"] += 1
    _progress(progress["done"], progress["total"], result, started)


def _grade_round(todo: dict[Path, str], out: Path, options: Options, workers: int, gpus: int,
                 results: dict[str, SubmissionResult], started: float,
                 progress: dict[str, int]) -> dict[Path, str]:
    """One pool's worth of grading; returns the submissions lost to a broken pool."""
    context = multiprocessing.get_context("spawn")
    pending: dict[Future, tuple[Path, str]] = {}
    lost: dict[Path, str] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=_init_worker) as pool:
        try:
            for number, (path, label) in enumerate(todo.items()):
                task_options = replace(options, gpu_index=number % gpus if gpus else None)
                future = pool.submit(_grade_in_worker, str(path), label, task_options)
                pending[future] = (path, label)
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    path, label = pending.pop(future)
                    try:
                        result = SubmissionResult.from_dict(future.result())
                    except BrokenProcessPool:
                        lost[path] = label
                        continue
                    except Exception as error:  # the grading itself failed: record it, go on
                        result = failed_result(label, options, _sha256_or_none(path),
                                               f"the grading process failed ({error!r})")
                        result.retry = True
                    _record(result, out, results, label, progress, started)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return lost


def run(args: argparse.Namespace) -> int:
    """Grade a batch; exit 0 when it completes (whatever the grades), 130 when interrupted."""
    notebooks = find_notebooks(args.paths)
    if not notebooks:
        print("hw4grade grade: no notebooks found in " + ", ".join(args.paths), file=sys.stderr)
        return 2
    from grader.oracle import reference_available

    if not reference_available():
        print("hw4grade grade: grading a class needs the instructor's install (with the "
              "reference package); students use hw4grade check", file=sys.stderr)
        return 2
    workers = max(1, args.workers)
    try:
        options = options_from_args(args, workers)
    except RubricError as error:
        print(f"hw4grade grade: {error}", file=sys.stderr)
        return 2
    options = replace(options, threads=default_threads(workers))
    from grader.sandbox import bubblewrap_problem

    problem = bubblewrap_problem() if options.sandbox else None
    if problem:
        print(f"hw4grade grade: {problem}; submissions are only graded in a sandbox (pass "
              "--no-sandbox to grade without one, at your own risk)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    options.mnist_npz = prepare_mnist(args.mnist, args.out / ".cache")
    print(f"hw4grade: grading {len(notebooks)} notebook(s), mode {options.mode}, "
          f"seed {options.seed}, "
          f"device {options.device}, {workers} worker(s)", file=sys.stderr)
    try:
        results = grade_batch(notebooks, args.out, options, workers, args.force)
    except KeyboardInterrupt:
        return 130
    for result in results:
        name = report.submission_name(result.submission)
        verdict = f"ERROR {result.error}" if result.error else \
            f"{result.score:g} / {result.max_score:g}"
        print(f"{name:<40} {verdict}")
    print(f"gradebook: {args.out / 'gradebook.csv'}")
    return 0
