"""Calibrate the convergence items: train the reference (and broken variants) with the grader's
loop and print the evaluator's scores, the steps per second and the wall time.

    HW4_MNIST_DIR=../shared/data/mnist python benchmarks/convergence_calibration.py \\
        --models gan lsgan dcgan --steps 500 1000 1500 --seeds 0 1 --json calibration.json

The reference runs set the pass lines in rubric.yaml; the broken variants (a generator that
ignores its noise, swapped real/fake labels, a generator loss fixed at 0) must fail them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from reference.reference_runs import reference_parts

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    """Run the calibration grid and print (and optionally save) its table."""
    from grader.kernel import train as kernel_train
    from grader.mnist import evaluator
    from grader.mnist.data import load_mnist
    from grader.pipeline.convergence import draw_plan

    sys.path.insert(0, str(ROOT))  # tests.fixtures, when run as a script
    from tests.fixtures.broken_gans import FAULTS, broken_parts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["gan", "lsgan", "dcgan"])
    parser.add_argument("--steps", nargs="+", type=int, default=[500, 1500])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--faults", nargs="*", default=list(FAULTS))
    parser.add_argument("--jit", action="store_true", help="XLA-compile the training step")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    data = load_mnist()
    images = evaluator.mnist_as_samples(data.x_train)
    rows = []
    real = evaluator.score_samples(evaluator.mnist_as_samples(data.x_train[:10000]))
    print(f"real training images: FCD {real.fcd:.2f}, entropy {real.class_entropy:.3f}")
    rows.append({"model": "real-train-10k", "fcd": real.fcd, "entropy": real.class_entropy})
    runs = [(model, steps, seed, None) for model in args.models for steps in args.steps
            for seed in args.seeds]
    runs += [(model, max(args.steps), args.seeds[0], fault) for model in args.models
             for fault in args.faults]
    for model, steps, seed, fault in runs:
        rng = np.random.default_rng(seed)
        plan = draw_plan(rng, steps, len(images))
        parts = broken_parts(model, fault) if fault else reference_parts(model)
        started = time.perf_counter()
        outcome = kernel_train.train(parts, images, plan["order"], plan["eval_noise"], seed=seed,
                                     jit=args.jit)
        wall = time.perf_counter() - started
        scores = evaluator.score_samples(outcome["samples"])
        row = {"model": model, "steps": steps, "seed": seed, "fault": fault,
               "fcd": round(scores.fcd, 2), "entropy": round(scores.class_entropy, 3),
               "min_class": round(scores.min_class_fraction, 4),
               "confident": round(scores.confident_fraction, 3),
               "hard_failures": scores.hard_failures,
               "final_d_loss": round(float(np.mean(outcome["losses"][-50:, 0])), 4),
               "steps_per_second": round(outcome["steps"] / outcome["seconds"], 2),
               "wall_seconds": round(wall, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(rows, stream, indent=1)


if __name__ == "__main__":
    main()
