"""Gradescope's ``results.json`` for one submission (``gradescope_json``).

Only the autograded items are tests; Gradescope grades the others in its own interface.
"""

from __future__ import annotations

from typing import Any

from grader.report.common import (
    execution_seconds,
    footer_fields,
    full_marks,
    graded_items,
    item_text,
    summary_lines,
)
from grader.result import SubmissionResult, clean_result, format_points


def _by_hand_max(result: SubmissionResult) -> float:
    """The points of the items graded by hand."""
    return round(sum(item.max_points for item in result.items if item.by_hand), 4)


def gradescope_json(result: SubmissionResult) -> dict[str, Any]:
    """Gradescope's ``results.json`` for one submission.

    One test per autograded item (visible to the student; its output is the message, any
    integrity flags and how a convergence item was judged, ``item_text``). Items
    graded by hand are left out: Gradescope grades them in its own interface, and
    ``output`` says so. With ``result.error`` the score is 0, every test scores 0 and
    the error is in ``output``. Total: it shows ``clean_result`` of ``result``.
    """
    result = clean_result(result)
    tests = []
    for item in graded_items(result):
        score = 0.0 if result.error is not None else item.points
        output = "Not graded: see the error above." if result.error is not None \
            else item_text(item)
        tests.append({
            "name": item.id,
            "score": score,
            "max_score": item.max_points,
            "status": "passed" if result.error is None and full_marks(item) else "failed",
            "output": output,
            "visibility": "visible",
        })
    output = [f"Autograded score: {format_points(result.autograded_score())} / "
              f"{format_points(result.autograded_max())}"]
    if result.error is not None:
        output.append(f"The notebook could not be graded, so the score is 0:\n{result.error}")
    manual = [item for item in result.items if item.by_hand]
    if manual:
        names = ", ".join(item.id for item in manual)
        output.append(f"Not included here, graded by hand in Gradescope: {names} "
                      f"({format_points(_by_hand_max(result))} points).")
    output += summary_lines(result, with_error=False)
    output.append(" · ".join(f"{name} {value}" for name, value in footer_fields(result)))
    return {
        "score": result.autograded_score(),
        "execution_time": execution_seconds(result),
        "output": "\n".join(output),
        "output_format": "text",
        "tests": tests,
        "extra_data": {
            "submission": result.submission,
            "notebook_sha256": result.notebook_sha256,
            "grader_version": result.grader_version,
            "rubric_sha256": result.rubric_sha256,
        },
    }
