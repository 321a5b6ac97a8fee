"""What runs on a Dask worker: a once-per-worker setup and the grading task.

The driver registers :class:`GradingSetup` once per batch; Dask runs its ``setup`` on every
worker that joins, now or later. It compares the worker's grader (version, code, rubric)
with the driver's, and resolves MNIST once: the worker's own ``HW4_MNIST_DIR`` when it holds
the same digits as the driver's, otherwise the copy the driver shipped inside the plugin.

:func:`grade_on_worker` is the task, one per submission: it writes the notebook's bytes (and
the small files next to it) into a folder of its own and calls the very ``grade_notebook`` a
local batch calls. A worker whose grader differs from the driver's refuses every task with
:class:`GraderMismatch`, so a batch never mixes grades of two graders.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import queue
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from dask.system import CPU_COUNT  # this worker's cores (CPU affinity and cgroups heeded)
from distributed import WorkerPlugin, get_worker

import grader
from grader.exceptions import GraderMismatch
from grader.pipeline.devices import Device
from grader.pipeline.grade_one import Options, grade_notebook
from grader.pipeline.lifetime import die_with_parent, parent_from_environment

PLUGIN_NAME = "hw4grade"
RUBRIC_ENV = "HW4GRADE_RUBRIC"  # a worker's rubric file, when not the one its install ships
MNIST_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class GraderIdentity:
    """What must be equal on the driver and every worker for their grades to be comparable."""

    version: str
    code_sha256: str
    rubric_sha256: str
    rubric_source: str = field(compare=False)

    def describe(self) -> str:
        """The identity in words, for error messages."""
        return (f"hw4grade {self.version} (code {self.code_sha256[:12]}), rubric "
                f"{self.rubric_sha256[:12]} ({self.rubric_source})")


@functools.lru_cache(maxsize=1)
def code_sha256() -> str:
    """SHA-256 over the grader's and the reference's source files and the grader's data."""
    package = Path(grader.__file__).resolve().parent
    files = sorted(package.rglob("*.py")) + sorted(p for p in (package / "data").rglob("*")
                                                    if p.is_file())
    reference = package.parent / "reference"
    if reference.is_dir():
        files += sorted(reference.rglob("*.py"))
    digest = hashlib.sha256()
    for path in files:
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(package.parent).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def dask_setup(worker) -> None:
    """Dask's preload hook, run as a worker starts: a worker of ``--cluster local`` dies with
    the driver whose pid is in ``$HW4GRADE_PARENT_PID`` (its nanny runs in the driver)."""
    die_with_parent(parent_from_environment())


def local_rubric():
    """The rubric this process grades with: ``$HW4GRADE_RUBRIC``, or its install's own."""
    from grader.rubric import load_rubric

    return load_rubric(os.environ.get(RUBRIC_ENV) or None)


def local_identity() -> GraderIdentity:
    """This process's grader identity."""
    rubric = local_rubric()
    return GraderIdentity(grader.__version__, code_sha256(), rubric.text_sha256, rubric.source)


def mismatch_message(worker: str, mine: GraderIdentity, wanted: GraderIdentity) -> str:
    """Why a worker refuses, and what to do about it."""
    return (f"Dask worker {worker} has {mine.describe()}, but this batch is graded with "
            f"{wanted.describe()}; install the same hw4grade and rubric on every worker "
            f"(a worker reads its rubric from ${RUBRIC_ENV} or its own install)")


def mnist_digest(npz_path: str | os.PathLike) -> str:
    """SHA-256 of the MNIST arrays in a Keras-style ``mnist.npz`` (not of the file's bytes)."""
    digest = hashlib.sha256()
    with np.load(npz_path) as data:
        for name in MNIST_ARRAYS:
            array = np.ascontiguousarray(data[name])
            digest.update(f"{name}{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def packed_mnist(npz_path: str | os.PathLike) -> bytes:
    """The MNIST arrays as compressed npz bytes, to ship to workers."""
    buffer = io.BytesIO()
    with np.load(npz_path) as data:
        np.savez_compressed(buffer, **{name: data[name] for name in MNIST_ARRAYS})
    return buffer.getvalue()


class GradingSetup(WorkerPlugin):
    """Once per worker: check the grader, resolve MNIST, prepare the GPU slots."""

    name = PLUGIN_NAME

    def __init__(self, identity: GraderIdentity, mnist_sha256: str, mnist_packed: bytes) -> None:
        self.identity = identity
        self.mnist_sha256 = mnist_sha256
        self.mnist_packed = mnist_packed
        self.problem: str | None = None
        self.mnist_npz: Path | None = None
        self.mnist_source = ""
        self.oracle = None
        self._lock = threading.Lock()
        self._gpus: queue.Queue[int] = queue.Queue()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for name in ("_lock", "_gpus", "oracle"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.oracle = None
        self._lock = threading.Lock()
        self._gpus = queue.Queue()

    def setup(self, worker) -> None:
        """Run by Dask on the worker when the plugin is registered or the worker joins."""
        mine = local_identity()
        if mine != self.identity:
            self.problem = mismatch_message(worker.address, mine, self.identity)
            return
        self.mnist_npz, self.mnist_source = self._resolve_mnist(Path(worker.local_directory))
        self.mnist_packed = b""  # written to disk; no need to keep it in memory
        for slot in _gpu_devices(worker.state.total_resources.get("GPU", 0)):
            self._gpus.put(slot)

    def _resolve_mnist(self, folder: Path) -> tuple[Path, str]:
        own = os.environ.get("HW4_MNIST_DIR")
        if own:
            try:
                from grader.mnist.data import kernel_npz

                path = kernel_npz(own, folder)
                if mnist_digest(path) == self.mnist_sha256:
                    return path, f"the worker's own HW4_MNIST_DIR ({own})"
            except Exception:  # unusable or different: the shipped copy will do
                pass
        path = folder / f"hw4grade-mnist-{self.mnist_sha256[:16]}.npz"
        if not path.is_file() or mnist_digest(path) != self.mnist_sha256:
            with np.load(io.BytesIO(self.mnist_packed)) as data:
                arrays = {name: data[name] for name in MNIST_ARRAYS}
            partial = path.with_name(f".{path.name}.{os.getpid()}.partial.npz")
            np.savez(partial, **arrays)
            os.replace(partial, path)
        return path, "the copy shipped by the driver"

    def load_oracle(self):
        """The reference oracle of this worker, loaded on first use (once per worker)."""
        with self._lock:
            if self.oracle is None:
                from grader.oracles.choose import load_oracle

                self.oracle = load_oracle()
            return self.oracle

    def take_gpu(self) -> int | None:
        """A GPU of this worker for one task (None: the worker declared no GPU)."""
        try:
            return self._gpus.get_nowait()
        except queue.Empty:
            return None

    def give_back_gpu(self, device: int | None) -> None:
        """Return a GPU taken with :meth:`take_gpu`."""
        if device is not None:
            self._gpus.put(device)


def _gpu_devices(count: float) -> list[int]:
    """The devices behind a worker's ``GPU`` resource: its CUDA_VISIBLE_DEVICES, or 0..N-1."""
    visible = [entry for entry in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
               if entry.strip().isdigit()]
    devices = [int(entry) for entry in visible] or list(range(int(count)))
    return devices[:int(count)] if count else []


@dataclass
class NotebookPayload:
    """A submission as the driver sends it: bytes only, no shared file system needed."""

    file_name: str
    shown_path: str  # the driver's path, which messages about the file name
    notebook: bytes
    companions: dict[str, bytes] = field(default_factory=dict)


def grade_on_worker(payload: NotebookPayload, label: str, options: Options) -> dict:
    """The Dask task: grade one submission on this worker; returns the result as a dict."""
    worker = get_worker()
    setup = worker.plugins.get(PLUGIN_NAME)
    if setup is None:
        raise GraderMismatch(f"Dask worker {worker.address} was not set up by hw4grade")
    if setup.problem:
        raise GraderMismatch(setup.problem)
    rubric = local_rubric()
    threads = options.threads or max(1, CPU_COUNT // max(1, worker.state.nthreads))
    wants_gpu = options.device == Device.GPU and options.gpu_index is None
    device = setup.take_gpu() if wants_gpu else None
    try:
        task_options = replace(options, rubric=rubric, mnist_npz=setup.mnist_npz,
                               threads=threads,
                               gpu_index=options.gpu_index if device is None else device)
        with tempfile.TemporaryDirectory(prefix="hw4grade-task-") as folder:
            path = Path(folder) / payload.file_name
            path.write_bytes(payload.notebook)
            for name, content in payload.companions.items():
                (Path(folder) / Path(name).name).write_bytes(content)
            result = grade_notebook(path, task_options, setup.load_oracle(), label)
            return _with_shown_path(result.to_dict(), str(path), payload.shown_path)
    finally:
        setup.give_back_gpu(device)


def _with_shown_path(result: dict, worker_path: str, shown_path: str) -> dict:
    """The result with the worker's temporary path replaced by the driver's path."""
    if worker_path == shown_path:
        return result
    text = json.dumps(result)
    text = text.replace(json.dumps(worker_path)[1:-1], json.dumps(shown_path)[1:-1])
    return json.loads(text)


def describe_worker(dask_worker) -> dict:
    """Run on every worker (``Client.run``) by the driver's first check: is it ready?"""
    setup = dask_worker.plugins.get(PLUGIN_NAME)
    return {"problem": getattr(setup, "problem", None),
            "mnist": getattr(setup, "mnist_source", ""),
            "identity": local_identity()}
