"""``hw4grade gradebook``: rebuild OUT/gradebook.csv from OUT/results, merging hand-graded scores.

The instructor fills in ``OUT/manual-template.csv`` (written by ``hw4grade grade``: a
``submission`` column and one column per hand-graded item) and passes it with
``--manual``. Its scores are checked against the results, merged into ``OUT/manual.csv``
(the record of every merge: a later file adds to it or corrects it, an empty cell changes
nothing), and applied to every result, feedback page and the gradebook.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grader.commands import paths
from grader.exceptions import UsageError
from grader.report import lms, manual, store
from grader.report.classpage import write_class_page
from grader.report.feedback import write_feedback
from grader.report.gradebook import write_gradebook
from grader.report.text import flagged_line, verdict
from grader.result import SubmissionResult
from grader.rubric import Rubric


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hw4grade gradebook``."""
    parser.add_argument("out", type=Path, help="the output folder of hw4grade grade")
    parser.add_argument("--manual", type=Path, metavar="CSV",
                        help="hand-graded scores: a 'submission' column and one column per "
                             "hand-graded item (problem1_derivation, problem2_derivation); "
                             "OUT/manual-template.csv is one to fill in")
    parser.add_argument("--rubric", type=Path,
                        help="rubric file (default: the shipped rubric.yaml)")
    parser.add_argument("--canvas", type=Path, metavar="EXPORT.csv",
                        help="the course's Canvas gradebook export: write OUT/"
                             f"{lms.CANVAS.import_file} for Canvas's Import (needs --assignment)")
    parser.add_argument("--moodle", type=Path, metavar="EXPORT.csv",
                        help="the course's Moodle grades export (plain text file): write "
                             f"OUT/{lms.MOODLE.import_file} (needs --assignment)")
    parser.add_argument("--assignment", metavar="COLUMN",
                        help="the export's column of this homework, e.g. 'HW4 (123456)' "
                             "(Canvas) or 'Assignment: HW4 (Real)' (Moodle)")


def rebuild(out: Path, results: list[SubmissionResult], rubric: Rubric,
            new_scores: manual.ManualScores | None = None) -> list[SubmissionResult]:
    """Merge ``new_scores`` into ``OUT/manual.csv``, apply the record to every result and
    rewrite results, feedback pages, the manual template and the gradebook."""
    record = manual.read_manual_record(out, rubric)
    if new_scores:
        record = manual.merge_manual_record(record, new_scores)
        manual.write_manual_record(out, record, rubric)
    merged = []
    for result in results:
        points = record.get(result.submission)
        if points:
            result = manual.apply_manual_scores(result, points)
            store.write_result_json(result, out)
            write_feedback(result, out)
        merged.append(result)
    manual.write_manual_template(merged, out, rubric, record)
    write_gradebook(merged, out / "gradebook.csv", rubric)
    write_class_page(merged, out, rubric)
    return merged


def output_folder(args: argparse.Namespace) -> Path:
    """Where this command writes (and where the log of a crash goes)."""
    return args.out.resolve()


def run(args: argparse.Namespace) -> int:
    """Rebuild the gradebook (merging ``--manual`` first, then writing the LMS import files
    asked for); bad input raises ``BadInput``."""
    out = paths.input_folder(args.out, "OUT")
    paths.output_folder(out, "OUT")
    if (args.canvas is None and args.moodle is None) != (args.assignment is None):
        raise UsageError("--assignment goes with --canvas or --moodle")
    exports = [(kind, paths.input_file(export, option)) for kind, export, option in
               ((lms.CANVAS, args.canvas, "--canvas"), (lms.MOODLE, args.moodle, "--moodle"))
               if export is not None]
    manual_csv = paths.input_file(args.manual, "--manual") if args.manual else None
    rubric = paths.rubric_file(args.rubric)
    results = paths.graded_folder(args.out, "gradebook")
    new_scores = None
    if manual_csv:
        try:
            new_scores = manual.read_manual_scores(
                manual_csv, results, rubric, known_from=f"{args.out / store.RESULTS_DIR}")
        except manual.ManualScoreError as error:
            raise UsageError("--manual: nothing merged: "
                             + "; ".join(error.problems)) from None
    merged = rebuild(out, results, rubric, new_scores)
    if new_scores is not None:
        count = sum(len(points) for points in new_scores.values())
        print(f"merged {count} hand-graded score(s) from {args.manual} into "
              f"{args.out / manual.MANUAL_RECORD}")
    for result in merged:
        print(f"{store.submission_name(result.submission):<40} {verdict(result)}")
    print(f"gradebook: {args.out / 'gradebook.csv'}")
    flagged = flagged_line(merged, str(args.out / "gradebook.csv"))
    if flagged:
        print(flagged)
    for kind, export in exports:
        export_to(kind, export, args, merged)
    return 0


def export_to(kind: lms.LmsFormat, export_path: Path, args: argparse.Namespace,
              results: list[SubmissionResult]) -> None:
    """Write the LMS's import file and list the students matched on one side only
    (``LmsExportError``, a ``BadInput``, when the export cannot be read)."""
    _, export = lms.read_export(export_path, args.assignment, kind)
    made = lms.lms_import(export, results, args.assignment, kind)
    path = lms.write_import(made, args.out)
    for name in made.unmatched_lms:
        print(f"in {kind.name}, no result (cell left blank): {name}")
    for label in made.unmatched_results:
        print(f"a result, no {kind.name} student (not in the import): {label}")
    for text in made.ambiguous:
        print(f"several results for one {kind.name} student (cell left blank): {text}")
    print(f"{kind.name} import: {path} ({len(made.unmatched_lms)} {kind.name} student(s) and "
          f"{len(made.unmatched_results)} result(s) unmatched)")
