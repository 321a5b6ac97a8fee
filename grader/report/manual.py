"""Scores of the items graded by hand, and their merge into the results.

An instructor fills in ``OUT/manual-template.csv`` (``write_manual_template``: a row per
submission, a column per hand-graded item) and passes it to ``hw4grade gradebook --manual``;
``read_manual_scores`` checks it against the results. The scores merged so far are kept in
``OUT/manual.csv`` (``read_manual_record``, ``merge_manual_record``,
``write_manual_record``) and applied to every result written afterwards
(``apply_manual_scores``): a merged item's status is ``hand_graded``.

Both files are written by ``grader.report.store.csv_text``, so a submission whose name
starts like a formula (``=HYPERLINK(...)``, ``+1``, ``-x``, ``@SUM(A1)``) is written with a
leading ``'``; reading undoes it (``csv_value``), and a name typed without it matches too.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from grader.exceptions import ManualScoreError
from grader.report.store import atomic_write_text, csv_text, csv_value, submission_name
from grader.result import ItemStatus, SubmissionResult, format_points
from grader.rubric import Rubric
from grader.untrusted import clean_path

MANUAL_RECORD = "manual.csv"  # the hand-graded scores merged so far
MANUAL_TEMPLATE = "manual-template.csv"  # what an instructor fills in
ManualScores = dict[str, dict[str, float]]  # submission -> hand-graded item id -> points


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and ``(spreadsheet row number, row)`` pairs; the header is row 1. Each cell
    is as the grader had it before ``csv_text`` wrote it (``csv_value``)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        lines = [[csv_value(cell) for cell in line] for line in csv.reader(io.StringIO(text))]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ManualScoreError([f"{path}: cannot read the file ({error})"]) from None
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
        raise ValueError(f"{text} is out of range: points must be between 0 and "
                         f"{format_points(maximum)}")
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


def _find(index: dict[str, str], key: str) -> str | None:
    """The submission a ``submission`` cell names: as written, or without the spaces around
    it, or with the leading ``'`` a spreadsheet may have kept (already removed once)."""
    for candidate in (key, key.strip(), "'" + key, "'" + key.strip()):
        if candidate in index:
            return index[candidate]
    return None


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
        key = row.get("submission", "")
        if not key.strip():
            if any(value.strip() for value in row.values()):
                problems.append(f"{manual_path}: row {number}, column 'submission': empty")
            continue
        submission = _find(index, key)
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
        replace(item, points=points[item.id], status=ItemStatus.HAND_GRADED,
                message="graded by hand")
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
        submission = row.get("submission", "")  # as the grader wrote it, spaces included
        for item in rubric.items:
            text = row.get(item.id, "").strip()
            if item.manual and submission.strip() and text:
                try:
                    record.setdefault(submission, {})[item.id] = _parse_points(text, item.points)
                except ValueError as error:
                    raise ManualScoreError([f"{path}: row {number}, column '{item.id}': "
                                            f"{error}"]) from None
    return record


def _manual_rows(submissions: Iterable[str], record: ManualScores,
                 rubric: Rubric) -> list[list[str | float]]:
    manual_ids = [item.id for item in rubric.items if item.manual]
    rows: list[list[str | float]] = [["submission", *manual_ids]]
    for submission in submissions:
        points = record.get(submission, {})
        cells = (float(points[i]) if i in points else "" for i in manual_ids)
        rows.append([submission, *cells])
    return rows


def write_manual_record(out_dir: str | Path, record: ManualScores, rubric: Rubric) -> Path:
    """Write ``OUT/manual.csv``, every hand-graded score merged so far."""
    return atomic_write_text(Path(out_dir) / MANUAL_RECORD,
                             csv_text(_manual_rows(sorted(record), record, rubric)))


def write_manual_template(results: Iterable[SubmissionResult], out_dir: str | Path,
                          rubric: Rubric, record: ManualScores | None = None) -> Path:
    """Write ``OUT/manual-template.csv``: a row per submission, a column per hand-graded
    item, filled in with the scores merged so far; an instructor completes it and passes
    it to ``hw4grade gradebook OUT --manual``."""
    submissions = [clean_path(result.submission) for result in results]  # as in results/
    return atomic_write_text(Path(out_dir) / MANUAL_TEMPLATE,
                             csv_text(_manual_rows(submissions, record or {}, rubric)))
