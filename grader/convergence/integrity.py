"""Plausibility checks of a convergence run: what an honest training cannot look like.

Each check reads numbers the grader computed itself (from the weights the kernel handed
back, and the samples the grader drew) or compares them with what the kernel reported, and
returns a sentence saying what was seen, for the instructor to review. A run with any such
finding earns no convergence credit. The lines come from reference runs
(``grader.convergence.lines``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.convergence.lines import CheckpointLines, IntegrityLines

FLAT_LOSS = 1e-7  # reported losses whose range is below this never changed


@dataclass
class Evidence:
    """What one checkpoint of a run shows (None: not measured, e.g. a network not of the
    specified architecture)."""

    model: str
    step: int
    requested_steps: int
    reported_steps: int
    out_of_time: bool
    chunk_losses: np.ndarray
    fcd: float | None
    copy_share: float | None = None  # samples within the copy distance of a training image
    descent_z: float | None = None  # the generator's least z against the run's start
    start_corr: float | None = None  # its smallest kernel's correlation with the start
    weights_moved: bool | None = None
    optimizer_as_specified: bool = False  # get_solvers passed: steps move weights as Adam's
    reported_tail: tuple[float, float] | None = None  # mean reported D, G losses at the end
    recomputed: tuple[float, float] | None = None  # the losses of the returned networks
    losses_comparable: bool = False  # the loss item passed: reported losses mean the same


def findings(evidence: Evidence, checkpoint: CheckpointLines,
             lines: IntegrityLines) -> list[str]:
    """Every implausibility ``evidence`` shows, each as a sentence; empty when none."""
    found = []
    if evidence.reported_steps != evidence.requested_steps and not (
            evidence.out_of_time and evidence.reported_steps < evidence.requested_steps):
        found.append(f"the kernel reported {evidence.reported_steps} training steps where the "
                     f"grader asked for {evidence.requested_steps}")
    if len(evidence.chunk_losses) != evidence.reported_steps:
        found.append(f"the kernel reported {evidence.reported_steps} steps but "
                     f"{len(evidence.chunk_losses)} losses")
    if evidence.copy_share is not None and evidence.copy_share > lines.copy_fraction:
        found.append(f"its samples copy training digits: {evidence.copy_share:.0%} of them lie "
                     f"within {lines.copy_distance:g} of a training image (honest samples: "
                     f"under {lines.copy_fraction:.0%})")
    if evidence.descent_z is not None and evidence.descent_z < lines.descent_z_floor:
        found.append(f"at step {evidence.step} the generator's weights do not descend from the "
                     f"start weights the grader gave it (correlation z {evidence.descent_z:.1f}; "
                     f"a network trained from that start stays above {lines.descent_z_floor:g}, "
                     "one trained elsewhere is near 0)")
    # only training the reference's way (its loss and optimizer) must move as far as it does
    if evidence.optimizer_as_specified and evidence.losses_comparable \
            and evidence.start_corr is not None \
            and checkpoint.start_corr_ceiling is not None \
            and evidence.start_corr > checkpoint.start_corr_ceiling:
        found.append(f"after {evidence.step} reported steps the generator's weights have moved "
                     f"less than a third as far from their start as any reference run's after "
                     f"as many steps (correlation with the start {evidence.start_corr:.3f}, "
                     f"line {checkpoint.start_corr_ceiling:g}): it trained fewer steps than "
                     "reported")
    if checkpoint.too_good is not None and evidence.fcd is not None \
            and np.isfinite(evidence.fcd) and evidence.fcd < checkpoint.too_good:
        found.append(f"FCD {evidence.fcd:.1f} at step {evidence.step} is far better than any "
                     f"reference run reaches at that step (line {checkpoint.too_good:g})")
    losses = evidence.chunk_losses
    if len(losses) > 1 and np.isfinite(losses).all() \
            and float(np.ptp(losses, axis=0).max()) < FLAT_LOSS:
        moved = (" while the generator's weights do" if evidence.weights_moved
                 else ", so no gradient reached the networks")
        found.append(f"the reported D and G losses did not change over {len(losses)} training "
                     f"steps before step {evidence.step}{moved}")
    tolerance = checkpoint.loss_gap
    if evidence.losses_comparable and tolerance and evidence.reported_tail is not None \
            and evidence.recomputed is not None:
        gaps = [abs(a - b) for a, b in zip(evidence.reported_tail, evidence.recomputed,
                                            strict=True)]
        if any(not np.isfinite(gap) or gap > limit
               for gap, limit in zip(gaps, tolerance, strict=True)):
            reported, computed = evidence.reported_tail, evidence.recomputed
            found.append(f"the reported losses at step {evidence.step} (D {reported[0]:.3f}, "
                         f"G {reported[1]:.3f}) are not what the returned networks give on the "
                         f"grader's batch (D {computed[0]:.3f}, G {computed[1]:.3f})")
    return found


def copy_share(distances: np.ndarray, lines: IntegrityLines) -> float:
    """The share of samples whose nearest training image is within the copy distance."""
    if distances.size == 0:
        return 0.0
    return float(np.mean(distances < lines.copy_distance))


def tail_mean(losses: np.ndarray, count: int = 20) -> tuple[float, float] | None:
    """The mean reported D and G losses over the last ``count`` steps."""
    if len(losses) == 0:
        return None
    d_loss, g_loss = np.mean(losses[-count:], axis=0)
    return float(d_loss), float(g_loss)
