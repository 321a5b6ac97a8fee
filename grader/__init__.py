"""hw4grade: grade the GAN homework (Vanilla GAN, LSGAN, DCGAN on MNIST) from executed notebooks."""

from pathlib import Path

__version__ = "0.1.0"
PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"  # the evaluator's weights, reference runs, public checks
