"""Grade one convergence item: draw the run, train and judge it, attribute a failure.

For each model the grader draws, from the item's hidden seed, the data order, the
evaluation noise and the networks' start weights; the kernel trains the student's parts
with the grader's loop (``judge.run_training``); the samples that are judged are drawn by
the grader from the trained generator's weights, unless the student's generator is not the
specified network. A model that clearly fails is retrained with one reference part at a
time (``attribution``). A run of parts that all passed their own items that still falls
short is trained again at a new seed drawn from the same hidden seed (``reseeds``): a
correct GAN can collapse from an unlucky start (one PyTorch LSGAN reference seed in 20 does),
and the better run counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader import items
from grader.convergence.attribution import attribute, install_reference
from grader.convergence.figures import load_reference_run, loss_plot, sample_grid
from grader.convergence.judge import (
    Plan,
    Settings,
    TrainingRun,
    credit,
    describe,
    draw_run,
    run_training,
)
from grader.pipeline.prober import Prober
from grader.result import ConvergenceDetail, ItemResult, ItemStatus, SampledBy
from grader.rubric import Item


def as_specified(unit: ItemResult | None) -> bool:
    """True when a network item shows the student's network computes the specified function
    (it passed, or lost points only for the shape of its output)."""
    return unit is not None and (unit.status == ItemStatus.PASSED
                                 or bool(unit.details.get("values_match")))


def _details(run: TrainingRun) -> dict[str, Any]:
    details: dict[str, Any] = {"steps": run.steps, ConvergenceDetail.STEPS_BUDGET: run.budget,
                               ConvergenceDetail.CHECKPOINT: run.settled_at,
                               ConvergenceDetail.SAMPLED_BY: run.sampled_by,
                               "seconds": round(run.seconds, 1), "checkpoints": run.checkpoints,
                               # the losses of the returned networks on the grader's batch
                               "grader_losses": [[step, round(d, 4), round(g, 4)]
                                                 for step, d, g in run.curve]}
    if run.scores is not None:
        scores = run.scores
        details.update(fcd=round(scores.fcd, 3), class_entropy=round(scores.class_entropy, 3),
                       min_class_fraction=round(scores.min_class_fraction, 4),
                       confident_fraction=round(scores.confident_fraction, 4))
    return details


def _images(run: TrainingRun, model: str, reference: dict | None) -> dict[str, str]:
    images = {}
    if run.samples is not None and np.isfinite(run.samples).all() and run.samples.ndim == 2 \
            and run.samples.shape[1] == 784:
        who = ("drawn by the grader from your trained generator"
               if run.sampled_by == SampledBy.GRADER else "drawn in your kernel")
        images[f"your generator's samples ({who})"] = sample_grid(
            run.samples, f"{model}: step {run.steps}, {who}")
    if reference is not None:
        images["the reference's samples at the full budget"] = sample_grid(
            reference["samples"].astype(np.float32), f"{model}: reference, {run.budget} steps")
    if len(run.losses) and np.isfinite(run.losses).all():
        images["loss curves, yours beside the reference's"] = loss_plot(
            run.losses, f"{model}: losses in the grader's training",
            None if reference is None else reference["losses"][: max(run.steps, 1)])
    return images


@dataclass
class Judged:
    """A convergence item trained and judged, waiting for attribution if it clearly failed."""

    item: Item
    model: str
    seed: int
    plan: Plan
    settings: Settings
    run: TrainingRun
    fraction: float
    generator_ok: bool
    suspects: list[str]
    details: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    @property
    def needs_attribution(self) -> bool:
        """A clear failure (no credit at all) that is not flagged."""
        return self.fraction == 0.0 and not self.run.flags


def _summary(seed: int, run: TrainingRun, fraction: float) -> dict[str, Any]:
    return {"seed": seed, "steps": run.steps, "credit": round(fraction, 4),
            "fcd": None if run.scores is None else round(run.scores.fcd, 2)}


def parts_all_passed(parts: dict[str, str], units: dict[str, ItemResult]) -> bool:
    """True when every part of a model (role: item id) was graded and passed its item."""
    return all(name in units and units[name].status == ItemStatus.PASSED for name in parts.values())


def deserves_reseed(run: TrainingRun, fraction: float, parts: dict[str, str],
                    units: dict[str, ItemResult]) -> bool:
    """A clean run (no error, flag or problem) of parts that all passed their own items
    that falls short of full credit: the start, not the code, may be to blame."""
    clean = not (run.error or run.flags or run.problems)
    return clean and fraction < 1.0 and parts_all_passed(parts, units)


def judge_item(item: Item, prober: Prober, rng: np.random.Generator, *,
               checkpoints: list[int], samples: int, settings: Settings, mnist_npz: str,
               n_images: int, units: dict[str, ItemResult], reseeds: int = 0) -> Judged:
    """Draw the run of one convergence item, train it in the kernel and judge it; retrain
    at up to ``reseeds`` new seeds while :func:`deserves_reseed` holds."""
    model = items.spec(item.id).model
    parts = items.convergence_item(model).parts
    seed = int(rng.integers(2**31))
    plan = draw_run(rng, model, checkpoints, n_images, samples)
    generator_ok = as_specified(units.get(parts[items.GENERATOR_ROLE]))

    def train(at_seed: int, at_plan: Plan) -> TrainingRun:
        return run_training(
            prober, model, at_plan, at_seed, mnist_npz, settings,
            generator_as_specified=generator_ok,
            losses_comparable=as_specified(units.get(parts[items.LOSS_ROLE])),
            optimizer_as_specified=as_specified(units.get(parts[items.SOLVERS_ROLE])))

    run = train(seed, plan)
    fraction = credit(run, settings.thresholds)
    tried = [_summary(seed, run, fraction)]
    for _ in range(reseeds):
        if not deserves_reseed(run, fraction, parts, units):
            break
        new_seed = int(rng.integers(2**31))  # a new start: weights, data order, noise
        new_plan = draw_run(rng, model, checkpoints, n_images, samples)
        again = train(new_seed, new_plan)
        again_fraction = credit(again, settings.thresholds)
        tried.append(_summary(new_seed, again, again_fraction))
        if again_fraction > fraction or again.flags:  # a flag is never hidden
            seed, plan, run, fraction = new_seed, new_plan, again, again_fraction
    details = _details(run)
    reference = load_reference_run(settings.device, model, plan.checkpoints[-1])
    if reference is not None:
        details["reference_fcd"] = round(float(reference["fcd"]), 3)
    details["images"] = _images(run, model, reference)
    message = describe(run, settings.thresholds)
    if run.sampled_by == SampledBy.KERNEL and not run.error:
        message += (". Your generator is not the specified network, so the samples judged "
                    "were drawn in your kernel")
    if len(tried) > 1:
        details["reseeded"] = {"runs": tried, "counted": seed}
        message += (f". Every part of it passed its own item, so it was trained from "
                    f"{len(tried)} starts (a correct GAN can collapse from an unlucky one) "
                    f"and the better run counts")
    suspects = [role for role, name in parts.items()
                if name in units and units[name].status != ItemStatus.PASSED]
    return Judged(item, model, seed, plan, settings, run, fraction,
                  generator_ok, suspects, details, message)


def attribute_failures(prober: Prober, judged: list[Judged], mnist_npz: str,
                       max_runs: int) -> None:
    """Retrain every clear failure with one reference part at a time, all in one kernel that
    got the reference in its set-up; say in each item's message what was found. The kernel
    is left holding the reference: ``attribution.remove_reference`` must come before any
    further use of it."""
    failing = [one for one in judged if one.needs_attribution]
    if not failing or max_runs <= 0 or not install_reference(prober):
        return
    for one in failing:
        parts = items.convergence_item(one.model).parts
        role, runs = attribute(prober, one.model, one.plan, one.seed, mnist_npz, one.settings,
                               one.suspects, max_runs, one.generator_ok)
        one.details["attribution"] = [
            {"swapped": r.swapped, "steps": r.steps,
             "fcd": None if r.scores is None else round(r.scores.fcd, 2), "error": r.error}
            for r in runs]
        if role:
            one.message += (f". With the reference {parts[role]} in place of yours it "
                            f"converges, so look at {parts[role]}")
        elif runs:
            one.message += (". Swapping in the reference's parts one at a time ("
                            + ", ".join(parts[r.swapped] for r in runs)
                            + ") did not make it converge on its own")


def item_result(one: Judged) -> ItemResult:
    """The item's result from its judged run (and attribution, if any)."""
    fraction, item = one.fraction, one.item
    status = ItemStatus.PASSED if fraction >= 1.0 \
        else (ItemStatus.ERROR if one.run.error else ItemStatus.FAILED)
    message = "all checks passed: " + one.message if fraction >= 1.0 else one.message
    return ItemResult(item.id, round(item.points * fraction, 2), item.points, status, message,
                      one.details, flags=list(one.run.flags))
