"""The sandbox: hostile notebooks are stopped, and the rest of their batch is not touched.

Every hostile notebook is an honest, full-marks submission (``examples/submissions/
alice.ipynb``) with attack cells appended. An attack cell that reaches something raises
``ESCAPED``, and the harm it would do (a forged result, an overwritten classmate, a
surviving process, a connection) is checked from outside as well. Real bubblewrap, real
kernels, a real ``hw4grade grade`` batch with two workers.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest

from grader.kernel.loader import REFERENCE_MODULE
from grader.pipeline.load import SubmissionError, load_submission
from grader.pipeline.sandbox import (
    BubblewrapSandbox,
    Layout,
    bubblewrap_problem,
    hide_packages,
    kernel_python,
    python_installation,
)
from grader.quiet import LOG_NAME
from tests.fixtures.grader_reach import ORACLE_CELL, REACH_CELL, THEORY_ITEMS

ROOT = Path(__file__).resolve().parents[2]
HONEST = ROOT / "examples" / "submissions" / "alice.ipynb"
SECRET = f"hw4grade-secret-{uuid.uuid4().hex}"
SURVIVOR = f"hw4grade-survivor-{uuid.uuid4().hex}"
WRITTEN = f"hw4grade-forged-{uuid.uuid4().hex}"

needs_bwrap = pytest.mark.skipif(
    bubblewrap_problem() is not None and not os.environ.get("CI"),
    reason=f"bubblewrap cannot run here: {bubblewrap_problem()}")


def hostile(*cells: str) -> nbformat.NotebookNode:
    """The honest notebook with ``cells`` appended."""
    notebook = nbformat.read(HONEST, as_version=4)
    notebook.cells.extend(nbformat.v4.new_code_cell(source) for source in cells)
    return notebook


def escape_cell(read: dict[Path, str], see: list[Path], write: list[Path], port: int) -> str:
    """Try to import the reference, read host files (known by their SHA-256) and see files
    that exist only on the host, write outside, read the grader's environment, connect to
    the host's loopback; raise ESCAPED naming whatever reached the host.

    The kernel has private folders (its own ``/tmp``, the skeleton folders bwrap makes for
    its mounts) where a host path may exist too: a file read there counts only with the
    host's bytes, and writes are judged from the host after the batch (``WRITTEN``)."""
    digests = {str(path): digest for path, digest in read.items()}
    return f"""
import hashlib, os, socket
reached = []
try:
    import reference
    reached.append("import reference")
except ImportError:
    pass
for path, digest in {digests!r}.items():
    try:
        with open(path, "rb") as stream:
            if hashlib.sha256(stream.read()).hexdigest() == digest:
                reached.append("read " + path)
    except OSError:
        pass
for path in {[str(p) for p in see]!r}:
    if os.path.exists(path):
        reached.append("see " + path)
for path in {[str(p) for p in write]!r}:
    try:
        with open(path, "a") as stream:
            stream.write({WRITTEN!r})
    except OSError:
        pass
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{{pid}}/environ", "rb") as stream:
            if {SECRET!r}.encode() in stream.read():
                reached.append("environ of " + pid)
    except OSError:
        pass
if {SECRET!r} in str(os.environ):
    reached.append("the grader's environment")
connection = socket.socket()
connection.settimeout(3)
try:
    connection.connect(("127.0.0.1", {port}))
    reached.append("network")
except OSError:
    pass
if reached:
    raise RuntimeError("ESCAPED: " + ", ".join(reached))
"""


def host_digest(path: Path) -> str:
    """SHA-256 of a host file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


SURVIVOR_CELL = f"""
import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)",
                                  {SURVIVOR!r}])
    os._exit(0)
"""

KILL_PARENTS_CELL = """
import os, signal
pid, chain = os.getpid(), []
while True:
    with open(f"/proc/{pid}/stat") as stream:
        pid = int(stream.read().rsplit(")", 1)[1].split()[1])
    if pid <= 1:
        break
    chain.append(pid)
for pid in chain + [1]:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
"""

# Each over-the-limit cell then holds what it took: the grader must stop it while it runs
# (a cell that ended first, under load, would leave the limit to the next cell or probe).
THREAD_BOMB_CELL = """
import threading, time
for _ in range(5000):
    threading.Thread(target=time.sleep, args=(180,), daemon=True).start()
time.sleep(180)
"""

FD_PAYLOAD_CELL = """
import base64, json, os
fake = base64.b64encode(json.dumps({"forged": True}).encode()).decode()
os.write(1, (fake + "\\n").encode())
os.write(2, b"FORGED-STDERR\\n")
for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
    path = os.environ.get(name) or %r
    try:
        with open(path, "a") as stream:
            stream.write("result=" + fake + "\\n")
    except OSError:
        pass
"""

FILL_DISK_CELL = """
import os
for folder in (".", "/tmp", os.environ["HOME"], "/dev/shm", "/dev"):
    written = []
    try:
        for number in range(48):  # 3 GiB in files of 64 MiB (each under the file-size limit)
            path = os.path.join(folder, f"fill-{number}.bin")
            written.append(path)
            with open(path, "wb") as stream:
                stream.write(b"\\0" * (64 << 20))
        raise RuntimeError("ESCAPED: wrote 3 GiB into " + folder)
    except OSError:
        pass
    finally:
        for path in written:
            if os.path.exists(path):
                os.remove(path)
"""

FILL_EXCHANGE_CELL = """
import os, time
root = os.path.dirname(os.getcwd())
shared = os.path.join(root, next(name for name in os.listdir(root) if name.startswith("probe")))
for number in range(40):  # 2.5 GiB in files of 64 MiB, each under the file-size limit
    with open(os.path.join(shared, f"fill-{number}.bin"), "wb") as stream:
        stream.write(b"\\0" * (64 << 20))
time.sleep(180)
"""


@pytest.fixture(scope="module")
def listener():
    """A TCP listener on the host's loopback; records every connection it accepts."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    accepted: list = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


def run_hw4grade(*args: str, env: dict[str, str] | None = None,
                 timeout: float = 1200) -> subprocess.CompletedProcess:
    """``hw4grade ARGS`` in a subprocess with ``SECRET`` in its environment."""
    full_env = {**os.environ, "HW4_TEST_TOKEN": SECRET, **(env or {})}
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True,
                          text=True, timeout=timeout, env=full_env, check=False)


@needs_bwrap
@pytest.mark.usefixtures("mnist_dir")
def test_hostile_batch_is_contained(tmp_path, listener):
    """A batch of hostile notebooks and an honest one: every attack is stopped, the honest
    notebook keeps its full marks, every submission gets a result and the gradebook all."""
    port, accepted = listener
    subs, out, elsewhere = tmp_path / "subs", tmp_path / "out", tmp_path / "elsewhere"
    for folder in (subs, out, elsewhere):
        folder.mkdir()
    victim = subs / "victim.ipynb"
    shutil.copy(HONEST, victim)
    victim_bytes = victim.read_bytes()
    shutil.copy(HONEST, elsewhere / "solution.ipynb")
    project_marker = ROOT / f"forged-{uuid.uuid4().hex}.txt"
    mnist = Path(os.environ.get("HW4_MNIST_DIR", "/nonexistent")) / "train-images-idx3-ubyte.gz"
    read = {path: host_digest(path) for path in (victim, ROOT / "grader" / "__init__.py",
                                                 ROOT / "reference" / "hw4.py", mnist)
            if path.is_file()}
    see = [out / LOG_NAME, elsewhere / "solution.ipynb"]  # files only the host has
    write = [victim, out / "results" / "victim.json", out / "gradebook.csv", project_marker,
             ROOT / "grader" / "__init__.py"]
    before = {path: path.read_bytes() for path in write if path.is_file()}
    nbformat.write(hostile(escape_cell(read, see, write, port), SURVIVOR_CELL),
                   subs / "escape.ipynb")
    nbformat.write(hostile(KILL_PARENTS_CELL, THREAD_BOMB_CELL), subs / "killer.ipynb")
    nbformat.write(hostile(FILL_DISK_CELL, FILL_EXCHANGE_CELL), subs / "disk.ipynb")
    nbformat.write(hostile(FD_PAYLOAD_CELL % str(out / "gradebook.csv")), subs / "payload.ipynb")
    (subs / "deep.ipynb").write_text('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}")
    os.mkfifo(subs / "fifo.ipynb")
    (subs / "zero.ipynb").symlink_to("/dev/zero")
    (subs / "outside.ipynb").symlink_to(elsewhere / "solution.ipynb")

    run = run_hw4grade("grade", str(subs), "--out", str(out), "--seed", "5", "--workers", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    fake_payload = base64.b64encode(json.dumps({"forged": True}).encode()).decode()
    assert fake_payload not in run.stdout + run.stderr
    assert "FORGED" not in run.stdout + run.stderr

    results = {path.stem: json.loads(path.read_text())
               for path in (out / "results").glob("*.json")}
    assert set(results) == {"victim", "escape", "killer", "disk", "payload", "deep", "fifo",
                            "zero", "outside"}
    gradebook = (out / "gradebook.csv").read_text()
    assert all(name in gradebook for name in results)

    def points(name):
        return {item["id"]: item["points"] for item in results[name]["items"]}

    victim_points = points("victim")
    assert results["victim"]["score"] == 90 and results["victim"]["error"] is None
    assert victim.read_bytes() == victim_bytes
    assert not project_marker.exists()
    # writes are judged on the host: nothing the escape cell wrote reached a host file
    assert {path: path.read_bytes() for path in before} == before
    assert not [path for path in write if path.is_file() and WRITTEN in path.read_text()]
    for name in ("victim", "escape", "payload"):
        assert points(name) == victim_points, (name, results[name]["cells"][-3:])
        assert results[name]["sandbox"] == "bubblewrap"
    for name in ("killer", "disk"):  # only runs_clean differs: a cell was stopped
        assert {k: v for k, v in points(name).items() if k != "runs_clean"} == \
            {k: v for k, v in victim_points.items() if k != "runs_clean"}
        assert points(name)["runs_clean"] == 0
    stopped = {cell["error_name"] for cell in results["killer"]["cells"] + results["disk"]["cells"]}
    assert {"ProcessLimit", "DiskLimit"} <= stopped
    assert not any("ESCAPED" in (cell["error_message"] or "")
                   for result in results.values() for cell in result["cells"])
    assert not accepted
    assert not [proc for proc in psutil.process_iter(["cmdline"])
                if SURVIVOR in " ".join(proc.info["cmdline"] or [])]
    messages = {name: results[name]["error"] for name in ("deep", "fifo", "zero", "outside")}
    assert "nested too deeply" in messages["deep"]
    assert "a FIFO" in messages["fifo"]
    assert "outside" in messages["zero"] and "outside" in messages["outside"]
    assert all(results[name]["score"] == 0 for name in messages)


@needs_bwrap
@pytest.mark.usefixtures("mnist_dir")
def test_classroom_payload_cannot_be_forged(tmp_path):
    """A notebook printing a payload on fd 1 and appending to $GITHUB_OUTPUT: the payload
    check prints is its own, and the workflow's files are untouched."""
    github_output, summary = tmp_path / "github_output", tmp_path / "summary.md"
    github_output.write_text("")
    notebook = tmp_path / "HW4.ipynb"
    nbformat.write(hostile(FD_PAYLOAD_CELL % str(github_output)), notebook)
    run = run_hw4grade("check", str(notebook), "--format", "classroom", "--seed", "5",
                       env={"GITHUB_OUTPUT": str(github_output),
                            "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true"})
    assert run.returncode == 0, run.stderr[-3000:]
    payload = json.loads(base64.b64decode(run.stdout.strip(), validate=True))
    assert "forged" not in json.dumps(payload)
    assert payload["tests"] and "FORGED" not in run.stderr
    assert github_output.read_text() == ""
    assert "forged" not in summary.read_text()


@needs_bwrap
def test_hidden_package_cannot_be_imported_in_the_sandbox(tmp_path, monkeypatch):
    """A package like a wheel-installed ``reference`` inside a bound folder is replaced by
    one whose import fails; its neighbours stay importable."""
    site = tmp_path / "site"
    for name in ("secretpkg", "neighbour"):
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr("grader.pipeline.sandbox.HIDDEN_PACKAGES", ("secretpkg",))
    blocked = tmp_path / "blocked.py"
    blocked.write_text("raise ImportError('hidden')\n")
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/",
            "--proc", "/proc", "--dev", "/dev", "--ro-bind", str(site), str(site),
            *hide_packages([str(site)], blocked), "--", sys.executable, "-I", "-c",
            f"import sys; sys.path.insert(0, {str(site)!r}); import neighbour\n"
            "try:\n    import secretpkg\nexcept ImportError:\n    print('hidden')\n"
            "else:\n    print('visible')\n"]
    run = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert run.stdout.strip() == "hidden", run.stderr


@needs_bwrap
def test_every_copy_of_a_hidden_package_is_hidden(tmp_path, monkeypatch):
    """The grader finds a hidden package first where the kernel cannot see it (a checkout on
    PYTHONPATH, an editable install), and the kernel's bound environment holds another
    part of it (a namespace portion such as the editable install's ``grader/rubric.yaml``,
    or a full copy): every part under a bound folder is hidden, not just the one found."""
    checkout, site = tmp_path / "checkout", tmp_path / "site"
    (checkout / "secretpkg").mkdir(parents=True)
    (checkout / "secretpkg" / "__init__.py").write_text("VALUE = 42\n")
    (site / "secretpkg" / "oracle").mkdir(parents=True)  # a namespace portion, a sub-package
    (site / "secretpkg" / "oracle" / "__init__.py").write_text("ANSWER = 42\n")
    (site / "neighbour").mkdir()
    (site / "neighbour" / "__init__.py").write_text("VALUE = 1\n")
    (site / "loose.py").write_text("ANSWER = 42\n")  # a hidden name that is a module file
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(checkout))
    monkeypatch.setattr("grader.pipeline.sandbox.HIDDEN_PACKAGES", ("secretpkg", "loose"))
    blocked = tmp_path / "blocked.py"
    blocked.write_text("raise ImportError('hidden')\n")
    code = (f"import sys; sys.path.insert(0, {str(site)!r}); import neighbour\n"
            "for name in ('secretpkg', 'secretpkg.oracle', 'loose'):\n"
            "    try:\n        __import__(name)\n        print('visible', name)\n"
            "    except ImportError:\n        print('hidden', name)\n")
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/bin", "/bin", "--proc", "/proc", "--dev", "/dev",
            *[arg for path in python_installation() for arg in ("--ro-bind", path, path)],
            "--ro-bind", str(site), str(site), "--ro-bind", str(blocked), str(blocked),
            *hide_packages([str(site)], blocked), "--", kernel_python(), "-I", "-c", code]
    run = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert run.stdout.split("\n")[:3] == ["hidden secretpkg", "hidden secretpkg.oracle",
                                          "hidden loose"], run.stderr


@needs_bwrap
@pytest.mark.usefixtures("mnist_dir")
def test_a_kernel_cannot_reach_the_grader(tmp_path):
    """This checkout's own install (editable): a kernel can neither import the grader nor
    the reference, nor read them through the install's metadata, so theory answers that
    call the grader's oracle get 0; the rest of the notebook keeps its exact grade."""
    notebook = tmp_path / "HW4.ipynb"
    nbformat.write(hostile(REACH_CELL, ORACLE_CELL), notebook)
    run = run_hw4grade("check", str(notebook), "--format", "json", "--seed", "5")
    assert run.returncode == 1, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["sandbox"] == "bubblewrap"
    items = {item["id"]: item for item in result["items"]}
    for name in THEORY_ITEMS:
        assert items[name]["points"] == 0, items[name]
        assert "not available to graded notebooks" in items[name]["message"], items[name]
    assert items["runs_clean"]["points"] == items["runs_clean"]["max_points"], \
        [cell for cell in result["cells"] if cell["error_message"]]
    graded = [item for name, item in items.items()  # not pending nor skipped in quick mode
              if name not in THEORY_ITEMS and item["status"] not in ("manual", "skipped")]
    assert [item for item in graded if item["points"] != item["max_points"]] == []
    assert result["score"] == 90 - sum(items[name]["max_points"] for name in THEORY_ITEMS)


def test_a_package_installed_in_a_system_folder_is_hidden(tmp_path, monkeypatch):
    """A grader installed by a system pip (under ``/usr``, bound for its libraries) is
    hidden as one in the environment is."""
    import grader.pipeline.sandbox as sandbox_module

    system = tmp_path / "usr"
    (system / "secretpkg").mkdir(parents=True)
    (system / "secretpkg" / "__init__.py").write_text("VALUE = 42\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(system)])
    monkeypatch.setattr(sandbox_module, "SYSTEM_DIRS", (*sandbox_module.SYSTEM_DIRS, str(system)))
    monkeypatch.setattr(sandbox_module, "HIDDEN_PACKAGES", ("secretpkg",))
    layout = Layout(root=tmp_path, files=tmp_path / "files", workdir=tmp_path / "work",
                    home=tmp_path / "home")
    args = BubblewrapSandbox().bwrap_arguments({}, layout)
    hidden = str(system / "secretpkg")
    assert args[args.index(hidden) - 1] == "--tmpfs"
    assert args.index(str(system)) < args.index(hidden)  # over the bind, not under it


def test_an_environment_under_tmp_stays_visible(tmp_path, monkeypatch):
    """A clone in /tmp has its .venv there: the sandbox's own /tmp must not hide it."""
    import grader.pipeline.sandbox as sandbox_module

    venv = "/tmp/some-clone/.venv"
    monkeypatch.setattr(sandbox_module, "python_installation", lambda: [venv])
    layout = Layout(root=tmp_path, files=tmp_path / "files", workdir=tmp_path / "work",
                    home=tmp_path / "home")
    args = BubblewrapSandbox().bwrap_arguments({}, layout)
    assert args.index("/tmp") < args.index(venv)  # the tmpfs first, the bind on top of it


def test_sandbox_arguments(tmp_path):
    """The bwrap command: namespaces, no capabilities, a cleared environment, capped
    tmpfs, only the worker's GPU, and no bind of the project tree or its parents."""
    layout = Layout(root=tmp_path, files=tmp_path / "files", workdir=tmp_path / "work",
                    home=tmp_path / "home", exchange=(tmp_path / "probe",),
                    readable=(tmp_path / "mnist.npz",))
    sandbox = BubblewrapSandbox(device="gpu", gpu_index=1)
    args = sandbox.bwrap_arguments({"PATH": "/usr/bin", "HOME": str(layout.home)}, layout)
    joined = " ".join(args)
    for flag in ("--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
                 "--cap-drop ALL", "--clearenv", "--proc /proc", "--dev /dev"):
        assert flag in joined
    assert "--setenv HOME" in joined and args.count("--setenv") == 2
    assert f"--size {sandbox.limits.disk} --tmpfs /tmp" in joined
    assert f"--size {sandbox.limits.disk} --tmpfs {tmp_path}" in joined
    # bwrap's /dev is a tmpfs of half the RAM: read-only, and /dev/shm capped
    assert f"--dev /dev --size {sandbox.limits.shared_memory} --tmpfs /dev/shm " \
        "--remount-ro /dev" in joined
    assert "--dev-bind-try /dev/nvidia1 /dev/nvidia1" in joined
    assert "/dev/nvidia0" not in joined and "--dev-bind-try /dev/nvidiactl" in joined
    assert "/dev/nvidia" not in " ".join(BubblewrapSandbox().bwrap_arguments({}, layout))
    sources = [args[i + 1] for i, arg in enumerate(args) if arg in ("--bind", "--ro-bind")]
    project = os.path.realpath(ROOT)
    environment = os.path.realpath(sys.prefix)
    for source in sources:
        real = os.path.realpath(source)
        if real.startswith(os.path.realpath(tmp_path) + os.sep):
            continue  # the kernel's own folders (inside the project when pytest's are)
        assert not project.startswith(real + os.sep) and real != project, source
        assert not real.startswith(project + os.sep) or real.startswith(environment), source
    assert ["--bind", str(tmp_path / "probe"), str(tmp_path / "probe")] == \
        args[args.index(str(tmp_path / "probe")) - 1:][:3]
    # no tmpfs hides an earlier bind (an environment that lives under /tmp stays visible)
    mounts = [(i, args[i + 2] if arg.endswith("bind") or arg.endswith("bind-try") else args[i + 1])
              for i, arg in enumerate(args)
              if arg in ("--bind", "--ro-bind", "--ro-bind-try", "--tmpfs")]
    for index, target in mounts:
        if args[index] == "--tmpfs":
            hidden = [t for i, t in mounts if i < index and t.startswith(target.rstrip("/") + "/")]
            assert not hidden, (target, hidden)
    command = sandbox.wrap([sys.executable, "-m", "ipykernel_launcher"], {}, layout)
    assert command[0].endswith("prlimit") and "--core=0" in command
    assert command[command.index("--") + 1].endswith("bwrap")


@pytest.mark.parametrize("kind", ["deep", "fifo", "symlink-out", "socket", "big"])
def test_unloadable_files_are_refused_with_a_clear_message(tmp_path, kind, monkeypatch):
    """Special files and symlinks leaving the folder are refused without being opened;
    too large or too deeply nested JSON with a message, never a traceback."""
    folder = tmp_path / "subs"
    folder.mkdir()
    path = folder / "HW4.ipynb"
    if kind == "deep":
        path.write_text('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}")
        expected = "nested too deeply"
    elif kind == "fifo":
        os.mkfifo(path)
        expected = "a FIFO"
    elif kind == "symlink-out":
        shutil.copy(HONEST, tmp_path / "solution.ipynb")
        path.symlink_to(tmp_path / "solution.ipynb")
        expected = "outside"
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        expected = "a socket"
    else:
        monkeypatch.setattr("grader.pipeline.load.MAX_NOTEBOOK_BYTES", 1000)
        shutil.copy(HONEST, path)
        expected = "too large"
    with pytest.raises(SubmissionError, match=expected):
        load_submission(path, folder)


@pytest.mark.parametrize("kind", ["deep", "fifo", "devzero"])
def test_check_exits_2_for_unloadable_files(tmp_path, kind):
    """``hw4grade check`` ends with exit code 2 and a message for each unloadable file."""
    path = tmp_path / "HW4.ipynb"
    if kind == "deep":
        path.write_text('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    run = run_hw4grade("check", str(path), timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert "ERROR (not graded)" in run.stdout


def test_grade_refuses_to_run_without_bubblewrap(tmp_path):
    """Where bubblewrap cannot run, ``grade`` grades nothing unless told --no-sandbox."""
    shutil.copy(HONEST, tmp_path / "alice.ipynb")
    env = {"PATH": str(tmp_path / "no-bin")}  # no bwrap on this PATH
    run = run_hw4grade("grade", str(tmp_path / "alice.ipynb"), "--out", str(tmp_path / "out"),
                       env=env, timeout=120)
    assert run.returncode == 2
    assert "bubblewrap" in run.stderr and "--no-sandbox" in run.stderr
    assert not (tmp_path / "out" / "results").exists()


def test_check_without_bubblewrap(monkeypatch, capsys):
    """A student's check runs unsandboxed with one notice; an install with the reference
    refuses unless --no-sandbox."""
    from grader.commands.check import choose_isolation
    from grader.pipeline.grade_one import Options
    from grader.rubric import load_rubric

    monkeypatch.setattr("grader.pipeline.sandbox.bubblewrap_problem", lambda: "bwrap is missing")
    monkeypatch.setattr("grader.oracles.reference.reference_available", lambda: False)
    options = Options(rubric=load_rubric())
    assert choose_isolation(options) and options.sandbox is False
    assert capsys.readouterr().err.count("without a sandbox") == 1
    monkeypatch.setattr("grader.oracles.reference.reference_available", lambda: True)
    options = Options(rubric=load_rubric())
    assert not choose_isolation(options)
    assert "--no-sandbox" in capsys.readouterr().err
    options = Options(rubric=load_rubric(), sandbox=False)  # --no-sandbox
    assert choose_isolation(options) and options.sandbox is False
    options = Options(rubric=load_rubric(), sandbox_user="hw4grade-no-such-user")
    assert not choose_isolation(options)  # an account that cannot be used is no sandbox
    assert "hw4grade-no-such-user" in capsys.readouterr().err


def test_check_falls_back_to_the_kernel_user(monkeypatch, capsys, kernel_user):
    """With --sandbox-user, a root check where bubblewrap cannot run uses that account
    (said once); where bubblewrap runs, bubblewrap is used; --no-sandbox stays none."""
    from grader.commands.check import choose_isolation
    from grader.pipeline.grade_one import Options
    from grader.pipeline.sandbox import choose_sandbox
    from grader.rubric import load_rubric

    monkeypatch.setattr("grader.oracles.reference.reference_available", lambda: True)
    monkeypatch.setattr("grader.pipeline.sandbox.bubblewrap_problem", lambda: "bwrap is missing")
    options = Options(rubric=load_rubric(), sandbox_user=kernel_user)
    assert choose_isolation(options) and options.sandbox is True
    assert f"runs as the unprivileged user {kernel_user}" in capsys.readouterr().err
    assert choose_sandbox(True, fallback_user=kernel_user).name == "user"
    assert choose_sandbox(False, fallback_user=kernel_user).name == "none"
    monkeypatch.setattr("grader.pipeline.sandbox.bubblewrap_problem", lambda: None)
    assert choose_sandbox(True, fallback_user=kernel_user).name == "bubblewrap"


def _workers_running_a_kernel(batch_pid: int) -> list[psutil.Process]:
    """The worker processes under the batch that have a sandboxed kernel running. The grader's
    own check that bubblewrap works also starts a short ``bwrap ... true``: its parent is the
    batch itself, which must not be the one killed."""
    workers = []
    for proc in psutil.Process(batch_pid).children(recursive=True):
        try:
            if proc.name() != "bwrap" or proc.cmdline()[-1] == "true":
                continue
            parent = proc.parent()
            if parent is None or parent.pid == batch_pid or parent.name() == "bwrap":
                continue
        except psutil.Error:
            continue
        workers.append(parent)
    return workers


@needs_bwrap
@pytest.mark.usefixtures("mnist_dir")
def test_batch_survives_a_worker_that_dies(tmp_path):
    """A grading worker killed in the middle of a batch: its sandboxed kernel dies with it,
    the submissions it took down are graded again, and every one gets its full marks."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(HONEST, subs / f"{name}.ipynb")
    batch = subprocess.Popen(
        [sys.executable, "-m", "grader", "grade", str(subs), "--out", str(out), "--seed", "5",
         "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    try:
        for _ in range(600):
            workers = _workers_running_a_kernel(batch.pid)
            if workers:
                killed = workers[0]
                killed.kill()
                break
            threading.Event().wait(0.2)
        stdout, stderr = batch.communicate(timeout=900)
    finally:
        batch.kill()
    assert killed is not None, "no sandboxed kernel was seen"
    assert batch.returncode == 0, stderr[-3000:]
    assert "grading process died" in stderr
    results = [json.loads(path.read_text()) for path in (out / "results").glob("*.json")]
    assert len(results) == 3 and all(r["score"] == 90 and not r["retry"] for r in results)
    assert len((out / "gradebook.csv").read_text().strip().splitlines()) == 4


LEAK_CELL = f"""
_graded_discriminator = discriminator
def discriminator(*args, **kwargs):
    import sys
    reference = sys.modules.get({REFERENCE_MODULE!r})
    if reference is not None:
        names = sorted(name for name in vars(reference) if not name.startswith("__"))
        raise RuntimeError("LEAKED-REFERENCE " + " ".join(names))
    return _graded_discriminator(*args, **kwargs)
"""


@pytest.mark.slow  # the stashing attack below covers attribution in the default run
@needs_bwrap
def test_nothing_from_a_kernel_holding_the_reference_reaches_the_report(tmp_path, mnist_dir):
    """Attribution puts the reference into the kernel: a notebook that then reports what it
    finds there gets none of it into its result, and later items run in a clean kernel."""
    from tests.fixtures.full_mode import full_grade as _full_grade

    notebook = tmp_path / "leaky.ipynb"
    nbformat.write(hostile(LEAK_CELL), notebook)
    result = _full_grade(tmp_path, mnist_dir, notebook,
                         budgets={"gan": 10, "lsgan": 10, "dcgan": 2},
                         thresholds={"gan": [100, 200]})  # the GAN clearly fails: attribution
    attributed = [item for item in result.items
                  if item.id.endswith("_convergence") and item.details.get("attribution")]
    assert attributed, "no attribution ran: the test would not see a leak"
    assert "LEAKED-REFERENCE" not in result.to_json()
    for item_id in ("gan_convergence", "lsgan_convergence"):
        assert result.item(item_id).details.get("fcd", 0) > 0  # trained without the leak cell


# The attack of issue 19: a notebook's own ``compile`` and ``exec`` (at top level and in
# ``builtins``) stash any source the grader hands them for the reference module into every
# folder the kernel can write; a later cell raises an exception named after any stash it
# finds, so a stash that reached a later kernel would land in the report.
STASHING_CELL = f"""
import builtins, os
STASHED = []
_real_compile, _real_exec = builtins.compile, builtins.exec

def _stash(text):
    if not isinstance(text, str):
        return
    STASHED.append(text)
    root = os.path.dirname(os.getcwd())
    places = [os.getcwd(), os.environ.get("HOME", "."), "/tmp"]
    places += [os.path.join(root, name) for name in os.listdir(root)]
    for place in places:
        try:
            with open(os.path.join(place, "stash.txt"), "w") as stream:
                stream.write("STASHED " + text)
        except OSError:
            pass

def compile(source, filename, *args, **kwargs):
    if {REFERENCE_MODULE!r} in str(filename):
        _stash(source)
    return _real_compile(source, filename, *args, **kwargs)

def exec(code, scope=None, *args, **kwargs):
    if isinstance(scope, dict) and scope.get("__name__") == {REFERENCE_MODULE!r}:
        _stash(code if isinstance(code, str) else repr(code))
    return _real_exec(code, scope, *args, **kwargs)

builtins.compile, builtins.exec = compile, exec
"""

READ_STASH_CELL = """
import glob, os
_root = os.path.dirname(os.getcwd())
for _path in glob.glob(_root + "/*/stash.txt") + glob.glob("/tmp/stash.txt") + \\
        glob.glob(os.environ.get("HOME", ".") + "/stash.txt"):
    with open(_path) as _stream:
        raise type(_stream.read(), (Exception,), {})("found a stash")
"""


def reference_lines() -> list[str]:
    """The lines of the reference solution no honest notebook or template shares."""
    known = HONEST.read_text() + (ROOT / "student_template" / "HW4_template.ipynb").read_text()
    lines = {line.strip() for line in (ROOT / "reference" / "hw4.py").read_text().splitlines()}
    return sorted(line for line in lines if len(line) >= 20 and json.dumps(line)[1:-1] not in known)


@needs_bwrap
def test_the_reference_never_passes_through_the_notebooks_names(tmp_path):
    """A kernel replaced by one that gets extra set-up code (as attribution installs the
    reference) runs that code before any notebook cell: the notebook's replayed ``compile``
    and ``exec`` never see it, though they are in place when the replay ends."""
    from grader.kernel import loader
    from grader.pipeline.execute import Bounds, KernelSession, kernel_environment
    from grader.pipeline.sandbox import choose_sandbox

    root = tmp_path / "root"
    files, work, home = root / "files", root / "work", root / "home"
    for folder in (files, work, home):
        folder.mkdir(parents=True)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(STASHING_CELL)])
    secret = f"SECRET = {SECRET!r}"
    with KernelSession(notebook, work, Bounds(cell_timeout=60), kernel_environment(home),
                       {"seed": 0, "mnist_npz": ""}, sandbox=choose_sandbox(True),
                       layout=Layout(root=root, files=files, workdir=work,
                                     home=home)) as session:
        assert session.run_notebook().cells[0].status == "ok"
        session.restart(extra_setup=(loader.install_code(REFERENCE_MODULE, secret),))
        session.replay()
        check = (f"import sys\nprint(len(STASHED), compile is builtins.compile, "
                 f"sys.modules[{REFERENCE_MODULE!r}].SECRET == {SECRET!r})")
        run, outputs = session.run_code(check, timeout=60)
        assert run.status == "ok", (run.error_name, run.error_message)
        assert "".join(out.get("text", "") for out in outputs).split() == ["0", "True", "True"]
        # the same code sent once the notebook has run reaches its compile (so the check
        # above can fail): nothing sent then may be secret
        session.run_code(loader.install_code(REFERENCE_MODULE + "_late", secret), timeout=60)
        run, outputs = session.run_code("print(len(STASHED))", timeout=60)
        assert "".join(out.get("text", "") for out in outputs).strip() == "1"
        session.restart(extra_setup=())
        session.replay()
        run, outputs = session.run_code(f"import sys\nprint({REFERENCE_MODULE!r} in sys.modules)",
                                        timeout=60)
        assert "".join(out.get("text", "") for out in outputs).strip() == "False"


@needs_bwrap
def test_a_notebook_stashing_the_reference_gets_none_of_it(tmp_path, mnist_dir):
    """The whole attack in --mode full with tiny budgets: attribution runs, and no line of
    the reference reaches the result or the feedback pages; no stash was ever read back."""
    from grader.report.html import render_html
    from grader.report.markdown import render_markdown
    from tests.fixtures.full_mode import full_grade as _full_grade

    notebook = tmp_path / "stasher.ipynb"
    nbformat.write(hostile(STASHING_CELL, READ_STASH_CELL), notebook)
    result = _full_grade(tmp_path, mnist_dir, notebook,
                         budgets={"gan": 10, "lsgan": 10, "dcgan": 2},
                         thresholds={"gan": [100, 200]})  # the GAN clearly fails: attribution
    attributed = [item for item in result.items
                  if item.id.endswith("_convergence") and item.details.get("attribution")]
    assert attributed, "no attribution ran: the test would not see a leak"
    texts = {"json": result.to_json(), "markdown": render_markdown(result),
             "html": render_html(result)}
    for kind, text in texts.items():
        assert "STASHED" not in text and "found a stash" not in text, kind
        leaked = [line for line in reference_lines() if line in text]
        assert not leaked, (kind, leaked[:3])
    assert result.item("runs_clean").points == result.item("runs_clean").max_points
    assert result.item("gan_loss").points == result.item("gan_loss").max_points


USER_PROBE = """
import json, os, signal, subprocess, sys
found = dict(uid=os.getuid(), gid=os.getgid(), groups=os.getgroups(), env=sorted(os.environ),
             read=[], wrote=[], signalled=False)
for path in {secrets!r}:
    try:
        with open(path) as stream:
            stream.read()
        found["read"].append(path)
    except OSError:
        pass
sys.path.insert(0, {shared!r})
for module in ("reference", "grader.oracles.numerics"):  # locked as setup.sh locks them
    try:  # a locked package folder may still import as an empty namespace package
        found["read"].append(module + ": " + __import__(module, fromlist=["_"]).SECRET)
    except Exception:
        pass
for path in {writes!r}:
    try:
        with open(path, "w") as stream:
            stream.write("forged")
        found["wrote"].append(path)
    except OSError:
        pass
try:
    os.kill({grader}, signal.SIGTERM)
    found["signalled"] = True
except OSError:
    pass
with open("mine.txt", "w") as stream:  # its own folder stays writable
    stream.write("ok")
found["own"] = open("mine.txt").read()
found["data"] = open({data!r}).read()
subprocess.Popen(["sleep", "600"], start_new_session=True)  # a process left behind
with open("/tmp/{survivor}", "w") as stream:  # a file left in the shared /tmp
    stream.write("left")
print(json.dumps(found))
"""


def test_user_sandbox_runs_a_real_kernel_as_another_user(tmp_path, kernel_user, user_python,
                                                          monkeypatch):
    """The Gradescope fallback: a kernel run as a dedicated account is that uid with no
    groups, reads none of root's files (the reference, the results, the grader's
    environment), writes only its own folders, cannot signal the grader, sees only the
    allow-listed environment; nothing it started or left in /tmp survives the session."""
    import pwd
    import tempfile

    from grader.pipeline.execute import Bounds, KernelSession, kernel_environment
    from grader.pipeline.sandbox import choose_sandbox

    shared = Path(tempfile.mkdtemp(prefix="hw4grade-shared-"))  # like /autograder: 755
    root = Path(tempfile.mkdtemp(prefix="hw4grade-"))  # like the grader's kernel folder
    try:
        os.chmod(shared, 0o755)
        (shared / "reference").mkdir(mode=0o700)  # what setup.sh locks
        (shared / "reference" / "__init__.py").write_text(f"SECRET = {SECRET!r}\n")
        numerics = shared / "grader" / "oracles" / "numerics.py"  # an installed grader
        numerics.parent.mkdir(parents=True)
        for module in (shared / "grader" / "__init__.py", numerics.parent / "__init__.py"):
            module.write_text("")
        numerics.write_text(f"SECRET = {SECRET!r}\n")
        subprocess.run(["chmod", "-R", "go-rwx", str(shared / "grader")], check=True)
        (shared / "results").mkdir(mode=0o700)
        (shared / "results" / "results.json").write_text('{"score": 0}')
        (shared / "answer.txt").write_text(SECRET)
        os.chmod(shared / "answer.txt", 0o600)
        data = tmp_path / "data.txt"  # a root-only folder: the kernel gets a shared copy
        data.write_text("digits")
        files, work, home = (root / name for name in ("files", "work", "home"))
        for folder in (files, work, home):
            folder.mkdir()
        with monkeypatch.context() as patch:  # as where bubblewrap cannot run
            patch.setattr("grader.pipeline.sandbox.bubblewrap_problem", lambda: "no bwrap")
            sandbox = choose_sandbox(True, fallback_user=kernel_user)
        assert sandbox.name == "user"
        sandbox = dataclasses.replace(sandbox, python=user_python)
        shared_data = sandbox.share(data, root)
        layout = Layout(root=root, files=files, workdir=work, home=home,
                        readable=(shared_data,))
        monkeypatch.setenv("HW4GRADE_TEST_TOKEN", SECRET)  # the grader's own secret
        env = kernel_environment(home)
        secrets = [str(shared / "reference" / "__init__.py"), str(numerics),
                   str(shared / "answer.txt"),
                   str(shared / "results" / "results.json"), f"/proc/{os.getpid()}/environ",
                   str(data)]
        writes = [str(shared / "forged.txt"), str(shared / "results" / "results.json"),
                  str(root / "forged.txt"), str(files / "forged.txt")]
        code = USER_PROBE.format(secrets=secrets, shared=str(shared), writes=writes,
                                 grader=os.getpid(), data=str(shared_data), survivor=SURVIVOR)
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
        with KernelSession(notebook, work, Bounds(cell_timeout=60), env,
                           {"seed": 0, "mnist_npz": ""}, sandbox=sandbox,
                           layout=layout) as session:
            run, outputs = session.run_code(code, timeout=60)
            assert run.status == "ok", (run.error_name, run.error_message)
            found = json.loads("".join(out.get("text", "") for out in outputs
                                       if out.output_type == "stream"))
            account = pwd.getpwnam(kernel_user)
            assert any(proc.uids().real == account.pw_uid for proc in psutil.process_iter())
        assert (found["uid"], found["gid"], found["groups"]) == \
            (account.pw_uid, account.pw_gid, [])
        assert found["read"] == [] and found["wrote"] == [] and not found["signalled"]
        assert found["own"] == "ok" and found["data"] == "digits"
        ipykernel_own = {"CLICOLOR", "CLICOLOR_FORCE", "PAGER", "GIT_PAGER", "TERM",
                         "FORCE_COLOR", "PYDEVD_USE_FRAME_EVAL"}  # set by ipykernel itself
        assert set(found["env"]) - ipykernel_own == set(env) | {"TMPDIR"}
        assert "HW4GRADE_TEST_TOKEN" not in found["env"]
        assert not [proc for proc in psutil.process_iter(["uids"])
                    if proc.info["uids"] and account.pw_uid in proc.info["uids"]]
        assert not Path("/tmp", SURVIVOR).exists()
        assert (shared / "results" / "results.json").read_text() == '{"score": 0}'
        assert not (shared / "forged.txt").exists() and not (root / "forged.txt").exists()
    finally:
        shutil.rmtree(shared, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def test_probe_requests_never_follow_links_in_the_exchange_folder(tmp_path, monkeypatch):
    """A kernel that owns the probe folder (the user sandbox) or writes into it (bubblewrap)
    may plant a link at the name of the next request; the grader's write fails instead of
    going through it."""
    import types

    import numpy as np

    from grader.pipeline import probe

    target = tmp_path / "grader-file"
    target.write_text("kept")
    folder = tmp_path / "probe"
    folder.mkdir()
    monkeypatch.setattr(probe.uuid, "uuid4", lambda: types.SimpleNamespace(hex="a" * 32))
    prober = object.__new__(probe.Prober)  # no kernel needed: the write comes first
    prober.session = types.SimpleNamespace(probe_dir=folder)
    for name in ("in-aaaaaaaaaaaa.npz", "req-aaaaaaaaaaaa.json"):
        (folder / name).symlink_to(target)
        with pytest.raises(FileExistsError):
            prober.request([], {"x": np.zeros(3)})
        assert target.read_text() == "kept"
        (folder / name).unlink()
