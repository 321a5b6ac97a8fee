"""hw4grade: grade the GAN homework (Vanilla GAN, LSGAN, DCGAN on MNIST) from executed notebooks."""

__version__ = "0.1.0"
