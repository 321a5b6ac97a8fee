"""The grading dispatch: every check of the catalogue has its probe and score, and a failure
of the grader's own on one item is reported against that item and marks the result for retry
(a resumed batch grades it again) instead of stopping the submission."""

from __future__ import annotations

import numpy as np

from grader import items
from grader.pipeline import checks, score
from grader.pipeline.grade_one import Options, failed_result
from grader.profiles.tf2 import TF2Profile
from grader.rubric import load_rubric


def test_every_probed_check_of_the_catalogue_has_a_dispatch_entry():
    not_probed = {items.RUNS_CLEAN, items.CONVERGENCE, items.MANUAL}
    assert set(checks.CHECKS) == set(items.CHECKS) - not_probed
    for spec in items.CATALOGUE:
        if spec.check in checks.CHECKS:
            assert spec.function, f"{spec.id} is probed but names no notebook function"


class ExchangeGone:
    """A prober whose exchange folder has vanished: the grader's side fails."""

    profile = TF2Profile()

    def request(self, calls, inputs, timeout=None):
        raise OSError("the exchange folder is gone")


def test_a_grader_fault_is_reported_on_its_item_and_marks_a_retry():
    rubric = load_rubric()
    graded = [checks.grade_unit(rubric.item(item_id), ExchangeGone(),
                                np.random.default_rng(3), oracle=None)
              for item_id in ("leaky_relu", "gan_loss", "dc_generator", "vae_kl")]
    for result in graded:
        assert result.status == "error" and result.points == 0
        assert f"the grader could not check {result.id}" in result.message
        assert "exchange folder" in result.message
    assert score.grader_faulted(graded)
    student_error = failed_result("a.ipynb", Options(rubric=rubric), None, "not JSON")
    assert not score.grader_faulted(student_error.items)  # the student's fault: no retry


def _npz(**arrays) -> bytes:
    import io

    stream = io.BytesIO()
    np.savez(stream, **arrays)
    return stream.getvalue()


def test_a_kernel_answer_that_is_not_a_response_is_the_submissions_fault():
    import json

    import pytest

    from grader.pipeline.prober import UnreadableResponse, parse_response

    good = json.dumps({"results": [{"kind": "array", "key": "a0"}, {"kind": "none"}],
                       "patched": ["numpy.load"]}).encode()
    outcomes, patched = parse_response(good, _npz(a0=np.arange(3)), 2)
    assert outcomes[0]["array"].tolist() == [0, 1, 2] and patched == ["numpy.load"]
    forged = [
        (b"not json", _npz()),
        (json.dumps({"results": [{"kind": "array", "key": "missing"}]}).encode(), _npz()),
        (json.dumps({"results": "everything passed"}).encode(), _npz()),
        (json.dumps({"nothing": 1}).encode(), _npz()),
        (good, b"PK\x03\x04 not a zip"),
        (good, _npz(a0=np.array([object()], dtype=object))),  # pickles are refused
        (json.dumps({"results": [{"kind": "none"}]}).encode(), _npz()),  # 1 outcome for 2
    ]
    for meta, arrays in forged:
        with pytest.raises(UnreadableResponse):
            parse_response(meta, arrays, 2)
