"""The student's feedback page as Markdown (``render_markdown``).

Rendered from ``templates/feedback.md.j2``. Every piece of submission text is made inert by
the template's filters (``grader.report.templating``): escaped, in a code span, or in a
fenced block no line of it can close. Images are only named; the HTML page
(``grader.report.html``) shows them. ``grader.report.feedback`` writes both pages.
"""

from __future__ import annotations

from grader.report.common import feedback_page
from grader.report.templating import render
from grader.result import SubmissionResult, clean_result


def render_markdown(result: SubmissionResult) -> str:
    """The student's feedback page as Markdown (images are only named; see the HTML)."""
    result = clean_result(result)  # whatever the result holds, the page is valid text
    return render("feedback.md.j2", page=feedback_page(result))
