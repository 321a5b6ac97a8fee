"""How long does a full grade take, against a yardstick measured in the same run?

    HW4_MNIST_DIR=../shared/data/mnist python benchmarks/full_grade_speed.py \\
        [--notebooks solution failing tf1] [--seed 0] \\
        [--markdown benchmarks/results/full_grade_speed.md]

The yardstick is the seconds this machine needs, in a fresh process, for 1,500 compiled
training steps of the homework's MLP GAN (batch 128, the specified networks, Adam) with
the grader's own loop. Wall times move with the machine's load; their ratio to the
yardstick moves much less. Each notebook is graded by a whole ``hw4grade check --mode
full`` process (start-up and reports included):

* ``solution``: the solution notebook (every model converges);
* ``failing``: the solution with the GAN's real and fake labels swapped (the GAN fails and
  attribution retrains it);
* ``tf1``: the correct TensorFlow 1 fixture notebook (2018 edition);
* ``torch``: the PyTorch solution notebook (``reference/HW4_solution_torch.ipynb``).

``--mode quick`` times quick grades instead (no training; the yardstick still printed).

It ends with a projection for 1,000 full grades on 8 and 64 two-core workers through the
Dask path, from the solution's wall time and the Dask overhead per task measured in
``cluster_overhead.md``. Prints and writes figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DASK_SECONDS_PER_TASK = 0.28  # benchmarks/results/cluster_overhead.md
YARDSTICK_CODE = """
import os, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
from grader.convergence.judge import draw_plan
from grader.frameworks.tf2.kernel.train import TrainingSession
from grader.mnist import evaluator
from grader.mnist.data import load_mnist
from reference.reference_runs import reference_parts
images = evaluator.mnist_as_samples(load_mnist().x_train)
plan = draw_plan(np.random.default_rng(0), 1500, len(images), 10)
session = TrainingSession(reference_parts("gan"), seed=0)
started = time.perf_counter()
session.run(images, plan["order"])
print(time.perf_counter() - started)
"""


def yardstick() -> float:
    """Seconds for 1,500 compiled MLP GAN steps in a fresh process."""
    output = subprocess.run([sys.executable, "-c", YARDSTICK_CODE], check=True, cwd=ROOT,
                            capture_output=True, text=True).stdout
    return float(output.strip().splitlines()[-1])


def notebook_for(name: str, folder: Path) -> Path:
    """The notebook a benchmark name stands for, written into ``folder`` when needed."""
    sys.path.insert(0, str(ROOT))
    if name == "solution":
        return ROOT / "reference" / "HW4_solution.ipynb"
    if name == "failing":
        from tests.fixtures.submissions import SOLUTION_PATH, variant_by_name, write_variant

        return Path(write_variant(variant_by_name("gan_loss_labels_swapped"), SOLUTION_PATH,
                                  folder))
    if name == "torch":
        return ROOT / "reference" / "HW4_solution_torch.ipynb"
    if name == "tf1":
        from tests.fixtures.tf1_notebooks import write

        return Path(write("correct_2018", folder))
    raise SystemExit(f"no benchmark notebook called {name!r}")


def full_grade(name: str, seed: int, mode: str = "full") -> dict:
    """Grade one notebook with ``check --mode MODE``; its wall time and result."""
    with tempfile.TemporaryDirectory() as tmp:
        notebook = notebook_for(name, Path(tmp))
        result_file = Path(tmp) / "result.json"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "grader", "check", str(notebook), "--mode",
                        mode, "--seed", str(seed), "--json", str(result_file)],
                       cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
        wall = time.perf_counter() - started
        return {"name": name, "wall": wall, "result": json.loads(result_file.read_text())}


def convergence_summary(result: dict) -> str:
    """Each convergence item: points, the step its verdict settled at, its seconds."""
    parts = []
    for item in result["items"]:
        if item["id"].endswith("_convergence"):
            details = item["details"]
            parts.append(f"{item['id'][:-12]} {item['points']:g}/{item['max_points']:g} at "
                         f"{details.get('checkpoint')} of {details.get('steps_budget')} steps, "
                         f"{details.get('seconds')} s"
                         + (", attributed" if details.get("attribution") else ""))
    return "; ".join(parts)


def main() -> None:
    """Measure the yardstick and the full grades; print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", nargs="+", default=["solution", "failing", "tf1"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=("full", "quick"), default="full")
    parser.add_argument("--markdown", help="write the table here too")
    args = parser.parse_args()
    stick = yardstick()
    print(f"yardstick: 1,500 compiled MLP GAN steps in {stick:.1f} s")
    lines = ["| notebook | wall | in yardsticks | timing (s) | convergence |",
             "| --- | --- | --- | --- | --- |"]
    walls = {}
    for name in args.notebooks:
        graded = full_grade(name, args.seed, args.mode)
        result, wall = graded["result"], graded["wall"]
        walls[name] = wall
        timing = ", ".join(f"{key} {value:g}" for key, value in result["timing"].items())
        row = (f"| {name} ({result['profile']}) | {wall:.0f} s | {wall / stick:.2f} | {timing} "
               f"| {convergence_summary(result)} |")
        print(row, flush=True)
        lines.append(row)
    lines += ["", f"Yardstick: {stick:.1f} s for 1,500 compiled MLP GAN steps in this run.", ""]
    if "solution" in walls and args.mode == "full":
        per = walls["solution"] + DASK_SECONDS_PER_TASK
        lines += ["Projection, 1,000 full grades of notebooks like the solution through the "
                  "Dask path (each two-core worker grades one at a time):", "",
                  "| two-core workers | wall |", "| --- | --- |"]
        for workers in (1, 8, 64):
            hours = 1000 * per / workers / 3600
            lines.append(f"| {workers} | {hours:.1f} h ({hours * 60:.0f} min) |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
