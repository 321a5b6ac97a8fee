"""The PyTorch framework's kernel-side files (sent as text by ``grader.kernel.loader``)."""
