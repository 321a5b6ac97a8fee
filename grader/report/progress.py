"""The progress display of ``hw4grade grade``: done / running / failed and the time left.

Drawn by ``rich`` on standard error. Every finished submission also gets one line above the
bar (its name and score, or its error), so a log of a batch run without a terminal still
says what happened to each notebook; the live bar itself is only drawn on a terminal.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from grader.report import store, text
from grader.result import SubmissionResult


def failed(result: SubmissionResult) -> bool:
    """True when the notebook could not be graded (its error is set, or it awaits a retry)."""
    return result.error is not None or result.retry


def verdict(result: SubmissionResult) -> str:
    """One line about a finished submission, in the words of every report (the score rule
    of ``SubmissionResult.score_text``), saying when it will be retried."""
    return text.verdict(result) + (" (will be retried)" if result.retry else "")


class BatchProgress:
    """A progress bar over the submissions of one batch (a context manager)."""

    def __init__(self, total: int, console: Console | None = None) -> None:
        self.console = console or Console(file=sys.stderr, highlight=False)
        self.total = total
        self.done = self.running = self.failed = 0
        self._bar = Progress(
            TextColumn("grading"), BarColumn(), MofNCompleteColumn(),
            TextColumn("running {task.fields[running]}  failed {task.fields[failed]}"),
            TextColumn("elapsed"), TimeElapsedColumn(),
            TextColumn("left"), TimeRemainingColumn(),
            console=self.console, transient=False,
        )
        self._task = self._bar.add_task("grading", total=total, running=0, failed=0)

    def __enter__(self) -> BatchProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._bar.stop()

    def set_running(self, running: int) -> None:
        """Say how many submissions are being graded right now."""
        self.running = max(0, min(running, self.total - self.done))
        self._bar.update(self._task, running=self.running)

    def finished(self, result: SubmissionResult) -> None:
        """Count one finished submission and print its line."""
        self.done += 1
        self.failed += failed(result)
        self.running = max(0, min(self.running, self.total - self.done))
        name = store.submission_name(result.submission)
        self._bar.console.print(f"{self.done}/{self.total}  {name}: {verdict(result)}",
                                markup=False)
        self._bar.update(self._task, advance=1, running=self.running, failed=self.failed)
