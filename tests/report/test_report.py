"""Tests of grader/report/: every report rendered from one SubmissionResult."""

from __future__ import annotations

import base64
import csv
import itertools
import json
import re
import struct
import zlib
from pathlib import Path

import pytest

from grader.report import store
from grader.report.classroom import classroom_base64, classroom_payload
from grader.report.feedback import write_feedback
from grader.report.gradebook import write_gradebook
from grader.report.gradescope import gradescope_json
from grader.report.html import render_html
from grader.report.manual import (
    ManualScoreError,
    apply_manual_scores,
    merge_manual_record,
    read_manual_scores,
)
from grader.report.markdown import render_markdown
from grader.report.store import (
    ResultFileWarning,
    read_results,
    submission_name,
    write_result_json,
)
from grader.report.text import render_text
from grader.result import CellResult, ItemResult, Provenance, SubmissionResult
from grader.rubric import Rubric, load_rubric

AUTO_MAX = 105.0  # the shipped rubric: 105 autograded points
MANUAL_MAX = 30.0  # and two derivations of 15 points graded by hand


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return load_rubric()


def make_result(rubric: Rubric, submission: str = "alice/HW4.ipynb", **points: float):
    """A result with every rubric item: full marks unless ``points`` says otherwise."""
    items = []
    for item in rubric.items:
        if item.manual:
            items.append(ItemResult(item.id, 0.0, item.points, "manual"))
            continue
        got = points.get(item.id, item.points)
        status = "passed" if got >= item.points else "failed"
        message = "" if status == "passed" else f"{item.id}: wrong output"
        items.append(ItemResult(item.id, got, item.points, status, message))
    result = SubmissionResult(
        submission=submission,
        notebook_sha256="a" * 64,
        grader_version="0.1.0",
        rubric_sha256=rubric.text_sha256,
        mode="quick",
        seed=1234,
        device="cpu",
        profile="tf2",  # a graded result names its framework (grader.frameworks)
        items=items,
        cells=[CellResult(0, "ok", 0.5), CellResult(1, "ok", 2.0)],
        timing={"total": 41.6},
    )
    result.total()
    return result


def error_result(rubric: Rubric, submission: str = "carol/HW4.ipynb") -> SubmissionResult:
    result = make_result(rubric, submission)
    result.error = "the notebook is not valid JSON: Expecting value: line 1 column 1"
    result.notebook_sha256 = None
    return result


def tiny_png() -> bytes:
    """A valid 1x1 grey PNG, built by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b""))


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


# --------------------------------------------------------------------------- JSON files


def test_json_round_trip_keeps_every_field(tmp_path, rubric):
    result = make_result(rubric, generator=4.5)
    result.item("gan_convergence").details = {"images": {"samples": "abc"}, "fid": 12.5}
    result.warnings = ["tf.random.set_seed was replaced by the notebook — ünïcode"]
    result.cells.append(CellResult(2, "error", 1.0, "ValueError", "bad shape", True))
    path = write_result_json(result, tmp_path)
    assert path == tmp_path / "results" / "alice__HW4.json"
    assert read_results(tmp_path) == [result]


def test_atomic_write_never_exposes_a_partial_file(tmp_path, rubric, monkeypatch):
    old = make_result(rubric, generator=0.0)
    path = write_result_json(old, tmp_path)
    new = make_result(rubric)
    real_replace = store.os.replace
    seen = {}

    def checking_replace(source, target):
        # at the moment of the switch the visible file is still the old one, whole,
        # and the new text sits complete in a temporary file of the same folder
        seen["target"] = Path(target).read_text(encoding="utf-8")
        seen["source"] = Path(source).read_text(encoding="utf-8")
        seen["same_dir"] = Path(source).parent == Path(target).parent
        real_replace(source, target)

    monkeypatch.setattr(store.os, "replace", checking_replace)
    write_result_json(new, tmp_path)
    assert json.loads(seen["target"]) == old.to_dict()
    assert json.loads(seen["source"]) == new.to_dict()
    assert seen["same_dir"]
    assert json.loads(path.read_text(encoding="utf-8")) == new.to_dict()
    assert sorted(p.name for p in path.parent.iterdir()) == ["alice__HW4.json"]


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_crash_mid_write_leaves_previous_file_intact(tmp_path, rubric, monkeypatch, failing):
    old = make_result(rubric, generator=0.0)
    path = write_result_json(old, tmp_path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, failing, crash)
    with pytest.raises(OSError, match="No space left"):
        write_result_json(make_result(rubric), tmp_path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["alice__HW4.json"]  # temp removed


def test_read_results_skips_and_reports_corrupt_files(tmp_path, rubric):
    good = make_result(rubric)
    write_result_json(good, tmp_path)
    folder = tmp_path / "results"
    (folder / "truncated.json").write_text('{"submission": "x", "items": [', encoding="utf-8")
    (folder / "list.json").write_text("[1, 2]", encoding="utf-8")
    (folder / "fields.json").write_text('{"submission": "x"}', encoding="utf-8")
    bad_status = good.to_dict()
    bad_status["items"][0]["status"] = "excellent"
    (folder / "status.json").write_text(json.dumps(bad_status), encoding="utf-8")
    (folder / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (folder / ".alice__HW4.json.x1y2.tmp").write_text("{", encoding="utf-8")  # a killed write

    problems: list[str] = []
    assert read_results(tmp_path, problems) == [good]
    assert len(problems) == 5
    for name in ("truncated", "list", "fields", "status", "binary"):
        assert any(f"{name}.json" in problem for problem in problems), name

    with pytest.warns(ResultFileWarning) as caught:
        assert read_results(tmp_path) == [good]
    assert len(caught) == 5 and any("truncated.json" in str(w.message) for w in caught)


def test_read_results_of_a_missing_folder_is_empty(tmp_path):
    assert read_results(tmp_path / "nothing") == []


# --------------------------------------------------------------------------- submission names


def test_submission_name_is_readable_safe_and_stable():
    assert submission_name("alice/HW4.ipynb") == "alice__HW4"
    assert submission_name("./alice/HW4.ipynb") == "alice__HW4"
    assert submission_name(Path("bob") / "hw4-final.v2.ipynb") == "bob__hw4-final.v2"
    hostile = ["../../etc/passwd", "/abs/x.ipynb", "a b/<x>.ipynb", ".hidden/.x.ipynb",
               "C:\\Users\\eve\\HW4.ipynb", "", "x" * 400 + ".ipynb", "nul\x00/é.ipynb"]
    for path in hostile:
        name = submission_name(path)
        assert name == submission_name(path)  # stable
        assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._~-]*", name), name
        assert ".." not in name and len(name) <= 130


def test_submission_names_never_collide(tmp_path, rubric):
    paths = ["alice/HW4.ipynb", "bob/HW4.ipynb", "HW4.ipynb", "/HW4.ipynb", "a b/HW4.ipynb",
             "a_b/HW4.ipynb", "a!/HW4.ipynb", "a?/HW4.ipynb", "a__b/c.ipynb", "a/b__c.ipynb",
             "a_/b.ipynb", "a/_b.ipynb", "x/HW4.py", "x/HW4.py.ipynb", "x\\HW4.ipynb",
             "x/HW4.ipynb", "-x/HW4.ipynb", "x-/HW4.ipynb", "x./HW4.ipynb", "../x/HW4.ipynb",
             "y" * 300 + "/HW4.ipynb", "z" * 300 + "/HW4.ipynb"]
    names = [submission_name(path) for path in paths]
    for (p1, n1), (p2, n2) in itertools.combinations(zip(paths, names), 2):
        assert n1 != n2, (p1, p2)
    # a lossless name can never equal one carrying a hash, whatever the student calls a file
    assert submission_name(f"{submission_name('a b/HW4.ipynb')}.ipynb") != submission_name(
        "a b/HW4.ipynb")

    for path in ("alice/HW4.ipynb", "bob/HW4.ipynb"):
        write_result_json(make_result(rubric, path), tmp_path)
    assert sorted(r.submission for r in read_results(tmp_path)) == ["alice/HW4.ipynb",
                                                                   "bob/HW4.ipynb"]


# --------------------------------------------------------------------------- gradebook


def test_gradebook_columns_and_values(tmp_path, rubric):
    full = make_result(rubric, "alice/HW4.ipynb")
    partial = make_result(rubric, "bob/HW4.ipynb", leaky_relu=2.5, vae_kl=0.0)
    broken = error_result(rubric)
    broken.error = "=HYPERLINK(\"http://evil\")\nTraceback..."
    path = write_gradebook([full, partial, broken], tmp_path / "gradebook.csv", rubric)
    header, rows = read_csv(path)

    item_ids = [item.id for item in rubric.items]
    assert header == ["submission", "score", "max_score", "pending_max", *item_ids,
                      "status", "error", "integrity", "seed", "mode", "profile",
                      "notebook_sha256", "student", "repository", "commit", "commit_date",
                      "collect_flags"]
    alice, bob, carol = rows
    assert [row["submission"] for row in rows] == ["alice/HW4.ipynb", "bob/HW4.ipynb",
                                                   "carol/HW4.ipynb"]
    # the one score rule: graded so far (105 of 105 autograded), 30 still to grade by hand
    assert (alice["score"], alice["max_score"], alice["pending_max"]) == ("105", "105", "30")
    assert (bob["score"], bob["leaky_relu"], bob["vae_kl"]) == ("98.5", "2.5", "0")
    assert alice["discriminator"] == "10"
    for row in rows:
        assert row["problem1_derivation"] == row["problem2_derivation"] == ""  # pending
        assert (row["seed"], row["mode"], row["profile"]) == ("1234", "quick", "tf2")
    assert alice["status"] == "pending" and alice["error"] == "" and alice["integrity"] == ""
    assert alice["notebook_sha256"] == "a" * 64
    # an ungraded notebook: no item points, score 0, the error on one line, no formula
    assert carol["status"] == "error" and carol["score"] == "0"
    assert all(carol[item_id] == "" for item_id in item_ids)
    assert carol["error"].startswith("'=HYPERLINK") and "\n" not in carol["error"]
    assert carol["notebook_sha256"] == ""


MANUAL_HEADER = "submission,problem1_derivation,problem2_derivation\n"


def gradebook_fixture(rubric: Rubric) -> list[SubmissionResult]:
    return [make_result(rubric, "alice/HW4.ipynb"),
            make_result(rubric, "bob/HW4.ipynb", leaky_relu=2.5),
            error_result(rubric)]


def test_manual_scores_fill_columns_and_totals(tmp_path, rubric):
    results = gradebook_fixture(rubric)
    manual = tmp_path / "manual.csv"
    manual.write_text(MANUAL_HEADER + "alice/HW4.ipynb,15,12.5\n"
                      "bob__HW4, 7 ,\n"  # the file name form works; an empty cell stays pending
                      "carol/HW4.ipynb,10,10\n"
                      ",,\n", encoding="utf-8-sig")  # an Excel BOM and a blank line
    scores = read_manual_scores(manual, results, rubric)
    assert scores == {"alice/HW4.ipynb": {"problem1_derivation": 15.0,
                                          "problem2_derivation": 12.5},
                      "bob/HW4.ipynb": {"problem1_derivation": 7.0},
                      "carol/HW4.ipynb": {"problem1_derivation": 10.0,
                                          "problem2_derivation": 10.0}}
    merged = [apply_manual_scores(r, scores.get(r.submission, {})) for r in results]
    assert results[0].score == 105  # the input is left alone
    header, rows = read_csv(write_gradebook(merged, tmp_path / "gradebook.csv", rubric))
    alice, bob, carol = rows
    assert (alice["problem1_derivation"], alice["problem2_derivation"]) == ("15", "12.5")
    assert (alice["score"], alice["max_score"], alice["pending_max"]) == ("132.5", "135", "0")
    assert alice["status"] == "graded"
    assert (bob["problem1_derivation"], bob["problem2_derivation"]) == ("7", "")
    assert (bob["score"], bob["max_score"], bob["pending_max"]) == ("109.5", "120", "15")
    assert bob["status"] == "pending"
    # an ungraded notebook keeps 0 autograded points; its hand-graded points count
    assert (carol["score"], carol["status"]) == ("20", "error")
    assert merged[1].score_text() == ("109.5 / 120 (102.5 / 105 autograded + 7 / 15 graded "
                                      "by hand); 15 more points pending (graded by hand)")
    for result, row in zip(merged, rows):  # every rendering prints the same total
        for page in (render_html(result), render_markdown(result), render_text(result)):
            assert result.score_text() in page
        assert (row["score"], row["max_score"]) == (f"{result.score:g}", f"{result.max_score:g}")


def test_a_later_merge_keeps_the_earlier_one():
    earlier = {"alice": {"problem1_derivation": 15.0}, "bob": {"problem2_derivation": 3.0}}
    later = {"alice": {"problem2_derivation": 10.0}, "bob": {"problem2_derivation": 4.0}}
    assert merge_manual_record(earlier, later) == {
        "alice": {"problem1_derivation": 15.0, "problem2_derivation": 10.0},
        "bob": {"problem2_derivation": 4.0}}  # a new value corrects the old one
    assert earlier["alice"] == {"problem1_derivation": 15.0}


@pytest.mark.parametrize(
    ("manual_text", "expected"),
    [
        (MANUAL_HEADER + "dave/HW4.ipynb,10,10\n",
         ["row 2", "column 'submission'", "unknown submission 'dave/HW4.ipynb'"]),
        ("submission,problem3_derivation\nalice/HW4.ipynb,5\n",
         ["row 1", "column 'problem3_derivation'", "not a hand-graded item id"]),
        ("submission,leaky_relu\nalice/HW4.ipynb,5\n",
         ["row 1", "column 'leaky_relu'", "autograded"]),
        (MANUAL_HEADER + "alice/HW4.ipynb,ten,5\n",
         ["row 2", "column 'problem1_derivation'", "'ten' is not a number"]),
        (MANUAL_HEADER + "alice/HW4.ipynb,5,nan\n",
         ["row 2", "column 'problem2_derivation'", "not a finite number"]),
        (MANUAL_HEADER + "alice/HW4.ipynb,-1,5\n",
         ["row 2", "column 'problem1_derivation'", "out of range", "between 0 and 15"]),
        (MANUAL_HEADER + "alice/HW4.ipynb,5,15\nbob/HW4.ipynb,5,15.5\n",
         ["row 3", "column 'problem2_derivation'", "out of range"]),
        (MANUAL_HEADER + "alice/HW4.ipynb,5,5\nalice__HW4,6,6\n",
         ["row 3", "already appears on row 2"]),
        ("problem1_derivation\n5\n", ["row 1", "no 'submission' column"]),
    ],
    ids=["unknown-submission", "unknown-item", "autograded-item", "not-a-number", "nan",
         "negative", "above-max", "duplicate", "no-submission-column"],
)
def test_manual_scores_reject_mistakes(tmp_path, rubric, manual_text, expected):
    manual = tmp_path / "manual.csv"
    manual.write_text(manual_text, encoding="utf-8")
    with pytest.raises(ManualScoreError) as caught:
        read_manual_scores(manual, gradebook_fixture(rubric), rubric)
    message = str(caught.value)
    assert str(manual) in message
    for part in expected:
        assert part in message


def test_manual_scores_report_every_problem_at_once(tmp_path, rubric):
    manual = tmp_path / "manual.csv"
    manual.write_text(MANUAL_HEADER + "alice/HW4.ipynb,x,99\nzed,1,1\n", encoding="utf-8")
    with pytest.raises(ManualScoreError) as caught:
        read_manual_scores(manual, gradebook_fixture(rubric), rubric)
    assert len(caught.value.problems) == 3


# --------------------------------------------------------------------------- feedback pages


def mixed_result(rubric: Rubric) -> SubmissionResult:
    result = make_result(rubric, leaky_relu=2.5, gan_loss=0.0)
    result.item("gan_loss").status = "error"
    result.item("gan_loss").message = "gan_loss raised ZeroDivisionError"
    result.cells = [CellResult(0, "ok", 1.0), CellResult(7, "error", 0.2, "NameError",
                                                        "name 'G' is not defined"),
                    CellResult(8, "timeout", 300.0, None, "cell exceeded 300 s"),
                    CellResult(9, "skipped")]
    result.warnings = ["numpy.random.seed was replaced by the notebook"]
    return result


@pytest.mark.parametrize("render", [render_html, render_markdown])
def test_feedback_page_content(rubric, render):
    page = render(mixed_result(rubric))
    assert "92.5 / 105 autograded" in page and "30 more points" in page
    assert page.count("pending (graded by hand)") >= 2  # the two derivations
    for item in rubric.items:
        assert item.id in page
    # details for items below full marks only
    assert "leaky_relu: wrong output" in page and "ZeroDivisionError" in page
    assert "generator: wrong output" not in page
    details = page[page.index("Item details"):]
    assert "leaky_relu" in details and "dc_generator" not in details
    # failed cells with index, status, error name and message; the skipped one is counted
    assert "NameError" in page and "is not defined" in page and "exceeded 300 s" in page
    assert "1 later cell(s) were not run" in page
    assert "numpy.random.seed was replaced" in page
    footer = page[page.rindex("grader"):]
    for text in ("0.1.0", "quick", "1234", "cpu"):
        assert text in footer


def test_html_escapes_everything_from_the_submission(rubric):
    result = mixed_result(rubric)
    result.submission = 'eve/<img src=x onerror="alert(1)">.ipynb'
    result.item("leaky_relu").message = '<script>alert("pwned")</script>'
    result.cells[1].error_message = "</pre><script>steal()</script>"
    result.cells[1].error_name = "<b>Bold</b>"
    result.warnings = ["<iframe src='http://evil'>"]
    page = render_html(result)
    lowered = page.lower()
    for raw in ("<script", "<iframe", "<img src=x", "<b>bold"):
        assert raw not in lowered
    # Jinja2's autoescape (markupsafe) writes a double quote as &#34;
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page
    assert "&lt;/pre&gt;&lt;script&gt;steal()&lt;/script&gt;" in page
    # self-contained: inline style, nothing fetched from anywhere
    assert "<style>" in page and "<link" not in lowered and "src=\"http" not in lowered
    assert "Content-Security-Policy" in page


def test_markdown_keeps_student_text_inert(rubric):
    result = mixed_result(rubric)
    result.item("leaky_relu").message = "look:\n```\n<script>x</script>\n```\nend"
    result.cells[1].error_message = "a | b [click](http://evil) <img src=x>"
    page = render_markdown(result)
    # the message's own fence cannot close the block it is shown in
    assert "````text\nlook:\n```\n<script>x</script>\n```\nend\n````" in page
    row = next(line for line in page.splitlines() if line.startswith("| 8 |"))  # from 1
    assert len(re.findall(r"(?<!\\)\|", row)) == 5  # still exactly four cells
    assert "<img" not in row and "\\[click\\]" in row


def test_images_are_embedded_in_html_and_named_in_markdown(rubric):
    png = base64.b64encode(tiny_png()).decode("ascii")
    result = make_result(rubric)
    result.item("gan_convergence").details = {
        "images": {"GAN samples <step 1500>": png, "broken": "not base64 at all!"}}
    page = render_html(result)
    assert f'<img src="data:image/png;base64,{png}"' in page
    assert "GAN samples &lt;step 1500&gt;" in page
    assert page.count("<img ") == 1 and "could not be shown" in page
    markdown = render_markdown(result)
    assert "GAN samples &lt;step 1500&gt;" in markdown and "HTML" in markdown
    assert png not in markdown


def test_write_feedback_writes_both_pages(tmp_path, rubric):
    html_path, md_path = write_feedback(make_result(rubric, "bob/HW4.ipynb"), tmp_path)
    assert html_path == tmp_path / "feedback" / "bob__HW4.html"
    assert md_path == tmp_path / "feedback" / "bob__HW4.md"
    assert html_path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert md_path.read_text(encoding="utf-8").startswith("# HW4 feedback")


def test_error_result_pages_show_the_error_and_zero(rubric):
    result = error_result(rubric)
    for page in (render_html(result), render_markdown(result), render_text(result)):
        assert "could not be graded" in page or "ERROR" in page
        assert "not valid JSON" in page
        assert "0 / 105 autograded" in page
        # the items' own points are not shown as earned when nothing could be graded
        assert not re.search(r"\b5 ?/ ?5\b", page)
        assert not re.search(r"(>|\| |\s)passed", page)


# --------------------------------------------------------------------------- Gradescope


def test_gradescope_schema_and_total(rubric):
    result = mixed_result(rubric)
    data = gradescope_json(result)
    json.dumps(data, allow_nan=False)
    assert {"score", "execution_time", "output", "tests"} <= set(data)
    assert data["execution_time"] == 42
    auto_ids = [item.id for item in rubric.items if not item.manual]
    assert [test["name"] for test in data["tests"]] == auto_ids  # no derivations
    assert data["score"] == pytest.approx(sum(test["score"] for test in data["tests"])) == 92.5
    assert sum(test["max_score"] for test in data["tests"]) == AUTO_MAX
    for test in data["tests"]:
        assert set(test) == {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["visibility"] == "visible"
        assert test["status"] == ("passed" if test["score"] == test["max_score"] else "failed")
    by_name = {test["name"]: test for test in data["tests"]}
    assert by_name["gan_loss"]["output"] == "gan_loss raised ZeroDivisionError"
    assert "problem1_derivation" in data["output"] and "by hand" in data["output"]


def test_gradescope_error_result_scores_zero(rubric):
    data = gradescope_json(error_result(rubric))
    assert data["score"] == 0
    assert "not valid JSON" in data["output"]
    assert all(test["score"] == 0 and test["status"] == "failed" for test in data["tests"])


# --------------------------------------------------------------------------- GitHub Classroom


def decode(encoded: str) -> dict:
    return json.loads(base64.b64decode(encoded, validate=True).decode("utf-8"))


def test_classroom_payload_schema_and_total(rubric):
    result = mixed_result(rubric)
    result.item("runs_clean").message = "ünïcode ✓ ???>>>~~~"  # encodes to '+' and '/'
    encoded = classroom_base64(result)
    assert "+" in encoded and "/" in encoded  # standard base64, not the URL-safe alphabet
    payload = decode(encoded)
    assert payload == classroom_payload(result)
    assert payload["version"] == 1 and payload["status"] == "fail"
    assert payload["max_score"] == AUTO_MAX
    assert sum(test["score"] for test in payload["tests"]) == 92.5
    assert [t["name"] for t in payload["tests"]] == [i.id for i in rubric.items if not i.manual]
    keys = {"name", "status", "score", "message", "test_code", "filename", "line_no", "duration"}
    statuses = {test["name"]: test["status"] for test in payload["tests"]}
    assert all(set(test) == keys for test in payload["tests"])
    assert (statuses["runs_clean"], statuses["leaky_relu"], statuses["gan_loss"]) == (
        "pass", "fail", "error")


def test_classroom_full_marks_pass(rubric):
    payload = decode(classroom_base64(make_result(rubric)))
    assert payload["status"] == "pass"
    assert sum(test["score"] for test in payload["tests"]) == payload["max_score"] == AUTO_MAX


def test_classroom_error_result(rubric):
    payload = decode(classroom_base64(error_result(rubric)))
    assert payload["status"] == "error" and payload["max_score"] == AUTO_MAX
    assert all(t["status"] == "error" and t["score"] == 0 for t in payload["tests"])
    assert "not valid JSON" in payload["tests"][0]["message"]

    bare = error_result(rubric)
    bare.items = []
    payload = classroom_payload(bare)
    assert payload["status"] == "error"
    assert [t["name"] for t in payload["tests"]] == ["notebook"]  # never zero tests


# --------------------------------------------------------------------------- terminal


def test_render_text_lists_items_and_ends_with_total(rubric):
    result = mixed_result(rubric)
    result.item("leaky_relu").message = "wrong\x1b[2J values\nat alpha=0.2"
    text = render_text(result)
    lines = text.rstrip("\n").splitlines()
    assert lines[-1] == "Total: 92.5 / 105 autograded; 30 more points pending (graded by hand)"
    leaky = next(line for line in lines if "leaky_relu" in line)
    assert "2.5/5" in leaky and "failed" in leaky and "wrong" in leaky and "alpha=0.2" in leaky
    assert "\x1b" not in text  # no terminal escape sequences from student text
    derivation = next(line for line in lines if "problem1_derivation" in line)
    assert "-/15" in derivation and "pending (graded by hand)" in derivation
    assert any("cell 8" in line and "NameError" in line for line in lines)  # from 1
    for item in rubric.items:  # one line per item, in rubric order
        assert sum(line.split()[:1] == [item.id] for line in lines) == 1, item.id
    assert [line.split()[0] for line in lines[1:19]] == [item.id for item in rubric.items]


# --------------------------------------------------------------------------- provenance


def collected_result(rubric: Rubric) -> SubmissionResult:
    result = make_result(rubric, "alice/HW4.ipynb")
    result.provenance = Provenance(
        student="alice", repository="https://github.com/org/hw4-alice", status="collected",
        commit="0123456789abcdef" * 2 + "01234567", commit_date="2026-02-28T23:59:00-05:00",
        branch=None, notebook="HW4.ipynb", sis_login_id="aa1",
        flags=["commit 0123456789ab is dated in the future (2099-01-01T00:00:00+00:00)"])
    return result


def test_provenance_round_trips_and_old_results_still_read(tmp_path, rubric):
    result = collected_result(rubric)
    write_result_json(result, tmp_path)
    assert read_results(tmp_path) == [result]
    old = json.loads(result.to_json())
    del old["provenance"]  # a result written before provenance existed
    assert SubmissionResult.from_dict(old).provenance is None


def test_provenance_in_the_gradebook_and_the_pages(tmp_path, rubric):
    result = collected_result(rubric)
    _, rows = read_csv(write_gradebook([result, make_result(rubric, "bob/HW4.ipynb")],
                                       tmp_path / "gradebook.csv", rubric))
    assert (rows[0]["student"], rows[0]["repository"], rows[0]["commit"],
            rows[0]["commit_date"]) == ("alice", "https://github.com/org/hw4-alice",
                                        result.provenance.commit, "2026-02-28T23:59:00-05:00")
    assert "dated in the future" in rows[0]["collect_flags"]
    assert rows[1]["repository"] == rows[1]["commit"] == ""
    for render in (render_html, render_markdown):
        footer = render(result)[render(result).rindex("grader"):]
        assert "https://github.com/org/hw4-alice" in footer and "0123456789ab" in footer
        assert "2026-02-28T23:59:00-05:00" in footer
        assert "collection: commit 0123456789ab is dated in the future" in render(result)
