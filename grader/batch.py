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
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
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
from grader.quiet import LOG_NAME, native_stderr_to, quiet_tensorflow
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


def _progress(done: int, total: int, result: SubmissionResult, started: float) -> None:
    name = report.submission_name(result.submission)
    verdict = report.verdict(result)
    elapsed = time.monotonic() - started
    bar = "#" * int(20 * done / total)
    print(f"[{bar:<20}] {done}/{total}  {name}: {verdict}  ({elapsed:.0f} s so far)",
          file=sys.stderr, flush=True)


def grade_batch(notebooks: dict[Path, str], out: Path, options: Options, workers: int,
                force: bool = False) -> list[SubmissionResult]:
    """Grade every notebook (path -> label) not already graded; return all results."""
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
    started = time.monotonic()
    gpus = count_gpus() if options.device == "gpu" else 0
    try:
        if workers <= 1:
            from grader.oracle import load_oracle

            oracle = load_oracle()
            for done, (path, label) in enumerate(todo.items(), start=1):
                result = _save(grade_notebook(path, options, oracle, label), out, manual)
                results[label] = result
                _progress(done, len(todo), result, started)
        else:
            _grade_parallel(todo, out, options, workers, gpus, results, started, manual)
    except KeyboardInterrupt:
        print("\nhw4grade: interrupted; finished results are kept, rerun to resume",
              file=sys.stderr)
        raise
    finally:
        finished = [results[label] for label in notebooks.values() if label in results]
        report.write_gradebook(finished, out / "gradebook.csv", options.rubric)
        report.write_manual_template(finished, out, options.rubric, manual)
    return finished


def _grade_parallel(todo: dict[Path, str], out: Path, options: Options, workers: int, gpus: int,
                    results: dict[str, SubmissionResult], started: float,
                    manual: report.ManualScores) -> None:
    context = multiprocessing.get_context("spawn")
    pending: dict[Future, tuple[Path, str]] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=_init_worker) as pool:
        try:
            for number, (path, label) in enumerate(todo.items()):
                task_options = replace(options, gpu_index=number % gpus if gpus else None)
                future = pool.submit(_grade_in_worker, str(path), label, task_options)
                pending[future] = (path, label)
            done = 0
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    path, label = pending.pop(future)
                    try:
                        result = SubmissionResult.from_dict(future.result())
                    except Exception as error:  # a worker died: record it, go on
                        result = failed_result(label, options, file_sha256(path),
                                               f"the grading process failed ({error!r})")
                        result.retry = True
                    result = _save(result, out, manual)
                    results[label] = result
                    done += 1
                    _progress(done, len(todo), result, started)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def absolute(path: str | os.PathLike[str] | None) -> Path | None:
    """``path`` made absolute against the current folder (None stays None): every path
    handed to a kernel, a worker or a subprocess must not depend on where it runs."""
    return None if path is None else Path(os.path.abspath(os.fspath(path)))


def run(args: argparse.Namespace) -> int:
    """Grade a batch; exit 0 when it completes (whatever the grades), 130 when interrupted."""
    quiet_tensorflow()
    paths = [absolute(path) for path in args.paths]
    notebooks = find_notebooks(paths)
    if not notebooks:
        print("hw4grade grade: no notebooks found in " + ", ".join(args.paths), file=sys.stderr)
        return 2
    from grader.oracle import reference_available

    if not reference_available():
        print("hw4grade grade: grading a class needs the instructor's install (with the "
              "reference package); students use hw4grade check", file=sys.stderr)
        return 2
    workers = max(1, args.workers)
    out = absolute(args.out)
    args.rubric, args.mnist = absolute(args.rubric), absolute(args.mnist)
    try:
        options = options_from_args(args, workers)
    except RubricError as error:
        print(f"hw4grade grade: {error}", file=sys.stderr)
        return 2
    options = replace(options, threads=default_threads(workers))
    out.mkdir(parents=True, exist_ok=True)
    with native_stderr_to(out / LOG_NAME):
        options.mnist_npz = prepare_mnist(args.mnist, out / ".cache")
        print(f"hw4grade: grading {len(notebooks)} notebook(s), mode {options.mode}, "
              f"seed {options.seed}, device {options.device}, {workers} worker(s); "
              f"TensorFlow's log: {args.out / LOG_NAME}", file=sys.stderr)
        try:
            results = grade_batch(notebooks, out, options, workers, args.force)
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
