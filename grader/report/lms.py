"""Grades into the course's LMS: the import file Canvas (or Moodle) takes, made from its own
export.

``hw4grade gradebook OUT --canvas EXPORT.csv --assignment "HW4 (123456)"`` reads the
course's Canvas gradebook export (columns ``Student``, ``ID``, ``SIS User ID``,
``SIS Login ID``, ``Section`` and one per assignment) and writes ``OUT/canvas-import.csv``:
those five columns and the assignment's, holding each student's score under the one score
rule, or blank while hand-graded points are pending (a blank cell changes nothing in
Canvas).

Students are matched through the roster's ``sis_login_id`` (recorded by ``hw4grade
collect`` in each result), else its ``student`` id (or, for a result not collected from
git, the first folder of its path), against Canvas's ``SIS Login ID``, then ``SIS User ID``,
without regard to case. Every student is kept: a Canvas student with no result keeps a
blank cell, and both kinds of unmatched student are listed.

Moodle works the same way (``--moodle EXPORT.csv``): its grader report exported as a
plain-text file has the columns ``First name``, ``Last name``, ``ID number`` and ``Email
address``; the import file ``OUT/moodle-import.csv`` keeps those and the assignment's
column (``Assignment: HW4 (Real)``), matched on ``ID number`` then ``Email address``.
Each LMS is an ``LmsFormat``, one declaration each below.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from grader.exceptions import LmsExportError
from grader.report.store import atomic_write_text, csv_text
from grader.result import SubmissionResult, format_points

MAX_EXPORT_BYTES = 50 * 2**20


@dataclass(frozen=True)
class LmsFormat:
    """What an LMS's export and import files look like."""

    name: str
    import_file: str  # written in OUT
    columns: tuple[str, ...]  # kept from the export, in this order
    match: tuple[str, ...]  # compared with the student's id, in this order
    named_by: tuple[str, str]  # how a student is named in the lists of unmatched ones
    student_row: str | None = None  # a row without this cell is the LMS's own (kept as is)


CANVAS = LmsFormat("Canvas", "canvas-import.csv",
                   ("Student", "ID", "SIS User ID", "SIS Login ID", "Section"),
                   ("SIS Login ID", "SIS User ID"), ("Student", "SIS Login ID"), "ID")
MOODLE = LmsFormat("Moodle", "moodle-import.csv",
                   ("First name", "Last name", "ID number", "Email address"),
                   ("ID number", "Email address"), ("Email address", "ID number"))


def student_key(result: SubmissionResult) -> str:
    """The id a result is matched by: the roster's ``sis_login_id``, else its ``student``,
    else the first folder of the submission's path (its file stem when it has none)."""
    source = result.provenance
    if source is not None:
        return source.sis_login_id or source.student
    first = result.submission.replace("\\", "/").split("/")[0]
    return first.removesuffix(".ipynb")


def lms_score(result: SubmissionResult) -> str:
    """The score as the LMS gets it: the score rule's total, blank while pending."""
    score, _, pending = result.totals()
    return "" if pending else format_points(score)


@dataclass
class LmsImport:
    """The import file's rows and who could not be matched."""

    lms: LmsFormat
    header: list[str]
    rows: list[list[str]]
    unmatched_lms: list[str] = field(default_factory=list)  # "Name (SIS Login ID)"
    unmatched_results: list[str] = field(default_factory=list)  # submission labels
    ambiguous: list[str] = field(default_factory=list)  # several results for one student


def read_export(path: Path, assignment: str,
                lms: LmsFormat = CANVAS) -> tuple[list[str], list[dict[str, str]]]:
    """The export's header and rows; LmsExportError when a needed column is missing."""
    try:
        raw = path.read_bytes()[: MAX_EXPORT_BYTES + 1]
        text = raw.decode("utf-8-sig")
    except OSError as error:
        raise LmsExportError(f"{path}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise LmsExportError(f"{path}: not UTF-8 text (export it again from {lms.name})") \
            from None
    if len(raw) > MAX_EXPORT_BYTES:
        raise LmsExportError(f"{path}: more than {MAX_EXPORT_BYTES >> 20} MiB")
    reader = csv.DictReader(text.splitlines())
    header = list(reader.fieldnames or [])
    missing = [name for name in (*lms.columns, assignment) if name not in header]
    if missing:
        others = [name for name in header if name not in lms.columns][:8]
        raise LmsExportError(f"{path}: row 1: no column {', '.join(map(repr, missing))} "
                             f"(assignment columns include {', '.join(map(repr, others))})")
    return header, [{key: value or "" for key, value in row.items() if key is not None}
                    for row in reader]


def is_student(row: dict[str, str], lms: LmsFormat) -> bool:
    """False for the LMS's own lines under the header (Canvas's ``Points Possible``)."""
    return lms.student_row is None or bool(row.get(lms.student_row, "").strip())


def lms_import(export: Sequence[dict[str, str]], results: Sequence[SubmissionResult],
                  assignment: str, lms: LmsFormat = CANVAS) -> LmsImport:
    """The import file's content for ``results`` (pure)."""
    by_key: dict[str, list[SubmissionResult]] = {}
    for result in results:
        by_key.setdefault(student_key(result).strip().lower(), []).append(result)
    used: set[str] = set()
    made = LmsImport(lms=lms, header=[*lms.columns, assignment], rows=[])
    for row in export:
        cells = [row.get(column, "") for column in lms.columns]
        if not is_student(row, lms):  # kept as the LMS wrote it
            made.rows.append([*cells, row.get(assignment, "")])
            continue
        key = next((row[column].strip().lower() for column in lms.match
                    if row.get(column, "").strip().lower() in by_key), None)
        score = ""
        name, login = (row.get(column, "") for column in lms.named_by)
        if key is None:
            made.unmatched_lms.append(f"{name} ({login})")
        elif len(by_key[key]) > 1:
            made.ambiguous.append(f"{name}: " + ", ".join(
                result.submission for result in by_key[key]))
            used.add(key)
        else:
            score = lms_score(by_key[key][0])
            used.add(key)
        made.rows.append([*cells, score])
    made.unmatched_results = sorted(result.submission for key, found in by_key.items()
                                    if key not in used for result in found)
    return made


def write_import(made: LmsImport, out: Path) -> Path:
    """Write the import file (``OUT/canvas-import.csv``, ...) atomically; return its path."""
    return atomic_write_text(out / made.lms.import_file, csv_text([made.header, *made.rows]))
