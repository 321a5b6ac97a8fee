"""The class page, ``OUT/index.html``: how the whole class did, at a glance.

``summarise`` reduces the results to plain figures (pure); ``figures`` draws them with
matplotlib as inline SVG (no script, no CDN: the page works offline and passes the same
Content-Security-Policy as the feedback pages); ``render_class_page`` fills the Jinja2
template (autoescaped). ``ClassPageWriter`` keeps the page current while ``grade`` runs,
at most every few seconds, and always at the end.

The page shows: first, the submissions flagged for review (each item's integrity flags,
``ItemResult.flags``), then the distribution of totals; per item, the pass rate and the
mean points; the most frequent diagnosed mistakes with the students concerned; in full
mode each model's FCD across the class against its pass and fail lines; the warnings and
collection flags and the ungradable submissions with their reasons; a link to every
feedback page (a flagged submission's row marked).
"""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from grader import items
from grader.pipeline.devices import Device
from grader.pipeline.diagnose import MISTAKES
from grader.report.common import collection_flags, full_marks, one_line
from grader.report.store import FEEDBACK_DIR, atomic_write_text, submission_name
from grader.report.templating import render
from grader.result import ItemStatus, SubmissionResult, format_points
from grader.rubric import Rubric

CLASS_PAGE = "index.html"
TOP_MISTAKES = 12
WRITE_EVERY = 10.0  # seconds between two rewrites of the page while a batch runs
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@dataclass
class Link:
    """A submission as the page names it: its label, its feedback page and its total."""

    label: str
    href: str
    score: str
    flagged: bool = False  # some item of it is flagged for review


@dataclass
class ItemStats:
    """One rubric item across the class."""

    id: str
    max_points: str
    graded: int
    passed: int
    mean: str

    @property
    def pass_rate(self) -> str:
        """The share of graded submissions with all the item's points, in percent."""
        return f"{100 * self.passed / self.graded:.0f}%" if self.graded else "\u2013"


@dataclass
class Mistake:
    """A diagnosed mistake and who made it."""

    item: str
    name: str
    students: list[Link]


@dataclass
class Flag:
    """Something a reader should check about one submission (or why it was not graded)."""

    student: Link
    reason: str


@dataclass
class Flagged:
    """One integrity flag of one item, for the instructor to review."""

    student: Link
    item: str
    flag: str


@dataclass
class ClassSummary:
    """The figures of the class page."""

    count: int
    totals: list[float]
    max_score: float
    items: list[ItemStats]
    mistakes: list[Mistake]
    fcd: dict[str, list[float]]  # model -> the class's FCDs (full mode)
    fcd_lines: dict[str, tuple[float, float]]  # model -> (pass, fail)
    flags: list[Flag]
    ungradable: list[Flag]
    pages: list[Link]
    modes: list[str] = field(default_factory=list)
    flagged: list[Flagged] = field(default_factory=list)  # in submission, then item order

    @property
    def flagged_count(self) -> int:
        """How many submissions have at least one item flagged for review."""
        return len({entry.student.label for entry in self.flagged})


def link(result: SubmissionResult) -> Link:
    """The class page's link to a result's feedback page (relative to OUT)."""
    name = submission_name(result.submission)
    return Link(one_line(result.submission, 200), f"{FEEDBACK_DIR}/{quote(name)}.html",
                result.score_text(), flagged=any(item.flags for item in result.items))


def diagnosed(message: str, form: str) -> list[str]:
    """The names of the grader's known loss mistakes a message reports."""
    return [mistake.name for mistake in MISTAKES.get(form, ())
            if f"common mistake, {mistake.name}:" in message]


def summarise(results: Sequence[SubmissionResult], rubric: Rubric) -> ClassSummary:
    """The class page's figures, from the results (any order)."""
    results = sorted(results, key=lambda result: result.submission)
    graded = [result for result in results if result.error is None]
    stats = []
    for item in rubric.items:
        mine = [result.item(item.id) for result in graded
                if any(entry.id == item.id for entry in result.items)]
        mine = [entry for entry in mine
                if entry.status not in (ItemStatus.SKIPPED, ItemStatus.MANUAL)]
        mean = sum(entry.points for entry in mine) / len(mine) if mine else None
        stats.append(ItemStats(item.id, format_points(item.points), len(mine),
                               sum(full_marks(entry) for entry in mine),
                               "\u2013" if mean is None else format_points(round(mean, 2))))
    found: dict[tuple[str, str], list[Link]] = {}
    fcd: dict[str, list[float]] = {}
    for result in graded:
        for entry in result.items:
            spec = items.spec(entry.id) if entry.id in items.BY_ID else None
            if spec is None:
                continue
            if spec.form and entry.status == ItemStatus.FAILED:
                for name in diagnosed(entry.message, spec.form):
                    found.setdefault((entry.id, name), []).append(link(result))
            value = entry.details.get("fcd") if isinstance(entry.details, dict) else None
            if spec.model and isinstance(value, (int, float)):
                fcd.setdefault(spec.model, []).append(float(value))
    mistakes = [Mistake(item_id, name, students) for (item_id, name), students in
                sorted(found.items(), key=lambda pair: (-len(pair[1]), pair[0]))][:TOP_MISTAKES]
    devices = Counter(result.device for result in graded)
    device = devices.most_common(1)[0][0] if devices else Device.CPU
    lines = rubric.convergence.thresholds.get(device, {})
    flags = [Flag(link(result), one_line(text, 500)) for result in results
             for text in [*collection_flags(result), *result.warnings,
                          *(["graded without a sandbox"] if result.sandbox == "none" else [])]]
    ungradable = [Flag(link(result), one_line(result.error, 500)) for result in results
                  if result.error is not None]
    flagged = [Flagged(link(result), one_line(item.id), one_line(flag, 500))
               for result in results for item in result.items for flag in item.flags]
    maxima = Counter(result.max_score for result in results)
    return ClassSummary(
        count=len(results), totals=[result.score for result in results],
        max_score=maxima.most_common(1)[0][0] if maxima else 0.0, items=stats,
        mistakes=mistakes, fcd=fcd, fcd_lines={model: lines[model] for model in fcd
                                               if model in lines},
        flags=flags, ungradable=ungradable, pages=[link(result) for result in results],
        modes=sorted({result.mode for result in results}), flagged=flagged)


def _svg(figure) -> str:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text: small, searchable
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # no XML prolog or doctype inside the page


def figures(summary: ClassSummary) -> dict[str, str]:
    """The page's figures as inline SVG text (made by the grader from numbers only)."""
    from matplotlib.figure import Figure

    drawn = {}
    figure = Figure(figsize=(6, 2.8))
    axes = figure.subplots()
    top = max([summary.max_score, *summary.totals, 1.0])
    axes.hist(summary.totals, bins=min(30, max(5, int(top // 5))), range=(0, top),
              color="#3b6ea8")
    axes.set_xlabel("total score")
    axes.set_ylabel("submissions")
    axes.set_title(f"Totals ({summary.count} submissions, out of "
                   f"{format_points(summary.max_score)})")
    drawn["totals"] = _svg(figure)
    graded = [stats for stats in summary.items if stats.graded]
    if graded:
        figure = Figure(figsize=(6, 0.3 * len(graded) + 0.8))
        axes = figure.subplots()
        axes.barh([stats.id for stats in graded],
                  [100 * stats.passed / stats.graded for stats in graded], color="#1a7f37")
        axes.invert_yaxis()
        axes.set_xlim(0, 100)
        axes.set_xlabel("% with full marks")
        drawn["pass_rates"] = _svg(figure)
    for model, values in summary.fcd.items():
        figure = Figure(figsize=(6, 1.8))
        axes = figure.subplots()
        axes.plot(values, [0] * len(values), "o", alpha=0.5, color="#3b6ea8")
        if model in summary.fcd_lines:
            low, high = summary.fcd_lines[model]
            axes.axvline(low, color="#1a7f37", label=f"pass ({format_points(low)})")
            axes.axvline(high, color="#b3261e", label=f"fail ({format_points(high)})")
            axes.legend(loc="upper right", fontsize="small")
        axes.set_yticks([])
        axes.set_xlabel("FCD (lower is better)")
        axes.set_title(f"{model}: FCD of each submission")
        drawn[f"fcd_{model}"] = _svg(figure)
    return drawn


def render_class_page(results: Sequence[SubmissionResult], rubric: Rubric) -> str:
    """``OUT/index.html`` for these results: one self-contained document."""
    from markupsafe import Markup

    summary = summarise(results, rubric)
    drawn = {name: Markup(svg) for name, svg in figures(summary).items()}  # the grader's own
    return render("class.html.j2", summary=summary, figures=drawn, csp=_CSP,
                  generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def write_class_page(results: Sequence[SubmissionResult], out: Path, rubric: Rubric) -> Path:
    """Write ``OUT/index.html`` atomically and return its path."""
    return atomic_write_text(out / CLASS_PAGE, render_class_page(results, rubric))


class ClassPageWriter:
    """Keeps ``OUT/index.html`` current during a batch without slowing it: ``update`` rewrites
    it at most every ``WRITE_EVERY`` seconds, ``final`` always."""

    def __init__(self, out: Path, rubric: Rubric, every: float = WRITE_EVERY) -> None:
        self.out, self.rubric, self.every = out, rubric, every
        self.last = float("-inf")

    def update(self, results: Sequence[SubmissionResult]) -> None:
        """Rewrite the page if the last rewrite is old enough."""
        if time.monotonic() - self.last >= self.every:
            self.final(results)

    def final(self, results: Sequence[SubmissionResult]) -> None:
        """Rewrite the page now."""
        write_class_page(results, self.out, self.rubric)
        self.last = time.monotonic()
