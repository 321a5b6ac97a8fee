"""``hw4grade theory``: numerical checks of the closed forms behind Problems 1 and 2.

Prints one row per check (closed form, numerical value, error, tolerance) and exits with 1
if any check fails.  ``--json FILE`` writes the same rows as JSON; ``--plot DIR`` saves the
optimal discriminators next to their numerical minimisers, and the generator objective at
the optimum against the divergence it equals.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from grader.commands import paths
from reference import theory
from reference.theory import CheckResult

TABLE_HEADER = ("", "check", "case", "closed form", "numerical", "|error|", "tolerance")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``hw4grade theory``."""
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write the rows as JSON")
    parser.add_argument("--plot", metavar="DIR", type=Path, help="save PNG figures into DIR")
    parser.add_argument("--seed", type=int, default=0, help="seed of the Monte Carlo checks")


def run(args: argparse.Namespace) -> int:
    """Run every check, report it, and return 0 if all pass, else 1."""
    if args.json is not None:
        args.json = paths.output_file(args.json, "--json")
    if args.plot is not None:
        args.plot = paths.output_folder(args.plot, "--plot")
    results = theory.run_all_checks(seed=args.seed)
    print(format_table(results))
    failed = sum(not r.passed for r in results)
    print(f"\n{len(results) - failed} of {len(results)} checks passed")
    if args.json is not None:
        write_json(results, args.json)
        print(f"wrote {args.json}")
    if args.plot is not None:
        for path in save_figures(args.plot):
            print(f"wrote {path}")
    return 1 if failed else 0


def format_table(results: list[CheckResult]) -> str:
    """A fixed-width text table with one line per check."""
    rows = [TABLE_HEADER] + [
        (
            "ok" if r.passed else "FAIL",
            r.check,
            r.case,
            f"{r.closed_form + 0.0:.10g}",  # + 0.0 prints -0.0 as 0
            f"{r.numerical + 0.0:.10g}",
            f"{r.abs_error:.2e}",
            f"{r.tolerance:.1e}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def rows_as_json(results: list[CheckResult]) -> dict[str, object]:
    """The report as a JSON-ready dict; non-finite numbers become strings ('nan', 'inf')."""

    def clean(value: object) -> object:
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return value

    rows = [{key: clean(value) for key, value in asdict(r).items()} for r in results]
    return {
        "passed": all(r.passed for r in results),
        "n_checks": len(results),
        "n_failed": sum(not r.passed for r in results),
        "rows": rows,
    }


def write_json(results: list[CheckResult], path: Path) -> None:
    """Write ``rows_as_json(results)`` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows_as_json(results), indent=2, allow_nan=False) + "\n")


# --------------------------------------------------------------------------- figures


def save_figures(out_dir: Path) -> list[Path]:
    """Save the discriminator and divergence figures as PNG; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        plot_optimal_d(out_dir / "optimal_d.png"),
        plot_divergences(out_dir / "divergences.png"),
    ]


def plot_optimal_d(path: Path) -> Path:
    """D*(x) (closed form, line) and the L-BFGS-B minimiser (dots) for both GANs."""
    import matplotlib.pyplot as plt

    forms = theory.default_closed_forms()
    scenarios = theory.functional_scenarios()
    rows = [("GAN", forms.gan_d, None), ("LSGAN a=-1, b=1", forms.lsgan_d, (-1.0, 1.0))]
    fig, axes = plt.subplots(len(rows), len(scenarios), figsize=(13, 6.5), squeeze=False)
    for (label, optimal_d, coding), row_axes in zip(rows, axes):
        for scenario, ax in zip(scenarios, row_axes):
            sol = theory.solve_functional(scenario, optimal_d, coding)
            ax.plot(sol.x, sol.closed, color="C0", label="closed form D*(x)")
            ax.plot(
                sol.x[sol.mask][::6],
                sol.numerical[sol.mask][::6],
                "o",
                ms=3,
                color="C3",
                label="numerical minimiser",
            )
            density_ax = ax.twinx()
            density_ax.fill_between(sol.x, scenario.p_data(sol.x), color="C2", alpha=0.15)
            density_ax.fill_between(sol.x, scenario.p_model(sol.x), color="C1", alpha=0.15)
            density_ax.set_ylim(bottom=0.0)
            density_ax.set_yticks([])
            ax.set_title(f"{label}: {scenario.name}", fontsize=10)
            ax.set_xlabel("x")
    axes[0, 0].legend(fontsize=8, loc="center left")
    fig.suptitle("Optimal discriminator (shaded: p_data green, p_model orange)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_divergences(path: Path) -> Path:
    """C(G) at the optimal D (dots, by quad) against its divergence form (line) vs mean shift."""
    import matplotlib.pyplot as plt

    curves = theory.divergence_curves(np.linspace(0.0, 8.0, 33))
    fig, (ax_gan, ax_ls) = plt.subplots(1, 2, figsize=(11, 4))
    ax_gan.plot(curves["shift"], curves["gan_closed"], label="-log 4 + 2 JSD")
    ax_gan.plot(curves["shift"], curves["gan_value"], "o", ms=3, label="C(G) by quad")
    ax_gan.set_title("GAN")
    ax_ls.plot(curves["shift"], curves["lsgan_closed"], label="chi2_Pearson(pd+pg || 2pg) / 2")
    ax_ls.plot(
        curves["shift"], curves["lsgan_value"], "o", ms=3, label="C(G) by quad, a=-1,b=1,c=0"
    )
    ax_ls.set_title("LSGAN")
    for ax in (ax_gan, ax_ls):
        ax.set_xlabel("mean shift between N(0,1) and N(shift,1)")
        ax.set_ylabel("generator objective at D*")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
