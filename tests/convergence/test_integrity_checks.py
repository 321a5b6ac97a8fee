"""The plausibility checks of a convergence run, one finding at a time, and the calibrated
lines they read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grader.convergence import integrity, lines
from grader.convergence.integrity import Evidence, findings
from grader.convergence.lines import CheckpointLines, IntegrityLines
from grader.exceptions import RubricError
from grader.frameworks import REGISTRY
from grader.rubric import load_rubric

FLOORS = IntegrityLines(copy_distance=1.0, copy_fraction=0.05, descent_z_floor=5.0)
LINES = CheckpointLines(stop=500, too_good=150, start_corr_ceiling=0.8, loss_gap=(0.3, 0.6))
MOVING = np.column_stack([np.linspace(1.4, 1.2, 250), np.linspace(0.7, 1.1, 250)])


def honest(**changes) -> Evidence:
    """What an honest checkpoint looks like; ``changes`` make it dishonest."""
    evidence = Evidence("gan", 500, 250, 250, False, MOVING, 400.0, copy_share=0.0,
                        descent_z=150.0, start_corr=0.4, weights_moved=True,
                        reported_tail=(1.2, 1.1), recomputed=(1.25, 0.95),
                        losses_comparable=True, optimizer_as_specified=True)
    for name, value in changes.items():
        setattr(evidence, name, value)
    return evidence


def test_an_honest_checkpoint_shows_nothing():
    assert findings(honest(), LINES, FLOORS) == []


@pytest.mark.parametrize(("changes", "phrase"), [
    ({"reported_steps": 900}, "reported 900 training steps where the grader asked for 250"),
    ({"chunk_losses": MOVING[:10]}, "but 10 losses"),
    ({"copy_share": 0.4}, "copy training digits"),
    ({"descent_z": 1.3}, "do not descend from the start"),
    ({"start_corr": 0.99}, "trained fewer steps than reported"),
    ({"fcd": 20.0}, "far better than any reference run"),
    ({"chunk_losses": np.ones((250, 2))}, "did not change over 250 training steps"),
    ({"recomputed": (1.2, 4.0)}, "are not what the returned networks give"),
    ({"recomputed": (float("nan"), 1.0)}, "are not what the returned networks give"),
])
def test_each_implausibility_is_found_and_said(changes, phrase):
    found = findings(honest(**changes), LINES, FLOORS)
    assert found and any(phrase in text for text in found), found


def test_a_cut_short_chunk_is_no_lie_when_time_ran_out():
    evidence = honest(reported_steps=120, out_of_time=True, chunk_losses=MOVING[:120])
    assert findings(evidence, CheckpointLines(), FLOORS) == []
    evidence.out_of_time = False
    assert "asked for 250" in findings(evidence, CheckpointLines(), FLOORS)[0]


def test_losses_are_compared_only_when_they_mean_the_same_as_the_reference():
    evidence = honest(recomputed=(1.2, 4.0), losses_comparable=False)
    assert findings(evidence, CheckpointLines(), FLOORS) == []
    # no tolerance calibrated at this checkpoint: nothing compared
    assert findings(honest(recomputed=(1.2, 4.0)), CheckpointLines(), FLOORS) == []


def test_measures_not_taken_are_not_held_against_a_run():
    evidence = honest(copy_share=None, descent_z=None, recomputed=None, fcd=None)
    assert findings(evidence, LINES, FLOORS) == []
    # moving less than Adam moves is held only against the course's optimizer settings
    assert findings(honest(start_corr=0.99, optimizer_as_specified=False), LINES,
                    FLOORS) == []
    # a wrong loss (swapped labels: D collapses, G gets no gradient) is a bug, not a lie
    assert findings(honest(start_corr=0.99, losses_comparable=False), LINES, FLOORS) == []


def test_copy_share_and_tail():
    assert integrity.copy_share(np.array([0.0, 0.5, 3.0, 9.0]), FLOORS) == 0.5
    assert integrity.copy_share(np.array([]), FLOORS) == 0.0
    assert integrity.tail_mean(np.array([[1.0, 2.0]] * 30 + [[3.0, 4.0]] * 20)) == (3.0, 4.0)
    assert integrity.tail_mean(np.zeros((0, 2))) is None


def test_calibrated_lines_are_read_and_bad_ones_named(tmp_path):
    raw = {"samples": 2000, "devices": {"cpu": {"gan": {
        "checkpoints": [500, 1000], "stop": [470, 430], "too_good": [150, 120],
        "start_corr_ceiling": [0.9, 0.7], "loss_gap": [[2.0, 3.0], [0.2, 0.5]]}}},
        "integrity": {"copy_distance": 1.5}}
    path = tmp_path / "lines.json"
    path.write_text(json.dumps(raw))
    read = lines.load_lines(path)
    assert read.at("cpu", "gan", 1000) == CheckpointLines(430.0, 120.0, 0.7, (0.2, 0.5))
    assert read.at("cpu", "gan", 750) == CheckpointLines() == read.at("gpu", "gan", 500)
    assert read.integrity.copy_distance == 1.5
    assert read.integrity.descent_z_floor == IntegrityLines().descent_z_floor
    raw["devices"]["cpu"]["gan"]["stop"] = [470]
    path.write_text(json.dumps(raw))
    with pytest.raises(RubricError, match="lines.json"):
        lines.load_lines(path)
    path.write_text("{")
    with pytest.raises(RubricError, match="cannot be read"):
        lines.load_lines(path)


@pytest.mark.parametrize("framework", sorted(REGISTRY))
def test_each_framework_ships_lines_at_every_cpu_checkpoint(framework):
    shipped = lines.load_lines(lines.DATA_DIR / REGISTRY[framework]().lines_file)
    assert shipped.samples >= 500
    rubric = load_rubric().convergence
    for model in ("gan", "lsgan", "dcgan"):
        for step in rubric.schedule("cpu", model):
            at = shipped.at("cpu", model, step)
            assert at != CheckpointLines(), (framework, model, step)
            assert at.too_good < at.stop, (framework, model, step)


def test_pytorch_lines_come_from_pytorch_runs():
    tf2 = lines.load_lines(lines.DATA_DIR / REGISTRY["tf2"]().lines_file)
    torch = lines.load_lines(lines.DATA_DIR / REGISTRY["torch"]().lines_file)
    assert REGISTRY["torch"]().lines_file != REGISTRY["tf2"]().lines_file
    assert torch.at("cpu", "gan", 1000) != tf2.at("cpu", "gan", 1000)
