"""The terminal's reports: ``render_text`` for one submission, ``verdict`` for a line in a
list. Submission text is put on one line with its control characters removed."""

from __future__ import annotations

from collections.abc import Sequence

from grader.report.common import (
    FLAGGED,
    convergence_notes,
    flag_lines,
    one_line,
    points_label,
    shown_items,
    status_label,
    summary_lines,
)
from grader.result import SubmissionResult, clean_result


def verdict(result: SubmissionResult) -> str:
    """One line for a submission in a list (progress, summaries): the total, the items
    flagged for review, and the error when the notebook could not be graded."""
    result = clean_result(result)
    line = result.score_text()
    flagged = [item.id for item in result.items if item.flags]
    if flagged:
        line += f"; {FLAGGED}: {one_line(', '.join(flagged), 100)}"
    if result.error is None:
        return line
    return f"{line}; not graded: {one_line(result.error, 100)}"


def render_text(result: SubmissionResult) -> str:
    """A compact report for the terminal: a line per item (with its integrity flags and
    how a convergence item was judged below it), then cells, warnings, total."""
    result = clean_result(result)
    profile = f", {one_line(result.profile)}" if result.profile else ""
    header = (f"{one_line(result.submission)}  ({result.mode}, seed {result.seed}, "
              f"{result.device}{profile})")
    width = max((len(item.id) for item in result.items), default=0)
    lines = [header]
    for item in shown_items(result):
        points = points_label(item, pending="-").replace(" ", "")
        line = f"  {item.id:<{width}}  {points:>7}  {status_label(item)}"
        if item.message and not item.by_hand:
            line += f"  {one_line(item.message, 80)}"
        lines.append(line.rstrip())
        lines += [f"    {one_line(text, 400)}" for text in
                  (*flag_lines(item), *convergence_notes(item))]
    lines += [f"  {line}" for line in summary_lines(result)]
    lines.append(f"Total: {result.score_text()}")
    return "\n".join(lines) + "\n"


NAMED_FLAGGED = 10  # submissions a flagged line names; the rest are counted


def flagged_line(results: Sequence[SubmissionResult], gradebook: str) -> str | None:
    """The instructor's line about the submissions flagged for review, e.g. ``2 submissions
    flagged for review (integrity column of out/gradebook.csv): alice/HW4.ipynb,
    bob/HW4.ipynb``; None when nothing was flagged."""
    cleaned = (clean_result(result) for result in results)
    names = [one_line(result.submission) for result in cleaned if result.integrity]
    if not names:
        return None
    named = ", ".join(names[:NAMED_FLAGGED])
    if len(names) > NAMED_FLAGGED:
        named += f" and {len(names) - NAMED_FLAGGED} more"
    noun = "submission" if len(names) == 1 else "submissions"
    return (f"{len(names)} {noun} flagged for review (integrity column of "
            f"{one_line(gradebook, 1000)}): {named}")
