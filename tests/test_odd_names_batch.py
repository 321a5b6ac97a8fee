"""A real batch whose submissions have odd names, and a graded function whose error holds a
lone surrogate and an escape sequence: every submission gets a result, a gradebook row and
its feedback pages; the rerun resumes and the hand-graded merge completes.

The batch runs ``hw4grade grade`` as a user would (a process of its own, real kernels in
the real sandbox). The honest copies of ``alice`` keep exactly 90 / 90 (quick mode).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.report import store

ALICE = Path(__file__).resolve().parent.parent / "examples" / "submissions" / "alice.ipynb"
LATIN1 = b"caf\xe9"  # a folder name as a Latin-1 zip tool writes it: not UTF-8
RAISES = '''

def gan_loss(logits_real, logits_fake):
    raise ValueError("bad \\udcff \\x1b[2J")
'''


def hw4grade(*args: str) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True,
                         text=True, errors="backslashreplace", timeout=1800,
                         env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    return run


def raising_alice() -> str:
    notebook = json.loads(ALICE.read_text(encoding="utf-8"))
    (cell,) = [cell for cell in notebook["cells"] if cell.get("id") == "gan-loss"]
    cell["source"] = "".join(cell["source"]) + RAISES
    return json.dumps(notebook)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd-names")
    submissions, out = root / "submissions", root / "out"
    (submissions / "+evil").mkdir(parents=True)
    (submissions / "raiser").mkdir()
    shutil.copy(ALICE, submissions / "alice.ipynb")
    os.mkdir(os.path.join(os.fsencode(submissions), LATIN1))
    shutil.copy(ALICE, os.path.join(os.fsencode(submissions), LATIN1, b"alice.ipynb"))
    shutil.copy(ALICE, submissions / "+evil" / "=cmd.ipynb")
    (submissions / "raiser" / "HW4.ipynb").write_text(raising_alice(), encoding="utf-8")
    run = hw4grade("grade", str(submissions), "--out", str(out), "--workers", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def results_by_name(out: Path) -> dict:
    problems: list[str] = []
    results = {result.submission: result for result in store.read_results(out, problems)}
    assert problems == []
    return results


def gradebook_rows(out: Path) -> dict[str, dict[str, str]]:
    text = (out / "gradebook.csv").read_bytes().decode("utf-8")
    return {store.csv_value(row["submission"]): row for row in csv.DictReader(io.StringIO(text))}


def test_every_submission_has_a_result_a_row_and_its_pages(batch):
    results = results_by_name(batch)
    latin1 = [name for name in results if name.startswith("caf")]
    assert len(results) == 4 and len(latin1) == 1
    assert re.fullmatch(r"caf\\xe9/alice\.ipynb~[0-9a-f]{12}", latin1[0])
    assert {"alice.ipynb", "+evil/=cmd.ipynb", "raiser/HW4.ipynb"} < set(results)
    rows = gradebook_rows(batch)
    assert set(rows) == set(results)
    raw = (batch / "gradebook.csv").read_text(encoding="utf-8")
    assert "\n'+evil/=cmd.ipynb," in raw  # the spreadsheet sees text, not a formula
    for name in ("alice.ipynb", latin1[0], "+evil/=cmd.ipynb"):  # honest copies, exact grade
        assert (rows[name]["score"], rows[name]["max_score"]) == ("90", "90"), name
        assert results[name].score == results[name].max_score == 90
    for result in results.values():
        for page in (batch / "feedback" / f"{store.submission_name(result.submission)}.html",
                     batch / "feedback" / f"{store.submission_name(result.submission)}.md"):
            text = page.read_bytes().decode("utf-8")  # valid UTF-8
            assert "\x1b" not in text


def test_the_error_with_a_lone_surrogate_costs_the_item_and_shows_escaped(batch):
    raiser = results_by_name(batch)["raiser/HW4.ipynb"]
    assert raiser.error is None and raiser.item("gan_loss").points == 0
    page = (batch / "feedback" / "raiser__HW4.md").read_text(encoding="utf-8")
    assert "ValueError" in page and "\\x1b" in page


def test_a_rerun_resumes_and_the_hand_graded_merge_completes(batch, tmp_path):
    before = results_by_name(batch)
    (batch / "feedback" / "raiser__HW4.html").unlink()
    submissions = batch.parent / "submissions"
    run = hw4grade("grade", str(submissions), "--out", str(batch), "--workers", "1")
    assert run.returncode == 0 and "4 result(s) still valid, 0 to grade" in run.stderr
    assert (batch / "feedback" / "raiser__HW4.html").is_file()  # the lost page is back
    assert results_by_name(batch) == before

    template = (batch / "manual-template.csv").read_text(encoding="utf-8")
    header, *rows = list(csv.reader(io.StringIO(template)))
    assert len(rows) == 4
    filled = io.StringIO()
    csv.writer(filled, lineterminator="\n").writerows([header, *([row[0], 10, 12.5]
                                                                 for row in rows)])
    (tmp_path / "filled.csv").write_text(filled.getvalue(), encoding="utf-8")
    run = hw4grade("gradebook", str(batch), "--manual", str(tmp_path / "filled.csv"))
    assert run.returncode == 0, run.stderr
    assert "merged 8 hand-graded score(s)" in run.stdout
    merged = results_by_name(batch)
    assert set(merged) == set(before)
    for name, result in merged.items():
        assert result.hand_graded_score() == 22.5, name
    assert merged["alice.ipynb"].score_text() == ("112.5 / 120 (90 / 90 autograded + "
                                                  "22.5 / 30 graded by hand)")
    rows = gradebook_rows(batch)
    assert {row["problem2_derivation"] for row in rows.values()} == {"12.5"}
