"""The Canvas (and Moodle) import file, checked cell by cell against the course's own
export."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.exceptions import LmsExportError
from grader.report.lms import CANVAS, MOODLE, lms_import, read_export
from grader.report.manual import apply_manual_scores
from grader.report.store import write_result_json
from grader.result import Provenance
from grader.rubric import load_rubric
from tests.report.test_report import error_result, make_result

ROOT = Path(__file__).resolve().parents[2]
RUBRIC = load_rubric()
ASSIGNMENT = "HW4 (123456)"
EXPORT = (
    "Student,ID,SIS User ID,SIS Login ID,Section,HW3 (111),HW4 (123456),Current Score\n"
    "    Points Possible,,,,,100,120,\n"
    '"Doe, Alice",1001,S1,AA1,001,90,,\n'
    "Bob Bee,1002,S2,bob,001,80,12,\n"
    "Carol C,1003,S3,cc3,002,70,,\n"
    "Zed Z,1004,S4,zz9,002,60,55,\n")


def results():
    alice = apply_manual_scores(make_result(RUBRIC, "alice/HW4.ipynb", leaky_relu=2.5),
                                {"problem1_derivation": 15, "problem2_derivation": 12.5})
    alice.provenance = Provenance("alice", "https://example.edu/a.git", "collected",
                                  sis_login_id="aa1")
    bob = apply_manual_scores(error_result(RUBRIC, "bob"),  # not collected: 0, reason
                              {"problem1_derivation": 0, "problem2_derivation": 0})
    bob.provenance = Provenance("bob", "https://example.edu/b.git", "unreachable")
    carol = make_result(RUBRIC, "cc3/HW4.ipynb")  # graded, derivations still pending
    mallory = make_result(RUBRIC, "mallory/HW4.ipynb")  # no such Canvas student
    return [alice, bob, carol, mallory]


def test_the_import_file_cell_by_cell(tmp_path):
    (tmp_path / "export.csv").write_text("\ufeff" + EXPORT, encoding="utf-8")
    _, export = read_export(tmp_path / "export.csv", ASSIGNMENT, CANVAS)
    made = lms_import(export, results(), ASSIGNMENT, CANVAS)
    assert made.header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", ASSIGNMENT]
    assert made.rows == [
        ["    Points Possible", "", "", "", "", "120"],  # Canvas's own line, as it was
        ["Doe, Alice", "1001", "S1", "AA1", "001", "130"],  # 102.5 + 27.5 by hand
        ["Bob Bee", "1002", "S2", "bob", "001", "0"],  # not collected, derivations merged
        ["Carol C", "1003", "S3", "cc3", "002", ""],  # pending hand-grading: blank
        ["Zed Z", "1004", "S4", "zz9", "002", ""],  # no result: blank, and listed
    ]
    assert made.unmatched_lms == ["Zed Z (zz9)"]
    assert made.unmatched_results == ["mallory/HW4.ipynb"]


def test_a_missing_column_is_named(tmp_path):
    (tmp_path / "export.csv").write_text(EXPORT.replace("SIS Login ID", "Login"))
    with pytest.raises(LmsExportError, match="no column 'SIS Login ID', 'HW4 \\(9\\)'"):
        read_export(tmp_path / "export.csv", "HW4 (9)", CANVAS)


def test_the_command_writes_the_file_and_lists_the_unmatched(tmp_path):
    out = tmp_path / "out"
    for result in results():
        write_result_json(result, out)
    (tmp_path / "export.csv").write_text(EXPORT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "grader.cli", "gradebook", "out", "--canvas",
                           "export.csv", "--assignment", ASSIGNMENT], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "in Canvas, no result (cell left blank): Zed Z (zz9)" in done.stdout
    assert "a result, no Canvas student (not in the import): mallory/HW4.ipynb" in done.stdout
    assert "4 submission(s)" in (out / "index.html").read_text()  # the class page, rebuilt
    rows = list(csv.reader(io.StringIO((out / CANVAS.import_file).read_text(encoding="utf-8"))))
    assert rows[0][-1] == ASSIGNMENT and [row[-1] for row in rows[1:]] == ["120", "130", "0",
                                                                           "", ""]
    bad = subprocess.run([sys.executable, "-m", "grader.cli", "gradebook", "out", "--canvas",
                          "export.csv", "--assignment", "HW5"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "export.csv: row 1: no column 'HW5'" in bad.stderr


def test_the_moodle_import_file_cell_by_cell(tmp_path):
    column = "Assignment: HW4 (Real)"
    (tmp_path / "moodle.csv").write_text(
        f'"First name","Last name","ID number",Institution,Department,"Email address",'
        f'"{column}","Last downloaded from this course"\n'
        f"Alice,Doe,aa1,U,CS,alice@u.edu,-,1700000000\n"
        f"Zed,Z,zz9,U,CS,zed@u.edu,-,1700000000\n"
        f"Carol,C,,U,CS,cc3,-,1700000000\n")
    _, export = read_export(tmp_path / "moodle.csv", column, MOODLE)
    made = lms_import(export, results(), column, MOODLE)
    assert made.header == ["First name", "Last name", "ID number", "Email address", column]
    assert made.rows == [["Alice", "Doe", "aa1", "alice@u.edu", "130"],
                         ["Zed", "Z", "zz9", "zed@u.edu", ""],
                         ["Carol", "C", "", "cc3", ""]]  # matched by e-mail; pending: blank
    assert made.unmatched_lms == ["zed@u.edu (zz9)"]
    assert made.unmatched_results == ["bob", "mallory/HW4.ipynb"]
