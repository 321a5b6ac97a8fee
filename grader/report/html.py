"""The student's feedback page as one self-contained HTML document (``render_html``).

Rendered from ``templates/feedback.html.j2`` by the autoescaping Jinja2 environment of
``grader.report.templating``: every value from the result is escaped by the engine.
Styles are inline, images are ``data:`` URIs, and a Content-Security-Policy forbids
loading anything from elsewhere. ``grader.report.feedback`` writes it next to its Markdown
twin.
"""

from __future__ import annotations

from grader.report.common import feedback_page
from grader.report.templating import render
from grader.result import SubmissionResult, clean_result

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto;
       padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #c8c8c8; padding: .3rem .6rem; text-align: left; vertical-align: top; }
td.num { text-align: right; white-space: nowrap; }
pre { background: #f4f4f4; padding: .6rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.passed { color: #1a7f37; } .failed, .error { color: #b3261e; }
.skipped, .manual { color: #7a5d00; }
.banner { border: 2px solid #b3261e; padding: .2rem 1rem; }
.flag { border-left: 4px solid #7a5d00; background: #fff8e1; padding: .1rem .8rem; }
.note { color: #555; }
figure { display: inline-block; margin: .5rem; }
img { max-width: 100%; image-rendering: pixelated; }
footer { margin-top: 2rem; padding-top: .5rem; border-top: 1px solid #c8c8c8; color: #555; }
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render_html(result: SubmissionResult) -> str:
    """The student's feedback page as one self-contained HTML document.

    Styles are inline, images are ``data:`` URIs, nothing is loaded from elsewhere (a
    Content-Security-Policy forbids it too), and all submission text is escaped.
    """
    result = clean_result(result)  # whatever the result holds, the page is valid text
    return render("feedback.html.j2", page=feedback_page(result), css=_CSS, csp=_CSP)
