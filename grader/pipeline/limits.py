"""A kernel's resource bounds: held by the Linux kernel where the machine allows it, and
watched by the grader always.

Three bounds (``BOUNDS``): memory, tasks (processes and threads) and the disk of the
exchange folders the kernel shares with the grader. Each is held one of two ways:

* by the kernel (``HELD_BY_KERNEL``): a cgroup per kernel caps its memory (anonymous memory, page
  cache, tmpfs, ``/dev/shm`` and memfd pages alike, as the memory controller charges them to
  the group that touched them) and its tasks; a size-capped tmpfs mounted on each exchange
  folder (the grader is root) caps what the kernel can write there, sub-folders included,
  and its pages are memory of the kernel's group too;
* by the watcher only (``WATCHED``): ``ResourceWatcher`` polls the kernel's process tree
  (resident memory, threads) and the exchange folders (recursively) and kills the kernel
  when one passes its bound. It runs in both cases, as a second line.

Cgroups are one interface (``Cgroups`` makes a ``KernelGroup`` per kernel) with three
implementations: ``CgroupV2`` (``memory.max``, ``memory.swap.max``, ``pids.max``),
``CgroupV1`` (the ``memory`` and ``pids`` controllers) and ``NoCgroups``. ``choose_cgroups``
is the one place that picks between them. Each kernel's group lives under the grader's own
group, in ``hw4grade/<grader pid>-<random>``; its launch joins it before anything else runs,
and the group is emptied and removed when the kernel ends. Groups (and exchange mounts) left
by a grader that died are removed the next time a grader chooses its cgroups.

``HW4GRADE_WATCH_ONLY=1`` turns the kernel-held bounds off (every bound is then watched).
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import shlex
import shutil
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

from grader.result import BOUNDS, CGROUP_KEY, HELD_BY_KERNEL, WATCHED

MEMORY, TASKS, DISK = BOUNDS  # the bounds, as the watcher names a hit
V1, V2, NONE = "v1", "v2", "none"
WATCH_ONLY_ENV = "HW4GRADE_WATCH_ONLY"
PARENT = "hw4grade"  # the grader's folder in each cgroup hierarchy
MOUNT_SOURCE = "hw4grade-"  # source name of an exchange tmpfs, followed by the grader's pid
GROUP_NAME = re.compile(r"^(\d+)-[0-9a-f]+$")
FULL_MARGIN = 4 * 2**20  # an exchange tmpfs with less free than this is full
ENTRY_BYTES = 4096  # the least a file or folder is counted for (many empty files fill a disk)
POLL_SECONDS = 0.1


# --------------------------------------------------------------------------- pure parts


@dataclass(frozen=True)
class Mount:
    """One line of ``/proc/self/mountinfo``."""

    point: str
    root: str
    fstype: str
    source: str
    super_options: tuple[str, ...]


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts listed in ``/proc/<pid>/mountinfo`` text (lines it cannot read skipped)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        if dash < 5 or len(fields) < dash + 4:
            continue
        mounts.append(Mount(point=_unescape(fields[4]), root=_unescape(fields[3]),
                            fstype=fields[dash + 1], source=_unescape(fields[dash + 2]),
                            super_options=tuple(fields[dash + 3].split(","))))
    return mounts


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """The group of each controller from ``/proc/<pid>/cgroup`` text; the cgroup v2 group
    is under the key ``""``."""
    groups: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(","):
            groups[controller] = parts[2]
    return groups


@dataclass(frozen=True)
class Located:
    """Where the grader's own groups are: the cgroup v2 one (``None`` when there is no v2
    hierarchy) and the v1 ones of the ``memory`` and ``pids`` controllers found."""

    v2: Path | None
    v2_top: Path | None
    v1: dict[str, Path]


def _group_folder(mount: Mount, group: str) -> Path | None:
    """The folder of ``group`` (as /proc/self/cgroup names it) under ``mount``."""
    root = mount.root.rstrip("/")
    if group != root and not group.startswith(root + "/"):
        return None  # the group is outside what this mount shows
    relative = group[len(root):].strip("/")
    return Path(mount.point, relative) if relative else Path(mount.point)


def locate(proc_cgroup: str, mountinfo: str) -> Located:
    """The grader's groups, from its ``/proc/self/cgroup`` and ``/proc/self/mountinfo``."""
    groups = parse_proc_cgroup(proc_cgroup)
    v2 = v2_top = None
    v1: dict[str, Path] = {}
    for mount in parse_mountinfo(mountinfo):
        if mount.fstype == "cgroup2" and "" in groups and v2 is None:
            v2, v2_top = _group_folder(mount, groups[""]), Path(mount.point)
        elif mount.fstype == "cgroup":
            for controller in (MEMORY, "pids"):
                if controller in mount.super_options and controller in groups \
                        and controller not in v1:
                    folder = _group_folder(mount, groups[controller])
                    if folder is not None:
                        v1[controller] = folder
    return Located(v2=v2, v2_top=v2_top, v1=v1)


def stale_groups(names: list[str], alive) -> list[str]:
    """The kernel groups among ``names`` whose grader (the pid the name starts with) is not
    ``alive(pid)``."""
    stale = []
    for name in names:
        match = GROUP_NAME.match(name)
        if match and not alive(int(match.group(1))):
            stale.append(name)
    return stale


def stale_mounts(mounts: list[Mount], alive) -> list[str]:
    """Exchange tmpfs mount points whose grader is not ``alive(pid)``."""
    stale = []
    for mount in mounts:
        match = re.fullmatch(re.escape(MOUNT_SOURCE) + r"(\d+)", mount.source)
        if mount.fstype == "tmpfs" and match and not alive(int(match.group(1))):
            stale.append(mount.point)
    return stale


def counter(text: str, name: str) -> int:
    """The value of ``name`` in a flat-keyed cgroup file (``key value`` lines); 0 if absent."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name and parts[1].isdigit():
            return int(parts[1])
    return 0


def enforcement(kind: str, held: frozenset[str]) -> dict[str, str]:
    """The record of how each bound was held, and the cgroup version used."""
    return {CGROUP_KEY: kind, **{bound: HELD_BY_KERNEL if bound in held else WATCHED
                                 for bound in BOUNDS}}


def weakest(first: dict[str, str], second: dict[str, str]) -> dict[str, str]:
    """Two records joined: a bound is held by the kernel only where both say so."""
    if not first:
        return dict(second)
    joined = dict(first)
    for bound in BOUNDS:
        if second.get(bound) != HELD_BY_KERNEL:
            joined[bound] = WATCHED
    return joined


# --------------------------------------------------------------------------- cgroup files


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def _pids_in(folder: Path) -> list[int]:
    return [int(line) for line in _read(folder / "cgroup.procs").split() if line.isdigit()]


def _empty_and_remove(folders: list[Path]) -> bool:
    """Kill every process of the groups ``folders`` and remove them; True when all went."""
    for folder in folders:
        if (folder / "cgroup.kill").exists():
            try:
                _write(folder / "cgroup.kill", "1")
            except OSError:
                pass
    deadline = time.monotonic() + 10
    remaining = [folder for folder in folders if folder.is_dir()]
    while remaining and time.monotonic() < deadline:
        for folder in remaining:
            for pid in _pids_in(folder):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        for folder in list(remaining):
            try:
                folder.rmdir()
                remaining.remove(folder)
            except FileNotFoundError:
                remaining.remove(folder)
            except OSError:
                pass  # dying processes still hold it
        if remaining:
            time.sleep(0.05)
    return not remaining


# --------------------------------------------------------------------------- the interface


class KernelGroup(Protocol):
    """The cgroup(s) of one kernel."""

    held: frozenset[str]  # the bounds this group holds (MEMORY, TASKS)

    def join_command(self, command: list[str]) -> list[str]:
        """``command`` prefixed so that it joins the group before it runs."""

    def hit(self) -> str | None:
        """The bound the kernel stopped (MEMORY after an out-of-memory kill, TASKS after a
        refused fork or thread), or None."""

    def kill(self) -> None:
        """Kill every process in the group."""

    def close(self) -> None:
        """Kill every process in the group and remove the group."""


class Cgroups(Protocol):
    """How kernel groups are made on this machine."""

    kind: str  # V1, V2 or NONE
    held: frozenset[str]
    problem: str | None  # why no cgroup (NONE only)

    def create(self, memory: int, tasks: int) -> KernelGroup:
        """A new group for one kernel with these limits (OSError when it cannot be made)."""


@dataclass(frozen=True)
class NoGroup:
    """A kernel without a group: nothing is held by the kernel."""

    held: frozenset[str] = frozenset()

    def join_command(self, command: list[str]) -> list[str]:
        """``command`` unchanged."""
        return list(command)

    def hit(self) -> str | None:
        """Nothing is known."""
        return None

    def kill(self) -> None:
        """Nothing to kill."""

    def close(self) -> None:
        """Nothing to remove."""


@dataclass(frozen=True)
class NoCgroups:
    """No cgroup can be had here (``problem`` says why)."""

    problem: str | None = None
    kind: str = NONE
    held: frozenset[str] = frozenset()

    def create(self, memory: int, tasks: int) -> KernelGroup:
        """A group that holds nothing."""
        return NoGroup()


def _join_prefix(procs_files: list[Path], command: list[str]) -> list[str]:
    """``sh -c`` that writes its pid into every ``cgroup.procs`` and then becomes
    ``command``; when a write fails it exits 125 instead of running outside the group."""
    script = "".join(f"echo $$ > {shlex.quote(str(path))} || exit 125; "
                     for path in procs_files) + 'exec "$@"'
    return [shutil.which("sh") or "/bin/sh", "-c", script, "hw4grade-join", *command]


def _new_name() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class V2Group:
    """A kernel's cgroup v2 group."""

    folder: Path
    held: frozenset[str] = frozenset({MEMORY, TASKS})

    def join_command(self, command: list[str]) -> list[str]:
        """``command`` joining the group first."""
        return _join_prefix([self.folder / "cgroup.procs"], command)

    def hit(self) -> str | None:
        """MEMORY after an out-of-memory kill in the group, TASKS after a refused fork."""
        if counter(_read(self.folder / "memory.events"), "oom_kill") > 0:
            return MEMORY
        if counter(_read(self.folder / "pids.events"), "max") > 0:
            return TASKS
        return None

    def kill(self) -> None:
        """Kill everything in the group."""
        try:
            _write(self.folder / "cgroup.kill", "1")
        except OSError:
            for pid in _pids_in(self.folder):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def close(self) -> None:
        """Empty the group and remove it."""
        _empty_and_remove([self.folder])


@dataclass(frozen=True)
class CgroupV2:
    """Kernel groups in the cgroup v2 hierarchy, under ``parent``."""

    parent: Path
    kind: str = V2
    held: frozenset[str] = frozenset({MEMORY, TASKS})
    problem: str | None = None

    def create(self, memory: int, tasks: int) -> KernelGroup:
        """A new group capping memory (no swap) and tasks; the whole group is killed on
        an out-of-memory kill."""
        folder = self.parent / _new_name()
        folder.mkdir()
        try:
            _write(folder / "memory.max", str(memory))
            if (folder / "memory.swap.max").exists():
                _write(folder / "memory.swap.max", "0")
            if (folder / "memory.oom.group").exists():
                _write(folder / "memory.oom.group", "1")
            _write(folder / "pids.max", str(tasks))
        except OSError:
            _empty_and_remove([folder])
            raise
        return V2Group(folder)


@dataclass(frozen=True)
class V1Group:
    """A kernel's groups in the cgroup v1 ``memory`` and ``pids`` hierarchies."""

    memory: Path | None
    pids: Path | None
    held: frozenset[str] = frozenset()

    def _folders(self) -> list[Path]:
        return [folder for folder in (self.memory, self.pids) if folder is not None]

    def join_command(self, command: list[str]) -> list[str]:
        """``command`` joining both groups first."""
        return _join_prefix([folder / "cgroup.procs" for folder in self._folders()], command)

    def hit(self) -> str | None:
        """MEMORY after an out-of-memory kill in the group, TASKS after a refused fork."""
        if self.memory and counter(_read(self.memory / "memory.oom_control"), "oom_kill") > 0:
            return MEMORY
        if self.pids and counter(_read(self.pids / "pids.events"), "max") > 0:
            return TASKS
        return None

    def kill(self) -> None:
        """Kill everything in the groups."""
        for folder in self._folders():
            for pid in _pids_in(folder):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def close(self) -> None:
        """Empty the groups and remove them."""
        _empty_and_remove(self._folders())


@dataclass(frozen=True)
class CgroupV1:
    """Kernel groups in the cgroup v1 hierarchies, under ``memory`` and/or ``pids``."""

    memory: Path | None
    pids: Path | None
    kind: str = V1
    problem: str | None = None

    @property
    def held(self) -> frozenset[str]:
        """MEMORY with a memory hierarchy, TASKS with a pids one."""
        return frozenset({MEMORY} if self.memory else set()) | \
            frozenset({TASKS} if self.pids else set())

    def create(self, memory: int, tasks: int) -> KernelGroup:
        """New groups capping memory (and memory plus swap, where swap is accounted) and
        tasks."""
        name = _new_name()
        made: list[Path] = []
        try:
            if self.memory:
                made.append(self.memory / name)
                made[-1].mkdir()
                _write(made[-1] / "memory.limit_in_bytes", str(memory))
                if (made[-1] / "memory.memsw.limit_in_bytes").exists():
                    _write(made[-1] / "memory.memsw.limit_in_bytes", str(memory))
            if self.pids:
                made.append(self.pids / name)
                made[-1].mkdir()
                _write(made[-1] / "pids.max", str(tasks))
        except OSError:
            _empty_and_remove(made)
            raise
        return V1Group(memory=self.memory / name if self.memory else None,
                       pids=self.pids / name if self.pids else None, held=self.held)


def _clean_stale(parent: Path) -> None:
    try:
        names = [entry.name for entry in os.scandir(parent) if entry.is_dir()]
    except OSError:
        return
    _empty_and_remove([parent / name for name in stale_groups(names, psutil.pid_exists)])


def _prepare_parent(folder: Path, v2: bool) -> Path:
    """``folder/hw4grade``, made (with the memory and pids controllers enabled for its
    children on v2) and cleared of stale groups; OSError when that cannot be done."""
    parent = folder / PARENT
    if v2:
        _write(folder / "cgroup.subtree_control", "+memory +pids")
    parent.mkdir(exist_ok=True)
    if v2:
        _write(parent / "cgroup.subtree_control", "+memory +pids")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"{parent} is not writable")
    _clean_stale(parent)
    return parent


def _try_v2(located: Located) -> Cgroups | str:
    controllers = _read(located.v2 / "cgroup.controllers").split()
    if not {MEMORY, "pids"} <= set(controllers):
        return "the cgroup v2 hierarchy offers no memory and pids controllers"
    problems = []
    for folder in dict.fromkeys([located.v2, located.v2_top]):  # own group, then the top
        try:
            return CgroupV2(parent=_prepare_parent(folder, v2=True))
        except OSError as error:
            problems.append(f"{folder}: {error.strerror or error}")
    return "cannot make cgroup v2 groups (" + "; ".join(problems) + ")"


def _try_v1(located: Located) -> Cgroups | str:
    parents: dict[str, Path] = {}
    problems = []
    for controller, folder in located.v1.items():
        try:
            parents[controller] = _prepare_parent(folder, v2=False)
        except OSError as error:
            problems.append(f"{folder}: {error.strerror or error}")
    if not parents:
        return "cannot make cgroup v1 groups (" + "; ".join(problems) + ")"
    return CgroupV1(memory=parents.get(MEMORY), pids=parents.get("pids"))


@functools.lru_cache(maxsize=1)
def choose_cgroups() -> Cgroups:
    """The cgroups kernels get on this machine: v2 where its hierarchy has the memory and
    pids controllers and a group can be made, else v1's memory and pids controllers, else
    none (with the reason). Chosen once per process; stale groups are cleaned on the way."""
    if os.environ.get(WATCH_ONLY_ENV, "") not in ("", "0"):
        return NoCgroups(problem=f"{WATCH_ONLY_ENV} is set")
    try:
        located = locate(Path("/proc/self/cgroup").read_text(encoding="utf-8"),
                         Path("/proc/self/mountinfo").read_text(encoding="utf-8"))
    except OSError:
        return NoCgroups(problem="no /proc/self/cgroup (not Linux)")
    problems = []
    for usable, attempt in ((located.v2 is not None, _try_v2), (bool(located.v1), _try_v1)):
        if usable:
            chosen = attempt(located)
            if not isinstance(chosen, str):
                return chosen
            problems.append(chosen)
    return NoCgroups(problem="; ".join(problems) or "no cgroup hierarchy is mounted")


def open_group(cgroups: Cgroups, memory: int, tasks: int) -> KernelGroup:
    """A group for one kernel, or one that holds nothing when it cannot be made."""
    try:
        return cgroups.create(memory, tasks)
    except OSError:
        return NoGroup()


# --------------------------------------------------------------------------- exchange disk

_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MNT_DETACH = 2, 4, 8, 2


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def mount_exchange(folders: tuple[Path, ...], size: int) -> tuple[Path, ...]:
    """Mount a tmpfs of ``size`` bytes on each of ``folders`` (same owner and mode), so the
    kernel can write no more there and what it writes is memory of its own group. Only as
    root and unless ``HW4GRADE_WATCH_ONLY`` is set; returns the folders mounted."""
    if os.geteuid() != 0 or os.environ.get(WATCH_ONLY_ENV, "") not in ("", "0"):
        return ()
    _clean_stale_mounts()
    mounted = []
    source = f"{MOUNT_SOURCE}{os.getpid()}".encode()
    for folder in folders:
        info = folder.stat()
        options = f"size={size},mode={info.st_mode & 0o7777:o},uid={info.st_uid}," \
                  f"gid={info.st_gid}".encode()
        flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
        if _libc().mount(source, str(folder).encode(), b"tmpfs", flags, options) != 0:
            unmount(tuple(mounted))
            return ()
        mounted.append(folder)
    return tuple(mounted)


def unmount(folders: tuple[Path, ...]) -> None:
    """Detach the exchange tmpfs mounted on ``folders`` (their files go with them)."""
    for folder in folders:
        _libc().umount2(str(folder).encode(), _MNT_DETACH)


def _clean_stale_mounts() -> None:
    try:
        mounts = parse_mountinfo(Path("/proc/self/mountinfo").read_text(encoding="utf-8"))
    except OSError:
        return
    unmount(tuple(Path(point) for point in stale_mounts(mounts, psutil.pid_exists)))


def folder_bytes(folder: Path, stop_at: int | None = None) -> int:
    """What the files and folders under ``folder`` take (allocated bytes, at least
    ``ENTRY_BYTES`` each), sub-folders included, links not followed; counting stops past
    ``stop_at``. 0 when the folder is gone."""
    total = 0
    pending = [folder]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    try:
                        info = entry.stat(follow_symlinks=False)
                        total += max(info.st_blocks * 512, ENTRY_BYTES)
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(Path(entry.path))
                    except OSError:
                        continue
                    if stop_at is not None and total > stop_at:
                        return total
        except OSError:
            continue
    return total


def tmpfs_full(folder: Path) -> bool:
    """True when the tmpfs on ``folder`` has (almost) no room left."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < FULL_MARGIN


def empty_folder(folder: Path) -> None:
    """Remove everything in ``folder`` (links themselves, never what they lead to)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except OSError:
                pass


# --------------------------------------------------------------------------- the watcher


class ResourceWatcher(threading.Thread):
    """Kill a kernel process (and its children, and its group) whose memory, number of
    tasks or files in the folders it shares with the grader pass their limits, or whose
    group reports that the kernel stopped one of its bounds."""

    def __init__(self, pid: int, limit: int, tasks: int | None = None,
                 exchange: tuple[Path, ...] = (), exchange_bytes: int | None = None,
                 group: KernelGroup | None = None, mounted: tuple[Path, ...] = ()):
        super().__init__(daemon=True, name="hw4grade-watcher")
        self.pid, self.limit = pid, limit
        self.tasks, self.exchange, self.exchange_bytes = tasks, exchange, exchange_bytes
        self.group = group or NoGroup()
        self.mounted = mounted
        self.peak = 0
        self._exceeded: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def exceeded(self) -> str | None:
        """The bound that was hit (MEMORY, TASKS or DISK), by the watcher's count or by the
        kernel's group, or None."""
        return self._exceeded or self.group.hit()

    def run(self) -> None:
        polls = 0
        while not self._stop.wait(POLL_SECONDS):
            polls += 1
            if self.poll(disk=polls % 5 == 0) is not None or self._gone():
                return

    def _gone(self) -> bool:
        return not psutil.pid_exists(self.pid)

    def poll(self, disk: bool = True) -> str | None:
        """Check every bound once now; on a hit, kill the kernel and return the bound."""
        with self._lock:
            if self._exceeded:
                return self._exceeded
            try:
                process = psutil.Process(self.pid)
                tree = [process, *process.children(recursive=True)]
            except psutil.Error:
                tree = []
            hit = self.group.hit() or self._count(tree) or (self._disk() if disk else None)
            if hit:
                self._exceeded = hit
                for proc in tree:  # the sandbox's init first: it ends them all
                    try:
                        proc.kill()
                    except psutil.Error:
                        pass
                self.group.kill()
            return hit

    def _count(self, tree: list[psutil.Process]) -> str | None:
        try:
            rss = sum(proc.memory_info().rss for proc in tree)
            tasks = sum(proc.num_threads() for proc in tree) if self.tasks else 0
        except psutil.Error:
            return None
        self.peak = max(self.peak, rss)
        if rss > self.limit:
            return MEMORY
        if self.tasks and tasks > self.tasks:
            return TASKS
        return None

    def _disk(self) -> str | None:
        if any(tmpfs_full(folder) for folder in self.mounted):
            return DISK
        watched = [folder for folder in self.exchange if folder not in self.mounted]
        if self.exchange_bytes and watched:
            used = 0
            for folder in watched:
                used += folder_bytes(folder, stop_at=self.exchange_bytes - used)
                if used > self.exchange_bytes:
                    return DISK
        return None

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
