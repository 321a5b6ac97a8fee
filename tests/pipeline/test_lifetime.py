"""A batch's processes die with its driver: ``hw4grade grade`` is killed with SIGKILL while
its kernels run, on the process pool and on a local Dask cluster; within a few seconds none
of the processes it started is left, and a rerun completes the batch."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from grader.pipeline.lifetime import die_with_parent, parent_death_signal

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "submissions"
NAMES = ("alice", "bob", "dave")
GONE_WITHIN = 10.0  # seconds after the kill


def _class(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in NAMES:
        shutil.copy(EXAMPLES / f"{name}.ipynb", folder / f"{name}.ipynb")
    return folder


def _grade(folder: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "grader", "grade", str(folder), "--out", str(out),
            "--workers", "2", "--seed", "5", "--timeout", "60", *extra]


def _kernels(processes: list[psutil.Process]) -> list[psutil.Process]:
    """The processes running a notebook's kernel."""
    found = []
    for process in processes:
        try:
            if process.cmdline()[1:3] == ["-m", "ipykernel_launcher"]:  # not its sandbox
                found.append(process)
        except psutil.Error:
            continue
    return found


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (a zombie waiting for its new parent to reap it has ended)."""
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            continue
    return alive


def _describe(processes: list[psutil.Process]) -> str:
    lines = []
    for process in processes:
        try:
            lines.append(f"{process.pid} {' '.join(process.cmdline())[:160]}")
        except psutil.Error:
            lines.append(f"{process.pid} (gone)")
    return "\n".join(lines)


def _wait_for_kernels(parent: psutil.Process, driver: subprocess.Popen,
                      seconds: float = 300) -> list[psutil.Process]:
    """The driver's descendants once two kernels run among them (or when time is up)."""
    deadline = time.monotonic() + seconds
    descendants: list[psutil.Process] = []
    while time.monotonic() < deadline and driver.poll() is None:
        descendants = parent.children(recursive=True)
        if len(_kernels(descendants)) >= 2:
            break
        time.sleep(0.2)
    return descendants


def _kill_while_grading(command: list[str], cwd: Path) -> tuple[list[psutil.Process], str]:
    """Start the batch, wait until two kernels run, SIGKILL the driver; return every process
    the batch had started and the driver's output."""
    log = cwd / "driver.log"
    with open(log, "w") as stream:
        driver = subprocess.Popen(command, cwd=cwd, stdout=stream, stderr=subprocess.STDOUT,
                                  env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        parent = psutil.Process(driver.pid)
        descendants = _wait_for_kernels(parent, driver)
        time.sleep(2)  # the kernels are well into the notebooks
        # a kernel may be between two lives then (a cell that kills it is replayed in a new
        # one): wait for two running kernels again, and kill the driver while they run
        descendants = _wait_for_kernels(parent, driver)
        assert len(_kernels(descendants)) >= 2, log.read_text()
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    return descendants, log.read_text()


def _assert_all_gone(descendants: list[psutil.Process], output: str) -> None:
    deadline = time.monotonic() + GONE_WITHIN
    while _alive(descendants) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _alive(descendants)
    described = _describe(left)
    for process in left:  # never leave them behind for the next test
        try:
            process.kill()
        except psutil.Error:
            pass
    assert not left, f"still running {GONE_WITHIN:g} s after the driver's death:\n" \
                     f"{described}\n--- driver ---\n{output}"


def _assert_complete(out: Path, output: str) -> None:
    results = {path.stem: json.loads(path.read_text())
               for path in (out / "results").glob("*.json")}
    assert set(results) == set(NAMES), output
    assert not any(result["retry"] for result in results.values()), output
    assert results["alice"]["score"] == 90, output
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert sorted(row.split(",")[0] for row in rows[1:]) == [f"{n}.ipynb" for n in NAMES]


# the Dask preload's case is in the slow set; the pool's stays in the default run
DASK_LOCAL = pytest.param(("--cluster", "local"), marks=pytest.mark.slow)


@pytest.mark.parametrize("backend", [(), DASK_LOCAL], ids=["pool", "dask-local"])
def test_a_killed_driver_leaves_no_process_behind_and_a_rerun_completes(tmp_path, mnist_dir,
                                                                        backend):
    if backend:
        pytest.importorskip("distributed")
    folder = _class(tmp_path / "class")
    out = tmp_path / "out"
    descendants, output = _kill_while_grading(_grade(folder, out, *backend), tmp_path)
    _assert_all_gone(descendants, output)
    rerun = subprocess.run(_grade(folder, out, *backend), cwd=tmp_path, capture_output=True,
                           text=True, timeout=900, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    _assert_complete(out, rerun.stdout + rerun.stderr)


def test_an_orphan_asking_to_die_with_its_parent_dies_at_once():
    """A process whose parent died before it asked (the race at a worker's start)."""
    script = ("import os, sys, time; from grader.pipeline.lifetime import die_with_parent\n"
              "if os.fork() == 0:\n"
              "    parent = os.getppid(); os.kill(parent, 9); time.sleep(0.5)\n"
              "    die_with_parent(parent); print('survived', flush=True)\n"
              "else:\n    time.sleep(30)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    time.sleep(1)
    assert "survived" not in done.stdout
    assert die_with_parent(None) is False


def test_the_workers_of_a_local_dask_cluster_ask_to_die_with_the_driver():
    """Dask's own watch of its parent ends a worker too, but only once its pipe closes;
    the parent-death signal is asked for by every worker, restarted ones included."""
    pytest.importorskip("distributed")
    from grader.pipeline.backends.dask_cluster import ClusterSettings, DaskBackend

    with DaskBackend(ClusterSettings(), workers=2) as backend:
        asked = backend.client.run(parent_death_signal)
        backend.client.restart()
        asked_again = backend.client.run(parent_death_signal)
    assert list(asked.values()) == [signal.SIGKILL] * 2
    assert list(asked_again.values()) == [signal.SIGKILL] * 2
