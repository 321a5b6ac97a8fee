"""Grading of the convergence items: the grader trains each GAN through the kernel, with
its own start weights and its own training loop, and judges samples it draws itself from
the trained weights the kernel returns (``networks`` holds the numpy copies of the
specified networks that draw them), so a kernel cannot hand in samples or losses it did
not earn.
"""
