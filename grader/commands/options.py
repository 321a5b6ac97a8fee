"""The grading options ``hw4grade grade`` and ``hw4grade check`` share, and the ``Options``
built from them."""

from __future__ import annotations

import argparse

import numpy as np

from grader.commands import paths
from grader.exceptions import UsageError
from grader.frameworks import AUTO, NAMES, REGISTRY
from grader.pipeline.devices import AUTO_DEVICE, DEVICES, Device, count_gpus
from grader.pipeline.grade_one import Options, default_threads
from grader.rubric import MODES, Mode


def add_grading_arguments(parser) -> None:
    """Options shared by ``hw4grade grade`` and ``hw4grade check``."""
    parser.add_argument("--mode", choices=MODES, default=Mode.QUICK,
                        help="quick: the notebook's own training stops after a few steps; "
                             "full: after the rubric's budget")
    parser.add_argument("--seed", type=int, help="seed of the hidden inputs (default: drawn "
                                                 "afresh and recorded in the result)")
    parser.add_argument("--rubric", help="rubric file (default: the shipped rubric.yaml)")
    parser.add_argument("--mnist", metavar="PATH",
                        help="MNIST folder of IDX files or mnist.npz (default: $HW4_MNIST_DIR, "
                             "then the Keras cache, then the embedded sample)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="per-cell time limit (default: the rubric's)")
    parser.add_argument("--notebook-timeout", type=float, metavar="SECONDS",
                        help="whole-notebook time limit (default: the rubric's)")
    parser.add_argument("--memory-limit", metavar="SIZE",
                        help="stop the kernel above this memory, e.g. 4GiB (default: rubric's)")
    parser.add_argument("--output-limit", metavar="SIZE",
                        help="captured output kept per cell (default: the rubric's)")
    add_profile_argument(parser)
    parser.add_argument("--device", choices=(AUTO_DEVICE, *DEVICES), default=AUTO_DEVICE,
                        help="where the notebooks run, TensorFlow and PyTorch alike (default: "
                             "a GPU if there is one); without a GPU, a PyTorch notebook's CUDA "
                             "calls run on the CPU")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run notebooks without the bubblewrap sandbox (only where it "
                             "cannot run; every result records it)")


def check_grading_arguments(args) -> None:
    """Check the options ``grade`` and ``check`` share before any work starts, making their
    paths absolute: ``--rubric`` loads, ``--mnist`` is a MNIST source, the sizes and times
    are valid. Raises a ``BadInput`` naming the option."""
    from grader.rubric import parse_size

    paths.rubric_file(args.rubric)
    args.rubric = paths.input_file(args.rubric, "--rubric") if args.rubric else None
    args.mnist = paths.mnist_source(args.mnist)
    for option in ("memory_limit", "output_limit"):
        if getattr(args, option):
            parse_size(getattr(args, option), "--" + option.replace("_", "-"))
    for option in ("timeout", "notebook_timeout"):
        value = getattr(args, option)
        if value is not None and not value > 0:
            raise UsageError(f"--{option.replace('_', '-')} {value:g}: must be a positive "
                             "number of seconds")


def options_from_args(args, workers: int = 1, gpus: int | None = None) -> Options:
    """Build Options from parsed command-line arguments (the rubric is loaded here).

    ``gpus`` is the number of GPUs the notebooks can use (default: those of this machine).
    """
    from grader.rubric import load_rubric, parse_size

    rubric = load_rubric(args.rubric)
    if args.device == Device.CPU:
        gpus = 0
    elif gpus is None:
        gpus = count_gpus()
    if args.device == Device.GPU and gpus == 0:
        raise UsageError("--device gpu: no GPU is visible (nvidia-smi finds none)")
    seed = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**31)
    return Options(
        rubric=rubric, mode=args.mode, seed=seed, device=Device.GPU if gpus else Device.CPU,
        profile=getattr(args, "profile", AUTO),
        gpu_index=0 if gpus else None, threads=default_threads(workers),
        cell_timeout=args.timeout, notebook_timeout=args.notebook_timeout,
        memory_limit=parse_size(args.memory_limit, "--memory-limit") if args.memory_limit else None,
        output_limit=parse_size(args.output_limit, "--output-limit") if args.output_limit else None,
        sandbox=not getattr(args, "no_sandbox", False),
        sandbox_user=getattr(args, "sandbox_user", None),
    )


def add_profile_argument(parser: argparse.ArgumentParser) -> None:
    """``--profile``: the edition a submission answers (``grade``, ``check``, ``collect``)."""
    parser.add_argument("--profile", choices=(AUTO, *NAMES), default=AUTO,
                        help="; ".join(f"{name}: {framework.summary}"
                                       for name, framework in REGISTRY.items())
                        + "; default: read from each notebook's code")
