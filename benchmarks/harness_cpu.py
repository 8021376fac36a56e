"""Benchmark of the harness's ``cpu`` profile on the reference solution: quality against speed.

    python benchmarks/harness_cpu.py [--out runs/harness-cpu] [--profile cpu]

Runs ``python -m autograder harness solutions --profile cpu`` once (one seeded run: training is the
cost, so there are no repeats to take a median of; a machine with no calibration of the profile measures it first,
so run ``python -m autograder harness calibrate --profile cpu`` before to time the grading alone) and prints, per
plan, the distance to the data
of every sampler with the floor (held-out real data) and the ceiling (noise), seconds per sample,
DDIM-50 against DDPM-1000 (speed-up and distance ratio; target: ≥ 15× faster at ≤ 1.5× the
distance), the class accuracy of CFG samples at s = 1 and at the best s, the VAE's reconstruction
error, latent against pixel diffusion, and the total wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "harness-cpu")
    parser.add_argument("--profile", default="cpu")
    args = parser.parse_args()
    start = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "autograder",
        "harness",
        "solutions",
        "--profile",
        args.profile,
        "--out",
        str(args.out),
    ]
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    report = json.loads((args.out / "results.json").read_text())["extra_data"]["harness"]
    for name, plan in report["plans"].items():
        scores, runs = plan["scores"], plan["scores"].get("runs", {})
        print(
            f"\n== plan {name}: {plan['seconds']:.0f} s on {plan['device']}; training {plan['train']['seconds']:.0f} s"
        )
        if plan["train"]["error"]:
            print(f"   training failed: {plan['train']['error']}")
            continue
        print(f"   floor (real data) {scores['floor']:.5g}   ceiling (noise) {scores['ceiling']:.5g}")
        print(f"   {'run':<14}{'distance':>12}{'accuracy':>10}{'s / sample':>13}")
        for run_name, entry in runs.items():
            if "distance" in entry:
                accuracy = "" if entry["accuracy"] is None else f"{entry['accuracy']:.1%}"
                print(f"   {run_name:<14}{entry['distance']:>12.5g}{accuracy:>10}{entry['seconds_per_sample']:>13.5f}")
            else:
                print(f"   {run_name:<14}  {entry.get('error')}")
        ddpm, ddim50 = runs.get("ddpm", {}), runs.get("ddim_50_0", {})
        if "distance" in ddpm and "distance" in ddim50:
            speedup = ddpm["seconds_per_sample"] / ddim50["seconds_per_sample"]
            ratio = ddim50["distance"] / ddpm["distance"]
            print(
                f"   DDIM-50 vs DDPM-{ddpm['steps']}: {speedup:.1f}x faster, distance {ratio:.2f}x "
                f"(target: >= 15x faster at <= 1.5x)"
            )
        cfg = {
            e["guidance_scale"]: e["accuracy"] for e in runs.values() if e.get("sampler") == "cfg" and "accuracy" in e
        }
        if cfg:
            best = max(cfg, key=cfg.get)
            print(
                f"   CFG class accuracy: {cfg.get(1.0, float('nan')):.1%} at s = 1, "
                f"{cfg[best]:.1%} at the best s = {best:g}"
            )
        if "vae" in scores:
            vae = scores["vae"]
            print(
                f"   VAE: reconstruction error (mean squared, per pixel) {vae['recon_error']:.5f}, reconstructions' "
                f"distance {vae['distance']:.5g} (floor {vae['floor']:.5g}), scale factor {vae['scale_factor']:.4f}, "
                f"{vae['seconds']:.0f} s to train"
            )
    pixel, latent = report["plans"].get("images"), report["plans"].get("latent")
    if pixel and latent:
        for run_name in ("ddpm", "ddim_50_0"):
            p, q = pixel["scores"]["runs"].get(run_name, {}), latent["scores"]["runs"].get(run_name, {})
            if "distance" in p and "distance" in q:
                print(
                    f"\nlatent vs pixel, {run_name}: distance {q['distance']:.5g} vs {p['distance']:.5g}; "
                    f"{q['seconds_per_sample']:.4f} vs {p['seconds_per_sample']:.4f} s per sample "
                    f"({p['seconds_per_sample'] / q['seconds_per_sample']:.1f}x faster in latent space)"
                )
    print(
        f"\ntotal wall time {wall:.0f} s; figures in {args.out}/: "
        + ", ".join(sorted(Path(f).name for plan in report["plans"].values() for f in plan["figures"]))
    )


if __name__ == "__main__":
    main()
