"""Turn the calibration runs of the reference into the grader's convergence lines.

    python benchmarks/convergence_lines.py \\
        [--runs benchmarks/results/convergence_runs.jsonl] \\
        [--write grader/data/convergence_lines.json] \\
        [--markdown benchmarks/results/convergence_lines.md]

Reads the reference runs ``benchmarks/calibrate_convergence.py run`` recorded (one JSON line
per model and seed, with the FCD and the descent z of the generator at every checkpoint)
and sets, per model and checkpoint:

* ``stop``: the worst reference seed's FCD plus ``STOP_MARGIN``: a run above it is behind
  every reference seed, and its verdict is settled (by the rubric's lines) there;
* ``too_good``: ``TOO_GOOD_SHARE`` of the best reference seed's FCD: a run below it is
  implausibly better than the reference at the same step;
* ``start_corr_ceiling``: the correlation with its start above which the generator's
  smallest kernel has moved less than ``1 / MOVE_SHARE`` of the least any reference seed
  moved (1 - correlation) after as many steps: with the course's optimizer such a run
  trained fewer steps than it reported. The runs record the least z (correlation times the
  square root of the size) over the generator's kernels, which is its smallest kernel's
  (checked on a reference run: the 96 x 1024 dense kernel of the MLP, the 4 x 4 x 1 x 64
  last kernel of the DCGAN), so the correlation is z over that root;

* ``loss_gap``: the tolerance between the mean losses a kernel reports over a chunk's last
  steps and those the grader computes from the returned networks on its own batch, D and G
  apart (the largest gap over the reference seeds, times ``LOSS_MARGIN``, plus
  ``LOSS_SLACK``). The false-fail rate of each line is
estimated by leaving each seed out: the lines are set from the other seeds and the left-out
seed is judged by them, with the shipped rubric's checkpoints and pass lines.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STOP_MARGIN = 1.10
TOO_GOOD_SHARE = 0.5
MOVE_SHARE = 3.0
LOSS_MARGIN = 1.5
LOSS_SLACK = 0.05
SAMPLES = "2000"  # the sample count whose FCD the lines are set on
COPY_DISTANCE = 0.8  # half the closest a real MNIST test digit comes (1.66)
DESCENT_Z_FLOOR = 5.0


def read_runs(path: Path) -> dict[str, list[dict]]:
    """The calibration runs by model (the last line of a model and seed wins)."""
    runs: dict[tuple[str, int], dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            runs[(row["model"], row["seed"])] = row
    by_model: dict[str, list[dict]] = {}
    for (model, _), row in sorted(runs.items()):
        by_model.setdefault(model, []).append(row)
    return by_model


def smallest_kernel_root(model: str) -> float:
    """The square root of the size of the generator's smallest kernel."""
    from grader.convergence import networks

    layout = networks.layout(networks.architecture_of(model), networks.Role.GENERATOR)
    return min(float(np.prod(layout[i][0])) for i in networks.kernel_positions(layout)) ** 0.5


def model_lines(runs: list[dict]) -> dict:
    """The lines of one model from its runs (every checkpoint all runs reached)."""
    steps = sorted(set.intersection(*[{c["step"] for c in run["checkpoints"]} for run in runs]))
    root = smallest_kernel_root(runs[0]["model"])
    table: dict = {"checkpoints": steps, "stop": [], "too_good": [], "start_corr_ceiling": [],
                   "loss_gap": []}
    for step in steps:
        points = [next(c for c in run["checkpoints"] if c["step"] == step) for run in runs]
        fcds = [point["fcd"][SAMPLES] for point in points]
        table["stop"].append(round(max(fcds) * STOP_MARGIN, 1))
        table["too_good"].append(round(min(fcds) * TOO_GOOD_SHARE, 1))
        least_move = 1.0 - min(1.0, max(p["descent_G"]["z"] for p in points) / root)
        table["start_corr_ceiling"].append(round(1.0 - least_move / MOVE_SHARE, 4))
        table["loss_gap"].append([round(max(abs(p["reported"][i] - p["recomputed"][i])
                                            for p in points) * LOSS_MARGIN + LOSS_SLACK, 3)
                                  for i in (0, 1)])
    return table


def judged_step(run: dict, lines: dict, schedule: list[int], pass_fcd: float,
                fail_fcd: float) -> tuple[str, int]:
    """How the rubric's schedule judges one reference run with these lines: ``passed``,
    ``stopped`` (falsely, as behind the reference), ``flagged`` or ``failed`` at the budget,
    and the step it was settled at."""
    at = {c["step"]: c for c in run["checkpoints"]}
    for step in schedule:
        point = at[step]
        fcd, z = point["fcd"][SAMPLES], point["descent_G"]["z"]
        index = lines["checkpoints"].index(step) if step in lines["checkpoints"] else None
        corr = z / smallest_kernel_root(run["model"])
        if z < DESCENT_Z_FLOOR or index is not None and (
                fcd < lines["too_good"][index] or corr > lines["start_corr_ceiling"][index]):
            return "flagged", step
        if fcd <= pass_fcd:
            return "passed", step
        if index is not None and fcd >= max(lines["stop"][index], fail_fcd):
            return "stopped", step
    return ("passed" if fcd <= pass_fcd else "failed"), schedule[-1]


def main() -> None:
    """Write the lines file and the markdown table with the left-out-seed rates."""
    from grader.rubric import load_rubric

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=str(ROOT / "benchmarks/results/convergence_runs.jsonl"))
    parser.add_argument("--write", default=str(ROOT / "grader/data/convergence_lines.json"))
    parser.add_argument("--markdown",
                        default=str(ROOT / "benchmarks/results/convergence_lines.md"))
    args = parser.parse_args()
    by_model = read_runs(Path(args.runs))
    rubric = load_rubric().convergence
    shipped = {"samples": int(SAMPLES), "seeds": min(len(r) for r in by_model.values()),
               "devices": {"cpu": {m: model_lines(r) for m, r in by_model.items()}},
               "integrity": {"copy_distance": COPY_DISTANCE, "copy_fraction": 0.05,
                             "descent_z_floor": DESCENT_Z_FLOOR}}
    Path(args.write).write_text(json.dumps(shipped, indent=1) + "\n", encoding="utf-8")
    counts = ", ".join(f"{model} {len(runs)}" for model, runs in by_model.items())
    out = [f"# Convergence lines, calibrated on reference runs (CPU; seeds: {counts})", "",
           f"`python benchmarks/convergence_lines.py` on `{Path(args.runs).name}`; FCD of "
           f"{SAMPLES} samples drawn by the grader. Stop line: worst seed x {STOP_MARGIN}; "
           f"too-good line: best seed x {TOO_GOOD_SHARE}; start-correlation ceiling: a third of "
           f"the least movement. Measured on this machine's CPU; the GPU budgets' lines are not "
           "calibrated (see the note below).", ""]
    for model, runs in by_model.items():
        lines = shipped["devices"]["cpu"][model]
        schedule = rubric.schedule("cpu", model)
        pass_fcd, fail_fcd = rubric.thresholds["cpu"][model]
        out += [f"## {model} (rubric checkpoints {schedule}, pass {pass_fcd:g}, "
                f"fail {fail_fcd:g})", "",
                "| step | FCD min | median | max | stop | too good | z min | z max "
                "| corr ceiling |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for index, step in enumerate(lines["checkpoints"]):
            points = [next(c for c in run["checkpoints"] if c["step"] == step) for run in runs]
            fcds = sorted(p["fcd"][SAMPLES] for p in points)
            zs = [p["descent_G"]["z"] for p in points]
            out.append(f"| {step} | {fcds[0]:.0f} | {fcds[len(fcds) // 2]:.0f} | "
                       f"{fcds[-1]:.0f} | {lines['stop'][index]:g} | "
                       f"{lines['too_good'][index]:g} | {min(zs):.0f} | {max(zs):.0f} | "
                       f"{lines['start_corr_ceiling'][index]:g} |")
        verdicts = [judged_step(run, lines, schedule, pass_fcd, fail_fcd) for run in runs]
        held_out = [judged_step(run, model_lines([r for r in runs if r is not run]), schedule,
                                pass_fcd, fail_fcd) for run in runs]
        settled = sorted(step for _, step in verdicts)
        out += ["", f"- in-sample: {sum(v == 'passed' for v, _ in verdicts)}/{len(runs)} pass; "
                f"settled at step {settled[0]} to {settled[-1]} (median "
                f"{settled[len(settled) // 2]}) of {schedule[-1]}",
                "- each seed judged by the lines of the others: "
                + ", ".join(f"{kind} {sum(v == kind for v, _ in held_out)}"
                            for kind in ("passed", "stopped", "flagged", "failed"))
                + f" of {len(runs)}",
                f"- loss gap allowed (D, G) at the first and last checkpoints: "
                f"{lines['loss_gap'][0]}, {lines['loss_gap'][-1]}",
                f"- nearest training image of a reference sample: at least "
                f"{min(c['nn'][0] for run in runs for c in run['checkpoints']):.2f}; of a "
                f"real test image: {min(r['test_nn'][0] for r in runs):.2f} (copy distance "
                f"{COPY_DISTANCE:g})", ""]
    Path(args.markdown).write_text("\n".join(out) + "\n", encoding="utf-8")
    print("\n".join(out))


if __name__ == "__main__":
    main()
