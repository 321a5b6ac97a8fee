"""Calibrate and time the sample evaluator (grader/mnist/evaluator.py).

    python benchmarks/evaluator_calibration.py [--mnist DIR] [--reference-gans]

Prints the evaluator's scores for real digits, blurred ones and samples that must fail, then
the time ``score_samples`` takes on 10,000 samples. With ``--reference-gans`` it also
trains the instructor's three GANs (reference/hw4.py, needs TensorFlow) for the CPU
step budgets of rubric.yaml and scores their samples: the numbers that the pass marks
of ``grader.mnist.evaluator.Criteria`` must let through. That takes several minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader.mnist import evaluator as ev  # noqa: E402
from grader.mnist.data import load_mnist  # noqa: E402

N = 10000
SEED = 0
CPU_BUDGETS = {"gan": 1500, "lsgan": 1500, "dcgan": 400}  # as in rubric.yaml


def calibration_cases(mnist, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Named batches of samples [N, 784] in [-1, 1]: real digits and ones that must fail."""
    test = ev.mnist_as_samples(mnist.x_test)
    train = ev.mnist_as_samples(mnist.x_train[rng.choice(len(mnist.x_train), N, replace=False)])
    blurred = scipy.ndimage.gaussian_filter(mnist.x_test.astype(np.float32), (0, 1.5, 1.5))
    return {
        "real test set (10k)": test,
        "real train subset (10k)": train,
        "uniform noise": rng.uniform(-1, 1, (N, 784)).astype(np.float32),
        "one repeated digit": np.tile(test[0], (N, 1)),
        "same digit + noise 0.01": np.clip(test[0] + rng.normal(0, 0.01, (N, 784)), -1, 1),
        "single class (real 1s)": test[mnist.y_test == 1],
        "blurred test set (sigma 1.5)": blurred.reshape(-1, 784) / 127.5 - 1,
    }


def reference_gan_samples(mnist, kind: str, steps: int, seed: int) -> np.ndarray:
    """Train one of the instructor's GANs for ``steps`` steps and draw N samples."""
    import keras

    from reference import hw4

    keras.utils.set_random_seed(seed)
    if kind == "dcgan":
        discriminator, generator = hw4.dc_discriminator(), hw4.dc_generator()
    else:
        discriminator, generator = hw4.discriminator(), hw4.generator()
    loss = hw4.lsgan_loss if kind == "lsgan" else hw4.gan_loss
    d_solver, g_solver = hw4.get_solvers()
    with contextlib.redirect_stdout(io.StringIO()):  # run_a_gan prints the first losses
        hw4.run_a_gan(discriminator, generator, d_solver, g_solver, loss,
                      hw4.preprocess(mnist.x_train), num_epochs=100, print_every=10**9,
                      show_every=0, max_steps=steps)
    noise = hw4.sample_noise(N, hw4.NOISE_DIM)
    return np.asarray(generator.predict(noise, batch_size=1000, verbose=0))


def row(name: str, scores: ev.SampleScores) -> str:
    """One line of the table."""
    reasons = ev.failed_criteria(scores)
    verdict = "pass" if not reasons else "FAIL"
    failures = "; ".join(scores.hard_failures) or "-"
    return (f"{name:<28} {scores.n:>6} {scores.fcd:>9.2f} {scores.class_entropy:>8.3f} "
            f"{scores.min_class_fraction:>9.4f} {scores.confident_fraction:>7.3f}  "
            f"{verdict:<5} {failures}")


def time_scoring(samples: np.ndarray, repeats: int = 3) -> list[float]:
    """Wall-clock seconds of ``score_samples`` on the same batch, ``repeats`` times."""
    ev.default_evaluator()  # loading (and hashing) the weights is not part of scoring
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        ev.score_samples(samples)
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> int:
    """Print the calibration table and the timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", help="folder of the MNIST IDX files (default: $HW4_MNIST_DIR)")
    parser.add_argument("--reference-gans", action="store_true",
                        help="also train and score the instructor's GANs (slow, needs TF)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="seeds for --reference-gans (default: 0)")
    args = parser.parse_args()

    mnist = load_mnist(args.mnist, allow_download=False, verbose=False)
    manifest = ev.default_evaluator().manifest
    print(mnist.describe())
    print(f"evaluator: test accuracy {manifest['test_accuracy']:.4f}, "
          f"weights sha256 {manifest['weights_sha256'][:16]}...")
    print(f"pass marks: {ev.Criteria()}")
    print()
    print(f"{'case':<28} {'n':>6} {'FCD':>9} {'H(nats)':>8} {'min frac':>9} "
          f"{'conf>.9':>7}  {'verdict':<5} hard failures")
    rng = np.random.default_rng(SEED)
    cases = calibration_cases(mnist, rng)
    for name, samples in cases.items():
        print(row(name, ev.score_samples(samples)), flush=True)
    if args.reference_gans:
        for seed in args.seeds:
            for kind, steps in CPU_BUDGETS.items():
                start = time.perf_counter()
                samples = reference_gan_samples(mnist, kind, steps, seed)
                name = f"ref {kind} {steps} steps s{seed}"
                print(row(name, ev.score_samples(samples)) +
                      f"  ({time.perf_counter() - start:.0f} s)", flush=True)

    samples = cases["real test set (10k)"]
    seconds = time_scoring(samples)
    start = time.perf_counter()
    features, _ = ev.forward(ev.default_evaluator().weights, samples)
    forward_seconds = time.perf_counter() - start
    start = time.perf_counter()
    mu, sigma = ev.feature_statistics(features)
    ev.frechet_distance(mu, sigma, ev.default_evaluator().mu, ev.default_evaluator().sigma)
    fcd_seconds = time.perf_counter() - start
    print()
    print(f"score_samples on {len(samples):,} samples: median {statistics.median(seconds):.2f} s "
          f"(runs: {', '.join(f'{s:.2f}' for s in seconds)}); "
          f"forward pass {forward_seconds:.2f} s, statistics + FCD {fcd_seconds:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
