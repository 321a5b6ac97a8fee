"""The terminal's reports: ``render_text`` for one submission, ``verdict`` for a line in a
list. Submission text is put on one line with its control characters removed."""

from __future__ import annotations

from grader.report.common import one_line, points_label, shown_items, status_label, summary_lines
from grader.result import SubmissionResult, clean_result


def verdict(result: SubmissionResult) -> str:
    """One line for a submission in a list (progress, summaries): the total, and the error
    when the notebook could not be graded."""
    result = clean_result(result)
    if result.error is None:
        return result.score_text()
    return f"{result.score_text()}; not graded: {one_line(result.error, 100)}"


def render_text(result: SubmissionResult) -> str:
    """A compact report for the terminal: a line per item, then cells, warnings, total."""
    result = clean_result(result)
    profile = "" if result.profile == "tf2" else f", {result.profile} notebook"
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
    lines += [f"  {line}" for line in summary_lines(result)]
    lines.append(f"Total: {result.score_text()}")
    return "\n".join(lines) + "\n"
