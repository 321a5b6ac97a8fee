"""``hw4grade mnist``: show which MNIST source the loader finds."""

from __future__ import annotations

import argparse

from grader.commands import paths
from grader.mnist.data import ENV_VAR, load_mnist


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hw4grade mnist``."""
    parser.add_argument("--mnist", metavar="PATH",
                        help=f"folder of IDX files or mnist.npz (default: ${ENV_VAR})")
    parser.add_argument("--no-download", action="store_true", help="never try the network")


def run(args: argparse.Namespace) -> int:
    """Print which MNIST source the loader uses and the data's sizes."""
    source = paths.mnist_source(args.mnist)
    mnist = load_mnist(source, allow_download=not args.no_download, verbose=False)
    print(mnist.describe())
    return 0
