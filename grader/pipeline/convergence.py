"""Convergence items: the grader trains each student GAN itself and judges its samples.

For each model the grader draws the data order and the evaluation noise, trains the
student's parts in the submission's kernel with its own loop (``grader.kernel.train``) for the
rubric's step budget, and scores 10,000 samples with the MNIST evaluator. When a model
fails, it retrains with one reference part at a time swapped in and says which swap makes
it converge.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader import DATA_DIR, items
from grader.kernel import loader
from grader.kernel.loader import REFERENCE_MODULE
from grader.kernel.wire import train_spec
from grader.mnist import evaluator
from grader.pipeline.prober import Prober
from grader.result import ItemResult
from grader.rubric import Item

BATCH = 128
NOISE_DIM = 96
D_COLLAPSE = 1e-3  # a discriminator loss below this at the end of training has collapsed
REFERENCE_RUNS_DIR = DATA_DIR / "reference_runs"


@dataclass
class Thresholds:
    """FCD lines: full credit at or below ``pass_fcd``, none at or above ``fail_fcd``."""

    pass_fcd: float
    fail_fcd: float
    min_class_entropy: float = evaluator.Criteria().min_class_entropy


@dataclass
class TrainingRun:
    """One training of a model by the grader, and the judgement of its samples."""

    model: str
    swapped: str | None
    steps: int = 0
    seconds: float = 0.0
    losses: np.ndarray | None = None
    samples: np.ndarray | None = None
    scores: evaluator.SampleScores | None = None
    error: str | None = None
    problems: list[str] = field(default_factory=list)


def draw_plan(rng: np.random.Generator, steps: int, n_images: int,
              n_samples: int = 10_000) -> dict[str, np.ndarray]:
    """The grader's data order (epochs of permutations) and evaluation noise."""
    needed = steps * BATCH
    epochs = [rng.permutation(n_images) for _ in range(needed // n_images + 1)]
    order = np.concatenate(epochs)[:needed].reshape(steps, BATCH).astype(np.int32)
    eval_noise = rng.uniform(-1, 1, size=(n_samples, NOISE_DIM)).astype(np.float32)
    return {"order": order, "eval_noise": eval_noise}


def train_in_kernel(prober: Prober, model: str, plan: dict[str, np.ndarray], seed: int,
                    mnist_npz: str, swapped: str | None = None,
                    max_seconds: float = 600.0) -> TrainingRun:
    """Train ``model`` from the notebook's parts (one swapped for the reference's)."""
    parts = {role: f"{'reference' if role == swapped else 'student'}:{name}"
             for role, name in items.convergence_item(model).parts.items()}
    spec = train_spec(parts, seed, NOISE_DIM, mnist_npz, max_seconds)
    outcome = prober.request([spec], plan, timeout=max_seconds + 120)[0]
    run = TrainingRun(model, swapped)
    if outcome.get("kind") != "training":
        run.error = outcome.get("error", "training failed")
        return run
    run.steps, run.seconds = outcome["steps"], outcome["seconds"]
    run.losses, run.samples = outcome["items"][0]["array"], outcome["items"][1]["array"]
    if run.losses.ndim != 2 or run.losses.shape[1] != 2:  # checked arrays, of any shape
        run.error = f"the training's losses came back in shape {run.losses.shape}, not [steps, 2]"
        return run
    run.scores = evaluator.score_samples(run.samples)
    run.problems = training_problems(run)
    return run


def training_problems(run: TrainingRun) -> list[str]:
    """Hard failures of a finished run: NaN losses, a collapsed D, bad samples."""
    problems = []
    if run.losses is not None and len(run.losses):
        if not np.isfinite(run.losses).all():
            problems.append("the losses became NaN or infinite during training")
        elif np.mean(run.losses[-max(1, len(run.losses) // 10):, 0]) < D_COLLAPSE:
            problems.append("the discriminator's loss collapsed to 0 (D wins outright, so G "
                            "gets no useful gradient)")
    if run.scores is not None:
        problems += run.scores.hard_failures
    return problems


def credit(run: TrainingRun, thresholds: Thresholds) -> float:
    """The fraction of the item's points a run earns."""
    if run.error or run.problems or run.scores is None or not np.isfinite(run.scores.fcd):
        return 0.0
    span = thresholds.fail_fcd - thresholds.pass_fcd
    fraction = float(np.clip((thresholds.fail_fcd - run.scores.fcd) / span, 0.0, 1.0))
    if run.scores.class_entropy < thresholds.min_class_entropy:
        fraction = min(fraction, 0.5)  # digits of only a few classes: mode collapse
    return fraction


def describe(run: TrainingRun, thresholds: Thresholds) -> str:
    """One sentence on a run, for feedback."""
    if run.error:
        return f"training failed: {run.error}"
    scores = run.scores
    text = (f"after {run.steps} steps the samples score FCD {scores.fcd:.1f} (full credit at "
            f"{thresholds.pass_fcd:g} or below, none at {thresholds.fail_fcd:g} or above), "
            f"class entropy {scores.class_entropy:.2f} nats")
    if run.problems:
        text += "; " + "; ".join(run.problems)
    return text


def reference_source(prober: Prober) -> str | None:
    """The source of the reference module the prober's profile trains with; None in an
    install without the reference."""
    try:
        import importlib
        import inspect

        return inspect.getsource(importlib.import_module(prober.profile.reference_module))
    except ImportError:
        return None


def install_reference(prober: Prober) -> bool:
    """Replace the kernel by a new one that gets the reference solution in its set-up,
    before any notebook code runs (then the notebook is replayed and the grader's modules
    installed); False, with the kernel untouched, without the reference."""
    source = reference_source(prober)
    if source is None:
        return False
    prober.restart(extra_setup=(loader.install_code(REFERENCE_MODULE, source),))
    return True


def remove_reference(prober: Prober) -> None:
    """Discard the kernel that holds the reference (and its folders) for a fresh one that
    never did (the notebook replayed, the grader's modules installed again), so no later
    output can come from code that could read the reference. Nothing when no kernel of
    the session got extra set-up code."""
    if prober.session.extra_setup:
        prober.restart(extra_setup=())


def attribute(prober: Prober, model: str, plan: dict[str, np.ndarray], seed: int,
              mnist_npz: str, thresholds: Thresholds, suspects: list[str], max_runs: int,
              max_seconds: float) -> tuple[str | None, list[TrainingRun]]:
    """Retrain with one reference part at a time; return the first role whose swap converges.

    The runs take place in a kernel of their own that got the reference in its set-up
    (``install_reference``). Only what the grader computes itself comes out of them (steps,
    the scores of the samples): an error text is replaced by a fixed one, and that kernel
    is discarded after, never reused.
    """
    runs: list[TrainingRun] = []
    try:
        if not install_reference(prober):
            return None, runs
        ordered = suspects + [role for role in items.ROLES if role not in suspects]
        for role in ordered[:max_runs]:
            run = train_in_kernel(prober, model, plan, seed, mnist_npz, swapped=role,
                                  max_seconds=max_seconds)
            if run.error:
                run.error = "the training with this reference part did not finish"
            runs.append(run)
            if credit(run, thresholds) >= 0.99:
                return role, runs
        return None, runs
    finally:
        remove_reference(prober)


def png_base64(figure) -> str:
    """A matplotlib figure as base64 PNG text (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=70, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def sample_grid(samples: np.ndarray, title: str, count: int = 49) -> str:
    """A square grid of the first samples as base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    side = int(np.sqrt(count))
    figure, axes = plt.subplots(side, side, figsize=(side * 0.5, side * 0.5 + 0.3))
    for axis, image in zip(axes.ravel(), samples[: side * side]):
        axis.imshow((np.clip(image, -1, 1).reshape(28, 28) + 1) / 2, cmap="gray", vmin=0, vmax=1)
        axis.axis("off")
    figure.suptitle(title, fontsize=8)
    return png_base64(figure)


def loss_plot(losses: np.ndarray, title: str) -> str:
    """D and G losses per step as base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4, 2.2))
    axis.plot(losses[:, 0], label="D loss", linewidth=0.8)
    axis.plot(losses[:, 1], label="G loss", linewidth=0.8)
    axis.set_xlabel("step")
    axis.set_title(title, fontsize=8)
    axis.legend(fontsize=7)
    return png_base64(figure)


def reference_run_path(device: str, model: str, steps: int) -> Path:
    """Where ``reference.reference_runs`` keeps the reference's run at this budget."""
    return REFERENCE_RUNS_DIR / f"{device}-{model}-{steps}.npz"


def load_reference_run(device: str, model: str, steps: int) -> dict[str, np.ndarray] | None:
    """The stored reference run (samples, losses, fcd) at exactly this budget, or None."""
    path = reference_run_path(device, model, steps)
    if not path.is_file():
        return None
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def grade_convergence(item: Item, prober: Prober, rng: np.random.Generator, *, steps: int,
                      thresholds: Thresholds, mnist_npz: str, n_images: int,
                      unit_failures: list[str], max_attribution_runs: int,
                      max_seconds: float, device: str = "cpu") -> ItemResult:
    """Train, judge and (on failure) attribute one convergence item."""
    model = items.spec(item.id).model
    seed = int(rng.integers(2**31))
    plan = draw_plan(rng, steps, n_images)
    run = train_in_kernel(prober, model, plan, seed, mnist_npz, max_seconds=max_seconds)
    fraction = credit(run, thresholds)
    details: dict[str, Any] = {"steps": run.steps, "seconds": round(run.seconds, 1)}
    if run.scores is not None:
        scores = run.scores
        details.update(fcd=round(scores.fcd, 3), class_entropy=round(scores.class_entropy, 3),
                       min_class_fraction=round(scores.min_class_fraction, 4),
                       confident_fraction=round(scores.confident_fraction, 4))
    images = {}
    reference = load_reference_run(device, model, steps)
    if run.samples is not None and np.isfinite(run.samples).all():
        images["your generator's samples"] = sample_grid(run.samples, f"{model}: your samples")
    if reference is not None:
        details["reference_fcd"] = round(float(reference["fcd"]), 3)
        images["the reference's samples at the same budget"] = sample_grid(
            reference["samples"].astype(np.float32), f"{model}: reference, {steps} steps")
    if run.losses is not None and len(run.losses) and np.isfinite(run.losses).all():
        images["loss curves"] = loss_plot(run.losses, f"{model}: losses (grader's training)")
    if reference is not None:
        images["the reference's loss curves"] = loss_plot(reference["losses"],
                                                          f"{model}: reference losses")
    message = describe(run, thresholds)
    if fraction < 1.0:
        parts = items.convergence_item(model).parts
        suspects = [role for role, name in parts.items() if name in unit_failures]
        role, runs = attribute(prober, model, plan, seed, mnist_npz, thresholds, suspects,
                               max_attribution_runs, max_seconds)
        details["attribution"] = [{"swapped": r.swapped, "fcd": None if r.scores is None
                                   else round(r.scores.fcd, 2), "error": r.error} for r in runs]
        if role:
            name = items.convergence_item(model).parts[role]
            message += (f". With the reference {name} in place of yours it converges, so look "
                        f"at {name}")
            # no image of that run: its samples come from a kernel that held the reference
        elif runs:
            message += (". Swapping in the reference's parts one at a time ("
                        + ", ".join(items.convergence_item(model).parts[r.swapped] for r in runs)
                        + ") did not make it converge on its own")
    details["images"] = images
    status = "passed" if fraction >= 1.0 else ("error" if run.error else "failed")
    return ItemResult(item.id, round(item.points * fraction, 2), item.points, status,
                      "all checks passed: " + message if fraction >= 1.0 else message, details)
