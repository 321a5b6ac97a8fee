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
