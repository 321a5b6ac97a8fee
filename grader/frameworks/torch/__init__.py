"""The PyTorch edition of the homework: ``framework.py`` (the grader's side), ``kernel/`` (the
files run in a submission's kernel), the PyTorch reference oracle and the optimizer check."""
