"""``hw4grade check``: a student's (or CI's) self-check of one notebook.

Exit codes: 0 when every autograded item has full marks, 1 when some do not, 2 when the
notebook could not be graded at all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from grader.commands import paths
from grader.commands.options import (
    add_grading_arguments,
    check_grading_arguments,
    options_from_args,
)
from grader.pipeline.grade_one import grade_notebook, prepare_mnist
from grader.report.classroom import classroom_base64
from grader.report.gradescope import gradescope_json
from grader.report.markdown import render_markdown
from grader.report.text import render_text
from grader.result import ItemStatus, SubmissionResult, clean_result

if TYPE_CHECKING:
    from grader.pipeline.grade_one import Options

FORMATS = ("text", "json", "classroom", "gradescope")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hw4grade check``."""
    parser.add_argument("notebook", metavar="SUBMISSION",
                        help="the notebook to check, or an assignment folder or .zip holding "
                             "it with the package it imports")
    add_grading_arguments(parser)
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="what to print: a readable report (default), the result as JSON, "
                             "GitHub Classroom's base64 payload, or Gradescope's results.json")
    parser.add_argument("--json", metavar="FILE", help="also write the result as JSON here")
    parser.add_argument("--sandbox-user", metavar="USER",
                        help="where bubblewrap cannot run and hw4grade runs as root, run the "
                             "notebook as this dedicated unprivileged user (the Gradescope "
                             "autograder; nothing else may run as it)")


def exit_code(result: SubmissionResult) -> int:
    """0: full marks on every autograded item; 1: not; 2: the notebook could not be graded."""
    if result.error:
        return 2
    return 0 if result.autograded_full_marks() else 1


def render(result: SubmissionResult, fmt: str) -> str:
    """The result in the requested format."""
    if fmt == "json":
        return clean_result(result).to_json()
    if fmt == "classroom":
        return classroom_base64(result)
    if fmt == "gradescope":
        return json.dumps(gradescope_json(result), indent=2)
    return render_text(result)


def write_github_outputs(result: SubmissionResult) -> None:
    """In GitHub Actions: a Markdown job summary and an error annotation per failed item."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as stream:
            stream.write(render_markdown(result) + "\n")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for item in result.items:
            if item.status in (ItemStatus.FAILED, ItemStatus.ERROR):
                message = " ".join(item.message.split())[:500].replace("%", "%25")
                # stderr: stdout may be the Classroom payload, which must stay pure base64
                print(f"::error file={result.submission},title={item.id}::{message}",
                      file=sys.stderr)


def choose_isolation(options) -> bool:
    """Use the sandbox where bubblewrap runs, else the --sandbox-user account if it can be
    used (said once). Where neither can, a student's own check runs without a sandbox (said
    once); an install with the reference refuses unless --no-sandbox."""
    from grader.oracles.reference import reference_available
    from grader.pipeline.sandbox import bubblewrap_problem, user_sandbox_problem

    problem = bubblewrap_problem() if options.sandbox else None
    if problem is None:
        return True
    if options.sandbox_user:
        user_problem = user_sandbox_problem(options.sandbox_user)
        if user_problem is None:
            print(f"hw4grade check: {problem}; the notebook runs as the unprivileged user "
                  f"{options.sandbox_user}", file=sys.stderr)
            return True
        problem = f"{problem}, and {user_problem}"
    if reference_available():
        print(f"hw4grade check: {problem}; this install has the reference solution, so "
              "notebooks are only graded in a sandbox (pass --no-sandbox to grade without "
              "one)", file=sys.stderr)
        return False
    print(f"hw4grade check: {problem}; the notebook runs without a sandbox, with your own "
          "rights", file=sys.stderr)
    options.sandbox = False
    return True


def grade_self_check(notebook: str | Path, options: Options, requested_seed: int | None = None,
                     grade: Callable[..., SubmissionResult] = grade_notebook) -> SubmissionResult:
    """Grade one notebook for ``hw4grade check``, in whichever install this is.

    With the reference installed, this is the instructor's grading (``BackgroundOracle``,
    the seed in ``options``). In a student's install with public checks, the seed is forced
    to the public one, the replay answers, and the result's warnings say so.
    """
    from grader.oracles import public, reference
    from grader.oracles.choose import BackgroundOracle

    if reference.reference_available() or not public.public_checks_available():
        oracle = BackgroundOracle()
        try:
            return grade(notebook, options, oracle)
        finally:  # a notebook refused at once leaves TensorFlow loading: not after the report
            oracle.close()
    oracle = public.ReplayOracle.load()
    options.seed = oracle.seed
    result = grade(notebook, options, oracle)
    item_ids = [item.id for item in options.rubric.items]
    result.warnings.extend(public.student_notes(oracle.checks, item_ids, requested_seed))
    return result


def run(args: argparse.Namespace) -> int:
    """Grade one notebook and report it; see the module docstring for exit codes."""
    from grader.quiet import native_stderr_to, quiet_tensorflow

    notebook = paths.input_path(args.notebook, "SUBMISSION")
    check_grading_arguments(args)
    if args.json:
        args.json = paths.output_file(args.json, "--json")
    quiet_tensorflow()
    options = options_from_args(args)
    if not choose_isolation(options):
        return 2  # it said why
    with tempfile.TemporaryDirectory(prefix="hw4grade-check-") as cache, \
            native_stderr_to(os.devnull):  # TensorFlow's native chatter, not for users
        options.mnist_npz = prepare_mnist(args.mnist, Path(cache))
        result = grade_self_check(notebook, options, args.seed, grade_notebook)
        result.submission = args.notebook  # named as the user named it
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(render(result, "json") + "\n", encoding="utf-8")
    print(render(result, args.format))
    write_github_outputs(result)
    return exit_code(result)
