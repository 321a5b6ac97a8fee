"""Where a submission's kernel runs: inside a bubblewrap sandbox, or (explicitly) without one.

A sandbox turns the kernel's launch command into one that starts the kernel isolated.
``BubblewrapSandbox`` prefixes ``prlimit ... bwrap ...``; inside the kernel has

* its own user (an unprivileged uid), PID, IPC, UTS, cgroup and network namespaces
  (loopback only), a new session, no capabilities, and it dies with the grader;
* a read-only view of the Python installation, the environment's packages, the system
  libraries and the files it is given (MNIST), and nothing else: not the project tree,
  not the submissions, not OUT, not the grader's caches, not the ``reference`` package
  nor the installed ``grader`` (found on any of the kernel's import paths);
* writable: a size-capped tmpfs holding its own copy of the submission's folder and its
  HOME, another for ``/tmp``, and the exchange folders it shares with the grader (IPC
  sockets, probe requests), whose size is capped by a tmpfs of their own when the grader
  is root and watched by the grader always (``grader.pipeline.limits``);
* limits on open files and file size, core dumps off, and an environment made only of
  the allow-list the grader passes.

``UserSandbox`` is the fallback of a grader running as root where bubblewrap cannot run
(the Gradescope autograder in a container without user namespaces): the kernel runs as a
dedicated unprivileged account (``setpriv``), with the same limits and environment; what
it must not read (the reference, the results, the sources) is locked by the permissions
the autograder's ``setup.sh`` and ``run_autograder`` set, and every process of that
account is killed when the kernel ends.

``NoSandbox`` runs the command as it is (``--no-sandbox``, or ``check`` where bubblewrap
cannot run). ``choose_sandbox`` is the one place that picks between them.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from grader.exceptions import SandboxUnavailable
from grader.pipeline.devices import Device

SANDBOX_UID = 65534  # "nobody" inside the sandbox
SHARED_TEMP = ("/tmp", "/var/tmp", "/dev/shm")  # where a UserSandbox kernel may leave files
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
              "/etc/alternatives", "/etc/fonts", "/etc/hosts", "/etc/nsswitch.conf")
# importable by the grader, never by a kernel: the solution, and the grader itself (its
# oracles compute the theory answers; the kernel gets its own code as text, grader/kernel)
HIDDEN_PACKAGES = ("reference", "grader")
GPU_SHARED_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
                    "/dev/nvidia-modeset")
SEARCH_PATH_CODE = "import json, sys; print(json.dumps(sys.path))"
BLOCKED_MODULE = 'raise ImportError("this module is not available to graded notebooks")\n'
# Copies the submission's files into the kernel's writable folder, then becomes the kernel,
# started in the folder ``start`` (HOME, empty): the kernel's first import path entry is
# where it starts, so a submitted ``ipykernel_launcher.py`` or ``numpy.py`` must not be there.
# The kernel moves into its working folder once its set-up is done (``KernelSession``).
LAUNCHER = (
    "import os, shutil, sys\n"
    "source, target, start = sys.argv[1], sys.argv[2], sys.argv[3]\n"
    "for name in sorted(os.listdir(source)):\n"
    "    path = os.path.join(source, name)\n"
    "    (shutil.copytree if os.path.isdir(path) else shutil.copy2)(\n"
    "        path, os.path.join(target, name))\n"
    "os.chdir(start)\n"
    "os.execv(sys.argv[4], sys.argv[4:])\n"
)


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed kernel."""

    open_files: int = 4096
    file_size: int = 1 * 2**30
    disk: int = 2 * 2**30  # each writable tmpfs: the kernel's folder + HOME, and /tmp
    shared_memory: int = 256 * 2**20  # /dev/shm (multiprocessing's semaphores and buffers)
    # processes and threads: the kernel's cgroup (pids.max) where there is one, and watched
    tasks: int = 2048
    # each folder shared with the grader: its tmpfs size (as root), and watched (in all)
    exchange_bytes: int = 1 * 2**30


@dataclass(frozen=True)
class Layout:
    """The host folders of one kernel's run (all under ``root``).

    ``files`` holds the copy of the submission's folder, ``workdir`` and ``home`` are
    where the kernel runs and lives, ``exchange`` are shared with the grader (read-write),
    ``readable`` are extra files the kernel may read (the MNIST npz).
    """

    root: Path
    files: Path
    workdir: Path
    home: Path
    exchange: tuple[Path, ...] = ()
    readable: tuple[Path, ...] = ()


@dataclass(frozen=True)
class NoSandbox:
    """Run the kernel as an ordinary child process (only the grader's own bounds apply)."""

    name: str = "none"
    interrupt_mode: str = "signal"
    limits: Limits = field(default_factory=Limits)

    def wrap(self, command: list[str], env: dict[str, str], layout: Layout) -> list[str]:
        """The command unchanged; the submission's files are copied to its folder here."""
        if layout.files != layout.workdir:
            _copy_files(layout.files, layout.workdir)
        return list(command)

    def share(self, path: Path, root: Path) -> Path:
        """The path by which the kernel reads the file ``path``: the same."""
        return path

    def end(self) -> None:
        """Nothing to clean up after the kernel."""


@dataclass(frozen=True)
class BubblewrapSandbox:
    """Run the kernel inside ``bwrap`` (see the module docstring for what it sees)."""

    bwrap: str = "bwrap"
    prlimit: str | None = "prlimit"
    device: str = Device.CPU
    gpu_index: int | None = None
    limits: Limits = field(default_factory=Limits)
    name: str = "bubblewrap"
    interrupt_mode: str = "message"  # a signal to bwrap would not reach the kernel

    def wrap(self, command: list[str], env: dict[str, str], layout: Layout) -> list[str]:
        """``command`` (the kernel's argv) as an argv that runs it in the sandbox."""
        _write_identity(layout.root, layout.home)
        command = [kernel_python() if command[0] == sys.executable else command[0], *command[1:]]
        launch = [command[0], "-I", "-S", "-c", LAUNCHER, str(layout.files), str(layout.workdir),
                  str(layout.home), *command]
        return [*self._rlimits(), *self.bwrap_arguments(env, layout), "--", *launch]

    def _rlimits(self) -> list[str]:
        return _rlimits(self.prlimit, self.limits)

    def share(self, path: Path, root: Path) -> Path:
        """The path by which the kernel reads the file ``path`` (bound read-only): the same."""
        return path

    def end(self) -> None:
        """Nothing to clean up: the kernel's PID namespace ended with it."""

    def bwrap_arguments(self, env: dict[str, str], layout: Layout) -> list[str]:
        """Everything of the bwrap command line before ``--``."""
        args = [self.bwrap, "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID),
                "--gid", str(SANDBOX_UID), "--hostname", "sandbox", "--die-with-parent",
                "--new-session", "--cap-drop", "ALL", "--clearenv"]
        for key, value in sorted({**env, **({"TMPDIR": "/tmp"} if "TMPDIR" in env else {})}
                                 .items()):
            args += ["--setenv", key, value]  # a host TMPDIR does not exist inside
        for path in SYSTEM_DIRS:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        size = str(self.limits.disk)
        # /tmp first: a later bind (an environment or data set that lives under /tmp) must
        # stay visible on top of it, not be hidden by it
        args += ["--size", size, "--tmpfs", "/tmp"]
        for path in SYSTEM_ETC:
            args += ["--ro-bind-try", path, path]
        identity = layout.root / ".identity"
        args += ["--ro-bind", str(identity / "passwd"), "/etc/passwd",
                 "--ro-bind", str(identity / "group"), "/etc/group"]
        python_dirs = python_installation()
        for path in python_dirs:
            args += ["--ro-bind", path, path]
        system = [os.path.realpath(path) for path in SYSTEM_DIRS if os.path.isdir(path)]
        args += hide_packages([*python_dirs, *system], identity / "blocked.py")  # a system pip's
        # bwrap's /dev is a tmpfs as large as half the RAM: read-only, with a capped /dev/shm
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--size", str(self.limits.shared_memory), "--tmpfs", "/dev/shm",
                 "--remount-ro", "/dev",
                 "--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
        args += self._gpu_nodes()
        args += ["--size", size, "--tmpfs", str(layout.root),
                 "--dir", str(layout.workdir), "--dir", str(layout.home),
                 "--ro-bind", str(layout.files), str(layout.files)]
        for path in layout.exchange:
            args += ["--bind", str(path), str(path)]
        for path in layout.readable:
            args += ["--ro-bind", str(path), str(path)]
        # bwrap's own root is a tmpfs holding the mount points it made (the parents of every
        # bound folder): read-only, so nothing written there can pass for a file outside.
        args += ["--remount-ro", "/", "--chdir", str(layout.home)]
        return args

    def _gpu_nodes(self) -> list[str]:
        if self.device != Device.GPU:
            return []
        nodes = [*GPU_SHARED_NODES, f"/dev/nvidia{self.gpu_index or 0}"]
        return [arg for node in nodes for arg in ("--dev-bind-try", node, node)]


@dataclass(frozen=True)
class UserSandbox:
    """Run the kernel as the dedicated unprivileged account ``user`` (the grader is root).

    No namespaces: the kernel shares the machine's network, ``/tmp`` and process list. It
    cannot signal or inspect the grader (another uid), cannot raise its privileges
    (no-new-privs, no capabilities), owns only its working copy, HOME and the exchange
    folders, and reads nothing the permissions keep for root. Everything the account runs
    is killed when the kernel ends, so the account must not be used for anything else.
    """

    user: str
    uid: int
    gid: int
    # the interpreter the account runs (default: the grader's environment's, which the
    # account must be able to read; HW4GRADE_KERNEL_PYTHON names another)
    python: str = ""
    setpriv: str = "setpriv"
    prlimit: str | None = "prlimit"
    limits: Limits = field(default_factory=Limits)
    name: str = "user"
    interrupt_mode: str = "signal"  # setpriv and prlimit exec: the pid is the kernel's

    def wrap(self, command: list[str], env: dict[str, str], layout: Layout) -> list[str]:
        """``command`` as an argv that runs it as ``user``, over folders handed to it."""
        if self.uid == 0:
            raise SandboxUnavailable(f"the user {self.user} is root")
        self._hand_over(layout)
        python = self.python or kernel_python()
        command = [python if command[0] == sys.executable else command[0], *command[1:]]
        launch = [command[0], "-I", "-S", "-c", LAUNCHER, str(layout.files),
                  str(layout.workdir), str(layout.home), *command]
        kernel_env = {**env, "TMPDIR": str(layout.home / "tmp")}
        return [*_rlimits(self.prlimit, self.limits, processes=self.limits.tasks),
                self.setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all",
                "--pdeathsig=KILL", "--",  # dies with the grader, as bwrap's --die-with-parent
                shutil.which("env") or "/usr/bin/env", "-i",
                *(f"{key}={value}" for key, value in sorted(kernel_env.items())), *launch]

    def _hand_over(self, layout: Layout) -> None:
        """Let the account pass through ``root``, read the submission's files, and own its
        working folder, HOME and the exchange folders (connection file included)."""
        os.chmod(layout.root, 0o711)
        os.chmod(layout.files, 0o755)
        for folder, folders, files in os.walk(layout.files):
            for name in folders:
                os.chmod(os.path.join(folder, name), 0o755)
            for name in files:
                os.chmod(os.path.join(folder, name), 0o644)
        (layout.home / "tmp").mkdir(parents=True, exist_ok=True)
        for folder in (layout.workdir, layout.home, layout.home / "tmp", *layout.exchange):
            folder.mkdir(parents=True, exist_ok=True)
            os.chown(folder, self.uid, self.gid)
            os.chmod(folder, 0o700)
        for folder in layout.exchange:
            for entry in folder.iterdir():
                os.chown(entry, self.uid, self.gid, follow_symlinks=False)

    def share(self, path: Path, root: Path) -> Path:
        """A copy of ``path`` under ``root`` that the account may read (it cannot reach the
        grader's own caches)."""
        shared = root / "shared"
        shared.mkdir(mode=0o755, exist_ok=True)
        target = shared / path.name
        shutil.copyfile(path, target)
        os.chmod(target, 0o644)
        return target

    def end(self) -> None:
        """Kill every process of the account and remove what it left in the shared
        temporary folders."""
        if self.uid == 0:
            return
        for _ in range(3):  # a process may fork while the first ones die
            alive = [proc for proc in psutil.process_iter(["uids"])
                     if proc.info["uids"] and self.uid in proc.info["uids"]]
            for proc in alive:
                try:
                    proc.kill()
                except psutil.Error:
                    pass
            psutil.wait_procs(alive, timeout=5)
            if not alive:
                break
        for folder in SHARED_TEMP:
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                try:
                    if entry.stat(follow_symlinks=False).st_uid != self.uid:
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)
                except OSError:
                    pass


Sandbox = NoSandbox | BubblewrapSandbox | UserSandbox


def _rlimits(prlimit: str | None, limits: Limits, processes: int | None = None) -> list[str]:
    """``prlimit`` arguments setting the limits on open files, file size (and processes of
    the uid), core dumps off."""
    if not prlimit:
        return []
    return [prlimit, f"--nofile={limits.open_files}", f"--fsize={limits.file_size}",
            *([f"--nproc={processes}"] if processes else []), "--core=0", "--"]


def kernel_python() -> str:
    """The grader's interpreter by a path that stays valid inside the sandbox: its folder
    resolved (bound folders are real paths), the interpreter link itself kept (in a venv
    it is what makes Python find the venv's ``pyvenv.cfg`` and packages)."""
    folder = os.path.realpath(os.path.dirname(sys.executable))
    candidate = os.path.join(folder, os.path.basename(sys.executable))
    return candidate if os.path.exists(candidate) else sys.executable


def _interpreter_environment() -> str | None:
    """The venv the kernel's interpreter belongs to (real path), also when this process
    runs without ``site`` (``python -S``) and so does not know it is in one."""
    root = os.path.dirname(os.path.dirname(kernel_python()))
    return root if os.path.isfile(os.path.join(root, "pyvenv.cfg")) else None


def _copy_files(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(source.iterdir()):
        if entry.is_dir():  # a student's package (the grader wrote every entry: no links)
            shutil.copytree(entry, target / entry.name, dirs_exist_ok=True)
        else:
            shutil.copy2(entry, target / entry.name)


def _write_identity(root: Path, home: Path) -> None:
    """A passwd and group naming only the sandbox user, and the stand-in for hidden modules."""
    identity = root / ".identity"
    identity.mkdir(exist_ok=True)
    (identity / "passwd").write_text(
        f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:{home}:/bin/sh\n", encoding="utf-8")
    (identity / "group").write_text(f"sandbox:x:{SANDBOX_UID}:\n", encoding="utf-8")
    (identity / "blocked.py").write_text(BLOCKED_MODULE, encoding="utf-8")


def python_installation() -> list[str]:
    """Real paths of the Python installation and the environment's packages (no duplicates,
    none inside another)."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                  _interpreter_environment() or "",
                  *(sysconfig.get_paths().get(key, "") for key in ("purelib", "platlib"))}
    real = sorted({os.path.realpath(path) for path in candidates if path and os.path.isdir(path)})
    kept: list[str] = []
    for path in real:
        if not any(path == parent or path.startswith(parent + os.sep) for parent in kept):
            kept.append(path)
    return kept


@functools.lru_cache(maxsize=1)
def kernel_search_path() -> tuple[str, ...]:
    """The folders the kernel's interpreter imports from (its ``sys.path`` under the
    kernel's environment, which has no PYTHONPATH: ``.pth`` files of its environment
    included); empty when the interpreter cannot be asked."""
    try:
        run = subprocess.run([kernel_python(), "-c", SEARCH_PATH_CODE], capture_output=True,
                             text=True, timeout=60, check=False, env={})
        return tuple(json.loads(run.stdout)) if run.returncode == 0 else ()
    except (OSError, subprocess.SubprocessError, ValueError):
        return ()


def package_locations(name: str, search_path: list[str]) -> list[str]:
    """Real paths of every package folder or module file by which ``name`` can be imported
    from one of the folders ``search_path`` (all of them, not just the one that wins: a
    namespace portion or a shadowed copy is importable where the first is not), and of
    what ``importlib`` finds for it here."""
    spec = importlib.util.find_spec(name)
    found = list(spec.submodule_search_locations or []) if spec else []
    if spec and spec.origin and not spec.submodule_search_locations:
        found.append(spec.origin)
    for folder in filter(None, search_path):
        package, module = os.path.join(folder, name), os.path.join(folder, f"{name}.py")
        found += [path for path in (package, module) if os.path.exists(path)]
    return sorted({os.path.realpath(path) for path in found})


def hide_packages(bound: list[str], blocked_module: Path) -> list[str]:
    """bwrap arguments that replace every hidden package found under a bound folder by a
    read-only package whose import fails (a module file by the failing module)."""
    search_path = [*sys.path, *kernel_search_path(),
                   *(sysconfig.get_paths().get(key, "") for key in ("purelib", "platlib"))]
    args: list[str] = []
    for name in HIDDEN_PACKAGES:
        for location in package_locations(name, search_path):
            if not any(location.startswith(parent + os.sep) for parent in bound):
                continue  # not visible inside: nothing to hide
            if os.path.isdir(location):
                args += ["--size", "65536", "--tmpfs", location,
                         "--ro-bind", str(blocked_module), os.path.join(location, "__init__.py"),
                         "--remount-ro", location]
            else:
                args += ["--ro-bind", str(blocked_module), location]
    return args


@functools.lru_cache(maxsize=1)
def bubblewrap_problem() -> str | None:
    """None when bubblewrap can build a sandbox here; otherwise why not."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        run = subprocess.run(["bwrap", "--unshare-all", "--unshare-user", "--die-with-parent",
                              "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"],
                             capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        return f"bubblewrap cannot run here ({error})"
    if run.returncode != 0:
        detail = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "no message"
        return f"bubblewrap cannot create its namespaces here ({detail})"
    return None


def user_sandbox_problem(user: str) -> str | None:
    """None when kernels can run as the account ``user`` here; otherwise why not."""
    if os.geteuid() != 0:
        return f"running kernels as the user {user} needs the grader to run as root"
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        return f"there is no user {user} (the Gradescope setup.sh creates it)"
    if account.pw_uid == 0:
        return f"the user {user} is root"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    return None


def choose_sandbox(use_sandbox: bool, device: str = Device.CPU, gpu_index: int | None = None,
                   fallback_user: str | None = None) -> Sandbox:
    """The sandbox a kernel runs in: bubblewrap unless ``use_sandbox`` is False; where
    bubblewrap cannot run, the account ``fallback_user`` if one is given and usable.

    Raises ``SandboxUnavailable`` when a sandbox is asked for and none can run.
    """
    if not use_sandbox:
        return NoSandbox()
    problem = bubblewrap_problem()
    if problem and fallback_user:
        user_problem = user_sandbox_problem(fallback_user)
        if user_problem is None:
            account = pwd.getpwnam(fallback_user)
            return UserSandbox(user=fallback_user, uid=account.pw_uid, gid=account.pw_gid,
                               python=os.environ.get("HW4GRADE_KERNEL_PYTHON", ""),
                               setpriv=shutil.which("setpriv") or "setpriv",
                               prlimit=shutil.which("prlimit"))
        problem = f"{problem}, and {user_problem}"
    if problem:
        raise SandboxUnavailable(problem)
    return BubblewrapSandbox(bwrap=shutil.which("bwrap") or "bwrap",
                             prlimit=shutil.which("prlimit"), device=device,
                             gpu_index=gpu_index)
