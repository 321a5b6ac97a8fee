"""Execute a notebook in a fresh, bounded kernel and keep the kernel for probing.

The kernel runs in a temporary copy of the submission's folder, with its own HOME and
Keras cache, an environment stripped down to an allow-list, MNIST provided offline, and
these bounds, each hit reported against its cell:

* a per-cell timeout and a whole-notebook timeout, both holding while a cell runs: a cell
  that passes its time is interrupted, and when it has not stopped ``GRACE`` seconds later
  its kernel is killed (the sandbox's whole process tree) and replaced. Every other wait on
  a kernel (its start, silent set-up code, a probe call, its shutdown) has such a hard
  deadline too, so nothing a kernel does with interrupts, signals or replies can hang the
  grader;
* a memory cap and a cap on processes and threads, held by the kernel's cgroup where the
  machine has one and watched by the grader always (see ``grader.pipeline.limits``);
* a cap on captured output per cell (in the kernel and again here);
* a training budget (see ``grader/kernel/prelude.py``): cut-offs are not the student's error.

The kernel is launched through a sandbox (``grader.pipeline.sandbox``): bubblewrap unless grading
was explicitly asked to run without one. Its stdout is discarded and its stderr kept
(the last few KiB, for error messages) by the grader, so nothing a kernel prints can reach
the grader's own output.

A cell that kills the kernel (or has it killed) is skipped: the kernel is restarted, the
cells before it are replayed silently, and execution goes on, so every unit the notebook
defines can still be graded. Every kernel gets fresh folders: a new working copy of the
submission, HOME, and exchange folders (IPC sockets, probe files) that no earlier kernel
saw, so nothing one kernel wrote reaches the next. A kernel starts in its empty HOME and
enters the notebook's working folder only when the grader's set-up is done, so no file of
the submission is on its import path before then.

Whether a cell ran cleanly is read from the kernel's reply to it as well as from its
outputs: a reply ``error`` without an error output (a notebook hiding its exceptions with
``set_custom_exc``) is still an error.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nbformat
import psutil
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from grader.exceptions import KernelNotPrepared
from grader.kernel import loader, wire
from grader.pipeline import limits
from grader.pipeline.devices import Device
from grader.pipeline.sandbox import Layout, NoSandbox, Sandbox
from grader.result import CellResult, CellStatus
from grader.untrusted import OUTPUT_LIMIT, clean_name, clean_text

BUDGET_ERROR = "TrainingBudgetReached"
GRACE = 5.0  # seconds a kernel has to answer a timeout's interrupt before it is killed
STARTUP_TIMEOUT = 120  # seconds a kernel has to start and answer
SHUTDOWN_TIMEOUT = 30.0  # seconds the shutdown of a (killed) kernel may take
REPLY_ERRORS = ("error", "aborted")  # an execute_reply status that means the cell failed
# Variables a kernel may inherit; everything else (tokens, the grader's settings) is dropped.
ENV_ALLOW = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT",
             "LD_LIBRARY_PATH", "CUDA_HOME", "VIRTUAL_ENV", "OPENBLAS_CORETYPE",
             "OPENBLAS_L2_SIZE")


@dataclass(frozen=True)
class Bounds:
    """Limits on one notebook's execution."""

    cell_timeout: float = 300.0
    notebook_timeout: float = 1800.0
    memory_limit: int = 6 * 2**30
    output_limit: int = 2 * 2**20
    training_steps: int | None = 5


@dataclass
class Execution:
    """The record of executing one notebook."""

    cells: list[CellResult] = field(default_factory=list)
    seconds: float = 0.0
    kernel_restarts: int = 0
    notebook_timed_out: bool = False


def kernel_environment(home: Path, device: str = Device.CPU, threads: int | None = None,
                       gpu_index: int | None = None) -> dict[str, str]:
    """The environment a submission's kernel gets: an allow-list, a private HOME, devices."""
    env = {key: value for key, value in os.environ.items() if key in ENV_ALLOW}
    env.update(HOME=str(home), KERAS_HOME=str(home / ".keras"), MPLCONFIGDIR=str(home / ".mpl"),
               PYTHONDONTWRITEBYTECODE="1", TF_CPP_MIN_LOG_LEVEL="3", PYTHONHASHSEED="0",
               MPLBACKEND="module://matplotlib_inline.backend_inline")
    env["CUDA_VISIBLE_DEVICES"] = "" if device == Device.CPU else str(gpu_index or 0)
    if threads:
        for key in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[key] = str(threads)
        env["TF_NUM_INTEROP_THREADS"] = "1"
    return env


def prelude_source(config: dict[str, Any]) -> str:
    """The kernel prelude with its configuration, as code for one silent cell (watching
    every function of the wire's list unless the configuration names some)."""
    return loader.setup_code("prelude",
                             {**config, "watched": config.get("watched", list(wire.WATCHED))})


class _BoundedClient(NotebookClient):
    """An nbclient client that drops output past a per-cell byte limit."""

    output_limit: int = 2 * 2**20

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.output_bytes: dict[int, int] = {}
        self.truncated: set[int] = set()

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {})))
        used = self.output_bytes.get(cell_index, 0)
        self.output_bytes[cell_index] = used + size
        if used + size > self.output_limit and msg["msg_type"] != "error":
            if cell_index not in self.truncated:
                self.truncated.add(cell_index)
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr",
                    text=f"[hw4grade: output past {self.output_limit} bytes dropped]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)


class _StderrTail(threading.Thread):
    """Read a kernel's stderr from a pipe, keeping only its last few KiB."""

    def __init__(self, keep: int = 8192):
        super().__init__(daemon=True, name="hw4grade-stderr")
        self.read_fd, self.write_fd = os.pipe()
        self.keep = keep
        self.tail = b""

    def run(self) -> None:
        with os.fdopen(self.read_fd, "rb", buffering=0) as stream:
            for block in iter(lambda: stream.read(65536), b""):
                self.tail = (self.tail + block)[-self.keep:]

    def text(self) -> str:
        """The kept tail, as clean text (the kernel's bytes: anything may be in them)."""
        return clean_text(self.tail.decode("utf-8", "replace").strip(), OUTPUT_LIMIT)


class _SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager that launches the kernel through a sandbox, with its stdout
    discarded and its stderr sent to the grader's tail reader only."""

    sandbox: Sandbox = NoSandbox()
    layout: Layout | None = None
    kernel_env: dict[str, str] = {}
    stderr_tail: _StderrTail | None = None
    group: limits.KernelGroup = limits.NoGroup()

    @property
    def kernel_spec(self):
        spec = super().kernel_spec
        if spec is not None:
            spec.interrupt_mode = self.sandbox.interrupt_mode
        return spec

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        command = self.group.join_command(self.sandbox.wrap(kernel_cmd, self.kernel_env,
                                                            self.layout))
        kw["stdout"] = subprocess.DEVNULL
        kw["stdin"] = subprocess.DEVNULL
        kw["stderr"] = self.stderr_tail.write_fd if self.stderr_tail else subprocess.DEVNULL
        try:
            await super()._async_launch_kernel(command, **kw)
        finally:
            if self.stderr_tail:
                os.close(self.stderr_tail.write_fd)


async def _stop_kernel(client: NotebookClient) -> None:
    km, kc = client.km, client.kc
    try:
        if await ensure_async(km.is_alive()):
            await ensure_async(km.shutdown_kernel(now=client.shutdown_kernel == "immediate"))
    except RuntimeError as error:  # jupyter_client's word for a kernel already gone
        if "No kernel is running!" not in str(error):
            raise
    finally:
        await ensure_async(km.cleanup_resources())  # connection file, sockets
        if kc is not None:
            await ensure_async(kc.stop_channels())
            client.kc = client.km = None


def stop_kernel(client: NotebookClient) -> bool:
    """Shut down the kernel of ``client`` (at once when it was made with
    ``shutdown_kernel="immediate"``), then remove its connection file and sockets and close
    the client's channels, even when the kernel is already dead; False when that did not
    end within ``SHUTDOWN_TIMEOUT`` seconds (then kill the kernel's processes instead).

    This is what nbclient does on leaving ``NotebookClient.setup_kernel``, in its private
    ``_cleanup_kernel``; a session that outlives one ``with`` block cannot use that context
    manager, so the same steps are taken here through jupyter_client's public API
    (``is_alive``, ``shutdown_kernel``, ``cleanup_resources``, ``stop_channels``), on the
    event loop nbclient's own blocking calls use (``jupyter_core.utils.run_sync``).
    """
    return run_sync(_within)(_stop_kernel(client), SHUTDOWN_TIMEOUT)


async def _within(coroutine, seconds: float, on_deadline: Callable[[], None] = lambda: None,
                  ) -> bool:
    """Await ``coroutine`` for at most ``seconds``: True when it finished (its exception, if
    any, raised here). Otherwise call ``on_deadline`` (which kills the kernel the coroutine
    waits on), let the coroutine notice for ``GRACE`` seconds, cancel it and return False."""
    task = asyncio.ensure_future(coroutine)
    await asyncio.wait({task}, timeout=seconds)
    if task.done():
        task.result()
        return True
    on_deadline()
    await asyncio.wait({task}, timeout=GRACE)  # nbclient sees a dead kernel by itself
    if not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=GRACE)
    if task.done() and not task.cancelled():
        task.exception()  # whatever it ended with is the deadline's doing
    return False


class _Deadline:
    """Calls ``action`` once when ``seconds`` have passed inside the ``with`` block, from a
    thread of its own: a kernel flooding the grader with messages could keep the event
    loop (and so any timeout scheduled on it) from ever running."""

    def __init__(self, seconds: float, action: Callable[[], None]):
        self.fired = threading.Event()
        self._action = action
        self._timer = threading.Timer(seconds, self.fire)
        self._timer.daemon = True

    def fire(self) -> None:
        """Run the action now (once)."""
        if not self.fired.is_set():
            self.fired.set()
            self._action()

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()


def kill_process_tree(process: subprocess.Popen) -> None:
    """Kill ``process`` (a kernel's launch: the sandbox's outermost process) and every
    process under it, the outermost first (the sandbox's PID namespace ends with it), at
    once and whatever they do with signals. Nothing when it has already ended."""
    if process.poll() is not None:  # ended and reaped: its pid may be another's now
        return
    try:
        root = psutil.Process(process.pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    for proc in tree:
        try:
            proc.kill()
        except psutil.Error:
            pass


def enter_folder_code(folder: Path) -> str:
    """The last step of a kernel's set-up: move into the notebook's working folder. Until
    then the kernel runs in its empty HOME, so that no file of the submission's folder is on
    its import path before the grader's set-up has run."""
    return f"__import__('os').chdir({str(folder)!r})"


def reply_error(reply: object) -> tuple[str, str] | None:
    """The error (name, message, both cleaned) a kernel's ``execute_reply`` reports, or
    None when its status is not an error. Anything in the reply may be forged."""
    content = reply.get("content") if isinstance(reply, dict) else None
    status = content.get("status") if isinstance(content, dict) else None
    if status not in REPLY_ERRORS:
        return None
    name = clean_name(content.get("ename") or f"reply status {status}")
    return name, clean_text(content.get("evalue") or "the kernel reported an error")


def _fresh_folder(folder: Path) -> Path:
    """``folder`` emptied (or made): nothing an earlier kernel left in it remains. Links in
    it are removed, never followed."""
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


class KernelSession:
    """A kernel that has executed a notebook under bounds and stays up for probing.

    Use as a context manager::

        with KernelSession(notebook, workdir, bounds, env, config) as session:
            execution = session.run_notebook()
            outputs = session.run_code("print(1)")

    Every kernel the session starts (the first and each replacement) gets fresh folders:
    its exchange folders (``ipc_dir`` for its sockets, ``probe_dir`` for probe requests and
    responses) are new ones the grader makes under the layout's root, and, when a layout is
    given, its working folder and HOME are emptied first. The folders of a kernel are
    removed when it ends.
    """

    def __init__(self, notebook: nbformat.NotebookNode, workdir: Path, bounds: Bounds,
                 env: dict[str, str], config: dict[str, Any], setup_code: tuple[str, ...] = (),
                 after_cell: str | None = None, sandbox: Sandbox | None = None,
                 layout: Layout | None = None, cgroups: limits.Cgroups | None = None):
        """``setup_code`` runs silently after the prelude in every kernel started;
        ``after_cell`` (formatted with ``index``) after every notebook cell that ran.
        The kernel runs in ``sandbox`` (default: none) over the folders of ``layout``
        (default: ``workdir`` with its files already in place); the layout's ``exchange``
        is replaced by each kernel's own folders. Each kernel runs in a group of ``cgroups``
        (default: this machine's, ``limits.choose_cgroups``)."""
        self.notebook = notebook
        self.sandbox = sandbox or NoSandbox()
        workdir = Path(workdir)
        self.owns_folders = layout is not None  # then workdir and HOME are the grader's
        self.layout = layout or Layout(root=workdir.parent, files=workdir, workdir=workdir,
                                       home=workdir.parent / "home")
        self.ipc_dir: Path | None = None
        self.probe_dir: Path | None = None
        self.setup_code = setup_code
        self.extra_setup: tuple[str, ...] = ()
        self.after_cell = after_cell
        self.workdir = Path(workdir)
        self.bounds = bounds
        self.env = env
        self.config = {**config, "training_steps": bounds.training_steps,
                       "output_limit": bounds.output_limit}
        self.client: _BoundedClient | None = None
        self.watcher: limits.ResourceWatcher | None = None
        self.cgroups = cgroups if cgroups is not None else limits.choose_cgroups()
        self.group: limits.KernelGroup = limits.NoGroup()
        self.mounts: tuple[Path, ...] = ()  # exchange folders with a tmpfs of their own
        self.enforcement: dict[str, str] = {}  # how the bounds were held, every kernel
        self.restarts = 0
        self.lost = False  # the kernel died or was killed: it is replaced before code runs
        self.completed: list[int] = []  # cells run so far that did not kill the kernel
        self._replies: dict[int, Any] = {}

    def __enter__(self) -> KernelSession:
        try:
            self._start()
        except BaseException:
            self._shutdown()  # a kernel that started but could not be prepared ends too
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self._shutdown()

    # -- kernel life cycle -------------------------------------------------------------

    def _start(self) -> None:
        if self.owns_folders:  # bubblewrap hides these under a new tmpfs; the others do not
            if self.layout.files != self.layout.workdir:
                _fresh_folder(self.layout.workdir)
            _fresh_folder(self.layout.home)
        self.layout.home.mkdir(parents=True, exist_ok=True)  # where the kernel starts
        # Fresh folders per kernel for its sockets, connection file and probe files, made
        # here where no kernel can write: nothing an earlier kernel left can redirect what
        # the grader writes, or reach this kernel.
        self.ipc_dir = self.layout.root / f"ipc-{self.restarts}"
        self.probe_dir = self.layout.root / f"probe-{self.restarts}"
        for folder in (self.ipc_dir, self.probe_dir):
            folder.mkdir()
        client = _BoundedClient(self.notebook, timeout=self.bounds.cell_timeout,
                                kernel_name="python3", allow_errors=True,
                                interrupt_on_timeout=True, startup_timeout=STARTUP_TIMEOUT,
                                shutdown_kernel="immediate",
                                resources={"metadata": {"path": str(self.workdir)}})
        client.output_limit = self.bounds.output_limit
        client.on_cell_executed = self._record_reply
        client.kernel_manager_class = _SandboxedKernelManager
        km = client.km = client.create_kernel_manager()
        layout = replace(self.layout, exchange=(self.ipc_dir, self.probe_dir))
        km.sandbox, km.layout, km.kernel_env = self.sandbox, layout, dict(self.env)
        self._hold_bounds(layout)
        km.group = self.group
        km.stderr_tail = _StderrTail()
        km.stderr_tail.start()
        # Local sockets instead of TCP: nothing else on the machine can reach the kernel.
        km.transport = "ipc"
        km.ip = str(self.ipc_dir / f"kernel-{self.restarts}")
        km.connection_file = str(self.ipc_dir / f"kernel-{self.restarts}.json")
        self.client = client
        try:
            with _Deadline(STARTUP_TIMEOUT + GRACE, self._kill) as deadline:
                run_sync(_within)(self._launch(client), STARTUP_TIMEOUT + GRACE, deadline.fire)
        except Exception as error:
            detail = km.stderr_tail.text()[-1000:]
            raise RuntimeError(f"the kernel did not start ({error})"
                               + (f": {detail}" if detail else "")) from error
        if deadline.fired.is_set():
            raise RuntimeError(f"the kernel did not start within {STARTUP_TIMEOUT} s")
        caps = self.sandbox.limits
        self.watcher = limits.ResourceWatcher(
            self._kernel_pid(), self.bounds.memory_limit,
            tasks=caps.tasks if self.sandbox.name != "none" else None,
            exchange=layout.exchange, exchange_bytes=caps.exchange_bytes,
            group=self.group, mounted=self.mounts)
        self.watcher.start()
        # The set-up runs before any notebook code, in this order: the prelude, the
        # profile's code, then ``extra_setup`` (what only this kernel gets, e.g. the
        # reference for attribution). No restart here: a kernel that cannot be prepared
        # is an error of the grader's.
        for code in (prelude_source(self.config), *self.setup_code, *self.extra_setup,
                     enter_folder_code(self.workdir)):
            run, _ = self._run_once(code, timeout=max(120.0, self.bounds.cell_timeout))
            if run.status != CellStatus.OK:
                raise KernelNotPrepared(f"the kernel could not be prepared: {run.error_name}: "
                                        f"{run.error_message}")

    async def _launch(self, client: _BoundedClient) -> None:
        # started in its empty HOME, not among the submission's files (see sandbox.LAUNCHER)
        await client.async_start_new_kernel(cwd=str(self.layout.home), env=self.env)
        await client.async_start_new_kernel_client()

    def _hold_bounds(self, layout: Layout) -> None:
        """Put the next kernel's bounds in the kernel's hands where the machine allows: its
        own cgroup, a size-capped tmpfs on each exchange folder; record what was held."""
        caps = self.sandbox.limits
        self.mounts = limits.mount_exchange(layout.exchange, caps.exchange_bytes)
        self.group = limits.open_group(self.cgroups, self.bounds.memory_limit, caps.tasks)
        held = self.group.held | ({limits.DISK} if self.mounts else frozenset())
        kind = self.cgroups.kind if self.group.held else limits.NONE
        self.enforcement = limits.weakest(self.enforcement, limits.enforcement(kind, held))

    def _release_bounds(self) -> None:
        """Empty and remove the kernel's group, unmount its exchange tmpfs."""
        self.group.close()
        self.group = limits.NoGroup()
        limits.unmount(self.mounts)
        self.mounts = ()

    def _kernel_pid(self) -> int:
        provisioner = self.client.km.provisioner
        return provisioner.process.pid if provisioner and provisioner.process else os.getpid()

    def _kill(self) -> None:
        """Kill the kernel's whole sandbox at once, whatever it does; it must be replaced."""
        self.lost = True
        km = self.client.km if self.client is not None else None
        process = getattr(getattr(km, "provisioner", None), "process", None)
        if process is not None:
            kill_process_tree(process)

    def _record_reply(self, cell_index: int, execute_reply: object, **_: Any) -> None:
        """nbclient's ``on_cell_executed`` hook: keep the kernel's reply to the cell."""
        self._replies[cell_index] = execute_reply

    def _shutdown(self) -> None:
        if self.watcher:
            self.watcher.stop()
        if self.client is not None:
            self._kill()  # nothing of this kernel is needed any more
            try:
                stop_kernel(self.client)
            except Exception as error:  # the kernel may already be gone
                print(f"hw4grade: kernel shutdown: {error}", file=sys.stderr)
            self.client = None
        self.sandbox.end()  # whatever the kernel started and left behind
        self._release_bounds()
        for folder in (self.ipc_dir, self.probe_dir):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def restart(self, extra_setup: tuple[str, ...] | None = None) -> None:
        """Replace the kernel by a fresh one (fresh folders, the prelude and set-up code).

        ``extra_setup`` is more set-up code for this kernel and every automatic replacement
        of it, until a later ``restart`` gives other code (``()``: none); ``None`` keeps
        what the current kernel got.
        """
        if extra_setup is not None:
            self.extra_setup = tuple(extra_setup)
        self._shutdown()
        self.restarts += 1
        self.lost = False
        self._start()

    # -- running code ------------------------------------------------------------------

    def _execute(self, cell: nbformat.NotebookNode, index: int, timeout: float,
                 notebook: nbformat.NotebookNode | None = None) -> CellResult:
        client = self.client
        client.nb = notebook if notebook is not None else self.notebook
        client.timeout = max(1, int(timeout))
        client.output_bytes.pop(index, None)
        client.truncated.discard(index)
        self._replies.pop(index, None)
        started = time.monotonic()
        # nbclient interrupts the kernel at the timeout; a kernel that has not answered
        # GRACE seconds later is killed, whatever it does
        try:
            with _Deadline(client.timeout + GRACE, self._kill) as deadline:
                run_sync(_within)(client.async_execute_cell(cell, index, store_history=False),
                                  client.timeout + GRACE, deadline.fire)
            status = CellStatus.OK
        except CellTimeoutError:
            status = CellStatus.TIMEOUT
        except DeadKernelError:
            self.lost = True
            exceeded = self.watcher.exceeded if self.watcher else None
            status = CellStatus.MEMORY if exceeded == limits.MEMORY else CellStatus.DIED
        killed = deadline.fired.is_set()
        if killed:
            status = CellStatus.TIMEOUT
        elif status == CellStatus.OK and self.watcher and self.watcher.poll():  # a bound it hit
            self.lost = True
            status = CellStatus.MEMORY if self.watcher.exceeded == limits.MEMORY \
                else CellStatus.DIED
        run = CellResult(index=index, status=status, seconds=time.monotonic() - started,
                      output_truncated=index in client.truncated)
        error = next((out for out in cell.get("outputs", []) if out.output_type == "error"), None)
        failure = reply_error(self._replies.pop(index, None))
        if status == CellStatus.OK and error is not None:  # the kernel's text: cleaned as it enters
            ename, evalue = clean_name(error.get("ename")), clean_text(error.get("evalue"), 500)
            if ename == "KeyboardInterrupt" and run.seconds >= client.timeout:
                # the kernel answered the timeout's interrupt in time
                run.status = CellStatus.TIMEOUT
            else:
                run.status = CellStatus.BUDGET if ename == BUDGET_ERROR else CellStatus.ERROR
                run.error_name, run.error_message = ename, evalue
        elif status == CellStatus.OK and failure is not None:  # an error the cell's outputs hide
            if failure[0] == "KeyboardInterrupt" and run.seconds >= client.timeout:
                run.status = CellStatus.TIMEOUT
            else:
                run.status = CellStatus.ERROR
                run.error_name, run.error_message = failure
        died = run.status == CellStatus.DIED
        hit = self.watcher.exceeded if died and self.watcher else None  # the bound it passed
        if run.status == CellStatus.TIMEOUT:
            run.error_name = "Timeout"
            run.error_message = f"the cell ran longer than {client.timeout} s"
            if killed:
                run.error_message += (" and did not stop when interrupted, so its kernel was "
                                      "stopped and replaced")
        elif run.status == CellStatus.MEMORY:
            limit_mib = self.bounds.memory_limit / 2**20
            run.error_name = "MemoryLimit"
            run.error_message = f"the kernel passed the memory limit of {limit_mib:.0f} MiB"
        elif died and hit == limits.TASKS:
            run.error_name = "ProcessLimit"
            run.error_message = (f"the kernel started more than {self.sandbox.limits.tasks} "
                                 "processes and threads")
        elif died and hit == limits.DISK:
            run.error_name = "DiskLimit"
            run.error_message = ("the kernel wrote too much into the folders it shares with "
                                 "the grader")
        elif died:
            run.error_name = "KernelDied"
            run.error_message = "the kernel died while running this cell"
        return run

    def _run_once(self, code: str, timeout: float) -> tuple[CellResult, list]:
        """Run code that is not part of the notebook, without replacing a lost kernel."""
        cell = nbformat.v4.new_code_cell(code)
        scratch = nbformat.v4.new_notebook(cells=[cell])
        return self._execute(cell, 0, timeout, scratch), cell.outputs

    def run_code(self, code: str, timeout: float | None = None) -> tuple[CellResult, list]:
        """Run code that is not part of the notebook; return its record and outputs.

        A kernel that dies or is killed on the way is replaced (``restarts`` counts up);
        the notebook is not replayed into the new one.
        """
        run, outputs = self._run_once(code, timeout or self.bounds.cell_timeout)
        if self.lost:
            self.restart()
        return run, outputs

    def run_notebook(self) -> Execution:
        """Execute every code cell in order under the bounds; return what happened.

        The whole-notebook budget bounds each cell's time too: the cell running when it
        runs out is stopped as a cell that passed its own time is, and the rest skipped.
        """
        execution = Execution()
        started = time.monotonic()
        deadline = started + self.bounds.notebook_timeout
        self.completed = []
        for index, cell in enumerate(self.notebook.cells):
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            remaining = deadline - time.monotonic()
            if remaining < 1 or execution.notebook_timed_out:
                execution.notebook_timed_out = True
                execution.cells.append(CellResult(index, CellStatus.SKIPPED,
                                                  error_name="NotebookTimeout",
                                                  error_message="the notebook's time limit "
                                                                "ran out"))
                continue
            run = self._execute(cell, index, min(self.bounds.cell_timeout, remaining))
            if run.status == CellStatus.TIMEOUT and remaining < self.bounds.cell_timeout:
                execution.notebook_timed_out = True
                run.error_name = "NotebookTimeout"
                run.error_message = (f"the notebook's time limit of "
                                     f"{self.bounds.notebook_timeout:g} s ran out while this "
                                     "cell ran" + (", and the cell did not stop when "
                                                   "interrupted" if self.lost else ""))
            execution.cells.append(run)
            if self.lost:
                self.restart()
                self.replay()
            elif run.status != CellStatus.TIMEOUT:  # a cell that hung would only hang again
                self.completed.append(index)
                self._after(index)
        execution.seconds = time.monotonic() - started
        execution.kernel_restarts = self.restarts
        return execution

    def replay(self) -> None:
        """Rerun, output discarded, the cells that did not kill the kernel (after a restart)."""
        for index in self.completed:
            replayed = nbformat.from_dict(self.notebook.cells[index])
            scratch = nbformat.v4.new_notebook(cells=[replayed])
            self._execute(replayed, 0, self.bounds.cell_timeout, scratch)
            if self.lost:
                self.restart()
            else:
                self._after(index)

    def _after(self, index: int) -> None:
        if self.after_cell:
            self.run_code(self.after_cell.format(index=index), timeout=30)
