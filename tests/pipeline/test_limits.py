"""Resource bounds held by the kernel: the choice of cgroup (pure parts, on real file
contents), the watcher's disk count, and what a result says about them.

The hostile notebooks that these bounds stop are graded in ``test_limits_batch.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import psutil
import pytest

from grader.pipeline import limits
from grader.pipeline.sandbox import bubblewrap_problem
from grader.result import SubmissionResult

# A Debian VM with the cgroup v1 controllers mounted and an empty v2 hierarchy beside them
# (the machine CI runs on); the grader's memory group is nested, its pids group the root.
HYBRID_CGROUP = """\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/3a9a7eb53e93087578897a2e3cb52700
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
"""
HYBRID_MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683652k
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
# Ubuntu 22.04 desktop: cgroup v2 only, the shell in a systemd session scope.
UNIFIED_CGROUP = "0::/user.slice/user-1000.slice/session-3.scope\n"
UNIFIED_MOUNTINFO = """\
24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 \
rw,nsdelegate,memory_recursiveprot
"""
# A Docker container with a private cgroup namespace (v2): its own group is the root.
CONTAINER_CGROUP = "0::/\n"
CONTAINER_MOUNTINFO = """\
612 611 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate
"""
# A Docker container on a v1 host without a cgroup namespace: the mount shows only the
# container's own group, which /proc/self/cgroup names by its host path.
DOCKER_V1_CGROUP = """\
11:pids:/docker/8d1f0c2b
5:memory:/docker/8d1f0c2b
"""
DOCKER_V1_MOUNTINFO = """\
720 719 0:36 /docker/8d1f0c2b /sys/fs/cgroup/pids ro,nosuid,nodev,noexec,relatime master:20 \
- cgroup cgroup rw,pids
725 719 0:32 /docker/8d1f0c2b /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime \
master:15 - cgroup cgroup rw,memory
"""


def test_the_hybrid_machine_offers_v1_memory_and_pids_and_an_empty_v2():
    located = limits.locate(HYBRID_CGROUP, HYBRID_MOUNTINFO)
    assert located.v1 == {
        "memory": Path("/sys/fs/cgroup/memory/process_api/3a9a7eb53e93087578897a2e3cb52700"),
        "pids": Path("/sys/fs/cgroup/pids")}
    assert located.v2 == located.v2_top == Path("/sys/fs/cgroup/unified")


def test_a_unified_machine_offers_the_grader_s_own_v2_group():
    located = limits.locate(UNIFIED_CGROUP, UNIFIED_MOUNTINFO)
    assert located.v1 == {}
    assert located.v2 == Path("/sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope")
    assert located.v2_top == Path("/sys/fs/cgroup")


def test_containers_see_their_own_group_at_the_mount_point():
    assert limits.locate(CONTAINER_CGROUP, CONTAINER_MOUNTINFO).v2 == Path("/sys/fs/cgroup")
    located = limits.locate(DOCKER_V1_CGROUP, DOCKER_V1_MOUNTINFO)
    assert located.v1 == {"memory": Path("/sys/fs/cgroup/memory"),
                          "pids": Path("/sys/fs/cgroup/pids")}
    assert located.v2 is None


def test_no_cgroup_mounted_means_nothing_located():
    located = limits.locate(HYBRID_CGROUP, "22 27 0:21 / /proc rw,relatime - proc proc rw\n")
    assert located == limits.Located(v2=None, v2_top=None, v1={})


def test_a_group_outside_the_mount_is_not_used():
    outside = "5:memory:/elsewhere\n"
    assert limits.locate(outside, DOCKER_V1_MOUNTINFO).v1 == {}


def test_mountinfo_escapes_and_optional_fields():
    line = r"90 30 0:50 / /tmp/hw4grade-x/with\040space rw shared:1 master:2 - tmpfs hw4grade-42 rw"
    (mount,) = limits.parse_mountinfo(line + "\nnot a mount line\n")
    assert mount.point == "/tmp/hw4grade-x/with space"
    assert (mount.fstype, mount.source) == ("tmpfs", "hw4grade-42")


def test_stale_groups_and_mounts_are_those_of_dead_graders():
    names = ["123-0af3", "456-99", "not-a-group", "789-zz"]
    assert limits.stale_groups(names, alive=lambda pid: pid == 456) == ["123-0af3"]
    mounts = limits.parse_mountinfo(
        "1 2 0:1 / /tmp/a rw - tmpfs hw4grade-123 rw\n"
        "3 2 0:2 / /tmp/b rw - tmpfs hw4grade-456 rw\n"
        "4 2 0:3 / /tmp/c rw - tmpfs tmpfs rw\n"
        "5 2 0:4 / /tmp/d rw - ext4 hw4grade-123 rw\n")
    assert limits.stale_mounts(mounts, alive=lambda pid: pid == 456) == ["/tmp/a"]


def test_counters_of_real_cgroup_files():
    oom_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"
    memory_events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 0\noom_group_kill 0\n"
    assert limits.counter(oom_control, "oom_kill") == 1
    assert limits.counter(memory_events, "oom_kill") == 0
    assert limits.counter(memory_events, "max") == 12
    assert limits.counter("max 3\n", "max") == 3
    assert limits.counter("", "max") == 0


def test_the_enforcement_record_keeps_the_weakest_of_every_kernel():
    strong = limits.enforcement(limits.V1, frozenset(limits.BOUNDS))
    assert strong == {"cgroup": "v1", "memory": "kernel", "tasks": "kernel", "disk": "kernel"}
    partial = limits.enforcement(limits.V1, frozenset({limits.MEMORY}))
    joined = limits.weakest(limits.weakest({}, strong), partial)
    assert joined == {"cgroup": "v1", "memory": "kernel", "tasks": "watched",
                      "disk": "watched"}


def test_results_say_which_bounds_were_held_and_which_watched():
    result = SubmissionResult("a.ipynb", None, "0", "r", "quick", 0, "cpu")
    assert result.enforcement_text() == ""
    result.enforcement = limits.enforcement(limits.NONE, frozenset())
    assert result.enforcement_text() == "memory, tasks, disk only watched (no cgroup)"
    result.enforcement = limits.enforcement(limits.V1, frozenset({limits.MEMORY, limits.TASKS}))
    assert result.enforcement_text() == \
        "memory, tasks held by the kernel; disk only watched (cgroup v1)"
    again = SubmissionResult.from_dict(result.to_dict())
    assert again.enforcement == result.enforcement
    older = result.to_dict()
    del older["enforcement"]  # a result written before the field existed still loads
    assert SubmissionResult.from_dict(older).enforcement == {}


def test_folder_bytes_counts_sub_folders_without_following_links(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big.bin").write_bytes(b"\1" * (8 << 20))
    shared = tmp_path / "shared"
    deep = shared / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "fill.bin").write_bytes(b"\1" * (3 << 20))
    (shared / "link").symlink_to(outside)
    used = limits.folder_bytes(shared)
    assert 3 << 20 <= used < 4 << 20
    assert limits.folder_bytes(shared, stop_at=1 << 20) > 1 << 20
    assert limits.folder_bytes(tmp_path / "missing") == 0
    limits.empty_folder(shared)
    assert os.listdir(shared) == [] and (outside / "big.bin").exists()


def test_watch_only_turns_the_kernel_held_bounds_off(monkeypatch, tmp_path):
    monkeypatch.setenv(limits.WATCH_ONLY_ENV, "1")
    limits.choose_cgroups.cache_clear()
    try:
        chosen = limits.choose_cgroups()
        assert chosen.kind == limits.NONE and limits.WATCH_ONLY_ENV in chosen.problem
        assert limits.mount_exchange((tmp_path,), 2**20) == ()
    finally:
        limits.choose_cgroups.cache_clear()


CGROUPS = limits.choose_cgroups()
needs_bwrap = pytest.mark.skipif(
    bubblewrap_problem() is not None and not os.environ.get("CI"),
    reason=f"bubblewrap cannot run here: {bubblewrap_problem()}")
needs_cgroups = pytest.mark.skipif(
    CGROUPS.kind == limits.NONE and not os.environ.get("CI"),
    reason=f"no cgroup can be made here: {CGROUPS.problem}")

MEMFD_HOG = """
import os
fd = os.memfd_create("hog")
for _ in range(300):
    os.write(fd, b"\\1" * (1 << 20))
print("held 300 MiB")
"""

THREADS = """
import threading, time
started = 0
try:
    for _ in range(200):
        threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
        started += 1
finally:
    print(started)
"""


def in_group(group: limits.KernelGroup, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a Python that joins ``group`` before it starts."""
    command = group.join_command([sys.executable, "-I", "-c", code])
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def group_folders(group: limits.KernelGroup) -> list[Path]:
    """The folders of a real group (one per hierarchy)."""
    fields = [getattr(group, name, None) for name in ("folder", "memory", "pids")]
    return [folder for folder in fields if isinstance(folder, Path)]


@needs_cgroups
def test_a_group_holds_memfd_memory_and_tasks_and_goes_away():
    """memfd pages are charged to the group and stop the process at the limit; the tasks
    limit refuses threads; ``hit`` says which bound the kernel enforced; ``close`` leaves
    no group behind."""
    assert CGROUPS.held == frozenset({limits.MEMORY, limits.TASKS})
    group = CGROUPS.create(memory=100 * 2**20, tasks=20)
    folders = group_folders(group)
    assert folders and all(folder.is_dir() for folder in folders)
    try:
        assert group.hit() is None
        threads = in_group(group, THREADS)
        assert "can't start new thread" in threads.stderr
        assert int(threads.stdout) < 20
        assert group.hit() == limits.TASKS
    finally:
        group.close()
    assert not any(folder.exists() for folder in folders)

    group = CGROUPS.create(memory=100 * 2**20, tasks=20)
    try:
        hog = in_group(group, MEMFD_HOG)
        assert hog.returncode == -signal.SIGKILL and "held" not in hog.stdout
        assert group.hit() == limits.MEMORY
    finally:
        group.close()
    outside = subprocess.run([sys.executable, "-I", "-c", MEMFD_HOG], capture_output=True,
                             text=True, timeout=120, check=False)
    assert "held 300 MiB" in outside.stdout  # the limit was the group's, not the machine's


@needs_cgroups
def test_a_launch_that_cannot_join_its_group_does_not_run(tmp_path):
    group = CGROUPS.create(memory=100 * 2**20, tasks=20)
    group.close()  # gone before the launch
    marker = tmp_path / "ran"
    run = in_group(group, f"open({str(marker)!r}, 'w').close()")
    assert run.returncode == 125 and not marker.exists()


@needs_cgroups
def test_groups_of_a_dead_grader_are_removed(tmp_path):
    """A grader killed with its kernel's group still there: the next choice removes it and
    kills what was left in it."""
    script = ("import sys, subprocess\n"
              "from grader.pipeline import limits\n"
              "group = limits.choose_cgroups().create(2**30, 100)\n"
              "sleeper = [sys.executable, '-c', 'import time; time.sleep(300)']\n"
              "command = group.join_command(sleeper)\n"
              "child = subprocess.Popen(command, start_new_session=True, "
              "stdout=subprocess.DEVNULL, "
              "stderr=subprocess.DEVNULL)\n"
              "print(child.pid, flush=True)\n"
              "import os; os._exit(0)\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True, env={**os.environ})
    orphan = psutil.Process(int(run.stdout.split()[0]))
    assert orphan.is_running()
    limits.choose_cgroups.cache_clear()
    try:
        limits.choose_cgroups()
    finally:
        limits.choose_cgroups.cache_clear()
    orphan.wait(timeout=15)
    assert not left_behind()


def left_behind() -> list[Path]:
    """Groups whose grader is dead, in every hierarchy this machine offers."""
    parents = [getattr(CGROUPS, name, None) for name in ("parent", "memory", "pids")]
    found = []
    for parent in filter(None, parents):
        names = [entry.name for entry in os.scandir(parent) if entry.is_dir()]
        found += [parent / name for name in limits.stale_groups(names, psutil.pid_exists)]
    return found


# --------------------------------------------------------------------------- real batches

ROOT = Path(__file__).resolve().parents[2]
HONEST = ROOT / "examples" / "submissions" / "alice.ipynb"
MEMORY_LIMIT = 2 * 2**30  # TensorFlow and MNIST need more than 1 GiB of the group's memory

MEMFD_CELL = """
import os
held = []
for _ in range(5):  # 2.5 GiB that no process maps, 512 MiB a memfd (under the file size limit)
    held.append(os.memfd_create("hog"))
    for _ in range(8):
        os.write(held[-1], b"\\1" * (64 << 20))
raise RuntimeError("ESCAPED: 2.5 GiB held in memfds")
"""

TMP_FILL_CELL = """
for number in range(31):  # 1.94 GiB on the kernel's /tmp tmpfs (2 GiB), 64 MiB a file
    with open(f"/tmp/fill-{number}.bin", "wb") as stream:
        stream.write(b"\\1" * (64 << 20))
raise RuntimeError("ESCAPED: 1.94 GiB written to /tmp")
"""

# Anonymous memory (file pages can be reclaimed) plus /tmp stay 150 MiB under the limit;
# only the pages in /dev/shm
# (250 MiB, under its own cap) take the kernel past it.
SHM_FILL_CELL = """
import re
with open("/proc/self/status") as stream:
    resident = int(re.search(r"RssAnon:\\s+(\\d+) kB", stream.read()).group(1)) << 10
room = MEMORY_LIMIT - resident - (150 << 20)
with open("/tmp/fill.bin", "wb") as stream:
    while room > 0:
        stream.write(b"\\1" * min(room, 64 << 20))
        room -= 64 << 20
with open("/dev/shm/fill.bin", "wb") as stream:
    for _ in range(25):
        stream.write(b"\\1" * (10 << 20))
        stream.flush()
raise RuntimeError("ESCAPED: /dev/shm was not counted")
""".replace("MEMORY_LIMIT", str(MEMORY_LIMIT))

FORK_BOMB_CELL = """
import os, time
first = os.getpid()
for _ in range(12):  # 4096 processes if nothing stops it
    try:
        os.fork()
    except OSError:
        pass
time.sleep(10)
if os.getpid() != first:
    os._exit(0)
raise RuntimeError("ESCAPED: the fork bomb ran to its end")
"""

THREAD_BOMB_CELL = """
import threading, time
for _ in range(5000):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
raise RuntimeError("ESCAPED: 5000 threads")
"""

# The kernel finds its exchange folder next to its working folder (grade_one's layout).
EXCHANGE_FILL_CELL = """
import os
root = os.path.dirname(os.getcwd())
probe = next(name for name in os.listdir(root) if name.startswith("probe"))
folder = os.path.join(root, probe, "deep", "deeper")
os.makedirs(folder)
for number in range(FILES):  # 64 MiB a file, each under the file-size limit
    with open(os.path.join(folder, f"fill-{number}.bin"), "wb") as stream:
        stream.write(b"\\1" * (64 << 20))
raise RuntimeError("ESCAPED: filled the exchange folder")
"""


def hostile(*cells: str) -> nbformat.NotebookNode:
    """The honest notebook with ``cells`` appended."""
    notebook = nbformat.read(HONEST, as_version=4)
    notebook.cells.extend(nbformat.v4.new_code_cell(source) for source in cells)
    return notebook


def run_hw4grade(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``hw4grade ARGS`` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True,
                          text=True, timeout=1500, env={**os.environ, **(env or {})},
                          check=False)


def stale_exchange_mounts() -> list[str]:
    """Exchange tmpfs of graders that are gone."""
    mounts = limits.parse_mountinfo(Path("/proc/self/mountinfo").read_text(encoding="utf-8"))
    return limits.stale_mounts(mounts, psutil.pid_exists)


def last_cells(result: dict, count: int) -> list[dict]:
    """The records of the notebook's last ``count`` cells (the appended attacks)."""
    return result["cells"][-count:]


@needs_bwrap
@needs_cgroups
@pytest.mark.usefixtures("mnist_dir")
def test_kernel_held_bounds_stop_a_hostile_batch(tmp_path):
    """memfd, /tmp and /dev/shm hogs under a 2 GiB limit, a fork bomb, a thread bomb and a
    sub-folder filler of the exchange folder are each stopped and reported against their
    cell as the limit they hit; the honest notebook in the same batch keeps 90/90, every
    result says the bounds were held by the kernel, and no group or mount is left."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    shutil.copy(HONEST, subs / "victim.ipynb")
    nbformat.write(hostile(MEMFD_CELL, TMP_FILL_CELL, SHM_FILL_CELL), subs / "memory.ipynb")
    nbformat.write(hostile(FORK_BOMB_CELL, THREAD_BOMB_CELL), subs / "tasks.ipynb")
    nbformat.write(hostile(EXCHANGE_FILL_CELL.replace("FILES", "24")), subs / "disk.ipynb")
    run = run_hw4grade("grade", str(subs), "--out", str(out), "--seed", "5", "--workers", "2",
                       "--memory-limit", str(MEMORY_LIMIT))
    assert run.returncode == 0, run.stderr[-3000:]
    results = {path.stem: json.loads(path.read_text())
               for path in (out / "results").glob("*.json")}
    assert set(results) == {"victim", "memory", "tasks", "disk"}

    def points(name: str) -> dict[str, float]:
        return {item["id"]: item["points"] for item in results[name]["items"]}

    assert results["victim"]["score"] == 90 and results["victim"]["error"] is None, \
        ([item for item in results["victim"]["items"] if item["points"] < item["max_points"]],
         [cell for cell in results["victim"]["cells"] if cell["status"] != "ok"])
    victim = {key: value for key, value in points("victim").items() if key != "runs_clean"}
    # 4,096 forks of a kernel holding TensorFlow pass the memory limit (page tables) or the
    # tasks limit, whichever comes first: both are held by the kernel
    either = {"ProcessLimit", "MemoryLimit"}
    expected = {"memory": [{"MemoryLimit"}] * 3, "tasks": [either, {"ProcessLimit"}],
                "disk": [{"DiskLimit"}]}
    for name, limits_hit in expected.items():
        cells = last_cells(results[name], len(limits_hit))
        assert all(cell["error_name"] in hit for cell, hit in zip(cells, limits_hit)), \
            (name, cells)
        assert {k: v for k, v in points(name).items() if k != "runs_clean"} == victim, name
        assert points(name)["runs_clean"] == 0
    held = "disk" if os.geteuid() == 0 else None
    for name, result in results.items():
        record = result["enforcement"]
        assert record["memory"] == record["tasks"] == "kernel", (name, record)
        assert record["cgroup"] == CGROUPS.kind
        if held:
            assert record["disk"] == "kernel"
    page = (out / "feedback" / "victim.md").read_text()
    assert "held by the kernel" in page
    assert not left_behind()
    assert not stale_exchange_mounts()


@needs_bwrap
@pytest.mark.usefixtures("mnist_dir")
def test_without_cgroups_the_bounds_are_watched_and_say_so(tmp_path):
    """With the kernel-held bounds off, the watcher still finds 1.2 GiB written into a
    sub-folder of the exchange folder, and the result says every bound was only watched."""
    notebook = tmp_path / "disk.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell(EXCHANGE_FILL_CELL.replace("FILES", "19"))]), notebook)
    run = run_hw4grade("check", str(notebook), "--format", "json",
                       env={limits.WATCH_ONLY_ENV: "1"})
    assert run.returncode in (0, 1), run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["enforcement"] == {"cgroup": "none", "memory": "watched",
                                     "tasks": "watched", "disk": "watched"}
    assert result["cells"][-1]["error_name"] == "DiskLimit", result["cells"]
