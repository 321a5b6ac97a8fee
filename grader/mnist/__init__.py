"""The MNIST data and the evaluator that judges generated digits."""
