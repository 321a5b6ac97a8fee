"""Grading on Dask: a real LocalCluster, a scheduler and workers started with Dask's own CLI,
a refused worker, the Slurm job script, and a real Slurm run where ``sbatch`` works."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.cli import main
from tests.fixtures.submissions import SOLUTION_PATH, variant_by_name, write_variant

pytest.importorskip("distributed")
pytest.importorskip("dask_jobqueue")

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "submissions"
DASK = str(Path(sys.executable).with_name("dask"))


def _class(folder: Path, crashing: bool = True) -> Path:
    """A correct notebook, a buggy one and (optionally) one whose kernel dies."""
    folder.mkdir(parents=True)
    shutil.copy(EXAMPLES / "alice.ipynb", folder / "alice.ipynb")
    shutil.copy(EXAMPLES / "bob.ipynb", folder / "bob.ipynb")
    if crashing:
        path = write_variant(variant_by_name("kernel_exit_cell"), SOLUTION_PATH, folder)
        path.rename(folder / "crash.ipynb")
    return folder


def _results(out: Path) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text())
            for path in sorted((out / "results").glob("*.json"))}


def _grades(result: dict) -> dict:
    """What must not depend on where a notebook was graded."""
    return {"score": result["score"], "error": result["error"], "retry": result["retry"],
            "seed": result["seed"], "warnings": result["warnings"],
            "items": [(i["id"], i["points"], i["status"], i["message"]) for i in result["items"]],
            "cells": [(c["index"], c["status"], c["error_name"]) for c in result["cells"]]}


def _worker_env(tmp: Path) -> dict[str, str]:
    """A worker's environment: the grader importable, no MNIST of its own, a private cache."""
    env = {key: value for key, value in os.environ.items() if key != "HW4_MNIST_DIR"}
    env.update(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp / "cache"),
               TF_CPP_MIN_LOG_LEVEL="3")
    return env


class DaskProcesses:
    """A scheduler and workers started as separate processes with Dask's own CLI."""

    def __init__(self, folder: Path, scheduler_env: dict[str, str] | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.scheduler_file = folder / "scheduler.json"
        self.processes: list[subprocess.Popen] = []
        env = dict(os.environ, **(scheduler_env or {}))
        self._start([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--dashboard-address", ":0", "--scheduler-file", str(self.scheduler_file)],
                    env, "scheduler")
        deadline = time.monotonic() + 60
        while not self.scheduler_file.is_file():
            assert time.monotonic() < deadline, "the Dask scheduler did not start"
            time.sleep(0.2)
        self.address = json.loads(self.scheduler_file.read_text())["address"]

    def _start(self, command: list[str], env: dict[str, str], name: str) -> None:
        log = open(self.folder / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        self.processes.append(subprocess.Popen(command, cwd=self.folder, env=env, stdout=log,
                                               stderr=subprocess.STDOUT))

    def add_worker(self, name: str, env: dict[str, str]) -> None:
        """Start one worker (one notebook at a time) with its own local folder."""
        self._start([DASK, "worker", self.address, "--nthreads", "1", "--name", name,
                     "--local-directory", str(self.folder / name), "--dashboard-address", ":0"],
                    env, name)

    def client(self, workers: int):
        """A client that has seen ``workers`` workers join."""
        from distributed import Client

        client = Client(self.address, timeout="30s")
        client.wait_for_workers(workers, timeout=120)
        return client

    def stop(self) -> None:
        """Stop every process started here."""
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


# --------------------------------------------------------------------------- LocalCluster


@pytest.mark.slow  # the Dask path keeps its default-run test: a worker killed mid-grade
def test_local_cluster_grades_exactly_like_the_process_pool(tmp_path, mnist_dir):
    folder = _class(tmp_path / "class")
    common = ["--seed", "5", "--timeout", "60", "--workers", "2", "--force"]
    assert main(["grade", str(folder), "--out", str(tmp_path / "pool"), *common]) == 0
    assert main(["grade", str(folder), "--out", str(tmp_path / "dask"), "--cluster", "local",
                 *common]) == 0
    pool, dask = _results(tmp_path / "pool"), _results(tmp_path / "dask")
    assert set(pool) == set(dask) == {"alice", "bob", "crash"}
    for name in pool:
        assert _grades(dask[name]) == _grades(pool[name]), name
    assert pool["alice"]["score"] > pool["bob"]["score"]  # the grades themselves mean something
    assert any(cell["status"] == "died" for cell in pool["crash"]["cells"])
    rows = (tmp_path / "dask" / "gradebook.csv").read_text().splitlines()
    assert len(rows) == 4


def test_a_worker_that_dies_too_often_gives_a_result_marked_for_retry(tmp_path, mnist_dir):
    from distributed import LocalCluster

    from grader.pipeline.backends.dask_cluster import ClusterSettings, DaskBackend
    from grader.pipeline.grade_one import Options, prepare_mnist
    from grader.report.progress import BatchProgress
    from grader.rubric import load_rubric

    folder = _class(tmp_path / "class", crashing=False)
    options = Options(rubric=load_rubric(), seed=2, threads=1,
                      mnist_npz=prepare_mnist(str(mnist_dir), tmp_path))
    backend = DaskBackend(ClusterSettings(target="local", allowed_failures=0), workers=1)
    delivered = []
    with backend:
        assert isinstance(backend.cluster, LocalCluster)
        client = backend.client

        def kill_the_busy_worker() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                busy = [address for address, keys in client.processing().items() if keys]
                if busy:
                    pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                    os.kill(pid, signal.SIGKILL)
                    return
                time.sleep(0.2)

        import threading

        killer = threading.Thread(target=kill_the_busy_worker)
        killer.start()
        with BatchProgress(1) as progress:
            backend.grade({folder / "alice.ipynb": "alice.ipynb"}, options, delivered.append,
                          progress)
        killer.join()
    [result] = delivered
    assert result.retry and "died too often" in result.error
    assert result.submission == "alice.ipynb" and result.score == 0


# --------------------------------------------------------------------------- Dask's own CLI


def test_cli_cluster_with_a_worker_killed_mid_grade_still_grades_everything(tmp_path,
                                                                           mnist_dir):
    folder = _class(tmp_path / "class", crashing=False)
    out = tmp_path / "out"
    cluster = DaskProcesses(tmp_path / "cluster")
    try:
        cluster.add_worker("w1", _worker_env(tmp_path / "cluster"))
        cluster.add_worker("w2", _worker_env(tmp_path / "cluster"))
        client = cluster.client(2)
        driver = subprocess.Popen(
            [sys.executable, "-m", "grader", "grade", str(folder), "--out", str(out),
             "--cluster", cluster.address, "--seed", "4", "--timeout", "60"],
            cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        killed = None
        deadline = time.monotonic() + 240
        while killed is None and time.monotonic() < deadline and driver.poll() is None:
            busy = [address for address, keys in client.processing().items() if keys]
            if busy:
                time.sleep(4)  # well into the grade: the kernel is running the notebook
                pid = client.run(os.getpid, workers=busy[:1]).get(busy[0])
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    killed = pid
            time.sleep(0.2)
        output, _ = driver.communicate(timeout=600)
        client.close()
    finally:
        cluster.stop()
    assert killed is not None, output
    assert driver.returncode == 0, output
    results = _results(out)
    assert set(results) == {"alice", "bob"}, output
    assert not any(result["retry"] or result["error"] for result in results.values()), output
    assert results["alice"]["score"] > results["bob"]["score"]
    assert "MNIST from the copy shipped by the driver" in output
    assert not (tmp_path / "cluster" / "out").exists() and not list(out.glob("dask-*"))


def _install_with_another_rubric(folder: Path) -> Path:
    """A copy of the grader whose shipped rubric differs by one point value."""
    shutil.copytree(ROOT / "grader", folder / "grader",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "reference", folder / "reference",
                    ignore=shutil.ignore_patterns("__pycache__"))
    text = (ROOT / "rubric.yaml").read_text()
    changed = text.replace("points: 5", "points: 6", 1)
    assert changed != text
    (folder / "rubric.yaml").write_text(changed)
    return folder


def test_a_worker_with_another_rubric_is_refused_with_a_clear_message(tmp_path, capsys):
    from grader.pipeline.backends import dask_worker as cluster_worker

    other = _install_with_another_rubric(tmp_path / "other-install")
    cluster = DaskProcesses(tmp_path / "cluster")
    try:
        cluster.add_worker("odd", dict(_worker_env(tmp_path / "cluster"), PYTHONPATH=str(other)))
        cluster.client(1).close()
        code = main(["grade", str(EXAMPLES / "alice.ipynb"), "--out", str(tmp_path / "out"),
                     "--cluster", cluster.address, "--seed", "1"])
        message = capsys.readouterr().err
        assert code == 2
        assert "Dask worker" in message and "rubric" in message
        assert str(other / "rubric.yaml") in message
        assert "install the same hw4grade and rubric on every worker" in message
        assert not (tmp_path / "out" / "results").exists()
        # a task that reaches such a worker anyway (say it joined later) is refused too
        client = cluster.client(1)
        try:
            setup = cluster_worker.GradingSetup(cluster_worker.local_identity(), "0" * 64, b"")
            client.register_plugin(setup, name=cluster_worker.PLUGIN_NAME)
            payload = cluster_worker.NotebookPayload("a.ipynb", "a.ipynb", b"{}")
            from grader.pipeline.grade_one import Options
            from grader.rubric import load_rubric

            future = client.submit(cluster_worker.grade_on_worker, payload, "a.ipynb",
                                   Options(rubric=load_rubric()), pure=False)
            with pytest.raises(cluster_worker.GraderMismatch, match="rubric"):
                future.result(timeout=60)
        finally:
            client.close()
    finally:
        cluster.stop()


# --------------------------------------------------------------------------- Slurm


def test_slurm_dry_run_prints_the_job_script(tmp_path, capsys):
    config = tmp_path / "hw4grade.yaml"
    config.write_text("cluster:\n  partition: gpu\n  memory: 32GiB\n  jobs: 4\n"
                      "  job_extra: ['--constraint=a100']\n")
    code = main(["grade", "class/", "--out", str(tmp_path / "out"), "--cluster", "slurm",
                 "--cluster-config", str(config), "--job-cores", "8", "--walltime", "04:30:00",
                 "--gpus-per-job", "2", "--dry-run"])
    script = capsys.readouterr().out
    assert code == 0
    for line in ("#SBATCH -p gpu", "#SBATCH --cpus-per-task=8", "#SBATCH --mem=32G",
                 "#SBATCH -t 04:30:00", "#SBATCH --gres=gpu:2",
                 "#SBATCH --constraint=a100"):
        assert line in script, script
    assert "--resources GPU=2" in script and "--nthreads 2" in script
    assert "would submit 4 job(s)" in script
    assert not (tmp_path / "out").exists()


def test_bad_cluster_settings_name_what_is_wrong(tmp_path, capsys):
    config = tmp_path / "hw4grade.yaml"
    config.write_text("cluster:\n  partitoin: gpu\n")
    assert main(["grade", "x", "--out", str(tmp_path), "--cluster", "slurm", "--dry-run",
                 "--cluster-config", str(config)]) == 2
    assert f"{config}: cluster.partitoin: unknown setting" in capsys.readouterr().err
    config.write_text("cluster:\n  jobs: many\n")
    assert main(["grade", "x", "--out", str(tmp_path), "--cluster", "slurm", "--dry-run",
                 "--cluster-config", str(config)]) == 2
    assert "cluster.jobs: expected a whole number" in capsys.readouterr().err
    assert main(["grade", str(EXAMPLES / "erin.ipynb"), "--out", str(tmp_path / "o"),
                 "--cluster", "nowhere"]) == 2
    assert "expected a scheduler address" in capsys.readouterr().err


def _sbatch_works() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    probe = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                           timeout=20, check=False)
    return probe.returncode == 0 and any(s.strip() in ("idle", "mix", "alloc")
                                         for s in probe.stdout.splitlines())


@pytest.mark.slurm
@pytest.mark.skipif(not _sbatch_works(), reason="needs a working Slurm (sbatch, an idle node)")
def test_one_real_grade_through_slurm(tmp_path, mnist_dir):
    out = tmp_path / "out"
    config = tmp_path / "hw4grade.yaml"
    config.write_text(f"cluster:\n  log_directory: {tmp_path / 'slurm-logs'}\n")
    code = main(["grade", str(EXAMPLES / "alice.ipynb"), "--out", str(out), "--cluster",
                 "slurm", "--cluster-config", str(config), "--job-cores", "2",
                 "--job-memory", "6GiB", "--walltime", "00:20:00", "--seed", "3",
                 "--timeout", "60"])
    assert code == 0
    [result] = _results(out).values()
    assert not result["error"] and not result["retry"]
    assert all(item["status"] in ("passed", "manual", "skipped") for item in result["items"])
    assert list((tmp_path / "slurm-logs").glob("*.out")), "the grade did not run in a Slurm job"


def test_a_local_cluster_grades_with_the_drivers_own_rubric(tmp_path):
    rubric = tmp_path / "my-rubric.yaml"
    rubric.write_text((ROOT / "rubric.yaml").read_text().replace("points: 5", "points: 6", 1))
    out = tmp_path / "out"
    assert main(["grade", str(EXAMPLES / "erin.ipynb"), "--out", str(out), "--cluster",
                 "local", "--workers", "1", "--rubric", str(rubric), "--seed", "1"]) == 0
    [result] = _results(out).values()
    from grader.rubric import load_rubric

    assert result["rubric_sha256"] == load_rubric(rubric).text_sha256
    # named as the driver names it, never by the worker's own copy
    assert result["error"].startswith("erin.ipynb: not valid JSON")


def test_the_progress_display_counts_done_running_and_failed():
    import io

    from rich.console import Console

    from grader.pipeline.grade_one import Options, failed_result
    from grader.report.progress import BatchProgress
    from grader.rubric import load_rubric

    stream = io.StringIO()
    options = Options(rubric=load_rubric())
    with BatchProgress(3, console=Console(file=stream, width=200)) as progress:
        progress.set_running(2)
        progress.finished(failed_result("a/HW4.ipynb", options, None, "not valid JSON"))
        assert (progress.done, progress.running, progress.failed) == (1, 2, 1)
        ok = failed_result("b.ipynb", options, None, "x")
        ok.error = None
        progress.finished(ok)
    text = stream.getvalue()
    assert "1/3  a__HW4: 0 / 90 autograded" in text and "not graded: not valid JSON" in text
    assert "2/3  b: 0 / 90 autograded" in text
    assert "2/3" in text and "running 1" in text and "failed 1" in text


def test_the_driver_never_reads_a_special_file_or_one_outside_the_folder(tmp_path):
    """The Dask path checks each file as a local grade does before reading a byte: a FIFO,
    a link to /dev/zero and a link to a notebook elsewhere get a clear 0, and the batch ends
    (a read would block, grow without bound, or grade someone else's file)."""
    subs, elsewhere = tmp_path / "subs", tmp_path / "elsewhere"
    subs.mkdir()
    elsewhere.mkdir()
    shutil.copy(EXAMPLES / "alice.ipynb", elsewhere / "solution.ipynb")
    os.mkfifo(subs / "fifo.ipynb")
    (subs / "zero.ipynb").symlink_to("/dev/zero")
    (subs / "outside.ipynb").symlink_to(elsewhere / "solution.ipynb")
    out = tmp_path / "out"
    started = time.monotonic()
    assert main(["grade", str(subs), "--out", str(out), "--cluster", "local",
                 "--workers", "1", "--seed", "1"]) == 0
    assert time.monotonic() - started < 240
    results = _results(out)
    assert set(results) == {"fifo", "zero", "outside"}
    assert results["fifo"]["error"].startswith("fifo.ipynb: a FIFO")
    assert "outside" in results["zero"]["error"] and "outside" in results["outside"]["error"]
    assert all(result["score"] == 0 and not result["retry"] for result in results.values())
