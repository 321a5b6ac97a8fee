"""The feedback pages on disk: ``OUT/feedback/<name>.html`` and ``<name>.md``.

Both pages are renderings of the same result (``grader.report.html`` and
``grader.report.markdown``), named by ``grader.report.store.submission_name``.
"""

from __future__ import annotations

from pathlib import Path

from grader.report.html import render_html
from grader.report.markdown import render_markdown
from grader.report.store import FEEDBACK_DIR, atomic_write_text, submission_name
from grader.result import SubmissionResult


def write_feedback(result: SubmissionResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``OUT/feedback/<name>.html`` and ``<name>.md``; return both paths."""
    base = Path(out_dir) / FEEDBACK_DIR / submission_name(result.submission)
    html_path = atomic_write_text(base.with_name(base.name + ".html"), render_html(result))
    md_path = atomic_write_text(base.with_name(base.name + ".md"), render_markdown(result))
    return html_path, md_path
