"""``hw4grade release`` and ``hw4grade gradescope-package``: the students' bundle and
Gradescope's autograder zip (instructor only: left out of the student wheel)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from grader.commands import paths
from grader.frameworks.editions import DEFAULT_EDITION, EDITIONS, recorded_editions
from grader.release.bundle import (
    COMMAND_NAMES,
    PROJECT_ROOT,
    check_out_dir,
    check_template,
    grading_options,
    record_public_checks,
    reference_oracle,
    remove_previous,
    write_gradescope_zip,
    write_release,
)
from grader.rubric import MODES, Mode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hw4grade release`` or ``hw4grade gradescope-package`` (by the parser's
    name: one module serves both commands)."""
    command = parser.prog.split()[-1]
    if command == "release":
        parser.add_argument("--out", required=True, type=Path, help="folder for the bundle")
        parser.add_argument("--solution", type=Path,
                            help="solution notebook graded to record the public checks "
                                 "(default: the edition's)")
        parser.add_argument("--template", type=Path,
                            help="the student template (must match the solution; default: "
                                 "the edition's)")
        parser.add_argument("--force", action="store_true",
                            help="replace an earlier bundle in --out")
    elif command == "gradescope-package":
        parser.add_argument("--out", type=Path, default=Path("autograder.zip"),
                            help="the zip to write (default: autograder.zip)")
        parser.add_argument("--mode", choices=MODES, default=Mode.QUICK,
                            help="how Gradescope grades (default: quick)")
    else:
        raise ValueError(f"grader.release.bundle serves {COMMAND_NAMES}, not {command!r}")
    parser.add_argument("--edition", choices=tuple(EDITIONS), default=DEFAULT_EDITION,
                        help="the framework the students write in (default: "
                             f"{DEFAULT_EDITION}); a {'/'.join(EDITIONS)} bundle or package")
    parser.add_argument("--mnist", metavar="PATH",
                        help="MNIST folder or mnist.npz (release: for grading the solution; "
                             "gradescope-package: bundled as mnist.npz)")


def run_release(args: argparse.Namespace) -> int:
    """``hw4grade release``: record the public checks of the edition (and of the default
    edition, whose replay a student's install needs), then write the bundle."""
    from grader.oracles.public import PUBLIC_SEED

    out, edition = args.out, EDITIONS[args.edition]
    check_template(args.solution, args.template)
    check_out_dir(out, args.force)
    counts = []
    with tempfile.TemporaryDirectory(prefix="hw4grade-release-") as scratch:
        scratch = Path(scratch)
        rubric = scratch / "rubric.yaml"  # one copy for the recording and the wheel alike
        rubric.write_bytes((PROJECT_ROOT / "rubric.yaml").read_bytes())
        options = grading_options(rubric, args.mnist, scratch, PUBLIC_SEED)
        editions = recorded_editions(args.edition)
        # the edition asked for is loaded first: a library it lacks is said before any grading
        references = {edition.framework: reference_oracle(edition)}
        for recorded in editions:
            if recorded.framework not in references:
                references[recorded.framework] = reference_oracle(recorded)
        for recorded in editions:
            solution = args.solution if recorded is edition else PROJECT_ROOT / recorded.solution
            print(f"hw4grade release: grading {solution} with the public seed {PUBLIC_SEED}",
                  file=sys.stderr)
            checks = record_public_checks(solution, options, recorded,
                                          references[recorded.framework])
            checks.save(scratch / "checks", recorded.public_checks)
            counts.append(f"{len(checks.answers)} ({recorded.framework})")
        remove_previous(out)
        bundle = write_release(out, args.template, scratch / "checks", rubric.read_bytes(),
                               PUBLIC_SEED, edition=edition)
    print(f"public checks recorded: {', '.join(counts)}")
    if bundle.left_out:
        print("left out of the student wheel (they need the reference): "
              + ", ".join(bundle.left_out))
    for path in bundle.files:
        print(f"wrote {path}")
    return 0


def run_gradescope(args: argparse.Namespace) -> int:
    """``hw4grade gradescope-package``: write the autograder zip."""
    mnist_npz = None
    with tempfile.TemporaryDirectory(prefix="hw4grade-gradescope-") as scratch:
        if args.mnist:
            from grader.pipeline.grade_one import prepare_mnist

            mnist_npz = prepare_mnist(args.mnist, Path(scratch))
        path = write_gradescope_zip(args.out, args.mode, mnist_npz,
                                    edition=EDITIONS[args.edition])
    print(f"wrote {path}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``release`` or ``gradescope-package``; bad input raises ``BadInput`` (exit 2)."""
    if args.command == "release":
        edition = EDITIONS[args.edition]
        args.out = paths.output_folder(args.out, "--out")
        args.solution = paths.input_file(args.solution or PROJECT_ROOT / edition.solution,
                                         "--solution")
        args.template = paths.input_file(args.template or PROJECT_ROOT / edition.template,
                                         "--template")
    else:
        args.out = paths.output_file(args.out, "--out")
    args.mnist = paths.mnist_source(args.mnist)
    return run_release(args) if args.command == "release" else run_gradescope(args)
