"""How fast is grading? Prints figures; asserts nothing (machines are noisy).

    HW4_MNIST_DIR=../shared/data/mnist python benchmarks/grade_speed.py [--batch 20] [--workers 2]
    HW4_MNIST_DIR=../shared/data/mnist python benchmarks/grade_speed.py --full [--profile-tf1]

1. ``hw4grade check --mode quick`` of the solution notebook, wall time, as a student runs it;
2. a batch of N quick grades (copies of the solution) with ``--workers``, wall time;
3. the grader's own overhead: the share of a quick check's wall time not spent starting the
   kernel, executing the notebook, or probing it.

With ``--full``: the wall time of ``check --mode full`` of the solution (or, with
``--tf1``, of the correct TF1 fixture notebook), and for each convergence item the steps,
the training seconds, the steps per second and the FCD.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "reference" / "HW4_solution.ipynb"


def timed(command: list[str]) -> float:
    """Run a command, fail loudly if it fails, return its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def full_grade(hw4grade: list[str], tf1: bool) -> None:
    """Time ``check --mode full`` of a correct notebook; print each training's figures."""
    with tempfile.TemporaryDirectory() as tmp:
        notebook = SOLUTION
        if tf1:
            sys.path.insert(0, str(ROOT))
            from tests.fixtures.tf1_notebooks import write

            notebook = Path(write("correct_2018", tmp))
        result_file = Path(tmp) / "full.json"
        started = time.perf_counter()
        subprocess.run(hw4grade + ["check", str(notebook), "--mode", "full", "--seed", "0",
                                   "--json", str(result_file)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        wall = time.perf_counter() - started
        result = json.loads(result_file.read_text())
        print(f"check --mode full ({result['profile']}): {wall:.0f} s wall, score "
              f"{result['score']:g}/{result['max_score']:g}; timing {result['timing']}")
        for item in result["items"]:
            if item["id"].endswith("_convergence"):
                details = item["details"]
                rate = details["steps"] / max(details["seconds"], 1e-9)
                print(f"  {item['id']}: {item['status']}, {details['steps']} steps in "
                      f"{details['seconds']:.0f} s ({rate:.1f} steps/s), FCD "
                      f"{details.get('fcd')}, reference FCD {details.get('reference_fcd')}")


def main() -> None:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="time a full grade instead")
    parser.add_argument("--tf1", action="store_true", help="with --full: the TF1 notebook")
    args = parser.parse_args()
    hw4grade = [sys.executable, "-m", "grader"]
    if args.full:
        full_grade(hw4grade, args.tf1)
        return
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "check.json"
        check_wall = timed(hw4grade + ["check", str(SOLUTION), "--seed", "0",
                                       "--json", str(result_file)])
        result = json.loads(result_file.read_text())
        timing = result["timing"]
        kernel_work = timing["kernel_start"] + timing["execute"] + timing["probe"]
        print(f"check --mode quick (solution): {check_wall:.1f} s wall, score "
              f"{result['score']:g}/{result['max_score']:g}")
        print(f"  kernel start {timing['kernel_start']:.1f} s, execute {timing['execute']:.1f} s,"
              f" probe {timing['probe']:.1f} s, grade_notebook total {timing['total']:.1f} s")
        print(f"  grader overhead: {check_wall - kernel_work:.1f} s = "
              f"{100 * (check_wall - kernel_work) / check_wall:.0f}% of the wall time")
        folder = Path(tmp) / "class"
        folder.mkdir()
        for number in range(args.batch):
            shutil.copy(SOLUTION, folder / f"student{number:02d}.ipynb")
        batch_wall = timed(hw4grade + ["grade", str(folder), "--out", str(Path(tmp) / "out"),
                                       "--workers", str(args.workers), "--seed", "0"])
        print(f"batch of {args.batch} quick grades, {args.workers} workers: {batch_wall:.0f} s "
              f"wall ({batch_wall / args.batch:.1f} s per submission)")


if __name__ == "__main__":
    main()
