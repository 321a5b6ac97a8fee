"""``hw4grade mnist``: show which MNIST source the loader finds."""

from __future__ import annotations

import argparse
import sys

from grader.mnist.data import ENV_VAR, MnistError, load_mnist


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hw4grade mnist``."""
    parser.add_argument("--mnist", metavar="PATH",
                        help=f"folder of IDX files or mnist.npz (default: ${ENV_VAR})")
    parser.add_argument("--no-download", action="store_true", help="never try the network")


def run(args: argparse.Namespace) -> int:
    """Print which MNIST source the loader uses and the data's sizes."""
    try:
        mnist = load_mnist(args.mnist, allow_download=not args.no_download, verbose=False)
    except MnistError as error:
        print(f"hw4grade mnist: {error}", file=sys.stderr)
        return 1
    print(mnist.describe())
    return 0
