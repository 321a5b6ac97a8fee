"""Grade one submission end to end: load -> execute -> probe -> score, into one result.

``grade_notebook`` never raises for anything a submission does: an unusable file, a
crashing cell or a hanging function each end up in the result, and the caller (a batch,
a self-check) goes on.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from grader import __version__, items
from grader.exceptions import FrameworkNotInstalled, KernelNotPrepared
from grader.frameworks import AUTO, Framework, choose_framework
from grader.frameworks.base import derivations_left_to_instructor
from grader.pipeline import checks, score
from grader.pipeline.devices import Device
from grader.pipeline.execute import Bounds, KernelSession, kernel_environment
from grader.pipeline.folders import SubmissionKind
from grader.pipeline.load import (
    Submission,
    SubmissionError,
    load_submission,
    named_folder,
    submission_label,
)
from grader.pipeline.prober import Prober
from grader.pipeline.sandbox import Layout, choose_sandbox
from grader.result import ItemResult, ItemStatus, SubmissionResult
from grader.rubric import Mode, Rubric

MAX_COPIED_BYTES = 200 * 2**20  # files copied from the submission's folder into the sandbox
# The quick-mode rule: convergence items are skipped, worth 0 of 0, in every report.
QUICK_MODE_SKIP = "graded in --mode full only, where the grader trains each GAN itself"


@dataclass
class Options:
    """How to grade: the mode, the seed, the device and every bound."""

    rubric: Rubric
    mode: str = Mode.QUICK
    seed: int = 0
    device: str = Device.CPU
    gpu_index: int | None = None
    threads: int | None = None
    mnist_npz: Path | None = None
    profile: str = AUTO
    cell_timeout: float | None = None
    notebook_timeout: float | None = None
    memory_limit: int | None = None
    output_limit: int | None = None
    probe_timeout: float = 120.0
    extra_env: dict[str, str] = field(default_factory=dict)
    sandbox: bool = True  # False only when the instructor passes --no-sandbox
    sandbox_user: str | None = None  # where bubblewrap cannot run, kernels run as this user

    def bounds(self) -> Bounds:
        """The bounds in force: command-line values first, then the rubric's."""
        from_rubric = self.rubric.bounds
        return Bounds(
            cell_timeout=self.cell_timeout or from_rubric.cell_timeout,
            notebook_timeout=self.notebook_timeout or from_rubric.notebook_timeout,
            memory_limit=self.memory_limit or from_rubric.memory_limit,
            output_limit=self.output_limit or from_rubric.output_limit,
            training_steps=from_rubric.training_steps[self.mode],
        )


def new_result(path: Path | str, options: Options, sha256: str | None) -> SubmissionResult:
    """An empty result carrying the run's settings."""
    return SubmissionResult(submission=str(path), notebook_sha256=sha256,
                            grader_version=__version__, rubric_sha256=options.rubric.text_sha256,
                            mode=options.mode, seed=options.seed, device=options.device)


def failed_result(path: Path | str, options: Options, sha256: str | None,
                  reason: str, excluded: Mapping[str, str] | None = None,
                  by_hand: Mapping[str, str] | None = None) -> SubmissionResult:
    """The result of a submission that could not be graded at all: score 0, reason given
    (``excluded``: the items its framework does not have, out of its maximum as when graded;
    ``by_hand``: the items its framework leaves to a person, pending, with their sentence)."""
    result = new_result(path, options, sha256)
    result.error = reason
    excluded, by_hand = excluded or {}, by_hand or {}
    for item in options.rubric.items:
        if item.manual:
            result.items.append(score.manual(item))
        elif item.id in by_hand:
            result.items.append(ItemResult(item.id, 0.0, item.points, ItemStatus.MANUAL,
                                           by_hand[item.id]))
        elif item.id in excluded:
            result.items.append(score.skipped(item, excluded[item.id]))
        elif items.spec(item.id).check == items.CONVERGENCE and options.mode != Mode.FULL:
            result.items.append(score.skipped(item, QUICK_MODE_SKIP))
        else:
            result.items.append(ItemResult(item.id, 0.0, item.points, ItemStatus.ERROR,
                                           reason))
    result.total()
    return result


def readable_sha256(path: Path) -> str | None:
    """The file's SHA-256 when it can be read (so a rerun knows an unusable file is unchanged)."""
    from grader.pipeline.load import file_sha256

    try:
        return file_sha256(path) if not path.is_symlink() else None
    except OSError:
        return None


def companion_files(notebook_path: Path) -> list[Path]:
    """The files of the submission's folder its kernel gets (small files, no notebooks)."""
    chosen, copied = [], 0
    for entry in sorted(notebook_path.parent.iterdir()):
        if entry.is_symlink() or not entry.is_file() or entry.suffix == ".ipynb":
            continue
        size = entry.stat().st_size
        if copied + size > MAX_COPIED_BYTES:
            continue
        chosen.append(entry)
        copied += size
    return chosen


def prepare_sandbox(submission: Submission, root: Path) -> Path:
    """Copy the notebook's folder (small regular files, no notebooks) and the student's
    package files (at their places relative to the notebook) into ``root/files``, which the
    kernel's launch copies into its own writable folder."""
    work = root / "files"
    work.mkdir(parents=True)
    for entry in companion_files(submission.path):
        shutil.copy2(entry, work / entry.name)
    for name in submission.modules:  # checked by the loader: regular files inside it
        target = work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(submission.path.parent / name, target)
    return work


def grade_notebook(path: str | Path, options: Options, oracle,
                   label: str | None = None) -> SubmissionResult:
    """Grade one notebook; always returns a result (``label`` names it in reports)."""
    return grade_notebook_at_seeds(path, options, oracle, [options.seed], label)[0]


def grade_notebook_at_seeds(path: str | Path, options: Options, oracle, seeds: list[int],
                            label: str | None = None) -> list[SubmissionResult]:
    """Grade one notebook, executed once, with the hidden inputs of each seed in turn.

    One result per seed, as ``grade_notebook`` with ``options.seed`` set to it would give,
    except that the kernel (and so the notebook's own random state) is the first seed's:
    this is how a test shows that a grade does not depend on the hidden draw.
    """
    folder = named_folder(Path(os.path.abspath(path)), label) if label else \
        Path(os.path.abspath(path)).parent  # the folder named on the command line
    label = label or submission_label(str(path))
    path = Path(os.path.abspath(path))  # the kernel and its sandbox run elsewhere
    started = time.monotonic()
    if options.mnist_npz:  # the kernel sees the data set by this exact path
        options = replace(options, mnist_npz=Path(options.mnist_npz).resolve())
    runs = [replace(options, seed=seed) for seed in seeds]
    try:
        submission = load_submission(path, folder, options.profile)
    except SubmissionError as error:  # named as the caller named it, not by absolute path
        message = str(error).replace(str(path), label)
        return [failed_result(label, run, readable_sha256(path), message) for run in runs]
    results = [new_result(label, run, submission.sha256) for run in runs]
    if submission.kind != SubmissionKind.NOTEBOOK:
        for result in results:
            result.graded_files = submission.graded_files()
            result.warnings.append(submission.note)
    root = Path(tempfile.mkdtemp(prefix="hw4grade-")).resolve()
    try:
        _grade_in_sandbox(submission, runs[0], oracle, root, results)
    except FrameworkNotInstalled as error:  # scored as its framework's items would be
        results = [failed_result(label, run, submission.sha256, str(error), error.excluded,
                                 error.by_hand) for run in runs]
        for result in results:
            result.profile = error.profile
    except SubmissionError as error:  # its framework refused it (mixed frameworks)
        results = [failed_result(label, run, submission.sha256, str(error)) for run in runs]
    except KernelNotPrepared as error:  # the machine's fault: said once, graded again later
        print(f"hw4grade: {label}: {error}", file=sys.stderr)
        results = [failed_result(label, run, submission.sha256,
                                 f"{error} (the grading machine's fault, not the "
                                 "submission's)") for run in runs]
        for result in results:
            result.retry = True
    except Exception as error:  # a grader fault: say so rather than lose the batch
        detail = traceback.format_exc(limit=-4)
        print(f"hw4grade: internal error grading {path}:\n{detail}", file=sys.stderr)
        results = [failed_result(label, run, submission.sha256,
                                 f"the grader failed on this submission ({error!r}); "
                                 "please report it to the course staff") for run in runs]
        for result in results:
            result.retry = True
    finally:
        shutil.rmtree(root, ignore_errors=True)
        submission.discard()
    for result in results:
        result.timing["total"] = round(time.monotonic() - started, 2)
    return results


def _grade_in_sandbox(submission, options: Options, oracle, root: Path,
                      results: list[SubmissionResult]) -> None:
    """Execute the notebook once, then probe and score it for each result's seed."""
    files = prepare_sandbox(submission, root)
    work, home = root / "work", root / "home"  # the exchange folders are each kernel's own
    for folder in (work, home):
        folder.mkdir()
    sandbox = choose_sandbox(options.sandbox, options.device, options.gpu_index,
                             options.sandbox_user)
    if options.mnist_npz:  # by a path the kernel can read
        options = replace(options, mnist_npz=sandbox.share(Path(options.mnist_npz), root))
    for result in results:
        result.sandbox = sandbox.name
        if sandbox.name == "none":
            result.warnings.append("graded without a sandbox: the notebook's code ran with "
                                   "the grader's own rights")
    readable = (Path(options.mnist_npz).resolve(),) if options.mnist_npz else ()
    layout = Layout(root=root, files=files, workdir=work, home=home, readable=readable)
    env = kernel_environment(home, options.device, options.threads, options.gpu_index)
    env.update(options.extra_env)
    framework = choose_framework(submission.notebook, options.profile,
                                 submission.module_source())
    modules = (submission.gan_module,) if submission.gan_module else ()
    try:
        setup = framework.prepare(submission.notebook, files, modules, options.device)
    except FrameworkNotInstalled as error:
        error.profile, error.excluded = framework.label(), framework.excluded_items()
        error.by_hand = derivations_left_to_instructor(framework)
        raise
    env.update(setup.env)
    options = replace(options, device=setup.device or options.device)
    config = {"seed": options.seed, "mnist_npz": str(options.mnist_npz or ""),
              "watched": list(framework.watched), "gpu": options.device == Device.GPU}
    clock = time.monotonic()
    with KernelSession(submission.notebook, work, options.bounds(), env, config,
                       setup_code=setup.setup_code, after_cell=setup.after_cell, sandbox=sandbox,
                       layout=layout) as session:
        timing = {"kernel_start": round(time.monotonic() - clock, 2)}
        clock = time.monotonic()
        execution = session.run_notebook()
        timing["execute"] = round(time.monotonic() - clock, 2)
        prober = Prober(session, timeout=options.probe_timeout, framework=framework)
        for result in results:
            result.profile = framework.label()
            result.warnings.extend(setup.warnings)
            result.timing.update(timing)
            result.cells = execution.cells
            result.device = options.device
            _probe_and_score(prober, replace(options, seed=result.seed),
                             framework.oracle(oracle), framework, execution, result,
                             setup.ungraded_cells)
    for result in results:  # what held the bounds of every kernel the notebook had
        result.enforcement = dict(session.enforcement)


def _probe_and_score(prober: Prober, options: Options, oracle, framework: Framework,
                     execution, result: SubmissionResult,
                     ungraded: dict[int, str] | None = None) -> None:
    """Probe the executed notebook with ``options.seed``'s hidden inputs; fill ``result``."""
    from grader.convergence.attribution import remove_reference

    remove_reference(prober)  # a kernel that got the reference for attribution is discarded
    rng = np.random.default_rng(options.seed)
    rubric = options.rubric
    clock = time.monotonic()
    excluded = framework.excluded_items()
    graded = {item.id: checks.grade_unit(item, prober, rng, oracle, framework.checks())
              for item in rubric.items
              if items.spec(item.id).check in checks.PROBED and item.id not in excluded}
    result.timing["probe"] = round(time.monotonic() - clock, 2)
    if options.mode == Mode.FULL:
        clock = time.monotonic()
        graded.update(_grade_convergence(prober, rng, options, graded))
        result.timing["convergence"] = round(time.monotonic() - clock, 2)
    for item_id in items.ids_with(items.RUNS_CLEAN):
        graded[item_id] = score.score_runs_clean(execution.cells, rubric.item(item_id), ungraded)
    graded = {item_id: framework.finish(item, items.spec(item_id))
              for item_id, item in graded.items()}
    if execution.notebook_timed_out:
        result.warnings.append("the notebook's time limit ran out; later cells were skipped")
    if prober.patched:
        # names of wire.WATCHED only (the response parser drops any other), so no text of
        # the kernel's choosing reaches the warning
        result.warnings.append("the notebook's kernel reported that these library functions "
                               "the grader watches were replaced: "
                               + ", ".join(sorted(prober.patched))
                               + " (grades are computed outside the notebook and are unaffected)")
    for item in rubric.items:
        if item.manual:
            result.items.append(score.manual(item))
        elif item.id in excluded:
            result.items.append(score.skipped(item, excluded[item.id]))
        elif item.id in graded:
            result.items.append(graded[item.id])
        elif items.spec(item.id).check == items.CONVERGENCE:
            result.items.append(score.skipped(item, QUICK_MODE_SKIP))
        else:
            result.items.append(score.skipped(item, "not graded by this version of the grader"))
    if score.grader_faulted(result.items):
        result.retry = True  # the grader's own failure: a resumed batch grades it again
    result.total()


def _grade_convergence(prober: Prober, rng: np.random.Generator, options: Options,
                       graded: dict[str, ItemResult]) -> dict[str, ItemResult]:
    """Train and judge each GAN (``--mode full``); then attribute the clear failures in one
    kernel that holds the reference (discarded before the kernel's next use)."""
    from grader.convergence import grade
    from grader.convergence.judge import Settings, Thresholds
    from grader.convergence.lines import DATA_DIR, load_lines

    settings = options.rubric.convergence
    lines = load_lines(DATA_DIR / prober.framework.lines_file)
    with np.load(options.mnist_npz) as data:
        n_images = len(data["y_train"])
    results, judged = {}, []
    for spec in items.CATALOGUE:
        if spec.check != items.CONVERGENCE:
            continue
        item_id, model = spec.id, spec.model
        item = options.rubric.item(item_id)
        if item.points == 0:
            continue
        item_rng = np.random.default_rng([rng.integers(2**32), len(item_id)])
        pass_fcd, fail_fcd = settings.thresholds[options.device][model]
        judging = Settings(options.device, Thresholds(pass_fcd, fail_fcd,
                                                      settings.min_class_entropy),
                           lines, settings.max_seconds)
        try:
            judged.append(grade.judge_item(
                item, prober, item_rng, checkpoints=settings.schedule(options.device, model),
                samples=settings.samples, settings=judging, mnist_npz=str(options.mnist_npz),
                n_images=n_images, units=graded, reseeds=settings.reseed_runs))
        except Exception as error:
            print(f"hw4grade: training {model} failed: {traceback.format_exc(limit=-3)}",
                  file=sys.stderr)
            results[item_id] = score.crashed(item, f"the grader could not train {model} "
                                                   f"({error!r})")
    try:
        grade.attribute_failures(prober, judged, str(options.mnist_npz),
                                 settings.attribution_runs)
    except Exception:
        print(f"hw4grade: attribution failed: {traceback.format_exc(limit=-3)}",
              file=sys.stderr)
    results.update({one.item.id: grade.item_result(one) for one in judged})
    return results


def default_threads(workers: int) -> int:
    """CPU threads per kernel when ``workers`` kernels share this machine."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


# -- shared command-line options -----------------------------------------------------------------


def prepare_mnist(path: str | None, cache_dir: Path) -> Path:
    """Resolve MNIST once (printing the source) and give the npz a kernel loads."""
    from grader.mnist.data import kernel_npz

    return Path(os.path.abspath(kernel_npz(path, cache_dir)))  # a kernel runs elsewhere
