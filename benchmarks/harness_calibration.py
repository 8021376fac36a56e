"""How the harness's factors were chosen: the reference at other seeds must pass with room, mutants must fail.

    python benchmarks/harness_calibration.py [--profile cpu] [--plans images latent] [--seeds 1 2]
        [--mutants clip_denoised_ignored ...] [--device cpu] [--threads N] [--out runs/harness-calibration]

Runs the plans on the reference at seed 0 (the yardstick, as ``harness calibrate`` measures it), on each bug-zoo
mutant of ``--mutants`` at seed 0, and on the reference at each of ``--seeds`` (a correct solution that computes in
another order moves its samples about as much as another seed does), and judges every run against the yardstick
with the factors of ``autograder/harness/thresholds.toml``. Prints, as each run ends, per plan its points, its time
and per check its figure against the yardstick's (a ratio of distances or errors, a difference of accuracies: what
a factor or margin is compared with) and its verdict, and the message of each failed check. Nothing is cached:
it measures, it does not calibrate a course's machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from autograder.harness import calibration, judging  # noqa: E402
from autograder.harness.budget import choose_threads  # noqa: E402
from autograder.harness.pipeline import run_profile  # noqa: E402
from autograder.reference import SOLUTIONS  # noqa: E402
from autograder.zoo import MUTANTS  # noqa: E402
from autograder.zoo.validation import apply  # noqa: E402

RATIOS = {
    "ddpm_quality": lambda s, r: s["runs"]["ddpm"]["distance"] / r["runs"]["ddpm"]["distance"],
    "vae_reconstruction": lambda s, r: s["vae"]["recon_error"] / r["vae"]["recon_error"],
    "cfg_accuracy": lambda s, r: s["runs"]["cfg_1"]["accuracy"] - r["runs"]["cfg_1"]["accuracy"],
}
"""A run's figure against the yardstick's, per check (accuracy: the difference; the DDIM run is the plan's)."""


def figure(check: str, scores: dict[str, Any], reference: dict[str, Any], limits: dict[str, Any]) -> str:
    try:
        if check == "ddim_quality":
            run = limits["ddim_run"]
            return f"{scores['runs'][run]['distance'] / reference['runs'][run]['distance']:.2f}x"
        if check == "training":
            return ""
        value = RATIOS[check](scores, reference)
    except (KeyError, TypeError, ZeroDivisionError):
        return "-"
    return f"{value:+.1%}" if check == "cfg_accuracy" else f"{value:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--plans", nargs="+", help="plans of the profile (default: all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[1, 2], help="other seeds of the reference")
    parser.add_argument("--mutants", nargs="*", default=[], help="bug-zoo mutants, by name")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "harness-calibration")
    args = parser.parse_args()
    threads, device = choose_threads(args.threads), torch.device(args.device)
    unknown = sorted(set(args.mutants) - {m.name for m in MUTANTS})
    if unknown:
        parser.error(f"no such mutants in the bug zoo: {', '.join(unknown)}")
    print(f"profile {args.profile} on {calibration.device_name(device)}, {threads} thread(s), "
          f"load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    yardstick: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        subjects = [("reference, seed 0", SOLUTIONS, 0)]
        for name in args.mutants:
            mutant = next(m for m in MUTANTS if m.name == name)
            subjects.append((name, apply((mutant.edit,), Path(tmp) / name), 0))
        subjects += [(f"reference, seed {seed}", SOLUTIONS, seed) for seed in args.seeds]
        for label, submission, seed in subjects:
            start = time.perf_counter()
            out = args.out / label.replace(", ", "-").replace(" ", "")
            report = run_profile(submission, args.profile, out, threads, device, args.plans, seed)
            yardstick = yardstick or report
            print(f"\n{label}: {time.perf_counter() - start:.0f} s", flush=True)
            show(label, report, yardstick, args.profile)


def show(label: str, report: dict[str, Any], yardstick: dict[str, Any], profile: str) -> None:
    """Print the verdicts of ``report`` against ``yardstick``, plan by plan, with each figure against the
    yardstick's."""
    for plan_name, reference in yardstick["plans"].items():
        limits = judging.thresholds(profile, plan_name)
        plan = report["plans"].get(plan_name)
        if limits is None or plan is None:
            print(f"   {plan_name}: not judged ({report.get('grader_error') or 'no factors'})")
            continue
        verdicts = judging.judge(plan["run"], plan["scores"], limits, reference, report["not_implemented"])
        cells = [
            f"{v.check.name} {figure(v.check.name, plan['scores'], reference['scores'], limits)} "
            f"{'ok' if v.passed else 'FAIL'}"
            for v in verdicts
        ]
        points = sum(v.score for v in verdicts), sum(v.points for v in verdicts)
        head = f"   {plan_name:<10} {points[0]:g}/{points[1]:g} ({plan['seconds']:.0f} s)  "
        print(head + "; ".join(cells), flush=True)
        for verdict in verdicts:
            if not verdict.passed:
                print(f"      {verdict.check.name}: {verdict.message[:300]}", flush=True)


if __name__ == "__main__":
    main()
