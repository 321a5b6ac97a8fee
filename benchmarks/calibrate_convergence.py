"""Calibrate the checkpoint lines of the convergence items (issue #20) on reference seeds.

    HW4_MNIST_DIR=../shared/data/mnist python benchmarks/calibrate_convergence.py run --seeds 0-19
    python benchmarks/calibrate_convergence.py table

``run`` trains the reference GAN, LSGAN and DCGAN with the grader's own loop
(``grader.frameworks.tf2.kernel.train.TrainingSession``, in this process) at the CPU step
budgets, in chunks that end at checkpoints. At each checkpoint it records what the grader's
checks look at: the FCD of the samples at 2,000 and 5,000 samples (and of a second, disjoint
2,000), the class entropy, the distances of 500 samples to their nearest training image, how
far each weight kernel moved from its start and from the last checkpoint, the reported
losses beside the losses recomputed from the networks, and the training speed. One JSON line
per (model, seed) goes to ``benchmarks/results/convergence_runs.jsonl``; a (model, seed)
already there is skipped, so an interrupted run resumes.

``table`` reads those lines and writes an analysis of them: the distributions per
checkpoint, candidate lines with the rate at which reference seeds would fail them, and the
agreement of verdicts at 2,000 and 5,000 samples (``convergence_calibration.md`` for people,
``convergence_calibration.json``). The lines the grader ships are set from the same runs by
``benchmarks/convergence_lines.py``. Every figure comes from CPU runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from grader.convergence import networks

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

RESULTS = ROOT / "benchmarks" / "results"
RUNS_FILE = RESULTS / "convergence_runs.jsonl"


def runs_file(framework: str) -> Path:
    """Where a framework's reference runs are kept (TF2's: ``convergence_runs.jsonl``)."""
    return RUNS_FILE if framework == "tf2" else RESULTS / f"convergence_runs_{framework}.jsonl"
LINES_MD = RESULTS / "convergence_calibration.md"
LINES_JSON = RESULTS / "convergence_calibration.json"

MODELS = ("gan", "lsgan", "dcgan")
BUDGETS = {"gan": 1500, "lsgan": 1500, "dcgan": 150}
EVERY = {"gan": 100, "lsgan": 100, "dcgan": 25}
QUICK_STEPS, QUICK_EVERY = 200, 100
BATCH, NOISE_DIM = 128, 96
SAMPLE_COUNTS = (2000, 5000)
NEIGHBOUR_SAMPLES = 500
LOSS_BATCH = 1024
LOSS_WINDOW = 20  # reported losses averaged over the last steps before a checkpoint
HISTORY_EVERY = {"gan": 10, "lsgan": 10, "dcgan": 1}  # steps per stored loss value
NN_QUANTILES = (0.0, 0.01, 0.05, 0.5)

PASS_MARGIN = 1.1  # the pass line is the worst reference FCD at the budget times this
PASS_CANDIDATES = (1.0, 1.1, 1.25, 1.5)  # multiples of the worst FCD at the budget
STOP_MARGIN = 1.1  # the stop line: worst reference FCD at the checkpoint times this ...
STOP_MADS = 3.0  # ... or plus this many MADs, whichever is larger
TOO_GOOD_FRACTION = 0.5  # too good: below half the best reference FCD at the checkpoint
FLOOR_FRACTION = 0.5  # descent floors: half the smallest reference value
LOSS_TOLERANCE_FACTOR = 1.5  # loss tolerance: the largest reference gap times this
COPY_FRACTION = 0.5  # copy distance: half the smallest honest nearest-neighbour distance
ENTROPY_FRACTION = 0.5  # class-entropy floor at the budget: half the smallest reference value


# --------------------------------------------------------------------------- measuring


def parse_seeds(text: str) -> list[int]:
    """'0-19' or '0,3,5' or '4' as a list of seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds += list(range(int(low), int(high or low) + 1))
    return seeds


def distance_stats(distances: np.ndarray) -> list[float]:
    """The quantiles ``NN_QUANTILES`` (min, 1st and 5th percentile, median) of distances."""
    return [round(float(q), 3) for q in np.quantile(distances, NN_QUANTILES)]


def kernels(values: list[np.ndarray]) -> list[np.ndarray]:
    """The weight matrices and convolution kernels (ndim >= 2) of a network, flattened."""
    return [v.astype(np.float64).ravel() for v in values if v.ndim >= 2]


def descent(start: list[np.ndarray], previous: list[np.ndarray],
            now: list[np.ndarray]) -> dict[str, float]:
    """Smallest z = corr(start, now) * sqrt(size) over kernels, and smallest corr(previous, now)."""
    z = min(networks.correlation(s, n) * np.sqrt(s.size) for s, n in zip(start, now))
    chain = min(networks.correlation(p, n) for p, n in zip(previous, now))
    return {"z": round(float(z), 1), "chain": round(chain, 4)}


def recomputed_losses(session, model: str, real: np.ndarray, noise: np.ndarray) -> list[float]:
    """The homework's losses from the current networks: G in inference mode, D as Keras
    calls it by default, on a fixed batch of training images and noise."""
    if isinstance(session, SpecifiedSession):
        return [round(x, 4) for x in session.losses(model, real, noise)]
    import tensorflow as tf

    fake = session.G(tf.constant(noise), training=False)
    d_real = np.asarray(session.D(tf.constant(real)))
    d_fake = np.asarray(session.D(fake))
    form = networks.loss_form(model)
    return [round(x, 4) for x in networks.losses_from_scores(form, d_real, d_fake)]


def score(features: np.ndarray, rows: slice) -> float:
    """FCD of the samples in ``rows`` against the MNIST test set's statistics."""
    from grader.mnist import evaluator

    model = evaluator.default_evaluator()
    mu, sigma = evaluator.feature_statistics(features[rows])
    return round(evaluator.frechet_distance(mu, sigma, model.mu, model.sigma), 2)


def checkpoint_record(session, model: str, chunk: dict, losses: list[np.ndarray], start: dict,
                      previous: dict, fixed: dict, eval_noise: np.ndarray,
                      train: np.ndarray) -> dict:
    """What the checks see at one checkpoint (see the module's docstring)."""
    from grader.mnist import evaluator

    samples = session.sample(eval_noise)
    failures = evaluator.find_hard_failures(samples)
    record: dict = {"step": session.steps}
    if np.isfinite(samples).all():
        features, probs = evaluator.forward(evaluator.default_evaluator().weights, samples)
        n_small, n_large = SAMPLE_COUNTS
        record["fcd"] = {str(n_small): score(features, slice(0, n_small)),
                         f"{n_small}b": score(features, slice(n_small, 2 * n_small)),
                         str(n_large): score(features, slice(0, n_large))}
        record["entropy"] = round(evaluator.class_scores(probs)[0], 3)
        record["nn"] = distance_stats(networks.nearest_distances(samples[:NEIGHBOUR_SAMPLES],
                                                                 train))
    if failures:
        record["hard_failures"] = failures
    now = {role: kernels(session.values(role)) for role in ("generator", "discriminator")}
    for role, key in (("generator", "G"), ("discriminator", "D")):
        record[f"descent_{key}"] = descent(start[role], previous[role], now[role])
    recent = np.concatenate(losses)[-LOSS_WINDOW:]
    record["reported"] = [round(float(x), 4) for x in recent.mean(axis=0)]
    record["recomputed"] = recomputed_losses(session, model, fixed["real"], fixed["noise"])
    record["seconds"] = round(chunk["seconds"], 2)
    record["steps_per_second"] = round(chunk["steps"] / max(chunk["seconds"], 1e-9), 2)
    previous.update(now)
    return record


class SpecifiedSession:
    """A kernel training session of another framework seen as the grader sees it: weights in
    the specified (Keras) layout, samples and losses from the grader's numpy networks."""

    def __init__(self, session, framework, model: str) -> None:
        self.session, self.framework, self.model = session, framework, model
        self.architecture = networks.architecture_of(model)
        self.mode = session.mode

    steps = property(lambda self: self.session.steps)

    def run(self, images: np.ndarray, order: np.ndarray) -> dict:
        """A chunk of training (the session's own)."""
        return self.session.run(images, order)

    def values(self, role: str) -> list[np.ndarray]:
        """The network's weights in the specified layout."""
        return self.framework.to_specified(self.architecture, role, self.session.values(role))

    def start_from(self, rng: np.random.Generator) -> None:
        """Load the grader's start weights (as a grade does)."""
        for role in networks.ROLES:
            layout = networks.layout(self.architecture, role, NOISE_DIM)
            own = self.framework.from_specified(self.architecture, role,
                                                networks.start_weights(layout, rng))
            self.session.assign(role, dict(enumerate(own)))

    def sample(self, noise: np.ndarray) -> np.ndarray:
        """The grader's samples from the generator's weights."""
        return networks.generate(self.architecture, self.values(networks.Role.GENERATOR), noise)

    def losses(self, model: str, real: np.ndarray, noise: np.ndarray) -> tuple[float, float]:
        """The homework's losses recomputed by the grader's networks."""
        return networks.reference_losses(model, self.values(networks.Role.DISCRIMINATOR),
                                         self.values(networks.Role.GENERATOR), real, noise)


def new_session(framework: str, model: str, seed: int, rng: np.random.Generator):
    """The reference's training session of ``framework`` for ``model``: TF2 as it starts
    itself, another framework from the grader's start weights, seen through
    ``SpecifiedSession``."""
    if framework == "tf2":
        from grader.frameworks.tf2.kernel.train import TrainingSession
        from reference.reference_runs import reference_parts

        return TrainingSession(reference_parts(model), seed, noise_dim=NOISE_DIM, batch=BATCH)
    from grader.frameworks import REGISTRY
    from reference.reference_runs import kernel_module, torch_reference_parts

    train = kernel_module(f"{framework}/train", before=(f"{framework}/layout",))
    session = SpecifiedSession(
        train.TrainingSession(torch_reference_parts(model), seed, NOISE_DIM, BATCH),
        REGISTRY[framework](), model)
    session.start_from(rng)
    return session


def train_one(model: str, seed: int, images: np.ndarray, test: np.ndarray,
              steps: int, every: int, framework: str = "tf2") -> dict:
    """Train one reference model for one seed, judging it at every checkpoint."""
    started = time.perf_counter()
    rng = np.random.default_rng(1000 + seed)
    plan = draw_plan()(rng, steps, len(images))
    eval_noise = plan["eval_noise"][:max(SAMPLE_COUNTS)]
    fixed = {"real": images[rng.choice(len(images), LOSS_BATCH, replace=False)],
             "noise": rng.uniform(-1, 1, size=(LOSS_BATCH, NOISE_DIM)).astype(np.float32)}
    test_rows = test[rng.choice(len(test), NEIGHBOUR_SAMPLES, replace=False)]
    test_nn = distance_stats(networks.nearest_distances(test_rows, images))
    session = new_session(framework, model, seed, rng)
    start = {role: kernels(session.values(role)) for role in ("generator", "discriminator")}
    previous = dict(start)
    losses: list[np.ndarray] = []
    checkpoints = []
    for end in range(every, steps + 1, every):
        chunk = session.run(images, plan["order"][end - every:end])
        losses.append(chunk["losses"])
        record = checkpoint_record(session, model, chunk, losses, start, previous, fixed,
                                   eval_noise, images)
        checkpoints.append(record)
        print(f"{model} seed {seed} step {record['step']}: FCD {record.get('fcd')} "
              f"z {record['descent_G']['z']}/{record['descent_D']['z']} "
              f"reported {record['reported']} recomputed {record['recomputed']} "
              f"{record['steps_per_second']} steps/s", flush=True)
    history = np.concatenate(losses)
    stride = HISTORY_EVERY[model]
    blocks = history[:len(history) // stride * stride].reshape(-1, stride, 2).mean(axis=1)
    return {"model": model, "seed": seed, "device": "cpu", "framework": framework,
            "steps": steps, "every": every,
            "mode": session.mode, "checkpoints": checkpoints, "test_nn": test_nn,
            "loss_every": stride, "losses": np.round(blocks, 3).T.tolist(),
            "wall": round(time.perf_counter() - started, 1)}


def draw_plan():
    """The grader's ``draw_plan``: the data order and evaluation noise of a run."""
    from grader.convergence.judge import draw_plan as found

    return found


def done_runs(path: Path) -> set[tuple[str, int]]:
    """(model, seed) pairs already in the jsonl."""
    if not path.is_file():
        return set()
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(row["model"], row["seed"]) for row in rows}


def run(args: argparse.Namespace) -> None:
    """Train every (seed, model) not yet in the output file and append its line."""
    from grader.mnist import evaluator
    from grader.mnist.data import load_mnist

    out = Path(args.out) if args.out else (
        Path(tempfile.gettempdir()) / "convergence_runs_quick.jsonl" if args.quick
        else runs_file(args.framework))
    out.parent.mkdir(parents=True, exist_ok=True)
    data = load_mnist()
    images = evaluator.mnist_as_samples(data.x_train)
    test = evaluator.mnist_as_samples(data.x_test)
    done = done_runs(out)
    for seed in parse_seeds(args.seeds):
        for model in args.models:
            if (model, seed) in done:
                continue
            steps = QUICK_STEPS if args.quick else BUDGETS[model]
            every = QUICK_EVERY if args.quick else EVERY[model]
            row = train_one(model, seed, images, test, steps, every, args.framework)
            with open(out, "a") as stream:
                stream.write(json.dumps(row, separators=(",", ":")) + "\n")
            print(f"== {model} seed {seed}: {row['wall']} s -> {out}", flush=True)


# --------------------------------------------------------------------------- the table


def mad(values: np.ndarray) -> float:
    """Median absolute deviation from the median."""
    return float(np.median(np.abs(values - np.median(values))))


def load_rows(path: Path) -> list[dict]:
    """The runs of the jsonl."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fcd_matrix(rows: list[dict], key: str) -> np.ndarray:
    """FCD [seeds, checkpoints] at sample count ``key`` (NaN where not measured)."""
    return np.array([[c.get("fcd", {}).get(key, np.nan) for c in row["checkpoints"]]
                     for row in rows], dtype=np.float64)


def first_pass(fcd: np.ndarray, line: float) -> np.ndarray:
    """Index of the first checkpoint at or below ``line`` per seed (-1: never)."""
    below = fcd <= line
    return np.where(below.any(axis=1), below.argmax(axis=1), -1)


def round_up(value: float) -> float:
    """``value`` rounded up to one decimal (a line never moves inside the reference's range)."""
    return float(np.ceil(value * 10) / 10)


def round_down(value: float) -> float:
    """``value`` rounded down to one decimal."""
    return float(np.floor(value * 10) / 10)


def model_lines(rows: list[dict], key: str) -> dict:
    """Proposed pass, stop and too-good lines of one model at sample count ``key``."""
    fcd = fcd_matrix(rows, key)
    steps = [c["step"] for c in rows[0]["checkpoints"]]
    worst, best = np.nanmax(fcd, axis=0), np.nanmin(fcd, axis=0)
    stop = [round_up(max(w * STOP_MARGIN, w + STOP_MADS * mad(col)))
            for w, col in zip(worst, fcd.T)]
    too_good = [round_down(b * TOO_GOOD_FRACTION) for b in best]
    final_worst = worst[-1]
    candidates = []
    for factor in PASS_CANDIDATES:
        line = round_up(final_worst * factor)
        first = first_pass(fcd, line)
        passed = first[first >= 0]
        candidates.append({
            "factor": factor, "line": line, "never": int((first < 0).sum()),
            "first_pass_steps": [steps[i] if i >= 0 else None for i in first],
            "mean_steps": round(float(np.mean([steps[i] for i in passed])), 1)
            if len(passed) else None})
    pass_line = round_up(final_worst * PASS_MARGIN)
    return {"checkpoints": steps, "min": np.round(best, 1).tolist(),
            "median": np.round(np.nanmedian(fcd, axis=0), 1).tolist(),
            "max": np.round(worst, 1).tolist(), "pass": [pass_line] * len(steps),
            "stop": stop, "too_good": too_good, "pass_candidates": candidates,
            "false_fail_stop": [int((col > s).sum()) for col, s in zip(fcd.T, stop)],
            "false_fail_too_good": [int((col < t).sum()) for col, t in zip(fcd.T, too_good)]}


def verdict_agreement(rows: list[dict], lines: dict) -> dict:
    """How often the verdicts at n = 2000 differ from those at n = 5000, and the spread of
    FCD between two disjoint draws of 2000 samples."""
    small, large = str(SAMPLE_COUNTS[0]), str(SAMPLE_COUNTS[1])
    a, b = fcd_matrix(rows, small), fcd_matrix(rows, large)
    second = fcd_matrix(rows, f"{small}b")
    gap = np.abs(a - second)
    pass_a, pass_b = lines[small]["pass"][0], lines[large]["pass"][0]
    stop_a, stop_b = np.array(lines[small]["stop"]), np.array(lines[large]["stop"])
    differs = ((a <= pass_a) != (b <= pass_b)) | ((a > stop_a) != (b > stop_b))
    cells = [f"seed {rows[i]['seed']} step {rows[i]['checkpoints'][j]['step']}: "
             f"{a[i, j]:g} at 2000, {b[i, j]:g} at 5000 (pass lines {pass_a:g} / {pass_b:g})"
             for i, j in zip(*np.nonzero(differs))]
    return {"verdict_differs": int(differs.sum()), "cells": int(differs.size),
            "differing": cells,
            "bias_2000_minus_5000_median": round(float(np.nanmedian(a - b)), 2),
            "two_draws_of_2000_max_gap": round(float(np.nanmax(gap)), 2),
            "two_draws_of_2000_median_gap": round(float(np.nanmedian(gap)), 2)}


def entropy_criterion() -> float:
    """The evaluator's class-entropy pass mark (nats)."""
    from grader.mnist.evaluator import Criteria

    return Criteria().min_class_entropy


def integrity_stats(rows: list[dict]) -> dict:
    """Per checkpoint: smallest descent z and chain correlation, largest loss gap, and the
    nearest-neighbour quantiles of samples (smallest over seeds)."""
    steps = [c["step"] for c in rows[0]["checkpoints"]]

    def over(getter, reduce):
        return [reduce([getter(row["checkpoints"][i]) for row in rows])
                for i in range(len(steps))]

    return {
        "z_G": over(lambda c: c["descent_G"]["z"], min),
        "z_D": over(lambda c: c["descent_D"]["z"], min),
        "chain_G": over(lambda c: c["descent_G"]["chain"], min),
        "chain_D": over(lambda c: c["descent_D"]["chain"], min),
        "loss_gap_D": over(lambda c: round(abs(c["reported"][0] - c["recomputed"][0]), 4), max),
        "loss_gap_G": over(lambda c: round(abs(c["reported"][1] - c["recomputed"][1]), 4), max),
        "nn_min": over(lambda c: c.get("nn", [np.inf])[0], min),
        "nn_p1": over(lambda c: c.get("nn", [np.inf] * 2)[1], min),
        "steps_per_second": over(lambda c: c["steps_per_second"], min),
        "entropy_min": over(lambda c: c.get("entropy", np.nan), min),
        "entropy_median": over(lambda c: c.get("entropy", np.nan), np.median),
        "entropy_below": over(lambda c: int(c.get("entropy", 0) < entropy_criterion()), sum),
        "hard_failures": over(lambda c: int(bool(c.get("hard_failures"))), sum),
    } | {f"run_gap_{role}": max(
        float(np.median([abs(c["reported"][k] - c["recomputed"][k])
                         for c in row["checkpoints"][1:]])) for row in rows)
        for k, role in enumerate(("D", "G"))}


def sample_count(agreement: dict, lines: dict) -> str:
    """The smaller sample count when its verdicts never differ from the larger one's and two
    draws of it differ by less than half the pass margin; else the larger."""
    small, large = (str(n) for n in SAMPLE_COUNTS)
    for model, a in agreement.items():
        margin = (PASS_MARGIN - 1) / PASS_MARGIN * lines[model][small]["pass"][0]
        if a["verdict_differs"] or a["two_draws_of_2000_max_gap"] >= margin / 2:
            return large
    return small


def loss_tolerance(stats: dict) -> dict:
    """Tolerances of |reported - recomputed| per model: from the second checkpoint on, and at
    the first (where the networks change fastest)."""
    return {role: round(LOSS_TOLERANCE_FACTOR * max(stats[f"loss_gap_{role}"][1:]), 3)
            for role in ("D", "G")} | {
            f"{role}_run_median": round(LOSS_TOLERANCE_FACTOR * stats[f"run_gap_{role}"], 3)
            for role in ("D", "G")} | {
            f"{role}_first": round(LOSS_TOLERANCE_FACTOR * stats[f"loss_gap_{role}"][0], 3)
            for role in ("D", "G")}


def build_tables(rows: list[dict]) -> tuple[dict, str]:
    """The proposed lines (json) and their report (markdown)."""
    by_model = {m: sorted((r for r in rows if r["model"] == m), key=lambda r: r["seed"])
                for m in MODELS}
    by_model = {m: rs for m, rs in by_model.items() if rs}
    lines = {m: {str(n): model_lines(rs, str(n)) for n in SAMPLE_COUNTS}
             for m, rs in by_model.items()}
    agreement = {m: verdict_agreement(rs, lines[m]) for m, rs in by_model.items()}
    stats = {m: integrity_stats(rs) for m, rs in by_model.items()}
    test_p1 = [r["test_nn"][1] for r in rows]
    test_min = [r["test_nn"][0] for r in rows]
    sample_min = min(min(s["nn_min"]) for s in stats.values())
    sample_p1 = min(min(s["nn_p1"]) for s in stats.values())
    copy_distance = round(COPY_FRACTION * min(sample_min, min(test_min)), 2)
    z_min = min(min(s["z_G"] + s["z_D"]) for s in stats.values())
    chain_min = min(min(s["chain_G"] + s["chain_D"]) for s in stats.values())
    tolerance = {m: loss_tolerance(s) for m, s in stats.items()}
    floors = {m: {"z": round(FLOOR_FRACTION * min(s["z_G"] + s["z_D"]), 1),
                  "chain": round(FLOOR_FRACTION * min(s["chain_G"] + s["chain_D"]), 3)}
              for m, s in stats.items()}
    clean_from = {m: next((step for i, step in enumerate(lines[m]["2000"]["checkpoints"])
                           if not any(s["hard_failures"][i:])), None)
                  for m, s in stats.items()}
    entropy = {m: round_down(ENTROPY_FRACTION * s["entropy_min"][-1]) for m, s in stats.items()}
    seeds = min(len(rs) for rs in by_model.values())
    recommended = sample_count(agreement, lines)
    summary = {
        "device": "cpu", "samples": int(recommended), "seeds": seeds,
        "budgets": {m: BUDGETS[m] for m in by_model},
        "models": {m: {key: lines[m][recommended][key]
                       for key in ("checkpoints", "pass", "stop", "too_good")}
                   for m in by_model},
        "lines_by_samples": {n: {m: {key: lines[m][n][key]
                                     for key in ("checkpoints", "pass", "stop", "too_good")}
                                 for m in by_model} for n in map(str, SAMPLE_COUNTS)},
        "copy_distance": copy_distance,
        "descent_z_floor": round(FLOOR_FRACTION * z_min, 1),
        "chain_corr_floor": round(FLOOR_FRACTION * chain_min, 3),
        "descent_floors": floors,
        "loss_tolerance": tolerance,
        "min_class_entropy_at_budget": entropy,
        "hard_failures_judged_from": clean_from,
        "rules": {"pass": f"worst reference FCD at the budget x {PASS_MARGIN}",
                  "stop": f"max(worst x {STOP_MARGIN}, worst + {STOP_MADS:g} MAD) per checkpoint",
                  "too_good": f"best reference FCD at the checkpoint x {TOO_GOOD_FRACTION}",
                  "copy_distance": f"{COPY_FRACTION} x the smallest nearest-neighbour distance "
                                   "of any reference sample or test image",
                  "floors": f"{FLOOR_FRACTION} x the smallest reference value",
                  "loss_tolerance": f"{LOSS_TOLERANCE_FACTOR} x the largest reference gap",
                  "min_class_entropy_at_budget": f"{ENTROPY_FRACTION} x the smallest reference "
                                                 "class entropy at the budget",
                  "hard_failures_judged_from": "the first checkpoint from which no reference "
                                               "seed shows a hard failure"},
    }
    md = markdown(by_model, lines, agreement, stats, summary,
                  {"test_min": min(test_min), "test_p1": min(test_p1),
                   "test_p1_median": float(np.median(test_p1)),
                   "sample_min": sample_min, "sample_p1": sample_p1})
    return summary, md


def fmt(values) -> str:
    """A list of numbers as a compact table cell."""
    return " / ".join("-" if v is None else f"{v:g}" for v in values)


def evaluator_seconds() -> str:
    """Seconds the evaluator takes (features, then FCD) on each sample count, measured now."""
    from grader.mnist import evaluator

    model = evaluator.default_evaluator()
    images = np.random.default_rng(0).uniform(-1, 1, (max(SAMPLE_COUNTS), 784))
    timings = []
    for n in SAMPLE_COUNTS:
        started = time.perf_counter()
        features, _ = evaluator.forward(model.weights, images[:n].astype(np.float32))
        evaluator.frechet_distance(*evaluator.feature_statistics(features), model.mu, model.sigma)
        timings.append(f"n = {n}: {time.perf_counter() - started:.2f} s")
    return ", ".join(timings)


def markdown(by_model: dict, lines: dict, agreement: dict, stats: dict, summary: dict,
             nn: dict) -> str:
    """The report, in markdown."""
    out = ["# Convergence lines per checkpoint (issue #20), calibrated on reference seeds", "",
           "Written by `python benchmarks/calibrate_convergence.py table` from "
           "`convergence_runs.jsonl` (`... run --seeds 0-19`). **Every figure is measured on "
           "CPU** (the grader's loop, `TrainingSession`, batch 128, noise dim 96, budgets "
           + ", ".join(f"{m} {BUDGETS[m]}" for m in by_model)
           + " steps). GPU lines are **not** calibrated by this run: GPU kernels give other "
           "numbers and other budgets.", "",
           "Seeds: " + ", ".join(f"{m} {len(rs)}" for m, rs in by_model.items())
           + " (seed s: plan rng `default_rng(1000 + s)`, session seed s). A false-fail "
           "rate is the number of reference seeds that a line would fail, out of the seeds "
           "run; the margins (rules below) keep it at 0 with room to spare.", "",
           "Rules: " + "; ".join(f"**{k}** = {v}" for k, v in summary["rules"].items()) + ".",
           ""]
    for model, rs in by_model.items():
        for n in SAMPLE_COUNTS:
            line = lines[model][str(n)]
            out += [f"## {model}, FCD at n = {n}", "",
                    "| step | min | median | max | pass | stop (false fails) "
                    "| too good (false fails) |", "|---|---|---|---|---|---|---|"]
            for i, step in enumerate(line["checkpoints"]):
                out.append(f"| {step} | {line['min'][i]} | {line['median'][i]} | "
                           f"{line['max'][i]} | {line['pass'][i]} | {line['stop'][i]} "
                           f"({line['false_fail_stop'][i]}/{len(rs)}) | {line['too_good'][i]} "
                           f"({line['false_fail_too_good'][i]}/{len(rs)}) |")
            out += ["", "Pass-line candidates (a multiple of the worst FCD at the budget): "
                    "the checkpoint at which each seed first passes.", "",
                    "| factor | line | never pass | mean first-pass step (of those passing) "
                    "| per seed |",
                    "|---|---|---|---|---|"]
            for c in line["pass_candidates"]:
                out.append(f"| {c['factor']} | {c['line']} | {c['never']} | "
                           f"{'-' if c['mean_steps'] is None else c['mean_steps']} "
                           f"(budget {line['checkpoints'][-1]}) | "
                           f"{fmt(c['first_pass_steps'])} |")
            out.append("")
        a = agreement[model]
        out += [f"Sample count, {model}: verdicts (pass, stop) at n = 2000 and n = 5000 differ "
                f"in {a['verdict_differs']} of {a['cells']} (seed, checkpoint) cells; FCD at "
                f"2000 minus FCD at 5000, median {a['bias_2000_minus_5000_median']}; two "
                f"disjoint draws of 2000 differ by {a['two_draws_of_2000_median_gap']} "
                f"(median), {a['two_draws_of_2000_max_gap']} (max)."
                + (" Differing: " + "; ".join(a["differing"]) + "." if a["differing"] else ""),
                ""]
    out += ["## Integrity checks", "",
            "Per checkpoint, over seeds: the smallest descent z (corr(start, now) x "
            "sqrt(size), smallest over the kernels of G and of D), the smallest chain "
            "correlation (this checkpoint's kernels against the previous one's), the largest "
            "|reported - recomputed| loss (reported: mean of the last 20 steps; recomputed: "
            "the homework's loss on 1024 fixed images and noise, G in inference mode), the "
            "smallest nearest-neighbour distance of 500 samples to the 60,000 training images, "
            "and the slowest training speed.", ""]
    for model, s in stats.items():
        steps = lines[model]["2000"]["checkpoints"]
        out += [f"### {model}", "", "| step | z G | z D | chain G | chain D | loss gap D "
                "| loss gap G | NN min | NN p1 | steps/s | entropy min / median | hard failures |",
                "|---" * 12 + "|"]
        for i, step in enumerate(steps):
            out.append(f"| {step} | {s['z_G'][i]} | {s['z_D'][i]} | {s['chain_G'][i]} | "
                       f"{s['chain_D'][i]} | {s['loss_gap_D'][i]} | {s['loss_gap_G'][i]} | "
                       f"{s['nn_min'][i]} | {s['nn_p1'][i]} | {s['steps_per_second'][i]} | "
                       f"{s['entropy_min'][i]} / {s['entropy_median'][i]:.3f} | "
                       f"{s['hard_failures'][i]}/{len(by_model[model])} |")
        out.append("")
    out += ["## Proposed lines", "",
            f"- sample count: n = {summary['samples']} (rule: the smaller count when its "
            "verdicts never differ from those at the larger one and two disjoint draws of it "
            "differ by less than half the pass margin; see the comparisons above)",
            f"- copy distance: {summary['copy_distance']} (a sample closer than this to a "
            f"training image counts as a copy); smallest distance of any reference sample "
            f"{nn['sample_min']}, of any of the 500 test images per run {nn['test_min']}; 1st "
            f"percentiles: samples {nn['sample_p1']} (smallest), test images "
            f"{nn['test_p1']} (smallest), {nn['test_p1_median']:.2f} (median)",
            f"- descent z floor: {summary['descent_z_floor']}; chain correlation floor: "
            f"{summary['chain_corr_floor']} (per model: "
            + "; ".join(f"{m} z {f['z']}, chain {f['chain']}"
                        for m, f in summary["descent_floors"].items())
            + "). A start the grader did not send gives z about N(0, 1) per kernel.",
            "- class entropy at the budget (nats, at 5000 samples), floor: "
            + "; ".join(f"{m} {v} (smallest reference {stats[m]['entropy_min'][-1]}, "
                        f"{stats[m]['entropy_below'][-1]}/{len(by_model[m])} seeds below the "
                        f"evaluator's {entropy_criterion()} nats)"
                        for m, v in summary["min_class_entropy_at_budget"].items()),
            "- hard failures ('all samples alike': the evaluator's pixel-spread test) appear "
            "in reference seeds at early checkpoints; none from this step on, so judge them "
            "only from there: "
            + "; ".join(f"{m} {v}" for m, v in summary["hard_failures_judged_from"].items()),
            f"- evaluator time (features and FCD, this machine): {evaluator_seconds()}",
            "- loss tolerance (|reported - recomputed|) at one checkpoint: "
            + "; ".join(f"{m} D {t['D']}, G {t['G']} (first checkpoint D {t['D_first']}, "
                        f"G {t['G_first']})" for m, t in summary["loss_tolerance"].items())
            + ". Heavy-tailed: a checkpoint that falls on an oscillation leaves the networks "
            "far from the last 20 steps' mean. The median gap over a run's checkpoints (from "
            "the second) is steadier; tolerance of that median: "
            + "; ".join(f"{m} D {t['D_run_median']}, G {t['G_run_median']}"
                        for m, t in summary["loss_tolerance"].items()),
            ""]
    return "\n".join(out)


def compact_json(value: object, indent: str = "") -> str:
    """JSON with one key per line and every list of numbers on one line."""
    if isinstance(value, dict):
        inner = indent + " "
        items = [f"{inner}{json.dumps(k)}: {compact_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        inner = indent + " "
        return "[\n" + ",\n".join(inner + compact_json(v, inner) for v in value) + "\n" + \
            indent + "]"
    return json.dumps(value)


def table(args: argparse.Namespace) -> None:
    """Write the markdown and json tables from the runs' jsonl."""
    rows = load_rows(Path(args.runs))
    summary, md = build_tables(rows)
    Path(args.json).write_text(compact_json(summary) + "\n")
    Path(args.md).write_text(md)
    print(md)


def main() -> None:
    """Dispatch the sub-commands."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run", help="train reference seeds, append to the jsonl")
    runner.add_argument("--seeds", default="0-19", help="e.g. 0-19 or 0,2,5")
    runner.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    runner.add_argument("--quick", action="store_true",
                        help=f"{QUICK_STEPS} steps, checkpoints every {QUICK_EVERY}, "
                             "into a temporary file unless --out")
    runner.add_argument("--out", help=f"jsonl to append to (default {RUNS_FILE.name}, or "
                        "convergence_runs_<framework>.jsonl)")
    runner.add_argument("--framework", default="tf2", choices=("tf2", "torch"),
                        help="whose reference and training loop (default: tf2)")
    runner.set_defaults(handler=run)
    tabler = commands.add_parser("table", help="write the lines from the jsonl")
    tabler.add_argument("--runs", default=str(RUNS_FILE))
    tabler.add_argument("--md", default=str(LINES_MD))
    tabler.add_argument("--json", default=str(LINES_JSON))
    tabler.set_defaults(handler=table)
    args = parser.parse_args()
    args.handler(args)


if __name__ == "__main__":
    main()
