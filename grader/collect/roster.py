"""The class roster (a CSV with a header) and the deadline of ``hw4grade collect``.

Columns: ``student`` (the id used everywhere after collection: folder, gradebook row) and
``repository`` (any git URL or path) are required; ``name``, ``sis_login_id`` and
``section`` are optional. Every problem is reported with the file, row and column.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from grader.exceptions import RosterError
from grader.untrusted import clean_name

REQUIRED = ("student", "repository")
OPTIONAL = ("name", "sis_login_id", "section")
# a student id becomes a folder name and a gradebook key: keep it plain
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")
MAX_ROSTER_BYTES = 10 * 2**20
RESERVED = frozenset({"collect.json"})  # names SUBMISSIONS/ already uses


@dataclass(frozen=True)
class RosterRow:
    """One student of the roster."""

    student: str
    repository: str
    name: str = ""
    sis_login_id: str = ""
    section: str = ""


def parse_deadline(text: str) -> datetime:
    """The deadline as an aware datetime; RosterError unless it is ISO 8601 with a zone."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RosterError(f"--deadline {text!r}: not an ISO 8601 time "
                          "(e.g. 2026-03-01T23:59:00-05:00)") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise RosterError(f"--deadline {text!r}: no time zone; add one "
                          "(e.g. 2026-03-01T23:59:00-05:00 or ...Z for UTC)")
    return moment


def read_roster(path: Path, repository_required: bool = True) -> list[RosterRow]:
    """Every row of the roster; RosterError listing all problems at once.

    With ``repository_required`` False (``--from-clones``), an empty ``repository`` cell or
    no such column is allowed: the clone is then looked up by the student's id.
    """
    try:
        raw = path.read_bytes()[: MAX_ROSTER_BYTES + 1]
    except OSError as error:
        raise RosterError(f"{path}: cannot read the roster ({error.strerror})") from None
    if len(raw) > MAX_ROSTER_BYTES:
        raise RosterError(f"{path}: more than {MAX_ROSTER_BYTES >> 20} MiB, not a roster")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RosterError(f"{path}: not UTF-8 text (save the roster as CSV UTF-8)") from None
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    needed = REQUIRED if repository_required else ("student",)
    missing = [name for name in needed if name not in header]
    if missing:
        raise RosterError(f"{path}: row 1: no column {', '.join(map(repr, missing))} "
                          f"(the header has {', '.join(map(repr, header)) or 'nothing'})")
    rows, problems, seen = [], [], {}
    for number, record in enumerate(reader, start=2):
        cells = {(key or "").strip(): (value or "").strip() for key, value in record.items()
                 if isinstance(value, str)}
        student, repository = cells.get("student", ""), cells.get("repository", "")
        where = f"{path}: row {number}"
        if not any(cells.values()):
            continue
        if not STUDENT_ID.fullmatch(student) or student.lower() in RESERVED:
            problems.append(f"{where}, column 'student': {clean_name(student)!r} is not a "
                            "plain id (letters, digits and . _ @ + -, at most 100)")
        elif student.lower() in seen:
            problems.append(f"{where}, column 'student': {student!r} is also on row "
                            f"{seen[student.lower()]}")
        else:
            seen[student.lower()] = number
        if repository_required and not repository:
            problems.append(f"{where}, column 'repository': empty")
        rows.append(RosterRow(student, repository,
                              *(cells.get(name, "") for name in OPTIONAL)))
    if problems:
        raise RosterError("\n".join(problems))
    if not rows:
        raise RosterError(f"{path}: no student in the roster")
    return rows
