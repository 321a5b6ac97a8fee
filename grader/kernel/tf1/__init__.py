"""The kernel side of the TF1 profile (graph mode)."""
