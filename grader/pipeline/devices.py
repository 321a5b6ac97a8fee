"""The devices a kernel can be given."""

from __future__ import annotations

import shutil


class Device:
    """Where a grade runs its notebooks (``Options.device``; ``--device`` adds ``auto``)."""

    CPU = "cpu"
    GPU = "gpu"


DEVICES = (Device.CPU, Device.GPU)  # a grade's device, a rubric's budgets per device
AUTO_DEVICE = "auto"  # --device: a GPU where there is one, else the CPU


def count_gpus() -> int:
    """GPUs visible on this machine (by nvidia-smi), without importing TensorFlow."""
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                 timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listing.splitlines() if line.startswith("GPU "))
