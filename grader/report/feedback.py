"""The feedback pages on disk: ``OUT/feedback/<name>.html`` and ``<name>.md``.

Both pages are renderings of the same result (``grader.report.html`` and
``grader.report.markdown``), named by ``grader.report.store.submission_name``.
"""

from __future__ import annotations

from pathlib import Path

from grader.report.html import render_html
from grader.report.markdown import render_markdown
from grader.report.store import FEEDBACK_DIR, atomic_write_text, submission_name
from grader.result import SubmissionResult, clean_result


def feedback_paths(result: SubmissionResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Where ``write_feedback`` writes the pages of ``result``: ``OUT/feedback/<name>.html``
    and ``<name>.md``, named as its result file is."""
    base = Path(out_dir) / FEEDBACK_DIR / submission_name(clean_result(result).submission)
    return base.with_name(base.name + ".html"), base.with_name(base.name + ".md")


def write_feedback(result: SubmissionResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write both feedback pages (``feedback_paths``) and return their paths.

    Total: the pages show ``clean_result`` of ``result``, whatever it holds."""
    result = clean_result(result)
    html_path, md_path = feedback_paths(result, out_dir)
    atomic_write_text(html_path, render_html(result))
    atomic_write_text(md_path, render_markdown(result))
    return html_path, md_path
