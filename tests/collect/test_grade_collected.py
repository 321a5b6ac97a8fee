"""``hw4grade collect`` then ``hw4grade grade``: the collected notebook is graded with its
provenance, every student not collected gets a 0 with the reason, nothing is dropped."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from grader.collect.manifest import Handoff, Status, handoff, read_manifest
from tests.fixtures.git_repos import DEADLINE, ROOT, when

BROKEN = b'{"cells": [ this is not JSON any more'


def hw4grade(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=cwd, env=env,
                          text=True, capture_output=True, timeout=1200)


def test_grade_takes_the_collection_and_keeps_its_provenance(make_repo, notebook_bytes,
                                                             tmp_path):
    alice = make_repo("alice")  # graded on the good commit, not the broken one after it
    alice.write("HW4.ipynb", notebook_bytes("alice"))
    good = alice.commit("done", when(days=-1))
    alice.write("HW4.ipynb", BROKEN).commit("after the deadline", when(hours=2))
    bob = make_repo("bob")
    bob.write("HW4.ipynb", notebook_bytes("alice")).commit("late", when(hours=5))
    (tmp_path / "roster.csv").write_text(
        f"student,repository,sis_login_id\nalice,{alice.path},aa1\nbob,{bob.path},bb2\n"
        "carol,nowhere/at/all,cc3\n")
    collected = hw4grade("collect", "roster.csv", "--deadline", DEADLINE.isoformat(),
                         "--out", "submissions", cwd=tmp_path)
    assert collected.returncode == 0, collected.stderr
    (tmp_path / "submissions" / "stray").mkdir()  # a notebook no entry names is not graded
    (tmp_path / "submissions" / "stray" / "x.ipynb").write_bytes(notebook_bytes("alice"))

    graded = hw4grade("grade", "submissions", "--out", "out", "--seed", "3", cwd=tmp_path)
    assert graded.returncode == 0, graded.stderr[-3000:]
    assert "1 notebook(s) in" in graded.stderr and "not graded" in graded.stderr
    with open(tmp_path / "out" / "gradebook.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"alice", "bob", "carol"}
    assert (rows["alice"]["score"], rows["alice"]["commit"]) == ("90", good)
    assert rows["alice"]["submission"] == "alice/HW4.ipynb"
    for name, words in (("bob", "no commit at or before the deadline"),
                        ("carol", "repository unreachable")):
        assert rows[name]["score"] == "0" and rows[name]["status"] == "error"
        assert words in rows[name]["error"]
    results = {json.loads(path.read_text())["provenance"]["student"]: json.loads(path.read_text())
               for path in (tmp_path / "out" / "results").glob("*.json")}
    assert results["alice"]["provenance"]["sis_login_id"] == "aa1"
    assert results["bob"]["provenance"]["status"] == Status.NO_COMMIT.value
    page = (tmp_path / "out" / "feedback" / "alice__HW4.html").read_text()
    assert good[:12] in page and str(alice.path) in page

    # a collected notebook deleted from the folder afterwards is not silently dropped either
    manifest = read_manifest(tmp_path / "submissions")
    plan = handoff(tmp_path / "submissions", manifest, {})
    assert isinstance(plan, Handoff) and set(plan.uncollected) == {"alice/HW4.ipynb", "bob",
                                                                   "carol"}
    assert "no longer in" in plan.uncollected["alice/HW4.ipynb"]
    # the class page is there, with every student
    index = (tmp_path / "out" / "index.html").read_text()
    assert all(name in index for name in ("alice/HW4.ipynb", "bob", "carol"))
