"""The figures of a convergence item's feedback, and the stored reference runs they show.

``python -m reference.reference_runs`` keeps, per device, model and budget, a reference run
trained with the grader's loop: 49 samples, its loss curves and its FCD.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np

from grader import DATA_DIR

REFERENCE_RUNS_DIR = DATA_DIR / "reference_runs"


def png_base64(figure) -> str:
    """A matplotlib figure as base64 PNG text (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=70, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mosaic(samples: np.ndarray, side: int) -> np.ndarray:
    """The first ``side * side`` samples tiled into one image, a 1-pixel gap between them
    (values in [0, 1]; empty tiles stay black)."""
    tile = 29
    image = np.zeros((side * tile - 1, side * tile - 1), dtype=np.float32)
    shown = np.clip(np.asarray(samples[: side * side], dtype=np.float32), -1, 1)
    for index, sample in enumerate(shown):
        row, column = divmod(index, side)
        image[row * tile:row * tile + 28, column * tile:column * tile + 28] = \
            (sample.reshape(28, 28) + 1) / 2
    return image


def sample_grid(samples: np.ndarray, title: str, count: int = 49) -> str:
    """A square grid of the first samples as base64 PNG."""
    plt = _pyplot()
    side = int(np.sqrt(count))
    figure, axis = plt.subplots(figsize=(side * 0.5, side * 0.5 + 0.3))
    axis.imshow(mosaic(samples, side), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axis.axis("off")
    axis.set_title(title, fontsize=8)
    return png_base64(figure)


def loss_plot(losses: np.ndarray, title: str, reference: np.ndarray | None = None) -> str:
    """D and G losses per step as base64 PNG, the reference's beside them (dashed)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.5, 2.4))
    axis.plot(losses[:, 0], label="your D loss", linewidth=0.8, color="tab:blue")
    axis.plot(losses[:, 1], label="your G loss", linewidth=0.8, color="tab:orange")
    if reference is not None and len(reference):
        axis.plot(reference[:, 0], "--", label="reference D", linewidth=0.7, color="tab:blue",
                  alpha=0.6)
        axis.plot(reference[:, 1], "--", label="reference G", linewidth=0.7,
                  color="tab:orange", alpha=0.6)
    axis.set_xlabel("step")
    axis.set_title(title, fontsize=8)
    axis.legend(fontsize=6, ncol=2)
    return png_base64(figure)


def reference_run_path(device: str, model: str, steps: int) -> Path:
    """Where ``reference.reference_runs`` keeps the reference's run at this budget."""
    return REFERENCE_RUNS_DIR / f"{device}-{model}-{steps}.npz"


def load_reference_run(device: str, model: str, steps: int) -> dict[str, np.ndarray] | None:
    """The stored reference run (samples, losses, fcd) at exactly this budget, or None."""
    path = reference_run_path(device, model, steps)
    if not path.is_file():
        return None
    with np.load(path) as data:
        return {key: data[key] for key in data.files}
