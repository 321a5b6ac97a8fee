"""The student's feedback page as Markdown (``render_markdown``).

Every piece of submission text is made inert: escaped, in a code span or in a fenced block
no line of it can close. Images are only named; the HTML page (``grader.report.html``)
shows them. ``grader.report.feedback`` writes both pages.
"""

from __future__ import annotations

import html
import re

from grader.report.common import (
    BUDGET_TITLE,
    budget_cells,
    budget_note,
    cell_number,
    detail_items,
    failed_cells,
    footer_fields,
    item_images,
    one_line,
    points_label,
    shown_items,
    skipped_cells,
    status_label,
)
from grader.result import SubmissionResult, clean_result

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


def _md_text(text: str | None, limit: int = 200) -> str:
    """Untrusted text made inert inside a Markdown line or table cell."""
    escaped = html.escape(one_line(text, limit), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", escaped)


def _md_code(text: str) -> str:
    """Untrusted text in a code span (backtick runs cannot close it)."""
    text = one_line(text, 300)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_block(text: str) -> str:
    """Untrusted multi-line text in a fenced code block no line of it can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def render_markdown(result: SubmissionResult) -> str:
    """The student's feedback page as Markdown (images are only named; see the HTML)."""
    result = clean_result(result)  # whatever the result holds, the page is valid text
    out = [f"# HW4 feedback: {_md_code(result.submission)}", ""]
    if result.error is not None:
        out += ["**Your notebook could not be graded**, so its autograded score is 0:", ""]
        out += [_md_block(result.error), ""]
    out += [f"**Total: {result.score_text()}**", ""]
    if result.items:
        out += ["| Item | Points | Status |", "|---|---:|---|"]
        out += [
            f"| {_md_code(item.id)} | {points_label(item)} | {status_label(item)} |"
            for item in shown_items(result)
        ]
        out.append("")
    details = detail_items(result)
    if details:
        out += ["## Item details", ""]
    for item in details:
        out += [f"### {_md_code(item.id)}: {points_label(item)} ({item.status})", ""]
        if item.message.strip():
            out += [_md_block(item.message), ""]
        captions = [caption for caption, _ in item_images(item)]
        if captions:
            named = ", ".join(f"*{_md_text(caption, 100)}*" for caption in captions)
            out += [f"Images (shown in the HTML version of this page): {named}", ""]
    failed = failed_cells(result)
    if failed:
        out += ["## Cells that failed", ""]
        out += ["| Cell | Status | Error | Message |", "|---:|---|---|---|"]
        out += [
            f"| {cell_number(cell)} | {_md_text(cell.status)} | {_md_text(cell.error_name or '')} "
            f"| {_md_text(cell.error_message or '')} |"
            for cell in failed
        ]
        out.append("")
    if budget_cells(result):
        out += [f"## {BUDGET_TITLE}", "", budget_note(budget_cells(result)), ""]
    if skipped_cells(result):
        out += [f"{skipped_cells(result)} later cell(s) were not run.", ""]
    if result.warnings:
        out += ["## Warnings", ""]
        out += [f"- {_md_text(warning, 500)}" for warning in result.warnings]
        out.append("")
    footer = " · ".join(f"{name} {_md_text(value)}" for name, value in footer_fields(result))
    out += ["---", "", footer, ""]
    return "\n".join(out)
