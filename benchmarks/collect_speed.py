"""How long do ``hw4grade collect`` and the class page take? Prints figures; asserts nothing.

    python benchmarks/collect_speed.py [--students 60] [--jobs 8] [--results 500]

Collection: makes ``--students`` local git repositories (each with the example notebook,
a package of two modules and five commits, one after the deadline), then times
``collect_class`` three ways: the first collection (bare clones through the file
transport), a rerun (every student kept: the resume path), and ``--from-clones`` on the
same repositories. The class page: renders ``OUT/index.html`` for ``--results`` synthetic
results (full mode, so with the three FCD figures) and prints its size and render time.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.collect.collect import Settings, collect_class  # noqa: E402
from grader.collect.manifest import Status  # noqa: E402
from grader.collect.roster import RosterRow  # noqa: E402
from grader.report.classpage import render_class_page  # noqa: E402
from grader.result import CellResult, ItemResult, Provenance, SubmissionResult  # noqa: E402
from grader.rubric import load_rubric  # noqa: E402

DEADLINE = datetime(2026, 3, 1, 23, 59, tzinfo=timezone.utc)
NOTEBOOK = (ROOT / "examples" / "submissions" / "alice.ipynb").read_bytes()


def make_repository(path: Path, number: int) -> None:
    """A repository with four commits before the deadline and one after it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_AUTHOR_NAME="s", GIT_AUTHOR_EMAIL="s@x",
               GIT_COMMITTER_NAME="s", GIT_COMMITTER_EMAIL="s@x")

    def git(*args: str, date: datetime | None = None) -> None:
        if date is not None:
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date.isoformat()
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)

    path.mkdir(parents=True)
    git("init", "--quiet")
    for step in range(5):
        (path / "HW4.ipynb").write_bytes(NOTEBOOK.replace(b"Homework", f"HW{step}".encode()))
        (path / "cs231n").mkdir(exist_ok=True)
        (path / "cs231n" / "__init__.py").write_text("")
        (path / "cs231n" / "gan.py").write_text(f"STEP = {step}\nSTUDENT = {number}\n")
        git("add", "--all")
        git("commit", "--quiet", "-m", f"step {step}", date=DEADLINE + timedelta(days=step - 3))


def time_collection(rows, out: Path, jobs: int, **changes) -> tuple[float, dict]:
    settings = Settings(deadline=DEADLINE, out=out, jobs=jobs, **changes)
    started = time.perf_counter()
    manifest = collect_class(rows, settings)
    seconds = time.perf_counter() - started
    statuses: dict[str, int] = {}
    for entry in manifest.entries.values():
        statuses[entry.status.value] = statuses.get(entry.status.value, 0) + 1
    return seconds, statuses


def synthetic_results(count: int) -> list[SubmissionResult]:
    """``count`` full-mode results with varied points, some errors, mistakes and flags."""
    rubric = load_rubric()
    chance = random.Random(7)
    results = []
    for number in range(count):
        items = []
        for item in rubric.items:
            if item.manual:
                items.append(ItemResult(item.id, 0.0, item.points, "manual"))
                continue
            points = item.points if chance.random() < 0.7 else round(
                chance.uniform(0, item.points), 1)
            message = "" if points >= item.points else (
                f"{item.id}: D_loss and G_loss match a common mistake, the labels swapped "
                "(real scores labelled 0, fake ones 1): swap them")
            details = {"fcd": round(chance.uniform(2, 60), 2)} if "convergence" in item.id \
                else {}
            items.append(ItemResult(item.id, points, item.points,
                                    "passed" if points >= item.points else "failed", message,
                                    details))
        result = SubmissionResult(
            submission=f"student{number:03d}/HW4.ipynb", notebook_sha256="a" * 64,
            grader_version="0.1.0", rubric_sha256=rubric.text_sha256, mode="full", seed=1,
            device="cpu", items=items, cells=[CellResult(0, "ok", 1.0)],
            error="not valid JSON" if number % 50 == 0 else None,
            provenance=Provenance(f"student{number:03d}", f"https://x/{number}.git",
                                  "collected", flags=["dates go backwards"]
                                  if number % 40 == 0 else []))
        result.total()
        results.append(result)
    return results, rubric


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--results", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        started = time.perf_counter()
        for number in range(args.students):
            make_repository(base / "repos" / f"s{number:03d}", number)
        print(f"made {args.students} repositories in {time.perf_counter() - started:.1f} s")
        rows = [RosterRow(f"s{number:03d}", str(base / "repos" / f"s{number:03d}"))
                for number in range(args.students)]
        first, statuses = time_collection(rows, base / "out", args.jobs)
        assert statuses == {Status.COLLECTED.value: args.students}, statuses
        rerun, _ = time_collection(rows, base / "out", args.jobs)
        from_clones, _ = time_collection([RosterRow(row.student, "") for row in rows],
                                         base / "read", args.jobs,
                                         from_clones=base / "repos")
        serial, _ = time_collection(rows, base / "serial", 1)
    print(f"collect {args.students} local repositories, {args.jobs} jobs: first "
          f"{first:.2f} s, rerun (resume) {rerun:.2f} s, --from-clones {from_clones:.2f} s; "
          f"1 job: {serial:.2f} s")
    results, rubric = synthetic_results(args.results)
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        page = render_class_page(results, rubric)
        times.append(time.perf_counter() - started)
    print(f"class page for {args.results} results: {len(page.encode()) / 1024:.0f} KiB, "
          f"render {statistics.median(times):.2f} s (median of {args.repeats}; the first, "
          f"with matplotlib's import, {times[0]:.2f} s)")
    print(f"loaded in headless chromium: {browser_load_seconds(page, args.repeats)}")


def browser_load_seconds(page: str, repeats: int) -> str:
    """Median time for Debian's chromium (through Playwright) to load the page, as text."""
    chromium = os.environ.get("HW4_CHROMIUM") or "/usr/bin/chromium"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "playwright is not installed"
    if not Path(chromium).exists():
        return f"no chromium at {chromium}"
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as driver:
        path = Path(folder) / "index.html"
        path.write_text(page, encoding="utf-8")
        browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        times = []
        for _ in range(repeats):
            tab = browser.new_page()
            started = time.perf_counter()
            tab.goto(path.as_uri(), wait_until="load")
            times.append(time.perf_counter() - started)
            tab.close()
        browser.close()
    return f"{statistics.median(times):.2f} s (median of {repeats})"


if __name__ == "__main__":
    main()
