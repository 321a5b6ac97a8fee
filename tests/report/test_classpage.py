"""The class page, OUT/index.html: its figures from the results, and the page itself loaded
in a real headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from grader.report.classpage import (
    CLASS_PAGE,
    ClassPageWriter,
    render_class_page,
    summarise,
    write_class_page,
)
from grader.report.feedback import write_feedback
from grader.report.store import write_result_json
from grader.result import Provenance, SubmissionResult
from grader.rubric import load_rubric
from tests.report.test_report import error_result, make_result

RUBRIC = load_rubric()
CHROMIUM = os.environ.get("HW4_CHROMIUM") or "/usr/bin/chromium"
SWAPPED = "the labels swapped (real scores labelled 0, fake ones 1)"


def swapped(submission: str) -> SubmissionResult:
    result = make_result(RUBRIC, submission, gan_loss=0.0)
    result.item("gan_loss").message = (
        "gan_loss: D_loss is wrong with moderate scores; D_loss and G_loss match a common "
        f"mistake, {SWAPPED}: the discriminator labels real data 1.")
    return result


def class_results() -> list[SubmissionResult]:
    """A small class: full marks, a diagnosed mistake twice, an ungradable notebook, a
    collection flag, a hostile name, and FCDs of a full-mode run."""
    results = [make_result(RUBRIC, "alice/HW4.ipynb"), swapped("bob/HW4.ipynb"),
               swapped("dave/HW4.ipynb"), error_result(RUBRIC, "carol/HW4.ipynb"),
               make_result(RUBRIC, 'eve/<script>alert(1)</script>.ipynb', leaky_relu=2)]
    results[0].provenance = Provenance("alice", "https://example.edu/alice.git", "collected",
                                       flags=["commit 0123456789ab is dated in the future"])
    for number, result in enumerate(results):
        result.mode = "full"
        for model in ("gan", "lsgan", "dcgan"):
            result.item(f"{model}_convergence").details = {"fcd": 5.0 + 10 * number}
    results[4].warnings = ["<img src=x onerror=alert(2)> replaced np.allclose"]
    results[2].sandbox = "none"
    return results


def test_the_summary_counts_what_the_page_shows():
    summary = summarise(class_results(), RUBRIC)
    assert summary.count == 5 and len(summary.totals) == 5
    by_id = {stats.id: stats for stats in summary.items}
    assert (by_id["gan_loss"].graded, by_id["gan_loss"].passed) == (4, 2)
    assert by_id["gan_loss"].pass_rate == "50%" and by_id["gan_loss"].mean == "5"
    assert by_id["problem1_derivation"].graded == 0  # pending: not counted as failed
    [mistake] = summary.mistakes
    assert (mistake.item, mistake.name) == ("gan_loss", SWAPPED)
    assert [student.label for student in mistake.students] == ["bob/HW4.ipynb", "dave/HW4.ipynb"]
    assert summary.fcd["gan"] == [5.0, 15.0, 25.0, 45.0]  # the ungradable one has none
    assert summary.fcd_lines["gan"] == RUBRIC.convergence.thresholds["cpu"]["gan"]
    assert [flag.student.label for flag in summary.ungradable] == ["carol/HW4.ipynb"]
    assert [(flag.student.label, flag.reason) for flag in summary.flags] == [
        ("alice/HW4.ipynb", "commit 0123456789ab is dated in the future"),
        ("dave/HW4.ipynb", "graded without a sandbox"),
        ("eve/<script>alert(1)</script>.ipynb",
         "<img src=x onerror=alert(2)> replaced np.allclose")]


def test_everything_from_a_submission_is_escaped():
    page = render_class_page(class_results(), RUBRIC)
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<svg") == 5  # totals, pass rates, three FCD plots


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):  # .ci/run installs it: never skipped there
            pytest.fail(f"chromium not found at {CHROMIUM}")
        pytest.skip("Debian's chromium is not installed (scripts/setup installs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def test_the_page_loads_in_chromium_with_figures_and_links(browser, tmp_path):
    results = class_results()
    for result in results:
        write_feedback(result, tmp_path)
    path = write_class_page(results, tmp_path, RUBRIC)
    assert path == tmp_path / CLASS_PAGE
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    problems: list[str] = []
    page.on("console", lambda message: message.type in ("error", "warning")
            and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: request.url.startswith("file:") or
            problems.append(f"fetched {request.url}"))
    page.goto(path.as_uri())
    assert problems == []
    for figure in ("#figure-totals", "#figure-pass-rates", "#figure-fcd-gan",
                   "#figure-fcd-lsgan", "#figure-fcd-dcgan"):
        box = page.locator(f"{figure} svg").bounding_box()
        assert box and box["width"] > 200 and box["height"] > 50, figure
        assert box["width"] <= 390  # fits the phone's width
    assert page.locator("text=Distribution of totals").count() == 1
    hrefs = page.eval_on_selector_all("#pages ~ div a", "links => links.map(a => a.href)")
    assert len(hrefs) == 5
    for href in hrefs:  # every feedback page is there
        assert Path(unquote(urlparse(href).path)).is_file(), href
    mistakes = page.inner_text("body")
    assert f"{SWAPPED} in gan_loss: 2" in mistakes
    assert "eve/<script>alert(1)</script>.ipynb" in mistakes  # shown as text, not run
    page.click("text=bob/HW4.ipynb >> nth=-1")  # follow a link: the student's page opens
    assert page.url.endswith("feedback/bob__HW4.html")
    assert "HW4 feedback: bob/HW4.ipynb" in page.inner_text("h1")
    assert problems == []
    page.close()


def test_the_page_is_rewritten_at_most_every_few_seconds_during_a_batch(tmp_path):
    results = class_results()
    writer = ClassPageWriter(tmp_path, RUBRIC, every=3600)
    writer.update(results[:2])
    first = (tmp_path / CLASS_PAGE).read_text()
    assert "2 submission(s)" in first
    writer.update(results)  # too soon: unchanged
    assert (tmp_path / CLASS_PAGE).read_text() == first
    writer.final(results)  # the end of the batch: always
    assert "5 submission(s)" in (tmp_path / CLASS_PAGE).read_text()


def test_hw4grade_report_rebuilds_the_page(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-m", "grader.cli", "report", "out"]
    empty = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
    assert empty.returncode == 2 and "OUT out: no such folder" in empty.stderr
    (tmp_path / "out").mkdir()
    empty = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
    assert empty.returncode == 2 and "no results in out/results" in empty.stderr
    for result in class_results():
        write_result_json(result, tmp_path / "out")
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "class page: out/index.html (5 result(s))" in done.stdout
    assert "5 submission(s)" in (tmp_path / "out" / CLASS_PAGE).read_text()


def test_a_flagged_student_is_listed_first_and_marked_in_chromium(browser, tmp_path):
    copies = "its samples copy training digits: 38% lie within 0.5 of a training image"
    results = class_results()
    flagged = results[1].item("gan_convergence")  # bob's
    flagged.points, flagged.status, flagged.flags = 0.0, "failed", [copies]
    results[1].total()
    for result in results:
        write_feedback(result, tmp_path)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(write_class_page(results, tmp_path, RUBRIC).as_uri())
    review = page.inner_text("section.review")
    assert "1 submission(s) flagged for review" in review
    assert page.locator("#flagged tr").count() == 2  # the header and bob's one flag
    assert page.inner_text("#flagged tr >> nth=1").split("\t") == [
        "bob/HW4.ipynb", "gan_convergence", copies]
    marked = page.eval_on_selector_all("#pages ~ div tr.flagged a", "a => a.map(x => x.text)")
    assert marked == ["bob/HW4.ipynb"]
    top = page.locator("section.review").bounding_box()["y"]
    assert top < page.locator("#totals").bounding_box()["y"]  # above everything else
    page.click("#flagged a")  # the student's page shows the flag under the item
    assert page.url.endswith("feedback/bob__HW4.html")
    assert f"Flagged for review: {copies}" in page.inner_text(".flag")
    page.close()
