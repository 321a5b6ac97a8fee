"""The progress display of ``hw4grade collect``: students done, failed, time left.

Drawn by ``rich`` on standard error, with one line per finished student above the bar (so
a log without a terminal still says what happened to each); the bar itself is only drawn
on a terminal.
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

from grader.collect.manifest import Entry, Status


def entry_line(entry: Entry) -> str:
    """One line about a finished student: the commit collected, or the status and reason."""
    if entry.status is Status.COLLECTED:
        text = f"collected {entry.notebook} at {(entry.commit or '')[:12]} ({entry.commit_date})"
    else:
        text = entry.status.words + (f": {entry.reason}" if entry.reason else "")
    if entry.flags:
        text += f" [{len(entry.flags)} flag(s): {entry.flags[0]}]"
    return text


class CollectProgress:
    """A progress bar over the roster's rows (a context manager)."""

    def __init__(self, total: int, console: Console | None = None) -> None:
        self.console = console or Console(file=sys.stderr, highlight=False)
        self.total = total
        self.done = self.failed = 0
        self._bar = Progress(
            TextColumn("collecting"), BarColumn(), MofNCompleteColumn(),
            TextColumn("not collected {task.fields[failed]}"),
            TextColumn("elapsed"), TimeElapsedColumn(),
            TextColumn("left"), TimeRemainingColumn(),
            console=self.console, transient=False,
        )
        self._task = self._bar.add_task("collecting", total=total, failed=0)

    def __enter__(self) -> CollectProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._bar.stop()

    def finished(self, entry: Entry, reused: bool = False) -> None:
        """Count one finished student and print its line."""
        self.done += 1
        self.failed += entry.status is not Status.COLLECTED
        suffix = " (kept from the previous run)" if reused else ""
        self._bar.console.print(f"{self.done}/{self.total}  {entry.student}: "
                                f"{entry_line(entry)}{suffix}", markup=False)
        self._bar.update(self._task, advance=1, failed=self.failed)
