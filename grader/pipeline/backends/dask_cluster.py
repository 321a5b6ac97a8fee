"""``hw4grade grade --cluster``: grade a batch on a Dask cluster.

``--cluster ADDRESS`` joins a running scheduler (``tcp://host:8786``); ``--cluster local``
starts a ``LocalCluster`` of ``--workers`` processes on this machine; ``--cluster slurm``
submits ``dask_jobqueue.SLURMCluster`` jobs (their size from options or the ``cluster:``
section of ``--cluster-config FILE``; ``--dry-run`` prints the job script instead).

One Dask task per submission carries the notebook's bytes, so the workers need no file
system shared with the driver; each worker grades with ``dask_worker``, which
calls the same ``grade_notebook`` as a local batch. The driver hands every result to the
batch the moment it arrives (saved atomically there). A task whose worker dies is rerun
elsewhere by Dask, up to the scheduler's ``distributed.scheduler.allowed-failures``; after
that it gets a result marked for retry, so the batch still ends with a result per
submission and a gradebook.

Nothing here imports Dask at module level: a plain ``hw4grade grade`` does not need it.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path, PurePosixPath
from typing import Any

from grader.exceptions import ClusterError
from grader.frameworks import AUTO
from grader.pipeline.devices import Device, count_gpus
from grader.pipeline.grade_one import (
    Options,
    companion_files,
    default_threads,
    failed_result,
    readable_sha256,
)
from grader.pipeline.lifetime import PARENT_ENV
from grader.pipeline.load import (
    SubmissionError,
    file_sha256,
    is_archive,
    load_submission,
    named_folder,
    read_submission,
)
from grader.report.store import submission_name
from grader.result import SubmissionResult

KINDS = ("local", "slurm")
DEFAULT_ALLOWED_FAILURES = 2  # reruns of a task whose worker died, on the clusters we start
POLL_SECONDS = 1.0


@dataclass
class ClusterSettings:
    """Where and how big: the ``cluster:`` section of a config file, then the options."""

    target: str = "local"  # local | slurm | a scheduler address
    jobs: int = 1
    partition: str | None = None
    account: str | None = None
    cores: int = 2
    memory: str = "8GiB"
    walltime: str = "02:00:00"
    gpus_per_job: int = 0
    notebooks_per_job: int | None = None
    allowed_failures: int = DEFAULT_ALLOWED_FAILURES
    python: str | None = None
    job_extra: list[str] = field(default_factory=list)
    job_prologue: list[str] = field(default_factory=list)
    log_directory: str | None = None

    def notebooks_at_once(self) -> int:
        """Notebooks a Slurm job grades at once: one per GPU, else one per two cores."""
        if self.notebooks_per_job:
            return self.notebooks_per_job
        return self.gpus_per_job or max(1, self.cores // 2)


_OPTION_KEYS = {"jobs": "jobs", "partition": "partition", "account": "account",
                "job_cores": "cores", "job_memory": "memory", "walltime": "walltime",
                "gpus_per_job": "gpus_per_job", "notebooks_per_job": "notebooks_per_job",
                "allowed_failures": "allowed_failures"}


def read_config_section(path: Path) -> dict[str, Any]:
    """The ``cluster:`` section of a YAML file (empty when the file has none)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise ClusterError(f"{path}: cannot read the cluster config ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ClusterError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise ClusterError(f"{path}: expected a mapping with a 'cluster:' section")
    section = data.get("cluster") or {}
    if not isinstance(section, dict):
        raise ClusterError(f"{path}: 'cluster' must be a mapping of settings")
    return section


def settings_from(section: dict[str, Any], where: str) -> ClusterSettings:
    """Validate a ``cluster:`` section into settings, naming the bad key and its file."""
    known = {f.name: f for f in fields(ClusterSettings)}
    settings = ClusterSettings()
    for key, value in section.items():
        name = str(key).replace("-", "_")
        if name not in known:
            raise ClusterError(f"{where}: cluster.{key}: unknown setting "
                               f"(known: {', '.join(sorted(known))})")
        default = getattr(settings, name)
        if isinstance(default, list):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ClusterError(f"{where}: cluster.{key}: expected a list of strings")
        elif name in ("jobs", "cores", "gpus_per_job", "notebooks_per_job", "allowed_failures"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ClusterError(f"{where}: cluster.{key}: expected a whole number >= 0, "
                                   f"got {value!r}")
        elif value is not None and not isinstance(value, str):
            raise ClusterError(f"{where}: cluster.{key}: expected text, got {value!r}")
        setattr(settings, name, value)
    return settings


def settings_from_args(args: argparse.Namespace) -> ClusterSettings:
    """Settings of the config file's ``cluster:`` section, overridden by the options."""
    config = getattr(args, "cluster_config", None)
    settings = settings_from(read_config_section(config), str(config)) if config \
        else ClusterSettings()
    for option, name in _OPTION_KEYS.items():
        value = getattr(args, option, None)
        if value is not None:
            if isinstance(value, int) and value < 0:
                raise ClusterError(f"--{option.replace('_', '-')}: must be >= 0, got {value}")
            setattr(settings, name, value)
    if getattr(args, "cluster", None):
        settings.target = args.cluster
    if settings.jobs < 1:
        raise ClusterError("--jobs: at least one Slurm job is needed")
    return settings


def require(module: str) -> None:
    """Fail with a clear message when the ``cluster`` extra is not installed."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        raise ClusterError(f"--cluster needs the Python package '{module}': "
                           "pip install 'hw4grade[cluster]'") from None


# --------------------------------------------------------------------------- Slurm


def worker_environment(rubric: str | None) -> dict[str, str]:
    """Environment for workers hw4grade starts: the driver's ``--rubric``, when it has one."""
    from grader.pipeline.backends.dask_worker import RUBRIC_ENV

    return {RUBRIC_ENV: str(Path(rubric).resolve())} if rubric else {}


def slurm_cluster(settings: ClusterSettings, rubric: str | None = None):
    """A ``dask_jobqueue.SLURMCluster`` of the settings' job size (no job submitted yet)."""
    require("dask_jobqueue")
    from dask_jobqueue import SLURMCluster

    prologue = [f"export {key}={value}" for key, value in worker_environment(rubric).items()]
    directives = list(settings.job_extra)
    worker_args: list[str] = []
    if settings.gpus_per_job:
        directives.append(f"--gres=gpu:{settings.gpus_per_job}")
        worker_args += ["--resources", f"GPU={settings.gpus_per_job}"]
    try:
        return SLURMCluster(
            queue=settings.partition, account=settings.account,
            cores=settings.notebooks_at_once(), job_cpu=settings.cores, processes=1,
            memory=settings.memory, walltime=settings.walltime,
            job_extra_directives=directives, worker_extra_args=worker_args,
            job_script_prologue=prologue + settings.job_prologue,
            python=settings.python or sys.executable,
            log_directory=settings.log_directory, job_name="hw4grade",
            scheduler_options={"dashboard_address": ":0"},
        )
    except ValueError as error:
        raise ClusterError(f"--cluster slurm: {error}") from None


def print_dry_run(args: argparse.Namespace) -> int:
    """``--dry-run``: print the Slurm job script that would be submitted, submit nothing
    (ClusterError when the settings are wrong)."""
    settings = settings_from_args(args)
    if settings.target != "slurm":
        raise ClusterError("--dry-run prints a Slurm job script: use it with --cluster slurm")
    cluster = slurm_cluster(settings, getattr(args, "rubric", None))
    try:
        print(cluster.job_script())
        print(f"# hw4grade would submit {settings.jobs} job(s) like this one, each grading "
              f"{settings.notebooks_at_once()} notebook(s) at once")
    finally:
        cluster.close()
    return 0


# --------------------------------------------------------------------------- the backend


def dask_backend(args: argparse.Namespace, workers: int) -> DaskBackend:
    """The Dask backend for ``--cluster`` (validated; nothing is started until it is entered)."""
    require("distributed")
    return DaskBackend(settings_from_args(args), workers, getattr(args, "rubric", None))


class DaskBackend:
    """Grades on a Dask cluster: joined (an address) or started (local, slurm).

    ``rubric`` is the driver's ``--rubric`` file, handed to the workers hw4grade starts;
    workers of a running cluster read theirs from ``$HW4GRADE_RUBRIC`` or their install.
    """

    def __init__(self, settings: ClusterSettings, workers: int,
                 rubric: str | None = None) -> None:
        self.settings = settings
        self.workers = workers
        self.rubric = rubric
        self.client = None
        self.cluster = None

    # -- the cluster's life

    def __enter__(self) -> DaskBackend:
        import dask
        from distributed import Client

        target = self.settings.target
        failures = {"distributed.scheduler.allowed-failures": self.settings.allowed_failures}
        try:
            with dask.config.set(failures):
                if target == "local":
                    from distributed import LocalCluster

                    from grader.pipeline.backends import dask_worker

                    # its nannies run in this process; their workers die with it
                    self.cluster = LocalCluster(
                        n_workers=self.workers, threads_per_worker=1, processes=True,
                        dashboard_address=":0", silence_logs=logging.ERROR,
                        preload=[dask_worker.__name__],
                        env={**worker_environment(self.rubric), PARENT_ENV: str(os.getpid())})
                elif target == "slurm":
                    self.cluster = slurm_cluster(self.settings, self.rubric)
                    self.cluster.scale(jobs=self.settings.jobs)
                elif "://" not in target and ":" not in target:
                    raise ClusterError(f"--cluster {target}: expected a scheduler address "
                                       "(tcp://host:8786), 'local' or 'slurm'")
                self.client = Client(self.cluster or target, timeout="30s")
        except ClusterError:
            self.__exit__(None, None, None)
            raise
        except (OSError, TimeoutError, ValueError) as error:
            self.__exit__(None, None, None)
            raise ClusterError(f"--cluster {target}: cannot reach the Dask scheduler "
                               f"({error})") from None
        return self

    def __exit__(self, *exc_info) -> None:
        if self.client is not None and self.cluster is None:  # a cluster we only joined
            try:  # leave its workers as we found them (the set-up holds a copy of MNIST)
                from grader.pipeline.backends.dask_worker import PLUGIN_NAME

                self.client.unregister_worker_plugin(PLUGIN_NAME)
            except Exception:  # never registered, or the scheduler is gone
                pass
        for thing in (self.client, self.cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # closing a broken connection: nothing left to save
                    pass
        self.client = self.cluster = None

    def gpus(self) -> int:
        """GPUs the cluster offers (this machine's for a local cluster)."""
        if self.settings.target == "local":
            return count_gpus()
        if self.settings.target == "slurm":
            return self.settings.gpus_per_job * self.settings.jobs
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        return int(sum(w.get("resources", {}).get("GPU", 0) for w in workers))

    def kernel_threads(self) -> int | None:
        """This machine's cores shared out (local), else each worker's cores per notebook."""
        return default_threads(self.workers) if self.settings.target == "local" else None

    # -- grading

    def grade(self, todo: dict[Path, str], options: Options,
              deliver: Callable[[SubmissionResult], None], progress) -> None:
        """One task per submission; results delivered as they arrive."""
        from distributed import TimeoutError as DaskTimeout
        from distributed import wait

        from grader.pipeline.backends import dask_worker as cluster_worker

        self._set_up_workers(options)
        queued = list(todo.items())
        local_gpus = count_gpus() if options.device == Device.GPU and \
            self.settings.target == "local" else 0
        pending: dict[Any, tuple[Path, str]] = {}
        batch = uuid.uuid4().hex[:8]  # task keys of two batches on one scheduler never clash
        try:
            number = 0
            while queued or pending:
                window = self._window() if queued else 0
                while queued and len(pending) < window:
                    path, label = queued.pop(0)
                    try:
                        payload = _payload(path, label, options.profile)
                    except SubmissionError as error:  # never sent: graded 0 here, as locally
                        deliver(failed_result(label, options, readable_sha256(path),
                                              str(error).replace(str(path), label)))
                        continue
                    task_options = replace(
                        options, gpu_index=number % local_gpus if local_gpus else None)
                    future = self.client.submit(
                        cluster_worker.grade_on_worker, payload, label, task_options,
                        key=f"hw4grade-{batch}-{number}-{submission_name(label)}",
                        pure=False,
                        resources={"GPU": 1} if options.device == Device.GPU and not local_gpus
                        else None)
                    pending[future] = (path, label)
                    number += 1
                progress.set_running(self._running(pending))
                try:
                    finished = wait(list(pending), timeout=POLL_SECONDS,
                                    return_when="FIRST_COMPLETED").done
                except (TimeoutError, DaskTimeout):
                    continue
                for future in finished:
                    path, label = pending.pop(future)
                    deliver(_outcome(future, path, label, options))
        except KeyboardInterrupt:
            self.client.cancel(list(pending), force=True)
            raise

    def _set_up_workers(self, options: Options) -> None:
        """Ship the grader's identity and MNIST once per worker; refuse a mismatched one."""
        from grader.pipeline.backends import dask_worker as cluster_worker

        identity = replace(cluster_worker.local_identity(),
                           rubric_sha256=options.rubric.text_sha256,
                           rubric_source=options.rubric.source)
        npz = options.mnist_npz
        setup = cluster_worker.GradingSetup(identity, cluster_worker.mnist_digest(npz),
                                            cluster_worker.packed_mnist(npz))
        self.client.register_plugin(setup, name=cluster_worker.PLUGIN_NAME)
        described = self.client.run(cluster_worker.describe_worker)
        problems = [info["problem"] for info in described.values() if info["problem"]]
        if problems:
            raise ClusterError("; ".join(problems))
        sources = Counter(info["mnist"] for info in described.values())
        for source, count in sorted(sources.items()):
            print(f"hw4grade: {count} worker(s) ready, MNIST from {source}", file=sys.stderr)

    def _window(self) -> int:
        """Tasks kept on the cluster at once: twice its notebook slots, at least 8."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        return max(8, 2 * sum(w.get("nthreads", 1) for w in workers))

    def _running(self, pending: dict) -> int:
        """How many of this batch's tasks a worker is running now."""
        keys = {future.key for future in pending}
        processing = self.client.processing()
        return sum(1 for tasks in processing.values() for key in tasks if key in keys)


def _payload(path: Path, label: str, profile: str = AUTO):
    """The submission as bytes: the notebook and the small files next to it. The file is
    checked here as a local grade checks it (a regular file inside the folder named on the
    command line, not too large) before a byte is read: SubmissionError otherwise. A folder
    or a zip is sent as a zip of what its grading uses (:func:`packed_submission`)."""
    from grader.pipeline.backends.dask_worker import NotebookPayload

    if path.is_dir() or is_archive(path):
        return NotebookPayload("submission.zip", str(path),
                               packed_submission(path, named_folder(path, label), profile))
    notebook = read_submission(path, named_folder(path, label))
    try:
        companions = {entry.name: entry.read_bytes() for entry in companion_files(path)}
    except OSError:
        companions = {}
    return NotebookPayload(path.name, str(path), notebook, companions)


def packed_submission(path: Path, folder: Path, profile: str = AUTO) -> bytes:
    """A folder or zip submission as a zip of what its grading uses, at the same places:
    the chosen notebook, the student's package files and the notebook's small files; its
    grading chooses the same notebook and records the same ``sha256``."""
    submission = load_submission(path, folder, profile)
    try:
        base = PurePosixPath(submission.notebook_name).parent
        entries = {submission.notebook_name: submission.path}
        entries.update({(base / name).as_posix(): submission.path.parent / name
                        for name in submission.modules})
        for entry in companion_files(submission.path):
            entries.setdefault((base / entry.name).as_posix(), entry)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, source in entries.items():
                archive.writestr(name, source.read_bytes())
        return buffer.getvalue()
    finally:
        submission.discard()


def _outcome(future, path: Path, label: str, options: Options) -> SubmissionResult:
    """The result a finished task brings, or one marked for retry when the task failed."""
    from distributed.scheduler import KilledWorker

    from grader.pipeline.backends.dask_worker import GraderMismatch

    error = future.exception() if future.status == "error" else None
    if future.status == "finished":
        try:
            return SubmissionResult.from_dict(future.result())
        except (TypeError, ValueError) as unreadable:  # not a result: the grader's fault
            error = unreadable
    if isinstance(error, KilledWorker):
        reason = ("the Dask workers grading it died too often (killed, out of memory or node "
                  f"lost; {error})")
    elif isinstance(error, GraderMismatch):
        reason = f"refused: {error}"
    elif error is not None:
        reason = f"the grading task failed on the cluster ({error!r})"
    else:
        reason = f"the grading task was {future.status} (lost contact with the scheduler?)"
    try:
        sha256 = file_sha256(path)
    except OSError:
        sha256 = None
    result = failed_result(label, options, sha256, reason)
    result.retry = True
    return result
