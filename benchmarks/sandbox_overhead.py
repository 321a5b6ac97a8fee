"""What does the sandbox cost? Prints figures; asserts nothing (machines are noisy).

    HW4_MNIST_DIR=../shared/data/mnist python benchmarks/sandbox_overhead.py [--repeats 3]

Grades the same honest notebook (``examples/submissions/alice.ipynb``) with
``hw4grade check --mode quick``, alternately in the bubblewrap sandbox and with
``--no-sandbox``, and prints for each the median wall time of the whole command and the
grader's own timings (kernel start, execution, probing), then the difference. On a busy
machine those differences drown in noise, so it also times the fixed cost alone: starting
a bare interpreter with the grader's sandbox command line against starting it directly
(``--launches`` times each, median).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "submissions" / "alice.ipynb"


def one_check(sandboxed: bool, result_file: Path) -> dict[str, float]:
    """Wall time and the result's timings of one quick check."""
    command = [sys.executable, "-m", "grader", "check", str(NOTEBOOK), "--seed", "0",
               "--json", str(result_file)] + ([] if sandboxed else ["--no-sandbox"])
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - started
    result = json.loads(result_file.read_text())
    expected = "bubblewrap" if sandboxed else "none"
    if result.get("sandbox") != expected or result["error"]:
        raise SystemExit(f"unexpected result: sandbox {result.get('sandbox')!r}, "
                         f"error {result['error']!r}")
    return {"wall": wall, **result["timing"]}


def launch_cost(launches: int) -> tuple[float, float]:
    """Median seconds to run ``python -c pass`` directly and through the sandbox's command."""
    sys.path.insert(0, str(ROOT))
    from grader.pipeline.sandbox import Layout, choose_sandbox

    sandbox = choose_sandbox(True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve()
        layout = Layout(root=root, files=root / "files", workdir=root / "work",
                        home=root / "home")
        layout.files.mkdir()
        plain = [sys.executable, "-c", "pass"]
        wrapped = sandbox.wrap(plain, {"PATH": "/usr/bin:/bin"}, layout)
        times: dict[str, list[float]] = {"plain": [], "sandboxed": []}
        for _ in range(launches):
            for name, command in (("plain", plain), ("sandboxed", wrapped)):
                started = time.perf_counter()
                subprocess.run(command, check=True)
                times[name].append(time.perf_counter() - started)
    return statistics.median(times["plain"]), statistics.median(times["sandboxed"])


def main() -> None:
    """Time the checks and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--launches", type=int, default=20)
    args = parser.parse_args()
    plain, sandboxed = launch_cost(args.launches)
    print(f"interpreter launch (median of {args.launches}): {plain:.3f} s directly, "
          f"{sandboxed:.3f} s in the sandbox: {sandboxed - plain:+.3f} s per kernel start")
    runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        one_check(True, Path(tmp) / "warm.json")  # caches (MNIST, bytecode) warm for both
        for _ in range(args.repeats):
            for sandboxed in (False, True):
                runs[sandboxed].append(one_check(sandboxed, Path(tmp) / "result.json"))
    medians = {}
    for sandboxed, timings in runs.items():
        keys = timings[0].keys()
        medians[sandboxed] = {key: statistics.median(t[key] for t in timings) for key in keys}
        label = "bubblewrap" if sandboxed else "no sandbox"
        figures = ", ".join(f"{key} {value:.2f} s" for key, value in medians[sandboxed].items())
        print(f"{label:<11} (median of {args.repeats}): {figures}")
    for key in ("wall", "kernel_start", "total"):
        delta = medians[True][key] - medians[False][key]
        print(f"sandbox overhead, {key}: {delta:+.2f} s")


if __name__ == "__main__":
    main()
