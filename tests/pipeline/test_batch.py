"""Batch behaviour without kernels: interruption, resume bookkeeping, GPU discovery, CLI errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.commands import options as options_module
from grader.exceptions import UsageError
from grader.pipeline import devices
from grader.pipeline import grade_many as batch
from grader.pipeline.grade_one import Options, failed_result
from grader.pipeline.load import find_notebooks
from grader.report import store
from grader.rubric import load_rubric


def _options(**changes) -> Options:
    return Options(rubric=load_rubric(), seed=3, **changes)


def _folder(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "class"
    for number in range(count):
        (folder / f"s{number}").mkdir(parents=True)
        (folder / f"s{number}" / "HW4.ipynb").write_text(f'{{"n": {number}}}')
    return folder


def test_find_notebooks_labels_and_skips_checkpoints(tmp_path):
    folder = _folder(tmp_path, 2)
    (folder / "s0" / ".ipynb_checkpoints").mkdir()
    (folder / "s0" / ".ipynb_checkpoints" / "HW4-checkpoint.ipynb").write_text("{}")
    found = find_notebooks([folder])
    assert list(found.values()) == ["s0/HW4.ipynb", "s1/HW4.ipynb"]
    assert store.submission_name("s0/HW4.ipynb") == "s0__HW4"


def test_ctrl_c_keeps_finished_results_and_writes_the_gradebook(tmp_path, monkeypatch):
    folder = _folder(tmp_path, 3)
    calls: list[str] = []

    def fake_grade(path, options, oracle, label=None):
        calls.append(label)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return failed_result(label, options, "0" * 64, "fake")

    monkeypatch.setattr(batch, "grade_notebook", fake_grade)
    monkeypatch.setattr("grader.oracles.choose.load_oracle", lambda: None)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        batch.grade_batch(find_notebooks([folder]), out, _options(), workers=1)
    assert [p.name for p in (out / "results").glob("*.json")] == ["s0__HW4.json"]
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("s0/HW4.ipynb")


def test_results_marked_for_retry_are_regraded(tmp_path):
    options = _options()
    result = failed_result("a.ipynb", options, "ab" * 32, "the grader failed")
    assert batch.still_valid(result, "ab" * 32, options)
    result.retry = True
    assert not batch.still_valid(result, "ab" * 32, options)
    other = _options(mode="full")
    assert not batch.still_valid(failed_result("a.ipynb", options, "ab" * 32, "x"), "ab" * 32,
                                 other)


def test_gpus_are_counted_with_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'GPU 0: Fake A (UUID: x)'\necho 'GPU 1: Fake B (UUID: y)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert devices.count_gpus() == 2
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert devices.count_gpus() == 0


def test_gpu_request_without_a_gpu_is_a_clear_error(monkeypatch):
    from grader.cli import build_parser

    monkeypatch.setattr(options_module, "count_gpus", lambda: 0)
    args = build_parser().parse_args(["check", "x.ipynb", "--device", "gpu"])
    with pytest.raises(UsageError, match="--device gpu: no GPU"):
        options_module.options_from_args(args)


def test_grade_command_with_no_notebooks(tmp_path, capsys):
    from grader.cli import main

    assert main(["grade", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "no notebooks found" in capsys.readouterr().err


def test_bad_memory_limit_is_reported(capsys):
    from grader.cli import build_parser
    from grader.rubric import RubricError

    args = build_parser().parse_args(["check", "x.ipynb", "--memory-limit", "lots"])
    with pytest.raises(RubricError, match="--memory-limit"):
        options_module.options_from_args(args)


def test_unusable_files_keep_their_hash_so_a_rerun_skips_them(tmp_path):
    from grader.pipeline.grade_one import grade_notebook
    from grader.pipeline.load import file_sha256

    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ not json")
    options = _options()
    result = grade_notebook(broken, options, oracle=None)
    assert result.error and result.notebook_sha256 == file_sha256(broken)
    assert batch.still_valid(result, file_sha256(broken), options)
    missing = grade_notebook(tmp_path / "missing.ipynb", options, oracle=None)
    assert missing.error and missing.notebook_sha256 is None


def test_a_requested_profile_regrades_results_of_another():
    options = _options()
    refused = failed_result("a.ipynb", options, "ab" * 32, "x")  # before any framework
    assert refused.profile == ""
    assert batch.still_valid(refused, "ab" * 32, _options(profile="tf1"))
    graded_as_tf2 = failed_result("a.ipynb", options, "ab" * 32, "x")
    graded_as_tf2.profile = "tf2"
    assert batch.still_valid(graded_as_tf2, "ab" * 32, _options(profile="tf2"))
    assert not batch.still_valid(graded_as_tf2, "ab" * 32, _options(profile="tf1"))
    graded_as_tf2.profile = "tf1-2017"
    assert batch.still_valid(graded_as_tf2, "ab" * 32, _options(profile="tf1"))
    assert batch.still_valid(graded_as_tf2, "ab" * 32, options)  # auto keeps what was detected


def test_a_regrade_keeps_the_hand_graded_scores_merged_earlier(tmp_path):
    from grader.cli import main

    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.ipynb").write_text("{ not json")  # graded without a kernel
    out = tmp_path / "out"
    notebooks = find_notebooks([folder])
    batch.grade_batch(notebooks, out, _options(), workers=1)
    manual = tmp_path / "marks.csv"
    manual.write_text("submission,problem1_derivation\na.ipynb,12\n")
    assert main(["gradebook", str(out), "--manual", str(manual)]) == 0
    batch.grade_batch(notebooks, out, _options(), workers=1, force=True)
    rows = {row.split(",")[0]: row.split(",") for row in
            (out / "gradebook.csv").read_text().splitlines()}
    assert rows["a.ipynb"][1:4] == ["12", "105", "15"]  # score, max_score, pending_max
    assert rows["b.ipynb"][1:4] == ["0", "90", "30"]
    (result,) = [r for r in store.read_results(out) if r.submission == "a.ipynb"]
    assert result.item("problem1_derivation").status == "hand_graded"
    assert result.score_text() == ("12 / 105 (0 / 90 autograded + 12 / 15 graded by hand); "
                                   "15 more points pending (graded by hand)")


def test_a_student_collected_at_last_loses_the_old_zero(tmp_path):
    """A result filed under another label for the same collected student (their 0 from a
    collection that found nothing) is removed with its pages; other students' stay."""
    from grader.report.feedback import write_feedback
    from grader.result import Provenance

    options = _options()
    out = tmp_path / "out"
    for label, student in (("alice", "alice"), ("bob", "bob")):
        old = failed_result(label, options, None, "not collected")
        old.provenance = Provenance(student, f"https://x/{student}.git", "no_notebook")
        store.write_result_json(old, out)
        write_feedback(old, out)
    batch.drop_superseded(out, {"alice/HW4.ipynb": Provenance("alice", "https://x/alice.git",
                                                              "collected")})
    assert [result.submission for result in store.read_results(out)] == ["bob"]
    assert sorted(path.name for path in (out / "feedback").iterdir()) == [
        f"{store.submission_name('bob')}.html", f"{store.submission_name('bob')}.md"]
