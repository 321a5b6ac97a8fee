"""What does grading on Dask cost over the local process pool, and what would a class take?

    HW4_MNIST_DIR=../shared/data/mnist python benchmarks/cluster_overhead.py [--batch 20]
        [--full-seconds 289] [--out benchmarks/results/cluster_overhead.md]

1. grades a batch of N quick grades (copies of the solution notebook) twice, with the same
   seed: ``hw4grade grade --workers 2`` (process pool) and ``hw4grade grade --cluster local
   --workers 2`` (a Dask LocalCluster of two worker processes), each a whole command, cluster
   start-up included; checks that both give the same scores;
2. reports the Dask path's extra wall time, per task and as a share of the pool's;
3. projects the wall time of 1,000 submissions in ``--mode full`` on 1, 8 and 64 two-core
   workers from a full grade's measured time (``--full-seconds``, default: the solution's
   full grade in ``benchmarks/results/grade_speed.md``; ``--measure-full`` times one here
   through the Dask path) and the measured per-task overhead, and writes the table.

Prints figures and writes a Markdown table; asserts nothing (machines are noisy).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "reference" / "HW4_solution.ipynb"
FULL_SECONDS_MEASURED = 289.0  # benchmarks/results/grade_speed.md, solution, --mode full
CLASS_SIZE = 1000
WORKER_COUNTS = (1, 8, 64)


def run_batch(folder: Path, out: Path, extra: list[str]) -> float:
    """Run ``hw4grade grade`` on ``folder``; return its wall time in seconds."""
    command = [sys.executable, "-m", "grader", "grade", str(folder), "--out", str(out),
               "--seed", "11", "--force", *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return time.perf_counter() - started


def scores(out: Path) -> dict[str, float]:
    """Each result's score, by file name."""
    return {path.stem: json.loads(path.read_text())["score"]
            for path in (out / "results").glob("*.json")}


def grade_seconds(out: Path) -> list[float]:
    """Each result's own grading time (``timing.total``)."""
    return [json.loads(path.read_text())["timing"].get("total", 0.0)
            for path in (out / "results").glob("*.json")]


def projection(full_seconds: float, overhead_seconds: float, startup_seconds: float,
               workers: int, submissions: int = CLASS_SIZE) -> float:
    """Wall seconds for ``submissions`` full grades on ``workers`` two-core workers.

    Each worker grades one notebook at a time (a full grade uses two cores); the batch takes
    as many rounds as the busiest worker has notebooks, each a grade plus the per-task
    overhead, after the cluster's start-up.
    """
    rounds = math.ceil(submissions / workers)
    return startup_seconds + rounds * (full_seconds + overhead_seconds)


def measure_full(tmp: Path) -> float:
    """Wall time of one ``--mode full`` grade of the solution through the Dask path."""
    folder = tmp / "full"
    folder.mkdir()
    shutil.copy(SOLUTION, folder / "solution.ipynb")
    return run_batch(folder, tmp / "out-full", ["--mode", "full", "--cluster", "local",
                                                "--workers", "1"])


def main() -> None:
    """Measure, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=20, help="quick grades per run")
    parser.add_argument("--full-seconds", type=float, default=FULL_SECONDS_MEASURED,
                        help="wall time of one full grade on two cores")
    parser.add_argument("--measure-full", action="store_true",
                        help="time one full grade here instead (about 5 minutes)")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "cluster_overhead.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        folder = tmp / "class"
        folder.mkdir()
        for number in range(args.batch):
            shutil.copy(SOLUTION, folder / f"s{number:03d}.ipynb")
        pool = run_batch(folder, tmp / "pool", ["--workers", "2"])
        print(f"--workers 2:               {pool:7.1f} s", flush=True)
        dask = run_batch(folder, tmp / "dask", ["--cluster", "local", "--workers", "2"])
        print(f"--cluster local --workers 2: {dask:7.1f} s", flush=True)
        same = scores(tmp / "pool") == scores(tmp / "dask")
        quick = sorted(grade_seconds(tmp / "dask"))
        full_seconds = measure_full(tmp) if args.measure_full else args.full_seconds
    slots = 2
    extra = dask - pool
    per_task = extra * slots / args.batch
    share = extra / pool
    median_quick = quick[len(quick) // 2] if quick else float("nan")
    startup = 0.0  # the cluster's start-up is already inside the measured per-task overhead
    rows = [(workers, projection(full_seconds, max(per_task, 0.0), startup, workers))
            for workers in WORKER_COUNTS]
    today = datetime.date.today().isoformat()
    lines = [
        f"# Grading on Dask: overhead and a projection ({today}, 2 cores, no GPU)",
        "",
        f"`python benchmarks/cluster_overhead.py --batch {args.batch}`: {args.batch} quick "
        "grades of the solution notebook, seed 11, each run a whole `hw4grade grade` command "
        "(start-up of the pool or of the LocalCluster included).",
        "",
        "| run | wall | per submission |",
        "| --- | --- | --- |",
        f"| `--workers 2` (process pool) | {pool:.1f} s | {pool / args.batch:.2f} s |",
        f"| `--cluster local --workers 2` (Dask) | {dask:.1f} s | {dask / args.batch:.2f} s |",
        "",
        f"Dask's extra wall time: {extra:+.1f} s = {share:+.1%} of the pool's; per task "
        f"(two slots): {per_task:+.2f} s. Median quick grade inside a worker: "
        f"{median_quick:.1f} s. Same scores on both paths: {'yes' if same else 'NO'}.",
        "",
        f"## Projection: {CLASS_SIZE} submissions, `--mode full`",
        "",
        f"A full grade takes {full_seconds:.0f} s on two cores"
        f"{' (measured here)' if args.measure_full else ' (the solution, grade_speed.md)'}; "
        f"each two-core worker grades one notebook at a time, plus {max(per_task, 0):.2f} s "
        "per task of Dask overhead (the LocalCluster's start-up spread over the batch "
        "included). Queue waits for Slurm jobs are not included.",
        "",
        "| two-core workers | wall time | notebooks per worker |",
        "| --- | --- | --- |",
    ]
    for workers, seconds in rows:
        lines.append(f"| {workers} | {seconds / 3600:.1f} h ({seconds / 60:.0f} min) | "
                     f"{math.ceil(CLASS_SIZE / workers)} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
