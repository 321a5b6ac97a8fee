"""Submission names: the path opens the file, the label names it everywhere else.

A folder whose name is not UTF-8 (a Latin-1 zip tool writes ``b"caf\\xe9"``) is graded from
its real path, while its label (``grader.pipeline.load.submission_label``) is clean text,
the same on every run, and never shared with another submission. No kernel runs here: the
batch's grading is replaced by a stand-in, what is tested is its bookkeeping.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.pipeline import grade_many as batch
from grader.pipeline.grade_one import Options, failed_result
from grader.pipeline.load import find_notebooks, named_folder, submission_label
from grader.report import store
from grader.report.feedback import feedback_paths
from grader.rubric import load_rubric
from grader.untrusted import clean_path

LATIN1 = b"caf\xe9"


def make_class(root: Path) -> Path:
    """A class folder with an ordinary submission, one in a folder whose name is not UTF-8,
    one in a folder spelled as that name is shown (``caf\\xe9``) and two formula names."""
    folder = root / "class"
    for name in (b"alice", LATIN1, b"caf\\xe9", b"=cmd", b"+evil"):
        os.makedirs(os.path.join(os.fsencode(folder), name))
        with open(os.path.join(os.fsencode(folder), name, b"HW4.ipynb"), "w") as handle:
            handle.write('{"cells": []}')
    return folder


def test_every_label_is_clean_stable_distinct_and_finds_its_folder(tmp_path):
    folder = make_class(tmp_path)
    found = find_notebooks([folder])
    assert len(found) == 5 and found == find_notebooks([folder])  # the same on every run
    labels = list(found.values())
    assert len(set(labels)) == 5 and "caf\\xe9/HW4.ipynb" in labels
    assert len({store.submission_name(label) for label in labels}) == 5
    for path, label in found.items():
        label.encode("utf-8")  # valid text
        assert clean_path(label) == label and label.isprintable()
        assert named_folder(path, label) == folder
        assert path.is_file()  # the real path still opens the file
    assert "alice/HW4.ipynb" in labels and "=cmd/HW4.ipynb" in labels
    latin1 = found[Path(os.fsdecode(os.path.join(os.fsencode(folder), LATIN1, b"HW4.ipynb")))]
    assert latin1.startswith("caf\\xe9/HW4.ipynb~")
    # a label already taken in the batch (another root with that layout) gets a mark
    assert submission_label("caf\\xe9/HW4.ipynb", {"caf\\xe9/HW4.ipynb"}) != "caf\\xe9/HW4.ipynb"


def test_two_folders_named_on_the_command_line_with_the_same_layout_stay_apart(tmp_path):
    for group in ("a", "b"):
        (tmp_path / group / "alice").mkdir(parents=True)
        (tmp_path / group / "alice" / "HW4.ipynb").write_text("{}")
    labels = list(find_notebooks([tmp_path / "a", tmp_path / "b"]).values())
    assert labels[0] == "alice/HW4.ipynb" and labels[1].startswith("alice/HW4.ipynb~")


def test_a_notebook_named_directly_is_labelled_by_its_clean_file_name(tmp_path):
    raw = os.path.join(os.fsencode(tmp_path), b"\x1b[2J" + LATIN1 + b".ipynb")
    with open(raw, "w") as handle:
        handle.write("{}")
    ((path, label),) = find_notebooks([Path(os.fsdecode(raw))]).items()
    assert path.is_file() and label.startswith("\\x1b[2Jcaf\\xe9.ipynb~")
    assert submission_label(os.fsdecode(raw)) == submission_label(os.fsdecode(raw))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.text(st.characters(codec=None, exclude_categories=()), max_size=30),
                min_size=1, max_size=4).map("/".join))
def test_clean_path_is_clean_idempotent_and_keeps_the_parts(text):
    label = clean_path(text)
    label.encode("utf-8")
    assert clean_path(label) == label
    assert label.count("/") == text.count("/")
    assert "\x1b" not in label and "\x00" not in label and label.strip()
    if label != text:
        assert re.search(r"~[0-9a-f]{12}$", label)  # marked by a digest of the original
        assert clean_path(text + "\udcff") != label


# --------------------------------------------------------------------------- a batch's books


def _options() -> Options:
    return Options(rubric=load_rubric(), seed=3)


@pytest.fixture()
def stand_in(monkeypatch):
    """The batch's grading replaced: every notebook gets a result whose error holds a lone
    surrogate and an escape sequence, as an old kernel could send."""
    calls: list[str] = []

    def grade(path, options, oracle, label=None):
        assert Path(path).is_file()
        calls.append(label)
        return failed_result(label, options, store_sha(path), "bad \udcff \x1b[2J")

    monkeypatch.setattr(batch, "grade_notebook", grade)
    monkeypatch.setattr("grader.oracles.choose.load_oracle", lambda: None)
    return calls


def store_sha(path) -> str:
    from grader.pipeline.load import file_sha256

    return file_sha256(Path(path))


def test_a_batch_with_odd_names_writes_everything_and_resumes(tmp_path, stand_in):
    folder, out = make_class(tmp_path), tmp_path / "out"
    notebooks = find_notebooks([folder])
    results = batch.grade_batch(notebooks, out, _options())
    assert sorted(r.submission for r in results) == sorted(notebooks.values())
    assert len(list((out / "results").glob("*.json"))) == 5
    for result in results:
        for page in feedback_paths(result, out):
            assert "bad \\xff \\x1b[2J" in page.read_bytes().decode("utf-8")
    rows = (out / "gradebook.csv").read_bytes().decode("utf-8").splitlines()
    assert len(rows) == 6 and any(row.startswith("'=cmd/HW4.ipynb,") for row in rows)

    # a rerun finds every result again; a lost page is written again, a damaged file regraded
    stand_in.clear()
    feedback_paths(results[0], out)[1].unlink()
    damaged = out / "results" / f"{store.submission_name(results[1].submission)}.json"
    data = json.loads(damaged.read_text())
    data["items"][0]["points"] = "5"
    damaged.write_text(json.dumps(data))
    again = batch.grade_batch(notebooks, out, _options())
    assert stand_in == [results[1].submission]
    assert [r.submission for r in again] == [r.submission for r in results]
    assert all(page.is_file() for page in feedback_paths(results[0], out))
