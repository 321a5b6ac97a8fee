"""GitHub Classroom's runner result for one submission: ``classroom_payload``, and
``classroom_base64``, the payload as the runner prints it for
``autograding-grading-reporter``. Only the autograded items are tests.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from grader.report.common import execution_seconds, full_marks, graded_items, item_text
from grader.result import ItemResult, ItemStatus, SubmissionResult, clean_result


def _classroom_test(result: SubmissionResult, item: ItemResult) -> dict[str, Any]:
    if result.error is not None or item.status == ItemStatus.ERROR:
        status = "error"
    else:
        status = "pass" if full_marks(item) else "fail"
    message = f"not graded: {result.error}" if result.error is not None else item_text(item)
    return {
        "name": item.id,
        "status": status,
        "score": 0.0 if result.error is not None else item.points,
        "message": message,
        "test_code": f"hw4grade rubric item {item.id}",
        "filename": result.submission,
        "line_no": 0,
        "duration": result.timing.get(item.id, 0.0),
    }


def classroom_payload(result: SubmissionResult) -> dict[str, Any]:
    """GitHub Classroom's runner result (``autograding-grading-reporter``), autograded items only.

    Each test's message is its item's message, integrity flags and how a convergence item
    was judged (``item_text``).
    The reporter records the sum of the tests' ``score`` against ``max_score``; its
    console summary counts passed tests. A result with an error has status ``error``
    and every test scores 0; with no items at all, one ``notebook`` test carries the error.
    Total: it shows ``clean_result`` of ``result``.
    """
    result = clean_result(result)
    tests = [_classroom_test(result, item) for item in graded_items(result)]
    if result.error is not None:
        status = "error"
        if not tests:
            tests = [{
                "name": "notebook", "status": "error", "score": 0.0,
                "message": result.error, "test_code": "hw4grade", "filename": result.submission,
                "line_no": 0, "duration": float(execution_seconds(result)),
            }]
    else:
        status = "pass" if all(test["status"] == "pass" for test in tests) else "fail"
    return {"version": 1, "status": status, "max_score": result.autograded_max(), "tests": tests}


def classroom_base64(result: SubmissionResult) -> str:
    """``classroom_payload`` as standard base64 of its UTF-8 JSON (the runner's output)."""
    text = json.dumps(classroom_payload(result), ensure_ascii=False, allow_nan=False)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")
