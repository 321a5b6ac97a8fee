"""Integrity flags (``ItemResult.flags``) from the result file to every report: the
gradebook's ``integrity`` column (kept through ``gradebook --manual``), the feedback pages
(the flag under its item, with how a convergence item was judged), the terminal, Gradescope,
Classroom, the class page's summary and ``grade``'s closing lines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from grader.commands.grade import closing_lines
from grader.report.classpage import render_class_page, summarise
from grader.report.classroom import classroom_payload
from grader.report.gradebook import write_gradebook
from grader.report.gradescope import gradescope_json
from grader.report.html import render_html
from grader.report.manual import MANUAL_TEMPLATE
from grader.report.markdown import render_markdown
from grader.report.store import read_results, write_result_json
from grader.report.text import render_text, verdict
from grader.result import (
    FLAG_COUNT,
    FLAG_LIMIT,
    ConvergenceDetail,
    SampledBy,
    SubmissionResult,
    clean_result,
)
from grader.rubric import load_rubric
from tests.report.test_report import make_result, read_csv

RUBRIC = load_rubric()
ROOT = Path(__file__).resolve().parents[2]
COPIES = "its samples copy training digits: 38% lie within 0.5 of a training image"
LOSSES = "its reported losses do not match the weights it returned"


def flag(result: SubmissionResult, item_id: str, *flags: str, **details) -> SubmissionResult:
    """``result`` with ``item_id`` flagged as the convergence code flags it: 0 points."""
    item = result.item(item_id)
    item.points, item.status, item.flags = 0.0, "failed", list(flags)
    item.message = f"{item_id}: not credited"
    item.details = dict(details)
    result.mode = "full"
    result.total()
    return result


def alice() -> SubmissionResult:
    """Two items flagged, the first judged early on samples drawn in her kernel."""
    result = flag(make_result(RUBRIC, "alice/HW4.ipynb"), "gan_convergence", COPIES,
                  **{ConvergenceDetail.CHECKPOINT: 1000, ConvergenceDetail.STEPS_BUDGET: 1500,
                     ConvergenceDetail.SAMPLED_BY: SampledBy.KERNEL})
    return flag(result, "dcgan_convergence", LOSSES)


def bob() -> SubmissionResult:
    """Clean; one convergence item judged on the grader's own samples."""
    result = make_result(RUBRIC, "bob/HW4.ipynb")
    result.mode = "full"
    result.item("lsgan_convergence").details = {ConvergenceDetail.CHECKPOINT: 400,
                                                ConvergenceDetail.SAMPLED_BY: SampledBy.GRADER}
    return result


# --------------------------------------------------------------------------- the result


def test_integrity_lists_every_flag_by_item_in_item_order():
    assert alice().integrity == [f"gan_convergence: {COPIES}", f"dcgan_convergence: {LOSSES}"]
    assert bob().integrity == []


def test_flags_round_trip_and_an_old_result_reads_as_clean(tmp_path):
    result = alice()
    write_result_json(result, tmp_path)
    assert read_results(tmp_path) == [result]
    old = json.loads(result.to_json())
    for item in old["items"]:
        del item["flags"]  # a result written before flags existed
    assert SubmissionResult.from_dict(old).integrity == []


@pytest.mark.parametrize("flags", ["one flag", [1], [None], {"a": "b"}],
                         ids=["text", "number", "null", "mapping"])
def test_flags_of_the_wrong_type_are_refused(flags):
    data = json.loads(alice().to_json())
    data["items"][0]["flags"] = flags
    with pytest.raises(TypeError, match="flags"):
        SubmissionResult.from_dict(data)


def test_clean_result_bounds_the_flags_and_says_how_many_were_cut():
    result = alice()
    result.items[0].flags = ["\x1b[2J" + "x" * 5000, *(f"flag {n}" for n in range(500))]
    flags = clean_result(result).items[0].flags
    assert len(flags) == FLAG_COUNT and flags[-1] == "\u2026 and 492 more flag(s)"
    assert flags[0].startswith("\\x1b[2J") and len(flags[0]) < FLAG_LIMIT + 64
    assert clean_result(clean_result(result)) == clean_result(result)


# --------------------------------------------------------------------------- gradebook


def test_the_integrity_column_and_its_round_trip_through_gradebook_manual(tmp_path):
    out = tmp_path / "out"
    for result in (alice(), bob()):
        write_result_json(result, out)
    header, rows = read_csv(write_gradebook(read_results(out), out / "gradebook.csv", RUBRIC))
    assert header.index("integrity") == header.index("error") + 1
    flagged, clean = rows
    assert flagged["integrity"] == f"gan_convergence: {COPIES} | dcgan_convergence: {LOSSES}"
    assert clean["integrity"] == ""
    assert flagged["gan_convergence"] == flagged["dcgan_convergence"] == "0"
    before = {name: row["score"] for name, row in zip(("alice", "bob"), rows)}

    (tmp_path / "scores.csv").write_text("submission,problem1_derivation,problem2_derivation\n"
                                         "alice/HW4.ipynb,15,10\nbob/HW4.ipynb,12,\n",
                                         encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "grader.cli", "gradebook", "out", "--manual",
                           "scores.csv"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert ("1 submission flagged for review (integrity column of out/gradebook.csv): "
            "alice/HW4.ipynb") in done.stdout
    header_after, (flagged, clean) = read_csv(out / "gradebook.csv")
    assert header_after == header
    assert flagged["integrity"] == f"gan_convergence: {COPIES} | dcgan_convergence: {LOSSES}"
    assert clean["integrity"] == ""
    assert (flagged["problem1_derivation"], flagged["problem2_derivation"]) == ("15", "10")
    assert float(flagged["score"]) == float(before["alice"]) + 25  # the flag is no points
    assert float(clean["score"]) == float(before["bob"]) + 12
    template, _ = read_csv(out / MANUAL_TEMPLATE)
    assert template == ["submission", "problem1_derivation", "problem2_derivation"]
    merged = {result.submission: result for result in read_results(out)}
    assert merged["alice/HW4.ipynb"].integrity == alice().integrity


def test_a_hostile_flag_is_one_safe_cell(tmp_path):
    result = flag(make_result(RUBRIC), "gan_convergence", "=HYPERLINK(\"x\")\n\x1b[2J\udcff")
    _, (row,) = read_csv(write_gradebook([result], tmp_path / "gradebook.csv", RUBRIC))
    assert row["integrity"] == "gan_convergence: =HYPERLINK(\"x\") \\x1b[2J\\xff"


# --------------------------------------------------------------------------- feedback pages


def section(page: str, start: str, end: str) -> str:
    """The text of ``page`` from ``start`` to the next ``end`` (or the page's end)."""
    begin = page.index(start)
    stop = page.find(end, begin + len(start))
    return page[begin: stop if stop >= 0 else len(page)]


@pytest.mark.parametrize(("render", "heading"), [
    (render_markdown, "### `{}`"), (render_html, "<h3><code>{}</code>")], ids=["md", "html"])
def test_the_feedback_pages_show_each_flag_under_its_item(render, heading):
    page = render(alice())
    gan = section(page, heading.format("gan_convergence"), heading.split("{}")[0])
    assert "Flagged for review:" in gan and COPIES in gan and LOSSES not in gan
    assert "Judged at training step 1000 of 1500." in gan
    assert ("Samples drawn in your kernel: your generator is not the specified "
            "architecture.") in gan
    assert "your instructor reviews every flag" in gan
    dcgan = section(page, heading.format("dcgan_convergence"), heading.split("{}")[0])
    assert LOSSES in dcgan and COPIES not in dcgan and "Judged at" not in dcgan
    assert "flagged for review" in section(page, "gan_convergence", "\n")  # the table row


@pytest.mark.parametrize("render", [render_markdown, render_html], ids=["md", "html"])
def test_the_pages_say_how_a_clean_convergence_item_was_judged(render):
    page = render(bob())
    assert "Judged at training step 400." in page
    assert "Samples drawn by the grader from your trained weights." in page
    assert "Flagged for review" not in page and "flagged for review" not in page


@pytest.mark.parametrize("details", [
    {"checkpoint": True, "sampled_by": "elsewhere"}, {"checkpoint": "1000"},
    {"checkpoint": -1, "steps_budget": 5}, {"sampled_by": ["grader"]}])
def test_details_that_are_not_what_the_grader_writes_say_nothing(details):
    result = make_result(RUBRIC)
    result.item("gan_convergence").details = details
    for page in (render_markdown(result), render_html(result), render_text(result)):
        assert "Judged at" not in page and "Samples drawn" not in page


def test_the_terminal_report_puts_the_flag_under_its_item():
    lines = render_text(alice()).splitlines()
    at = next(n for n, line in enumerate(lines) if line.strip().startswith("gan_convergence"))
    assert "flagged for review" in lines[at]
    assert lines[at + 1] == f"    Flagged for review: {COPIES}"
    assert lines[at + 2] == "    Judged at training step 1000 of 1500."
    assert verdict(alice()).endswith("; flagged for review: gan_convergence, dcgan_convergence")
    assert "flagged" not in verdict(bob())


def test_gradescope_and_classroom_carry_the_flag_in_the_items_output():
    tests = {test["name"]: test for test in gradescope_json(alice())["tests"]}
    assert f"Flagged for review: {COPIES}" in tests["gan_convergence"]["output"]
    assert "Judged at training step 1000 of 1500." in tests["gan_convergence"]["output"]
    assert COPIES not in tests["dcgan_convergence"]["output"]
    assert tests["gan_convergence"]["score"] == 0.0
    tests = {test["name"]: test for test in classroom_payload(alice())["tests"]}
    assert f"Flagged for review: {LOSSES}" in tests["dcgan_convergence"]["message"]
    assert tests["dcgan_convergence"]["status"] == "fail"
    assert "Flagged" not in json.dumps(gradescope_json(bob()))


# --------------------------------------------------------------------------- the instructor


def test_the_class_page_lists_the_flagged_students_first():
    hostile = flag(make_result(RUBRIC, "eve/HW4.ipynb"), "gan_convergence",
                   "<img src=x onerror=alert(3)> in its samples")
    summary = summarise([bob(), alice(), hostile], RUBRIC)
    assert summary.flagged_count == 2
    assert [(entry.student.label, entry.item, entry.flag) for entry in summary.flagged] == [
        ("alice/HW4.ipynb", "gan_convergence", COPIES),
        ("alice/HW4.ipynb", "dcgan_convergence", LOSSES),
        ("eve/HW4.ipynb", "gan_convergence", "<img src=x onerror=alert(3)> in its samples")]
    assert [page.flagged for page in summary.pages] == [True, False, True]
    page = render_class_page([bob(), alice(), hostile], RUBRIC)
    assert page.index('id="review"') < page.index('id="totals"')  # near the top
    assert "2 submission(s) flagged for review" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(3)&gt;" in page
    rows = re.findall(r"<tr class=\"flagged\"><td><a [^>]*>([^<]*)</a>", page)
    assert rows == ["alice/HW4.ipynb", "eve/HW4.ipynb"]


def test_a_clean_class_page_says_none_were_flagged():
    page = render_class_page([bob()], RUBRIC)
    assert "0 flagged for review" in page and 'class="flagged"' not in page


def test_grade_closes_with_the_flagged_submissions():
    lines = closing_lines([alice(), bob()], Path("out"))
    assert lines[-1] == ("1 submission flagged for review (integrity column of "
                         "out/gradebook.csv): alice/HW4.ipynb")
    assert lines[0].startswith("alice__HW4") and "flagged for review" in lines[0]
    assert not any("flagged" in line for line in closing_lines([bob()], Path("out")))
    many = [flag(make_result(RUBRIC, f"s{n:02d}/HW4.ipynb"), "gan_convergence", COPIES)
            for n in range(12)]
    assert closing_lines(many, Path("out"))[-1].startswith("12 submissions flagged")
    assert closing_lines(many, Path("out"))[-1].endswith("s09/HW4.ipynb and 2 more")
