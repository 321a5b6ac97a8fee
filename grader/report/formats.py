"""Every report the grader writes, each one a rendering of a single ``SubmissionResult``.

* ``results/<name>.json``: the result itself, written atomically (``write_result_json``).
* a gradebook CSV with a row per submission, and the merge of hand-graded scores into it.
* a feedback page per student, Markdown and self-contained HTML (``write_feedback``).
* Gradescope's ``results.json`` and GitHub Classroom's base64 runner payload.
* a compact text report for the terminal.

Totals follow the one score rule of ``grader.result`` (``SubmissionResult.total`` and
``score_text``): every report prints the same numbers in the same words. Items graded by
hand are pending (status ``manual``) until merged (status ``hand_graded``); they count
towards no autograded total. Hand-graded scores merged by ``hw4grade gradebook --manual``
are kept in ``OUT/manual.csv`` and applied to every result written afterwards.

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

from grader.result import CellResult, ItemResult, SubmissionResult, format_points
from grader.rubric import Rubric

RESULTS_DIR = "results"
FEEDBACK_DIR = "feedback"
INFO_COLUMNS = ("status", "error", "seed", "mode", "profile", "notebook_sha256")
TOTAL_COLUMNS = ("score", "max_score", "pending_max")
MANUAL_RECORD = "manual.csv"  # the hand-graded scores merged so far
MANUAL_TEMPLATE = "manual-template.csv"  # what an instructor fills in
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
    result = replace(result)
    result.total()  # the stored totals are the score rule's, whatever the caller did
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


_fmt = format_points


def _is_manual(item: ItemResult) -> bool:
    return item.by_hand


def _graded_items(result: SubmissionResult) -> list[ItemResult]:
    return [item for item in result.items if not _is_manual(item)]


def _autograded_score(result: SubmissionResult) -> float:
    return result.autograded_score()


def _autograded_max(result: SubmissionResult) -> float:
    return result.autograded_max()


def _by_hand_max(result: SubmissionResult) -> float:
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
    if item.pending:
        return PENDING
    return "graded by hand" if item.status == "hand_graded" else item.status


def _points_label(item: ItemResult, pending: str = "\u2013") -> str:
    points = pending if item.pending else _fmt(item.points)
    return f"{points} / {_fmt(item.max_points)}"


def _one_line(text: str | None, limit: int = 200) -> str:
    """``text`` on one line, control characters removed, cut to ``limit`` characters."""
    cleaned = "".join(
        " " if unicodedata.category(char)[0] == "C" else char for char in (text or "")
    )
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "\u2026"


def _failed_cells(result: SubmissionResult) -> list[CellResult]:
    """Cells that failed; cells skipped after a failure and cells stopped by the training
    budget are shown apart."""
    return [cell for cell in result.cells if cell.status not in ("ok", "skipped", "budget")]


def _budget_cells(result: SubmissionResult) -> list[CellResult]:
    """Cells the grader's training budget stopped, as planned (not the student's error)."""
    return [cell for cell in result.cells if cell.status == "budget"]


BUDGET_TITLE = "Training cells stopped by the grader's step budget"
BUDGET_NOTE = ("The grader stops the notebook's own training after a fixed number of steps "
               "so that grading stays short. This is expected, not an error, and costs no "
               "points: cell(s) {cells}.")


def _budget_note(cells: list[CellResult]) -> str:
    return BUDGET_NOTE.format(cells=", ".join(str(cell_number(cell)) for cell in cells))


def cell_number(cell: CellResult) -> int:
    """A cell as the pages and ``runs_clean`` number it: counted from 1, every cell of the
    notebook included."""
    return cell.index + 1


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
    return result.score_text()


# --------------------------------------------------------------------------- gradebook


def _gradebook_cell(item: ItemResult | None, result: SubmissionResult) -> str:
    """An item's points as the gradebook shows them: empty when pending, skipped or not
    graded at all."""
    if item is None or item.pending or item.status == "skipped":
        return ""
    if result.error is not None and not item.by_hand:
        return ""
    return _fmt(item.points)


def _gradebook_row(result: SubmissionResult, rubric: Rubric) -> list[str]:
    by_id = {item.id: item for item in result.items}
    values = [_gradebook_cell(by_id.get(rubric_item.id), result) for rubric_item in rubric.items]
    error = _one_line(result.error) if result.error is not None else ""
    if error[:1] in ("=", "+", "-", "@"):
        error = "'" + error  # a spreadsheet must not run a formula written by a student
    pending = [by_id[it.id].pending for it in rubric.items if it.manual and it.id in by_id]
    status = "error" if error else "pending" if any(pending) else "graded"
    return [
        result.submission,
        *map(_fmt, result.totals()),
        *values,
        status,
        error,
        str(result.seed),
        result.mode,
        result.profile,
        result.notebook_sha256 or "",
    ]


def gradebook_columns(rubric: Rubric) -> list[str]:
    """The gradebook's header: submission, the totals (``score`` out of ``max_score``, with
    ``pending_max`` points still to grade by hand), one column per rubric item, then info."""
    return ["submission", *TOTAL_COLUMNS, *(item.id for item in rubric.items), *INFO_COLUMNS]


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


def _result_index(results: Sequence[SubmissionResult]) -> dict[str, str]:
    """Submission by its path and by its ``submission_name``; paths win."""
    index = {submission_name(r.submission): r.submission for r in results}
    index.update((r.submission, r.submission) for r in results)
    return index


ManualScores = dict[str, dict[str, float]]  # submission -> hand-graded item id -> points


def read_manual_scores(manual_csv: str | Path, results: Sequence[SubmissionResult],
                       rubric: Rubric, known_from: str = "the results") -> ManualScores:
    """Hand-graded points from an instructor's CSV, checked against the results.

    The CSV has a ``submission`` column (a submission as the gradebook names it, or its
    file stem in ``results/``) and one column per hand-graded item id; an empty cell
    leaves that item as it was. ``ManualScoreError`` lists every problem found, by file,
    row and column: an unknown submission or column, a value that is not a number or out
    of the item's range, a submission given twice.
    """
    manual_path = Path(manual_csv)
    header, rows = _read_csv(manual_path)
    if "submission" not in header:
        raise ManualScoreError([f"{manual_path}: row 1: no 'submission' column"])
    problems = _check_manual_header(header, manual_path, rubric)
    manual_items = [item for item in rubric.items if item.manual and item.id in header]
    index = _result_index(results)
    first_row: dict[str, int] = {}
    scores: ManualScores = {}
    for number, row in rows:
        key = row.get("submission", "").strip()
        if not key:
            if any(value.strip() for value in row.values()):
                problems.append(f"{manual_path}: row {number}, column 'submission': empty")
            continue
        submission = index.get(key)
        if submission is None:
            problems.append(f"{manual_path}: row {number}, column 'submission': unknown "
                            f"submission {key!r} (not in {known_from})")
            continue
        if submission in first_row:
            problems.append(f"{manual_path}: row {number}, column 'submission': {key!r} "
                            f"already appears on row {first_row[submission]}")
            continue
        first_row[submission] = number
        for item in manual_items:
            text = row.get(item.id, "").strip()
            if not text:
                continue
            try:
                scores.setdefault(submission, {})[item.id] = _parse_points(text, item.points)
            except ValueError as error:
                problems.append(f"{manual_path}: row {number}, column '{item.id}': {error}")
    if problems:
        raise ManualScoreError(problems)
    return scores


def merge_manual_record(earlier: ManualScores, new: ManualScores) -> ManualScores:
    """The earlier merged scores updated with the new ones (a new value replaces an old
    one; nothing earlier is lost)."""
    merged = {submission: dict(points) for submission, points in earlier.items()}
    for submission, points in new.items():
        merged.setdefault(submission, {}).update(points)
    return merged


def apply_manual_scores(result: SubmissionResult, points: dict[str, float]) -> SubmissionResult:
    """The result with these hand-graded points merged (its totals recomputed)."""
    items = [
        replace(item, points=points[item.id], status="hand_graded", message="graded by hand")
        if item.by_hand and item.id in points else item
        for item in result.items
    ]
    merged = replace(result, items=items)
    merged.total()
    return merged


def read_manual_record(out_dir: str | Path, rubric: Rubric) -> ManualScores:
    """The hand-graded scores merged so far into ``OUT`` (``OUT/manual.csv``), if any."""
    path = Path(out_dir) / MANUAL_RECORD
    if not path.is_file():
        return {}
    header, rows = _read_csv(path)
    record: ManualScores = {}
    for number, row in rows:
        submission = row.get("submission", "").strip()
        for item in rubric.items:
            text = row.get(item.id, "").strip()
            if item.manual and submission and text:
                try:
                    record.setdefault(submission, {})[item.id] = _parse_points(text, item.points)
                except ValueError as error:
                    raise ManualScoreError([f"{path}: row {number}, column '{item.id}': "
                                            f"{error}"]) from None
    return record


def _manual_rows(submissions: Iterable[str], record: ManualScores,
                 rubric: Rubric) -> list[list[str]]:
    manual_ids = [item.id for item in rubric.items if item.manual]
    rows = [["submission", *manual_ids]]
    for submission in submissions:
        points = record.get(submission, {})
        rows.append([submission, *(_fmt(points[i]) if i in points else "" for i in manual_ids)])
    return rows


def write_manual_record(out_dir: str | Path, record: ManualScores, rubric: Rubric) -> Path:
    """Write ``OUT/manual.csv``, every hand-graded score merged so far."""
    return _atomic_write_text(Path(out_dir) / MANUAL_RECORD,
                              _csv_text(_manual_rows(sorted(record), record, rubric)))


def write_manual_template(results: Iterable[SubmissionResult], out_dir: str | Path,
                          rubric: Rubric, record: ManualScores | None = None) -> Path:
    """Write ``OUT/manual-template.csv``: a row per submission, a column per hand-graded
    item, filled in with the scores merged so far; an instructor completes it and passes
    it to ``hw4grade gradebook OUT --manual``."""
    submissions = [result.submission for result in results]
    return _atomic_write_text(Path(out_dir) / MANUAL_TEMPLATE,
                              _csv_text(_manual_rows(submissions, record or {}, rubric)))


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
            f"| {cell_number(cell)} | {_md_text(cell.status)} | {_md_text(cell.error_name or '')} "
            f"| {_md_text(cell.error_message or '')} |"
            for cell in failed
        ]
        out.append("")
    if _budget_cells(result):
        out += [f"## {BUDGET_TITLE}", "", _budget_note(_budget_cells(result)), ""]
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
    if _budget_cells(result):
        out += [f"<h2>{_e(BUDGET_TITLE)}</h2>",
                f'<p class="note">{_e(_budget_note(_budget_cells(result)))}</p>']
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
        lines.append(f"cell {cell_number(cell)}: {_one_line(cell.status)} {_one_line(detail, 100)}")
    if _budget_cells(result):
        cells = ", ".join(str(cell_number(cell)) for cell in _budget_cells(result))
        lines.append(f"cell(s) {cells}: training stopped by the grader's step budget "
                     "(expected, no points lost)")
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
                      f"({_fmt(_by_hand_max(result))} points).")
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


def verdict(result: SubmissionResult) -> str:
    """One line for a submission in a list (progress, summaries): the total, and the error
    when the notebook could not be graded."""
    if result.error is None:
        return result.score_text()
    return f"{result.score_text()}; not graded: {_one_line(result.error, 100)}"


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
