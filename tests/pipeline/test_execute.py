"""Kernel life cycle and time bounds: hard deadlines a kernel cannot step around, a clean
run read from the kernel's own replies, fresh folders for every kernel.

Real bubblewrap and real kernels. The batch test grades an honest notebook (``alice``,
90/90 in quick mode) next to hostile ones and checks that it keeps its exact grade.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import nbformat
import pytest

from grader.pipeline.execute import GRACE, Bounds, KernelSession, kernel_environment, reply_error
from grader.pipeline.sandbox import Layout, choose_sandbox
from tests.pipeline.test_sandbox import HONEST, hostile, needs_bwrap

# A careless student's cell: a bare except swallows the interrupt, so it never stops.
CARELESS_CELL = """
import time
while True:
    try:
        time.sleep(0.5)
    except:
        pass
"""
# Hides every error of the cells after it: nothing is printed, no error output is sent.
HIDDEN_ERROR_CELL = """
get_ipython().set_custom_exc((Exception,), lambda *args, **kwargs: None)
raise ValueError("hidden by set_custom_exc")
"""
# A graded function that never returns and swallows every interrupt: only probes call it.
LOOPING_GAN_LOSS_CELL = """
def gan_loss(*args, **kwargs):
    import time
    while True:
        try:
            time.sleep(0.5)
        except BaseException:
            pass
"""
CELL_TIMEOUT, PROBE_TIMEOUT = 20, 10


def test_reply_error_reads_only_an_error_status():
    """What a kernel's reply says about its cell: forged or odd replies never raise."""
    assert reply_error({"content": {"status": "ok"}}) is None
    assert reply_error(None) is None and reply_error({"content": "error"}) is None
    assert reply_error({"content": {"status": "error", "ename": "ValueError",
                                    "evalue": "bad"}}) == ("ValueError", "bad")
    name, message = reply_error({"content": {"status": "aborted"}})
    assert "aborted" in name and message
    name, message = reply_error({"content": {"status": "error", "ename": "E\x1b[2J" + "x" * 10**6,
                                             "evalue": ["not", "text"]}})
    assert "\x1b" not in name and len(name) < 300 and "not" in message


@needs_bwrap
def test_each_kernel_gets_fresh_folders(tmp_path):
    """A kernel that writes into its exchange folders, working folder and HOME, then is
    killed: the kernel that replaces it has new, empty exchange folders, sees none of those
    files, and the old folders are gone from the host."""
    root = tmp_path / "root"
    files, work, home = root / "files", root / "work", root / "home"
    for folder in (files, work, home):
        folder.mkdir(parents=True)
    layout = Layout(root=root, files=files, workdir=work, home=home)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with KernelSession(notebook, work, Bounds(cell_timeout=60), kernel_environment(home),
                       {"seed": 0, "mnist_npz": ""}, sandbox=choose_sandbox(True),
                       layout=layout) as session:
        first_probe, first_ipc = session.probe_dir, session.ipc_dir
        stash = "\n".join(f"open({str(path)!r}, 'w').write('stash')" for path in (
            first_probe / "stash.txt", first_ipc / "stash.txt", work / "stash.txt",
            home / "stash.txt"))
        run, _ = session.run_code(stash, timeout=60)
        assert run.status == "ok", (run.error_name, run.error_message)
        assert (first_probe / "stash.txt").read_text() == "stash"  # the host sees it
        run, _ = session.run_code("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
                                  timeout=60)
        assert run.status == "died" and session.restarts == 1
        assert session.probe_dir != first_probe and session.ipc_dir != first_ipc
        assert not first_probe.exists() and not first_ipc.exists()
        assert list(session.probe_dir.iterdir()) == []
        look = (f"import os\nprint(sorted(os.listdir({str(session.probe_dir)!r})), "
                "sorted(os.listdir('.')), sorted(os.listdir(os.environ['HOME'])))")
        run, outputs = session.run_code(look, timeout=60)
        assert run.status == "ok"
        seen = "".join(out.get("text", "") for out in outputs)
        assert "stash" not in seen and seen.startswith("[]"), seen


def _session(root: Path, cells: list[str], bounds: Bounds) -> KernelSession:
    files, work, home = root / "files", root / "work", root / "home"
    for folder in (files, work, home):
        folder.mkdir(parents=True)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    return KernelSession(notebook, work, bounds, kernel_environment(home),
                         {"seed": 0, "mnist_npz": ""}, sandbox=choose_sandbox(True),
                         layout=Layout(root=root, files=files, workdir=work, home=home))


@pytest.mark.slow  # the batch of kernels that ignore interrupts stays in the default run
@needs_bwrap
def test_a_cell_that_ignores_interrupts_is_killed_within_its_bound(tmp_path):
    """The careless cell: interrupted at its timeout, killed GRACE seconds later, the kernel
    replaced and the cells before it replayed; a cell whose error ``set_custom_exc`` hides
    is still an error. The notebook's budget stops a running cell in the same way."""
    cells = ["x = 41", CARELESS_CELL, "y = x + 1", HIDDEN_ERROR_CELL, "z = y"]
    started = time.monotonic()
    with _session(tmp_path / "one", cells, Bounds(cell_timeout=5)) as session:
        execution = session.run_notebook()
        statuses = [(cell.status, cell.error_name) for cell in execution.cells]
        assert statuses == [("ok", None), ("timeout", "Timeout"), ("ok", None),
                            ("error", "ValueError"), ("ok", None)], statuses
        assert "did not stop when interrupted" in execution.cells[1].error_message
        assert execution.cells[1].seconds < 5 + 2 * GRACE + 1
        assert execution.cells[3].error_message == "hidden by set_custom_exc"
        assert session.restarts == 1
        run, outputs = session.run_code("print(x, y, z)", timeout=30)
        assert "".join(out.get("text", "") for out in outputs).split() == ["41", "42", "42"]
    assert time.monotonic() - started < 120, "two kernel starts, one bounded wait"

    with _session(tmp_path / "two", [CARELESS_CELL, "w = 0"],
                  Bounds(cell_timeout=600, notebook_timeout=6)) as session:
        execution = session.run_notebook()
        careless, skipped = execution.cells
        assert execution.notebook_timed_out and skipped.status == "skipped"
        assert (careless.status, careless.error_name) == ("timeout", "NotebookTimeout")
        assert careless.seconds < 6 + 2 * GRACE + 1 and session.restarts == 1
        assert "did not stop when interrupted" in careless.error_message


@needs_bwrap
@pytest.mark.usefixtures("mnist_dir")
def test_kernels_that_ignore_interrupts_cannot_hang_the_batch(tmp_path, mnist_dir):
    """A batch with the careless cell, a hidden error and a graded function that loops
    swallowing interrupts: it ends within the bounds; the careless cell costs runs_clean,
    the hidden error costs runs_clean, the looping gan_loss fails with a timeout message,
    every other item is graded as for the honest notebook, which keeps its 90/90."""
    from grader.pipeline.grade_many import grade_batch
    from grader.pipeline.grade_one import Options, prepare_mnist
    from grader.pipeline.load import find_notebooks
    from grader.rubric import load_rubric

    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(HONEST, subs / "alice.ipynb")
    nbformat.write(hostile(CARELESS_CELL), subs / "careless.ipynb")
    nbformat.write(hostile(HIDDEN_ERROR_CELL, LOOPING_GAN_LOSS_CELL), subs / "hiding.ipynb")
    options = Options(rubric=load_rubric(), seed=5, cell_timeout=CELL_TIMEOUT, threads=1,
                      probe_timeout=PROBE_TIMEOUT)
    options.mnist_npz = prepare_mnist(str(mnist_dir), tmp_path / "cache")
    started = time.monotonic()
    results = grade_batch(find_notebooks([subs]), tmp_path / "out", options, workers=2)
    elapsed = time.monotonic() - started
    by_name = {Path(result.submission).stem: result for result in results}
    assert set(by_name) == {"alice", "careless", "hiding"}
    assert (tmp_path / "out" / "gradebook.csv").read_text().count("\n") == 4
    points = {name: {item.id: item.points for item in result.items}
              for name, result in by_name.items()}
    assert by_name["alice"].score == 90 and by_name["alice"].error is None

    careless = by_name["careless"]
    assert careless.cells[-1].status == "timeout"
    assert "did not stop when interrupted" in careless.cells[-1].error_message
    assert points["careless"]["runs_clean"] == 0
    assert "Timeout" in careless.item("runs_clean").message

    hiding = by_name["hiding"]
    assert [cell.status for cell in hiding.cells[-2:]] == ["error", "ok"]
    assert hiding.cells[-2].error_name == "ValueError"
    assert points["hiding"]["runs_clean"] == 0
    gan_loss = hiding.item("gan_loss")
    assert gan_loss.points == 0 and "did not finish in time" in gan_loss.message
    for name, lost in (("careless", {"runs_clean"}), ("hiding", {"runs_clean", "gan_loss"})):
        assert {k: v for k, v in points[name].items() if k not in lost} == \
            {k: v for k, v in points["alice"].items() if k not in lost}, name
        assert not by_name[name].retry
    # alice alone takes about a minute here; each hostile notebook adds one bounded wait,
    # a kernel start and a replay, far from the minutes an unbounded wait would take
    assert elapsed < 420, elapsed


# A submission's folder may hold any file: these would run in place of the kernel, or of
# numpy, if the kernel started among them.
TAKEOVER_FILES = {
    "ipykernel_launcher.py": "open('/tmp/takeover', 'w').write('launcher')\nraise SystemExit(0)\n",
    "numpy.py": "open('/tmp/takeover', 'w').write('numpy')\n",
    "helpers.py": "ANSWER = 42\n",
}


@needs_bwrap
@pytest.mark.parametrize("sandbox_on", [True, False], ids=["bubblewrap", "no-sandbox"])
def test_files_of_the_submission_cannot_take_over_the_kernel(tmp_path, sandbox_on):
    """A submitted ``ipykernel_launcher.py`` or ``numpy.py`` is never imported by the
    kernel's start-up or the grader's set-up; the notebook still imports its own modules
    from its folder, which is where it runs."""
    root = tmp_path / "root"
    files, work, home = root / "files", root / "work", root / "home"
    for folder in (files, work, home):
        folder.mkdir(parents=True)
    for name, text in TAKEOVER_FILES.items():
        (files / name).write_text(text)
    layout = Layout(root=root, files=files, workdir=work, home=home)
    check = ("import os, sys, numpy, helpers\n"
             "print(helpers.ANSWER, os.path.exists('/tmp/takeover'), numpy.__file__, "
             "os.path.samefile(os.getcwd(), " + repr(str(work)) + "))")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(check)])
    marker = Path("/tmp/takeover")  # without a sandbox the host's own /tmp
    marker.unlink(missing_ok=True)
    with KernelSession(notebook, work, Bounds(cell_timeout=60), kernel_environment(home),
                       {"seed": 0, "mnist_npz": ""}, sandbox=choose_sandbox(sandbox_on),
                       layout=layout) as session:
        execution = session.run_notebook()
    assert [cell.status for cell in execution.cells] == ["ok"]
    printed = "".join(output.get("text", "") for output in notebook.cells[0].outputs)
    answer, taken_over, numpy_file, in_work = printed.split()
    assert (answer, taken_over, in_work) == ("42", "False", "True")
    assert "site-packages" in numpy_file
    assert not marker.exists()
