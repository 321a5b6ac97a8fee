"""One convergence run: train in chunks, judge at each checkpoint, stop once settled.

At every checkpoint the grader draws the samples itself from the generator weights the
kernel handed back (``networks.generate``), or, when the student's generator is not the
specified network, takes the samples the kernel drew; scores them; and checks the run's
plausibility (``integrity``). The verdict is settled at the first checkpoint where the run
is flagged, already earns full credit, is clearly behind every reference seed (the
calibrated ``stop`` line), cannot go on (NaN losses, no time left), or reaches the budget.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np

from grader.convergence import integrity, networks
from grader.convergence.lines import CalibratedLines, IntegrityLines
from grader.convergence.networks import Role
from grader.convergence.training import BATCH, NOISE_DIM, Chunk, KernelTraining, parts_of
from grader.mnist import evaluator
from grader.pipeline.prober import Prober
from grader.result import SampledBy

D_COLLAPSE = 1e-3  # a discriminator loss below this at the end of training has collapsed
COPY_PROBES = 500  # samples whose nearest training image is looked up
LOSS_BATCH = 1024  # real images and noise rows the grader computes the losses on


@dataclass
class Thresholds:
    """FCD lines: full credit at or below ``pass_fcd``, none at or above ``fail_fcd``."""

    pass_fcd: float
    fail_fcd: float
    min_class_entropy: float = evaluator.Criteria().min_class_entropy


@dataclass
class Plan:
    """What the grader draws for one run, from the run's hidden seed."""

    order: np.ndarray  # [budget, batch] indices of training images, epoch after epoch
    eval_noise: np.ndarray  # [samples, noise_dim]: the noise the judged samples come from
    start: dict[str, list[np.ndarray]]  # role -> start weights in the specified layout
    loss_images: np.ndarray  # indices of the images the grader computes losses on
    loss_noise: np.ndarray
    checkpoints: list[int]  # ascending; the last is the budget


@dataclass
class Settings:
    """How a run is judged."""

    device: str
    thresholds: Thresholds
    lines: CalibratedLines
    max_seconds: float


@dataclass
class TrainingRun:
    """One training of a model by the grader, and the judgement of its samples."""

    model: str
    swapped: str | None
    steps: int = 0
    budget: int = 0
    seconds: float = 0.0
    losses: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    samples: np.ndarray | None = None
    scores: evaluator.SampleScores | None = None
    sampled_by: str = SampledBy.GRADER
    settled_at: int | None = None
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    checkpoints: list[dict] = field(default_factory=list)  # a summary per checkpoint
    curve: list[tuple[int, float, float]] = field(default_factory=list)  # grader's losses


def draw_plan(rng: np.random.Generator, steps: int, n_images: int,
              n_samples: int = 10_000) -> dict[str, np.ndarray]:
    """The grader's data order (epochs of permutations) and evaluation noise."""
    needed = steps * BATCH
    epochs = [rng.permutation(n_images) for _ in range(needed // n_images + 1)]
    order = np.concatenate(epochs)[:needed].reshape(steps, BATCH).astype(np.int32)
    eval_noise = rng.uniform(-1, 1, size=(n_samples, NOISE_DIM)).astype(np.float32)
    return {"order": order, "eval_noise": eval_noise}


def draw_run(rng: np.random.Generator, model: str, checkpoints: list[int], n_images: int,
             n_samples: int) -> Plan:
    """Everything one run needs from the hidden seed: order, noise, start weights."""
    checkpoints = sorted(set(checkpoints))
    drawn = draw_plan(rng, checkpoints[-1], n_images, n_samples)
    architecture = networks.architecture_of(model)
    start = {role: networks.start_weights(networks.layout(architecture, role, NOISE_DIM), rng)
             for role in (Role.GENERATOR, Role.DISCRIMINATOR)}
    loss_images = rng.choice(n_images, LOSS_BATCH, replace=False)
    loss_noise = rng.uniform(-1, 1, size=(LOSS_BATCH, NOISE_DIM)).astype(np.float32)
    return Plan(drawn["order"], drawn["eval_noise"], start, loss_images, loss_noise,
                checkpoints)


@functools.lru_cache(maxsize=1)
def training_images(mnist_npz: str) -> np.ndarray:
    """The MNIST training images as [N, 784] float32 in [-1, 1], read once per process."""
    with np.load(mnist_npz) as data:
        return evaluator.mnist_as_samples(data["x_train"])


def training_problems(losses: np.ndarray, scores: evaluator.SampleScores | None) -> list[str]:
    """Hard failures of a finished run: NaN losses, a collapsed D, bad samples."""
    problems = []
    if len(losses):
        if not np.isfinite(losses).all():
            problems.append("the losses became NaN or infinite during training")
        elif np.mean(losses[-max(1, len(losses) // 10):, 0]) < D_COLLAPSE:
            problems.append("the discriminator's loss collapsed to 0 (D wins outright, so G "
                            "gets no useful gradient)")
    if scores is not None:
        problems += scores.hard_failures
    return problems


def credit(run: TrainingRun, thresholds: Thresholds) -> float:
    """The fraction of the item's points a run earns."""
    if run.error or run.flags or run.problems or run.scores is None \
            or not np.isfinite(run.scores.fcd):
        return 0.0
    span = thresholds.fail_fcd - thresholds.pass_fcd
    fraction = float(np.clip((thresholds.fail_fcd - run.scores.fcd) / span, 0.0, 1.0))
    if run.scores.class_entropy < thresholds.min_class_entropy:
        fraction = min(fraction, 0.5)  # digits of only a few classes: mode collapse
    return fraction


def _least(values: list[float]) -> float | None:
    return float(min(values)) if values else None


@dataclass
class _Context:
    """What every checkpoint of one run is measured against."""

    model: str
    plan: Plan
    images: np.ndarray
    layout: list
    losses_comparable: bool
    optimizer_as_specified: bool


def _measure(run: TrainingRun, chunk: Chunk, generator: list[np.ndarray] | None,
             previous: list[np.ndarray], context: _Context, out_of_time: bool,
             lines: IntegrityLines, look_for_copies: bool) -> integrity.Evidence:
    """Everything the plausibility checks read at this checkpoint, computed by the grader
    (the samples' nearest training images only when ``look_for_copies``)."""
    plan = context.plan
    evidence = integrity.Evidence(
        context.model, run.steps, chunk.requested, chunk.reported, out_of_time, chunk.losses,
        run.scores.fcd if run.scores else None, losses_comparable=context.losses_comparable,
        optimizer_as_specified=context.optimizer_as_specified,
        reported_tail=integrity.tail_mean(chunk.losses))
    probe = np.asarray(run.samples[:COPY_PROBES], dtype=np.float32)
    if look_for_copies and probe.ndim == 2 and probe.shape[1] == 784 \
            and np.isfinite(probe).all():
        distances = networks.nearest_distances(probe, context.images)
        evidence.copy_share = integrity.copy_share(distances, lines)
    if generator is None:
        return evidence
    start = plan.start[Role.GENERATOR]
    evidence.descent_z = _least(networks.descent_z(start, generator, context.layout))
    smallest = min(networks.kernel_positions(context.layout), key=lambda i: start[i].size)
    evidence.start_corr = networks.correlation(start[smallest], generator[smallest])
    evidence.weights_moved = any(not np.array_equal(a, b)
                                 for a, b in zip(previous, generator, strict=True))
    discriminator = chunk.weights.get(Role.DISCRIMINATOR)
    if discriminator is not None:
        with np.errstate(all="ignore"):
            evidence.recomputed = networks.reference_losses(
                context.model, discriminator, generator, context.images[plan.loss_images],
                plan.loss_noise)
        run.curve.append((run.steps, *evidence.recomputed))
    return evidence


def run_training(prober: Prober, model: str, plan: Plan, seed: int, mnist_npz: str,
                 settings: Settings, *, swapped: str | None = None,
                 generator_as_specified: bool = True, losses_comparable: bool = False,
                 optimizer_as_specified: bool = False, check_integrity: bool = True
                 ) -> TrainingRun:
    """Train ``model`` from the notebook's parts (one maybe swapped for the reference's) and
    judge it checkpoint by checkpoint until its verdict is settled."""
    run = TrainingRun(model, swapped, budget=plan.checkpoints[-1])
    training = KernelTraining.start(prober, model, parts_of(model, swapped), seed, mnist_npz,
                                    timeout=settings.max_seconds)
    if isinstance(training, str):
        run.error = training
        return run
    grader_samples = generator_as_specified and training.matched(Role.GENERATOR)
    run.sampled_by = SampledBy.GRADER if grader_samples else SampledBy.KERNEL
    for role, weights in plan.start.items():
        training.give_start(role, weights)
    architecture = networks.architecture_of(model)
    context = _Context(model, plan, training_images(mnist_npz),
                       training.layouts[Role.GENERATOR], losses_comparable,
                       optimizer_as_specified)
    previous = plan.start[Role.GENERATOR]
    started, losses = time.monotonic(), [run.losses]
    for step in plan.checkpoints:
        remaining = settings.max_seconds - (time.monotonic() - started)
        chunk = training.run(plan.order[run.steps:step], max(remaining, 1.0),
                             None if grader_samples else plan.eval_noise)
        if chunk.error:
            run.error = chunk.error
            break
        out_of_time = chunk.reported < chunk.requested
        run.steps += min(chunk.reported, chunk.requested)
        run.seconds = time.monotonic() - started
        losses.append(chunk.losses)
        run.losses = np.concatenate(losses)
        generator = chunk.weights.get(Role.GENERATOR)
        if grader_samples and generator is None:
            run.flags.append("the kernel sent back generator weights that are not those of "
                             "the network it described")
            break
        if grader_samples:
            with np.errstate(all="ignore"):
                run.samples = networks.generate(architecture, generator, plan.eval_noise)
        elif chunk.kernel_samples is not None:
            run.samples = chunk.kernel_samples
        else:
            run.error = "the kernel sent back no samples"
            break
        run.scores = evaluator.score_samples(run.samples)
        run.problems = training_problems(run.losses, run.scores)
        # copies matter only where the verdict may be settled: a pass or the last checkpoint
        final = out_of_time or step >= run.budget or credit(run, settings.thresholds) > 0
        evidence = _measure(run, chunk, generator, previous, context, out_of_time,
                            settings.lines.integrity, look_for_copies=final)
        previous = generator if generator is not None else previous
        run.checkpoints.append({"step": run.steps, "fcd": round(float(run.scores.fcd), 2),
                                "seconds": round(run.seconds, 1)})
        if check_integrity:
            run.flags = integrity.findings(evidence, settings.lines.at(
                settings.device, model, step), settings.lines.integrity)
        if _settled(run, step, out_of_time, settings):
            break
    run.settled_at = run.steps or None
    return run


def _settled(run: TrainingRun, step: int, out_of_time: bool, settings: Settings) -> bool:
    """True when the verdict cannot change by training on."""
    if run.flags or out_of_time or step >= run.budget:
        return True
    if not np.isfinite(run.losses).all():
        return True
    if credit(run, settings.thresholds) >= 1.0:
        return True
    stop = settings.lines.at(settings.device, run.model, step).stop
    return stop is not None and run.scores is not None and \
        run.scores.fcd >= max(stop, settings.thresholds.fail_fcd)


def describe(run: TrainingRun, thresholds: Thresholds) -> str:
    """One sentence on a run, for feedback."""
    if run.error:
        return f"training failed: {run.error}"
    if run.scores is None:
        return "training produced nothing to judge"
    scores = run.scores
    when = (f"after {run.steps} steps" if run.steps >= run.budget else
            f"judged after {run.steps} of {run.budget} steps")
    text = (f"{when} the samples score FCD {scores.fcd:.1f} (full credit at "
            f"{thresholds.pass_fcd:g} or below, none at {thresholds.fail_fcd:g} or above), "
            f"class entropy {scores.class_entropy:.2f} nats")
    if run.problems:
        text += "; " + "; ".join(run.problems)
    if run.flags:
        text += "; flagged for review: " + "; ".join(run.flags)
    return text
