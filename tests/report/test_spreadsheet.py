"""Every CSV the grader writes is safe to open in a spreadsheet, and reads back as written.

A text cell that starts like a formula (``=``, ``+``, ``-``, ``@``, tab, CR: OWASP's CSV
injection rule) or with ``'`` is written with a leading ``'``; numbers stay numbers. The
manual template an instructor fills in still names each submission when read back, the
mark kept or dropped by the spreadsheet.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader import cli
from grader.report import manual, store
from grader.report.gradebook import write_gradebook
from grader.result import ItemResult, SubmissionResult
from grader.rubric import load_rubric
from grader.untrusted import clean_text

RUBRIC = load_rubric()
FORMULA_NAMES = ['=HYPERLINK("http://x")', "+1", "-x", "@SUM(A1)", "'quoted", "=1+1/HW4.ipynb"]


def a_result(submission: str, **points: float) -> SubmissionResult:
    items = []
    for item in RUBRIC.items:
        if item.manual:
            items.append(ItemResult(item.id, 0.0, item.points, "manual"))
        elif item.id in points:
            items.append(ItemResult(item.id, points[item.id], item.points, "failed", "no"))
        else:
            items.append(ItemResult(item.id, item.points, item.points, "passed"))
    result = SubmissionResult(submission, "a" * 64, "0.1.0", RUBRIC.text_sha256, "full", 3,
                              "cpu", items=items)
    result.total()
    return result


def rows_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


@pytest.mark.parametrize(("value", "cell"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1", "'+1"), ("-x", "'-x"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("'x", "''x"), ("-0.5", "'-0.5"),
    ("alice", "alice"), ("", ""), ("a=b", "a=b"),
    (-0.5, "-0.5"), (-3, "-3"), (12.5, "12.5"), (15.0, "15"), (0, "0"),
])
def test_a_cell_starting_like_a_formula_is_marked_and_a_number_stays_a_number(value, cell):
    assert store.csv_cell(value) == cell
    if isinstance(value, str):
        assert store.csv_value(store.csv_cell(value)) == value


def test_a_carriage_return_or_a_control_never_breaks_the_file():
    text = store.csv_text([["\r=1", "a\rb", "nul\x00", "esc\x1b[2J", "lone\udcff"], [1.5, -2]])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [["\\x0d=1", "a\\x0db", "nul\\x00", "esc\\x1b[2J", "lone\\xff"],
                    ["1.5", "-2"]]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.text(st.characters(codec=None, exclude_categories=()), max_size=12),
                min_size=1, max_size=4))
def test_any_text_row_reads_back_as_its_clean_text_and_no_cell_is_a_formula(row):
    (back,) = csv.reader(io.StringIO(store.csv_text([row]), newline=""))
    for written, original in zip(back, row, strict=True):
        assert written[:1] not in store.FORMULA_STARTS
        assert store.csv_value(written) == clean_text(original, store.CELL_LIMIT,
                                                      keep=frozenset("\n\t"))


def test_the_gradebook_marks_formula_names_and_keeps_points_numbers(tmp_path):
    results = [a_result(name, gan_loss=-0.5) for name in FORMULA_NAMES]
    results[0].error = "=cmd|' /C calc'!A0"
    header, *rows = rows_of(write_gradebook(results, tmp_path / "gradebook.csv", RUBRIC))
    assert [row[0] for row in rows] == [store.csv_cell(name) for name in FORMULA_NAMES]
    assert all(row[0].startswith("'") for row in rows)
    gan_loss = header.index("gan_loss")
    assert {row[gan_loss] for row in rows[1:]} == {"-0.5"}  # a number, not marked
    assert rows[1][header.index("score")] == f"{results[1].score:g}" == "94.5"
    assert rows[0][header.index("error")] == "'=cmd|' /C calc'!A0"


@pytest.mark.parametrize("spreadsheet_keeps_the_mark", [True, False])
def test_the_filled_in_template_merges_every_formula_name(tmp_path, spreadsheet_keeps_the_mark):
    """grade writes the template; an instructor fills it in (a spreadsheet may drop the
    leading ``'`` on saving); ``hw4grade gradebook OUT --manual FILE`` merges every row."""
    out = tmp_path / "out"
    names = [*FORMULA_NAMES, "alice/HW4.ipynb", " spaced /HW4.ipynb"]
    for name in names:
        store.write_result_json(a_result(name), out)
    template = manual.write_manual_template(store.read_results(out), out, RUBRIC)
    header, *rows = rows_of(template)
    assert sorted(store.csv_value(row[0]) for row in rows) == sorted(names)
    filled = io.StringIO()
    writer = csv.writer(filled, lineterminator="\n")
    writer.writerow(header)
    for number, row in enumerate(rows):
        name = row[0] if spreadsheet_keeps_the_mark else store.csv_value(row[0])
        writer.writerow([name, number % 16, 15])
    (tmp_path / "filled.csv").write_text(filled.getvalue(), encoding="utf-8")

    assert cli.main(["gradebook", str(out), "--manual", str(tmp_path / "filled.csv")]) == 0
    merged = {result.submission: result for result in store.read_results(out)}
    assert sorted(merged) == sorted(names)
    for number, row in enumerate(rows):
        result = merged[store.csv_value(row[0])]
        assert result.item("problem1_derivation").points == number % 16
        assert result.item("problem2_derivation").status == "hand_graded"
    record = manual.read_manual_record(out, RUBRIC)
    assert sorted(record) == sorted(names)  # the record names them exactly, spaces included
    _, *gradebook = rows_of(out / "gradebook.csv")
    assert all(row[0][:1] not in store.FORMULA_STARTS for row in gradebook)
    # a second merge of the same file changes nothing and still completes
    assert cli.main(["gradebook", str(out), "--manual", str(tmp_path / "filled.csv")]) == 0
    assert manual.read_manual_record(out, RUBRIC) == record
