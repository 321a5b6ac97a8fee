"""Train the reference GANs with the grader's own loop at the rubric's budgets and keep what
feedback pages show beside a student's run: 49 samples, the loss curves and the FCD.

    HW4_MNIST_DIR=../shared/data/mnist python -m reference.reference_runs [--device cpu]

Writes ``grader/data/reference_runs/<device>-<model>-<steps>.npz`` (about 90 KB each). The
grader shows a stored run only when its budget equals the one in force, so after changing
the rubric's budgets, run this again. Deterministic for a given seed and machine.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHOWN_SAMPLES = 49


def reference_parts(model: str) -> dict:
    """The reference's parts for one model, as the grader's training loop takes them."""
    from reference import hw4

    loss = hw4.lsgan_loss if model == "lsgan" else hw4.gan_loss
    if model == "dcgan":
        return {"discriminator": hw4.dc_discriminator, "generator": hw4.dc_generator,
                "loss": loss, "sample_noise": hw4.sample_noise, "get_solvers": hw4.get_solvers}
    return {"discriminator": hw4.discriminator, "generator": hw4.generator, "loss": loss,
            "sample_noise": hw4.sample_noise, "get_solvers": hw4.get_solvers}


def torch_reference_parts(model: str) -> dict:
    """The PyTorch reference's parts for one model, as the PyTorch training loop takes them
    (losses as (D loss, G loss) pairs, ``get_solvers(D, G)``)."""
    from reference import hw4_torch as ref

    d_loss, g_loss = ((ref.ls_discriminator_loss, ref.ls_generator_loss) if model == "lsgan"
                      else (ref.discriminator_loss, ref.generator_loss))
    networks = ({"discriminator": lambda: ref.build_dc_classifier(128),
                 "generator": ref.build_dc_generator} if model == "dcgan"
                else {"discriminator": ref.discriminator, "generator": ref.generator})
    return {**networks, "loss": lambda real, fake: (d_loss(real, fake), g_loss(fake)),
            "sample_noise": ref.sample_noise,
            "get_solvers": lambda *nets: tuple(ref.get_optimizer(net) for net in nets)}


def kernel_module(file: str, before: tuple[str, ...] = ()):
    """A kernel-side module of the grader (``"torch/train"``) loaded into this process as a
    kernel loads it (after the modules it reads, ``before``), for reference runs."""
    import sys

    from grader.kernel import loader

    for name in (*before, file):
        exec(loader.install_code(loader.module_name(name), loader.read_source(name)), {})
    return sys.modules[loader.module_name(file)]


def main() -> None:
    """Train each model at the rubric's budget for ``--device`` and save its run."""
    from grader.convergence.figures import REFERENCE_RUNS_DIR, reference_run_path
    from grader.convergence.judge import draw_plan
    from grader.frameworks.tf2.kernel import train as kernel_train
    from grader.mnist import evaluator
    from grader.mnist.data import load_mnist
    from grader.rubric import load_rubric

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--models", nargs="+", default=["gan", "lsgan", "dcgan"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mnist", help="MNIST folder or npz (default: $HW4_MNIST_DIR)")
    args = parser.parse_args()
    budgets = load_rubric().convergence.budgets[args.device]
    images = evaluator.mnist_as_samples(load_mnist(args.mnist).x_train)
    REFERENCE_RUNS_DIR.mkdir(parents=True, exist_ok=True)
    for model in args.models:
        steps = budgets[model]
        plan = draw_plan(np.random.default_rng(args.seed), steps, len(images))
        started = time.perf_counter()
        outcome = kernel_train.train(reference_parts(model), images, plan["order"],
                                     plan["eval_noise"], seed=args.seed)
        scores = evaluator.score_samples(outcome["samples"])
        path = reference_run_path(args.device, model, steps)
        np.savez_compressed(path, samples=outcome["samples"][:SHOWN_SAMPLES].astype(np.float16),
                            losses=outcome["losses"].astype(np.float32),
                            fcd=np.float64(scores.fcd), seed=np.int64(args.seed))
        print(f"{model}: {steps} steps in {time.perf_counter() - started:.0f} s, "
              f"FCD {scores.fcd:.1f} -> {Path(path).name} ({Path(path).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
