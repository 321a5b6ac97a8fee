"""The student's feedback page as one self-contained HTML document (``render_html``).

Styles are inline, images are ``data:`` URIs, a Content-Security-Policy forbids loading
anything from elsewhere, and all submission text is escaped. ``grader.report.feedback``
writes it next to its Markdown twin.
"""

from __future__ import annotations

from html import escape

from grader.report.common import (
    BUDGET_TITLE,
    budget_cells,
    budget_note,
    cell_number,
    detail_items,
    failed_cells,
    footer_fields,
    item_images,
    points_label,
    shown_items,
    skipped_cells,
    status_label,
)
from grader.result import CellResult, ItemResult, SubmissionResult, clean_result

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
figure { display: inline-block; margin: .5rem; }
img { max-width: 100%; image-rendering: pixelated; }
footer { margin-top: 2rem; padding-top: .5rem; border-top: 1px solid #c8c8c8; color: #555; }
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _html_images(item: ItemResult) -> list[str]:
    out = []
    for caption, data in item_images(item):
        body = (
            f'<img src="data:image/png;base64,{data}" alt="{_e(caption)}">'
            if data is not None
            else "<p>(this image could not be shown)</p>"
        )
        out.append(f"<figure>{body}<figcaption>{_e(caption)}</figcaption></figure>")
    return out


def _html_items_table(result: SubmissionResult) -> list[str]:
    out = ["<table>", "<tr><th>Item</th><th>Points</th><th>Status</th></tr>"]
    for item in shown_items(result):
        out.append(
            f'<tr><td><code>{_e(item.id)}</code></td><td class="num">{_e(points_label(item))}'
            f'</td><td class="{_e(item.status)}">{_e(status_label(item))}</td></tr>'
        )
    return [*out, "</table>"]


def _html_cells_table(cells: list[CellResult]) -> list[str]:
    out = ["<table>", "<tr><th>Cell</th><th>Status</th><th>Error</th><th>Message</th></tr>"]
    for cell in cells:
        out.append(
            f'<tr><td class="num">{_e(cell_number(cell))}</td>'
            f'<td class="error">{_e(cell.status)}</td>'
            f"<td>{_e(cell.error_name or '')}</td>"
            f"<td><pre>{_e(cell.error_message or '')}</pre></td></tr>"
        )
    return [*out, "</table>"]


def render_html(result: SubmissionResult) -> str:
    """The student's feedback page as one self-contained HTML document.

    Styles are inline, images are ``data:`` URIs, nothing is loaded from elsewhere (a
    Content-Security-Policy forbids it too), and all submission text is escaped.
    """
    result = clean_result(result)  # whatever the result holds, the page is valid text
    title = f"HW4 feedback: {_e(result.submission)}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{title}</title><style>{_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
    ]
    if result.error is not None:
        out += [
            '<div class="banner"><p><strong>Your notebook could not be graded</strong>, '
            "so its autograded score is 0:</p>",
            f"<pre>{_e(result.error)}</pre></div>",
        ]
    out.append(f"<p><strong>Total: {_e(result.score_text())}</strong></p>")
    if result.items:
        out += _html_items_table(result)
    details = detail_items(result)
    if details:
        out.append("<h2>Item details</h2>")
    for item in details:
        out.append(
            f"<h3><code>{_e(item.id)}</code>: {_e(points_label(item))} "
            f'(<span class="{_e(item.status)}">{_e(item.status)}</span>)</h3>'
        )
        if item.message.strip():
            out.append(f"<pre>{_e(item.message)}</pre>")
        out += _html_images(item)
    failed = failed_cells(result)
    if failed:
        out += ["<h2>Cells that failed</h2>", *_html_cells_table(failed)]
    if budget_cells(result):
        out += [f"<h2>{_e(BUDGET_TITLE)}</h2>",
                f'<p class="note">{_e(budget_note(budget_cells(result)))}</p>']
    if skipped_cells(result):
        out.append(f"<p>{skipped_cells(result)} later cell(s) were not run.</p>")
    if result.warnings:
        out += ["<h2>Warnings</h2>", "<ul>"]
        out += [f"<li>{_e(warning)}</li>" for warning in result.warnings]
        out.append("</ul>")
    footer = " &middot; ".join(f"{_e(name)} {_e(value)}" for name, value in footer_fields(result))
    out += [f"<footer>{footer}</footer>", "</body></html>", ""]
    return "\n".join(out)
