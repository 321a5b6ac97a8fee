"""Every report the grader writes, each one a rendering of a single ``SubmissionResult``.

* ``results/<name>.json``: the result itself, written atomically (``write_result_json``).
* a gradebook CSV with a row per submission, and the merge of hand-graded scores into it.
* a feedback page per student, Markdown and self-contained HTML (``write_feedback``).
* Gradescope's ``results.json`` and GitHub Classroom's base64 runner payload.
* a compact text report for the terminal.

Scores shown to students are computed here from the items, never copied from elsewhere:
the autograded score is the sum of the graded items' points, or 0 when the notebook could
not be graded at all (``result.error``). Items with status ``manual`` are pending hand
grading; they appear as pending and count towards no autograded total.

Everything that comes from a submission (messages, error text, warnings, even its path)
is treated as hostile: escaped in HTML and Markdown, stripped of control characters in
the terminal, and never used as a file name without being sanitised.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import html
import io
import json
import math
import os
import re
import tempfile
import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from grader.result import CellResult, ItemResult, SubmissionResult
from grader.rubric import Rubric

RESULTS_DIR = "results"
FEEDBACK_DIR = "feedback"
INFO_COLUMNS = ("status", "error", "seed", "mode", "profile", "notebook_sha256")
PENDING = "pending (graded by hand)"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 120


class ResultFileWarning(UserWarning):
    """A file in ``results/`` could not be read back as a result and was skipped."""


class ManualScoreError(ValueError):
    """Hand-graded scores could not be merged; ``problems`` lists every mistake found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# --------------------------------------------------------------------------- names and files


def submission_name(path: str | os.PathLike[str]) -> str:
    """A safe, readable and stable file stem for a submission path.

    ``alice/HW4.ipynb`` becomes ``alice__HW4``: the folders joined by ``__``, the
    ``.ipynb`` suffix dropped. When that spelling could be shared by another path
    (characters replaced, ``__`` inside a name, absolute or Windows paths, another
    suffix, a very long path), ``~`` and 8 hex digits of the path's SHA-256 are
    appended; ``~`` never occurs otherwise, so two different paths never share a name.
    """
    text = os.fspath(path)
    parts = [part for part in text.replace("\\", "/").split("/") if part not in ("", ".")]
    is_notebook = bool(parts) and parts[-1].endswith(".ipynb") and parts[-1] != ".ipynb"
    if is_notebook:
        parts[-1] = parts[-1][: -len(".ipynb")]
    cleaned = [_UNSAFE.sub("_", part).strip("._-") or "_" for part in parts]
    stem = "__".join(cleaned) or "submission"
    lossless = (
        is_notebook
        and "\\" not in text
        and not text.startswith("/")
        and cleaned == parts  # nothing replaced or stripped
        and not any("__" in part for part in parts)  # so '__' only ever separates folders
        and len(stem) <= _MAX_STEM
    )
    if lossless:
        return stem
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{stem[-(_MAX_STEM - 9):].lstrip('_.-') or 'submission'}~{digest}"


def _atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o644)  # mkstemp makes 0600; reports are meant to be shared
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    return path


def write_result_json(result: SubmissionResult, out_dir: str | Path) -> Path:
    """Write ``OUT/results/<name>.json`` atomically and return its path."""
    path = Path(out_dir) / RESULTS_DIR / f"{submission_name(result.submission)}.json"
    return _atomic_write_text(path, result.to_json() + "\n")


def read_results(out_dir: str | Path, problems: list[str] | None = None) -> list[SubmissionResult]:
    """Read every ``OUT/results/*.json`` back, in file-name order.

    A file that is not a valid result is skipped; its problem is appended to ``problems``
    when a list is given, otherwise reported with a ``ResultFileWarning``.
    """
    results: list[SubmissionResult] = []
    for path in sorted((Path(out_dir) / RESULTS_DIR).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError("the file holds no JSON object")
            results.append(SubmissionResult.from_dict(data))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError) as error:
            message = f"{path}: skipped, not a readable result ({error})"
            if problems is not None:
                problems.append(message)
            else:
                warnings.warn(message, ResultFileWarning, stacklevel=2)
    return results


# --------------------------------------------------------------------------- shared helpers


def _fmt(value: float) -> str:
    """Points as short text: 5.0 -> '5', 2.5 -> '2.5', at most 4 decimals."""
    text = f"{round(value, 4):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _is_manual(item: ItemResult) -> bool:
    return item.status == "manual"


def _graded_items(result: SubmissionResult) -> list[ItemResult]:
    return [item for item in result.items if not _is_manual(item)]


def _autograded_score(result: SubmissionResult) -> float:
    """The autograded points: 0 when the notebook could not be graded."""
    if result.error is not None:
        return 0.0
    return round(sum(item.points for item in _graded_items(result)), 4)


def _autograded_max(result: SubmissionResult) -> float:
    return round(sum(item.max_points for item in _graded_items(result)), 4)


def _pending_max(result: SubmissionResult) -> float:
    return round(sum(item.max_points for item in result.items if _is_manual(item)), 4)


def _shown_items(result: SubmissionResult) -> list[ItemResult]:
    """The items as pages show them: when the notebook could not be graded, every
    autograded item is an error worth 0, whatever partial points it may carry."""
    if result.error is None:
        return list(result.items)
    return [
        item if _is_manual(item) else replace(item, points=0.0, status="error", message="")
        for item in result.items
    ]


def _full_marks(item: ItemResult) -> bool:
    return item.points >= item.max_points


def _status_label(item: ItemResult) -> str:
    return PENDING if _is_manual(item) else item.status


def _points_label(item: ItemResult, pending: str = "\u2013") -> str:
    points = pending if _is_manual(item) else _fmt(item.points)
    return f"{points} / {_fmt(item.max_points)}"


def _one_line(text: str | None, limit: int = 200) -> str:
    """``text`` on one line, control characters removed, cut to ``limit`` characters."""
    cleaned = "".join(
        " " if unicodedata.category(char)[0] == "C" else char for char in (text or "")
    )
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "\u2026"


def _failed_cells(result: SubmissionResult) -> list[CellResult]:
    """Cells that did not finish normally; cells skipped after a failure are counted apart."""
    return [cell for cell in result.cells if cell.status not in ("ok", "skipped")]


def _skipped_cells(result: SubmissionResult) -> int:
    return sum(cell.status == "skipped" for cell in result.cells)


def _images(item: ItemResult) -> list[tuple[str, str | None]]:
    """``(caption, base64 PNG)`` pairs from ``item.details['images']``.

    The data is decoded and re-encoded, so only base64 characters reach a page; data
    that is not a PNG gives ``None`` in place of the image.
    """
    images = item.details.get("images") if isinstance(item.details, dict) else None
    if not isinstance(images, dict):
        return []
    pairs: list[tuple[str, str | None]] = []
    for caption, data in images.items():
        try:
            raw = base64.b64decode(str(data), validate=True)
        except ValueError:
            raw = b""
        clean = base64.b64encode(raw).decode("ascii") if raw.startswith(PNG_SIGNATURE) else None
        pairs.append((str(caption), clean))
    return pairs


def _detail_items(result: SubmissionResult) -> list[ItemResult]:
    """Items that get their own section: graded but not at full marks, or with images."""
    if result.error is not None:
        return []  # the error says it all
    return [
        item
        for item in _graded_items(result)
        if not _full_marks(item) or item.status in ("failed", "error") or _images(item)
    ]


def _footer_fields(result: SubmissionResult) -> list[tuple[str, str]]:
    return [
        ("grader", result.grader_version),
        ("mode", result.mode),
        ("seed", str(result.seed)),
        ("device", result.device),
        ("profile", result.profile),
        ("rubric", result.rubric_sha256[:12]),
        ("notebook", (result.notebook_sha256 or "unreadable")[:12]),
    ]


def _total_sentence(result: SubmissionResult) -> str:
    text = f"{_fmt(_autograded_score(result))} / {_fmt(_autograded_max(result))} autograded"
    pending = _pending_max(result)
    if pending:
        text += f"; {_fmt(pending)} more points {PENDING}"
    return text


# --------------------------------------------------------------------------- gradebook


def _row_status(error: str, manual_values: Iterable[str]) -> str:
    if error:
        return "error"
    return "pending" if any(not value.strip() for value in manual_values) else "graded"


def _gradebook_row(result: SubmissionResult, rubric: Rubric) -> list[str]:
    by_id = {item.id: item for item in result.items}
    values = []
    for rubric_item in rubric.items:
        item = by_id.get(rubric_item.id)
        graded = item is not None and not _is_manual(item) and result.error is None
        values.append(_fmt(item.points) if graded else "")
    manual_values = [v for v, it in zip(values, rubric.items) if it.manual]
    error = _one_line(result.error) if result.error is not None else ""
    if error[:1] in ("=", "+", "-", "@"):
        error = "'" + error  # a spreadsheet must not run a formula written by a student
    score = sum(float(value) for value in values if value)
    return [
        result.submission,
        _fmt(score),
        _fmt(rubric.max_score),
        *values,
        _row_status(error, manual_values),
        error,
        str(result.seed),
        result.mode,
        result.profile,
        result.notebook_sha256 or "",
    ]


def gradebook_columns(rubric: Rubric) -> list[str]:
    """The gradebook's header: submission, totals, one column per rubric item, then info."""
    return ["submission", "score", "max_score", *(item.id for item in rubric.items), *INFO_COLUMNS]


def _csv_text(rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def write_gradebook(results: Iterable[SubmissionResult], path: str | Path, rubric: Rubric) -> Path:
    """Write the gradebook CSV (a row per submission) atomically and return its path.

    Item columns hold the points of graded items; they are empty for items graded by
    hand that are still pending and for every item of a submission that could not be
    graded (its error is in the ``error`` column). ``status`` is ``graded``, ``pending``
    (hand-graded items missing) or ``error``.
    """
    rows = [gradebook_columns(rubric), *(_gradebook_row(result, rubric) for result in results)]
    return _atomic_write_text(Path(path), _csv_text(rows))


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and ``(spreadsheet row number, row)`` pairs; the header is row 1."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ManualScoreError([f"{path}: cannot read the file ({error})"]) from None
    lines = list(csv.reader(io.StringIO(text)))
    if not lines:
        raise ManualScoreError([f"{path}: the file is empty; expected a header row"])
    header = [name.strip() for name in lines[0]]
    duplicates = sorted({name for name in header if name and header.count(name) > 1})
    if duplicates:
        raise ManualScoreError([f"{path}: row 1: column(s) {', '.join(duplicates)} appear twice"])
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header):]):
            raise ManualScoreError([f"{path}: row {number}: more cells than the header has"])
        rows.append((number, {name: cell for name, cell in zip(header, cells) if name}))
    return header, rows


def _parse_points(text: str, maximum: float) -> float:
    """Points typed by an instructor; ValueError says what is wrong with them."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    if value < 0 or value > maximum:
        raise ValueError(f"{text} is out of range: points must be between 0 and {_fmt(maximum)}")
    return value


def _check_manual_header(header: list[str], path: Path, rubric: Rubric) -> list[str]:
    manual_ids = [item.id for item in rubric.items if item.manual]
    auto_ids = {item.id for item in rubric.items if not item.manual}
    problems = []
    for column in header:
        if column in ("", "submission") or column in manual_ids:
            continue
        if column in auto_ids:
            reason = "is autograded; only hand-graded items can be merged"
        else:
            reason = "is not a hand-graded item id"
        problems.append(
            f"{path}: row 1, column '{column}': {reason} (expected {', '.join(manual_ids)})"
        )
    return problems


def _recompute(row: dict[str, str], rubric: Rubric, path: Path, number: int) -> list[str]:
    """Refresh ``score`` and ``status`` of a gradebook row; return problems found in it."""
    problems, score = [], 0.0
    for item in rubric.items:
        text = row.get(item.id, "").strip()
        if not text:
            continue
        try:
            score += _parse_points(text, item.points)
        except ValueError as error:
            problems.append(f"{path}: row {number}, column '{item.id}': {error}")
    row["score"] = _fmt(score)
    manual_values = [row.get(item.id, "") for item in rubric.items if item.manual]
    row["status"] = _row_status(row.get("error", ""), manual_values)
    return problems


def _submission_index(rows: list[dict[str, str]]) -> dict[str, int]:
    """Row position by submission path and by its ``submission_name``; paths win."""
    index = {submission_name(row["submission"]): position for position, row in enumerate(rows)}
    index.update((row["submission"], position) for position, row in enumerate(rows))
    return index


def merge_manual_scores(
    gradebook_csv: str | Path, manual_csv: str | Path, out_csv: str | Path, rubric: Rubric
) -> Path:
    """Fill hand-graded item columns of a gradebook from an instructor's CSV.

    ``manual_csv`` has a ``submission`` column (the gradebook's value, or the
    ``submission_name`` of it) and any hand-graded item ids. Empty cells leave an item
    pending. Totals and status are recomputed and the gradebook is written to
    ``out_csv`` (which may be ``gradebook_csv``). Nothing is written when any cell is
    wrong: ``ManualScoreError`` then lists every problem by file, row and column.
    """
    gradebook_path, manual_path = Path(gradebook_csv), Path(manual_csv)
    header, rows = _read_csv(gradebook_path)
    missing = [name for name in gradebook_columns(rubric) if name not in header]
    if missing:
        raise ManualScoreError(
            [f"{gradebook_path}: row 1: missing column(s) {', '.join(missing)}"]
        )
    manual_header, manual_rows = _read_csv(manual_path)
    if "submission" not in manual_header:
        raise ManualScoreError([f"{manual_path}: row 1: no 'submission' column"])
    problems = _check_manual_header(manual_header, manual_path, rubric)
    manual_items = [item for item in rubric.items if item.manual and item.id in manual_header]

    index = _submission_index([row for _, row in rows])
    first_row: dict[int, int] = {}
    for number, row in manual_rows:
        key = row.get("submission", "").strip()
        if not key:
            if any(value.strip() for value in row.values()):
                problems.append(f"{manual_path}: row {number}, column 'submission': empty")
            continue
        position = index.get(key)
        if position is None:
            problems.append(
                f"{manual_path}: row {number}, column 'submission': unknown submission "
                f"{key!r} (not in {gradebook_path})"
            )
            continue
        if position in first_row:
            problems.append(
                f"{manual_path}: row {number}, column 'submission': {key!r} already appears "
                f"on row {first_row[position]}"
            )
            continue
        first_row[position] = number
        for item in manual_items:
            text = row.get(item.id, "").strip()
            if not text:
                continue
            try:
                rows[position][1][item.id] = _fmt(_parse_points(text, item.points))
            except ValueError as error:
                problems.append(f"{manual_path}: row {number}, column '{item.id}': {error}")

    for number, row in rows:
        problems += _recompute(row, rubric, gradebook_path, number)
    if problems:
        raise ManualScoreError(problems)
    table = [header, *([row.get(name, "") for name in header] for _, row in rows)]
    return _atomic_write_text(Path(out_csv), _csv_text(table))


# --------------------------------------------------------------------------- Markdown


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


def _md_text(text: str | None, limit: int = 200) -> str:
    """Untrusted text made inert inside a Markdown line or table cell."""
    escaped = html.escape(_one_line(text, limit), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", escaped)


def _md_code(text: str) -> str:
    """Untrusted text in a code span (backtick runs cannot close it)."""
    text = _one_line(text, 300)
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
    out = [f"# HW4 feedback: {_md_code(result.submission)}", ""]
    if result.error is not None:
        out += ["**Your notebook could not be graded**, so its autograded score is 0:", ""]
        out += [_md_block(result.error), ""]
    out += [f"**Total: {_total_sentence(result)}**", ""]
    if result.items:
        out += ["| Item | Points | Status |", "|---|---:|---|"]
        out += [
            f"| {_md_code(item.id)} | {_points_label(item)} | {_status_label(item)} |"
            for item in _shown_items(result)
        ]
        out.append("")
    details = _detail_items(result)
    if details:
        out += ["## Item details", ""]
    for item in details:
        out += [f"### {_md_code(item.id)}: {_points_label(item)} ({item.status})", ""]
        if item.message.strip():
            out += [_md_block(item.message), ""]
        captions = [caption for caption, _ in _images(item)]
        if captions:
            named = ", ".join(f"*{_md_text(caption, 100)}*" for caption in captions)
            out += [f"Images (shown in the HTML version of this page): {named}", ""]
    failed = _failed_cells(result)
    if failed:
        out += ["## Cells that failed", ""]
        out += ["| Cell | Status | Error | Message |", "|---:|---|---|---|"]
        out += [
            f"| {cell.index} | {_md_text(cell.status)} | {_md_text(cell.error_name or '')} "
            f"| {_md_text(cell.error_message or '')} |"
            for cell in failed
        ]
        out.append("")
    if _skipped_cells(result):
        out += [f"{_skipped_cells(result)} later cell(s) were not run.", ""]
    if result.warnings:
        out += ["## Warnings", ""]
        out += [f"- {_md_text(warning, 500)}" for warning in result.warnings]
        out.append("")
    footer = " · ".join(f"{name} {_md_text(value)}" for name, value in _footer_fields(result))
    out += ["---", "", footer, ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- HTML


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
    return html.escape(str(text), quote=True)


def _html_images(item: ItemResult) -> list[str]:
    out = []
    for caption, data in _images(item):
        body = (
            f'<img src="data:image/png;base64,{data}" alt="{_e(caption)}">'
            if data is not None
            else "<p>(this image could not be shown)</p>"
        )
        out.append(f"<figure>{body}<figcaption>{_e(caption)}</figcaption></figure>")
    return out


def _html_items_table(result: SubmissionResult) -> list[str]:
    out = ["<table>", "<tr><th>Item</th><th>Points</th><th>Status</th></tr>"]
    for item in _shown_items(result):
        out.append(
            f'<tr><td><code>{_e(item.id)}</code></td><td class="num">{_e(_points_label(item))}'
            f'</td><td class="{_e(item.status)}">{_e(_status_label(item))}</td></tr>'
        )
    return [*out, "</table>"]


def _html_cells_table(cells: list[CellResult]) -> list[str]:
    out = ["<table>", "<tr><th>Cell</th><th>Status</th><th>Error</th><th>Message</th></tr>"]
    for cell in cells:
        out.append(
            f'<tr><td class="num">{_e(cell.index)}</td><td class="error">{_e(cell.status)}</td>'
            f"<td>{_e(cell.error_name or '')}</td>"
            f"<td><pre>{_e(cell.error_message or '')}</pre></td></tr>"
        )
    return [*out, "</table>"]


def render_html(result: SubmissionResult) -> str:
    """The student's feedback page as one self-contained HTML document.

    Styles are inline, images are ``data:`` URIs, nothing is loaded from elsewhere (a
    Content-Security-Policy forbids it too), and all submission text is escaped.
    """
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
    out.append(f"<p><strong>Total: {_e(_total_sentence(result))}</strong></p>")
    if result.items:
        out += _html_items_table(result)
    details = _detail_items(result)
    if details:
        out.append("<h2>Item details</h2>")
    for item in details:
        out.append(
            f"<h3><code>{_e(item.id)}</code>: {_e(_points_label(item))} "
            f'(<span class="{_e(item.status)}">{_e(item.status)}</span>)</h3>'
        )
        if item.message.strip():
            out.append(f"<pre>{_e(item.message)}</pre>")
        out += _html_images(item)
    failed = _failed_cells(result)
    if failed:
        out += ["<h2>Cells that failed</h2>", *_html_cells_table(failed)]
    if _skipped_cells(result):
        out.append(f"<p>{_skipped_cells(result)} later cell(s) were not run.</p>")
    if result.warnings:
        out += ["<h2>Warnings</h2>", "<ul>"]
        out += [f"<li>{_e(warning)}</li>" for warning in result.warnings]
        out.append("</ul>")
    footer = " &middot; ".join(f"{_e(name)} {_e(value)}" for name, value in _footer_fields(result))
    out += [f"<footer>{footer}</footer>", "</body></html>", ""]
    return "\n".join(out)


def write_feedback(result: SubmissionResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``OUT/feedback/<name>.html`` and ``<name>.md``; return both paths."""
    base = Path(out_dir) / FEEDBACK_DIR / submission_name(result.submission)
    html_path = _atomic_write_text(base.with_name(base.name + ".html"), render_html(result))
    md_path = _atomic_write_text(base.with_name(base.name + ".md"), render_markdown(result))
    return html_path, md_path


# --------------------------------------------------------------------------- Gradescope


def _execution_seconds(result: SubmissionResult) -> int:
    """``timing['total']`` when recorded, else the sum of the timings (or of the cells)."""
    if "total" in result.timing:
        seconds = result.timing["total"]
    else:
        seconds = sum(result.timing.values()) or sum(cell.seconds for cell in result.cells)
    return int(round(seconds))


def _summary_lines(result: SubmissionResult, with_error: bool = True) -> list[str]:
    """The parts of the text report that follow the items: cells, warnings, error."""
    lines = []
    for cell in _failed_cells(result):
        detail = " ".join(filter(None, [cell.error_name, cell.error_message]))
        lines.append(f"cell {cell.index}: {_one_line(cell.status)} {_one_line(detail, 100)}")
    if _skipped_cells(result):
        lines.append(f"{_skipped_cells(result)} later cell(s) were not run")
    lines += [f"warning: {_one_line(warning)}" for warning in result.warnings]
    if with_error and result.error is not None:
        lines.append(f"ERROR (not graded): {_one_line(result.error, 300)}")
    return lines


def gradescope_json(result: SubmissionResult) -> dict[str, Any]:
    """Gradescope's ``results.json`` for one submission.

    One test per autograded item (visible to the student, message as output). Items
    graded by hand are left out: Gradescope grades them in its own interface, and
    ``output`` says so. With ``result.error`` the score is 0, every test scores 0 and
    the error is in ``output``.
    """
    tests = []
    for item in _graded_items(result):
        score = 0.0 if result.error is not None else item.points
        output = "Not graded: see the error above." if result.error is not None else item.message
        tests.append({
            "name": item.id,
            "score": score,
            "max_score": item.max_points,
            "status": "passed" if result.error is None and _full_marks(item) else "failed",
            "output": output,
            "visibility": "visible",
        })
    output = [f"Autograded score: {_fmt(_autograded_score(result))} / "
              f"{_fmt(_autograded_max(result))}"]
    if result.error is not None:
        output.append(f"The notebook could not be graded, so the score is 0:\n{result.error}")
    manual = [item for item in result.items if _is_manual(item)]
    if manual:
        names = ", ".join(item.id for item in manual)
        output.append(f"Not included here, graded by hand in Gradescope: {names} "
                      f"({_fmt(_pending_max(result))} points).")
    output += _summary_lines(result, with_error=False)
    output.append(" · ".join(f"{name} {value}" for name, value in _footer_fields(result)))
    return {
        "score": _autograded_score(result),
        "execution_time": _execution_seconds(result),
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


# --------------------------------------------------------------------------- GitHub Classroom


def _classroom_test(result: SubmissionResult, item: ItemResult) -> dict[str, Any]:
    if result.error is not None or item.status == "error":
        status = "error"
    else:
        status = "pass" if _full_marks(item) else "fail"
    message = f"not graded: {result.error}" if result.error is not None else item.message
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

    The reporter records the sum of the tests' ``score`` against ``max_score``; its
    console summary counts passed tests. A result with an error has status ``error``
    and every test scores 0; with no items at all, one ``notebook`` test carries the error.
    """
    tests = [_classroom_test(result, item) for item in _graded_items(result)]
    if result.error is not None:
        status = "error"
        if not tests:
            tests = [{
                "name": "notebook", "status": "error", "score": 0.0,
                "message": result.error, "test_code": "hw4grade", "filename": result.submission,
                "line_no": 0, "duration": float(_execution_seconds(result)),
            }]
    else:
        status = "pass" if all(test["status"] == "pass" for test in tests) else "fail"
    return {"version": 1, "status": status, "max_score": _autograded_max(result), "tests": tests}


def classroom_base64(result: SubmissionResult) -> str:
    """``classroom_payload`` as standard base64 of its UTF-8 JSON (the runner's output)."""
    text = json.dumps(classroom_payload(result), ensure_ascii=False, allow_nan=False)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


# --------------------------------------------------------------------------- terminal


def render_text(result: SubmissionResult) -> str:
    """A compact report for the terminal: a line per item, then cells, warnings, total."""
    profile = "" if result.profile == "tf2" else f", {result.profile} notebook"
    header = (f"{_one_line(result.submission)}  ({result.mode}, seed {result.seed}, "
              f"{result.device}{profile})")
    width = max((len(item.id) for item in result.items), default=0)
    lines = [header]
    for item in _shown_items(result):
        points = _points_label(item, pending="-").replace(" ", "")
        line = f"  {item.id:<{width}}  {points:>7}  {_status_label(item)}"
        if item.message and not _is_manual(item):
            line += f"  {_one_line(item.message, 80)}"
        lines.append(line.rstrip())
    lines += [f"  {line}" for line in _summary_lines(result)]
    lines.append(f"Total: {_total_sentence(result)}")
    return "\n".join(lines) + "\n"
