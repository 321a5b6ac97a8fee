"""What do the kernel-held bounds cost? Prints figures; asserts nothing (machines are noisy).

    HW4_MNIST_DIR=../shared/data/mnist python benchmarks/bounds_overhead.py [--repeats 3]
        [--write benchmarks/results/bounds_overhead.md]

Grades the same honest notebook (``examples/submissions/alice.ipynb``) with
``hw4grade check --mode quick``, alternately with the bounds held by the kernel (a cgroup
per kernel, a tmpfs on each exchange folder, where the machine allows) and with every bound
only watched (``HW4GRADE_WATCH_ONLY=1``), and prints the median wall time of the whole
command and the grader's own timings. It also times the fixed costs alone: making and
removing one kernel's group, and mounting and unmounting its exchange tmpfs (median of
``--launches`` each). ``--write FILE`` also writes the figures as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "submissions" / "alice.ipynb"
sys.path.insert(0, str(ROOT))

from grader.pipeline import limits  # noqa: E402  (after the checkout is on the path)


def one_check(held: bool, result_file: Path) -> dict[str, float]:
    """Wall time and the result's timings of one quick check."""
    env = dict(os.environ)
    env.pop(limits.WATCH_ONLY_ENV, None)
    if not held:
        env[limits.WATCH_ONLY_ENV] = "1"
    command = [sys.executable, "-m", "grader", "check", str(NOTEBOOK), "--seed", "0",
               "--json", str(result_file)]
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                   env=env)
    wall = time.perf_counter() - started
    result = json.loads(result_file.read_text())
    if result["error"] or result["score"] != 90:
        raise SystemExit(f"unexpected result: score {result['score']}, error {result['error']!r}")
    return {"wall": wall, **result["timing"], "record": result.get("enforcement", {})}


def fixed_costs(launches: int) -> dict[str, float]:
    """Median seconds to make and remove one kernel's group, and to mount and unmount one
    exchange tmpfs (NaN where the machine does not allow it)."""
    cgroups = limits.choose_cgroups()
    group_times, mount_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for _ in range(launches):
            if cgroups.kind != limits.NONE:
                started = time.perf_counter()
                cgroups.create(2**30, 2048).close()
                group_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            mounted = limits.mount_exchange((folder,), 2**30)
            limits.unmount(mounted)
            if mounted:
                mount_times.append(time.perf_counter() - started)
    nan = float("nan")
    return {"group": statistics.median(group_times) if group_times else nan,
            "mount": statistics.median(mount_times) if mount_times else nan}


def main() -> None:
    """Time the checks and print (and optionally write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--launches", type=int, default=20)
    parser.add_argument("--write", metavar="FILE", help="write the figures as Markdown here")
    args = parser.parse_args()
    costs = fixed_costs(args.launches)
    runs: dict[bool, list[dict]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        one_check(True, Path(tmp) / "warm.json")  # caches (MNIST, bytecode) warm for both
        for _ in range(args.repeats):
            for held in (False, True):
                runs[held].append(one_check(held, Path(tmp) / "result.json"))
    keys = ("kernel_start", "execute", "probe", "total", "wall")
    medians = {held: {key: statistics.median(run[key] for run in timings) for key in keys}
               for held, timings in runs.items()}
    records = {held: timings[-1]["record"] for held, timings in runs.items()}
    lines = [
        f"# What the kernel-held bounds cost ({time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} cores, {platform.machine()}, load {os.getloadavg()[0]:.1f})", "",
        "`python benchmarks/bounds_overhead.py --repeats "
        f"{args.repeats}`: `hw4grade check --mode quick` of `examples/submissions/alice.ipynb` "
        f"(90/90 every run), alternately with the bounds held by the kernel and with "
        f"`{limits.WATCH_ONLY_ENV}=1` (medians of {args.repeats}); fixed costs medians of "
        f"{args.launches}.", "",
        f"* held: `{json.dumps(records[True])}`",
        f"* watched: `{json.dumps(records[False])}`", "",
        "| | held by the kernel | only watched | difference |",
        "| --- | --- | --- | --- |",
        f"| one kernel's group made and removed | {costs['group']:.4f} s | - | "
        f"+{costs['group']:.4f} s |",
        f"| one exchange tmpfs mounted and unmounted | {costs['mount']:.4f} s | - | "
        f"+{costs['mount']:.4f} s |",
    ]
    names = {"kernel_start": "kernel start", "execute": "notebook execution",
             "probe": "probes", "total": "grade (result's total)", "wall": "whole command (wall)"}
    for key in keys:
        held, watched = medians[True][key], medians[False][key]
        lines.append(f"| {names[key]} | {held:.2f} s | {watched:.2f} s | {held - watched:+.2f} s |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
