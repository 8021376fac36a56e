"""Bug zoo of part 2 (forward process): mistakes that must lose points, rewrites that must not."""

from __future__ import annotations

from autograder.zoo.edits import Alternative, Edit, Mutant

Q_SAMPLE = (
    "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars).sqrt(), t, x0) * noise"
)
Q_STEP = (
    "return extract(schedule.alphas.sqrt(), t, x_prev) * x_prev + extract(schedule.betas.sqrt(), t, x_prev) * noise"
)

MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "q_sample_alpha_bar_prev",
        "ᾱ_prev where ᾱ_t belongs in q_sample (an off-by-one of the 0-based timesteps)",
        Edit(
            "forward",
            "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars).sqrt(), t, x0) * noise",
            "return extract(schedule.alpha_bars_prev.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars_prev).sqrt(), t, x0) * noise",
        ),
    ),
    Mutant(
        "q_sample_alphas",
        "the single-step α_t where the cumulative ᾱ_t belongs in q_sample",
        Edit(
            "forward",
            Q_SAMPLE,
            "return extract(schedule.alphas.sqrt(), t, x0) * x0 + extract((1 - schedule.alphas).sqrt(), t, x0) * noise",
        ),
    ),
    Mutant(
        "q_sample_noise_no_sqrt",
        "noise scaled by the variance 1 − ᾱ_t instead of the std √(1 − ᾱ_t) in q_sample",
        Edit(
            "forward",
            Q_SAMPLE,
            "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract(1 - schedule.alpha_bars, t, x0) * noise",
        ),
    ),
    Mutant(
        "q_sample_signal_no_sqrt",
        "x0 scaled by ᾱ_t instead of √ᾱ_t in q_sample",
        Edit(
            "forward",
            Q_SAMPLE,
            "return extract(schedule.alpha_bars, t, x0) * x0 + extract((1 - schedule.alpha_bars).sqrt(), t, x0) * noise",
        ),
    ),
    Mutant(
        "q_sample_ignores_noise",
        "q_sample draws its own noise with randn_like instead of using the given noise",
        Edit(
            "forward",
            Q_SAMPLE,
            "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars).sqrt(), t, x0) * torch.randn_like(x0)",
        ),
    ),
    Mutant(
        "q_sample_float32_coefficients",
        "√ᾱ_t and √(1 − ᾱ_t) computed from ᾱ cast to float32 (float64 data loses precision)",
        Edit(
            "forward",
            Q_SAMPLE,
            "return extract(schedule.alpha_bars.float().sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars.float()).sqrt(), t, x0) * noise",
        ),
    ),
    Mutant(
        "q_step_alpha_bar",
        "the cumulative ᾱ_t where the single-step α_t belongs in q_step (jumps from x0, not from x_{t−1})",
        Edit(
            "forward",
            Q_STEP,
            "return extract(schedule.alpha_bars.sqrt(), t, x_prev) * x_prev + extract((1 - schedule.alpha_bars).sqrt(), t, x_prev) * noise",
        ),
    ),
    Mutant(
        "q_step_noise_no_sqrt",
        "noise scaled by β_t instead of √β_t in q_step",
        Edit(
            "forward",
            Q_STEP,
            "return extract(schedule.alphas.sqrt(), t, x_prev) * x_prev + extract(schedule.betas, t, x_prev) * noise",
        ),
    ),
    Mutant(
        "q_step_signal_no_sqrt",
        "x_{t−1} scaled by α_t instead of √α_t in q_step",
        Edit(
            "forward",
            Q_STEP,
            "return extract(schedule.alphas, t, x_prev) * x_prev + extract(schedule.betas.sqrt(), t, x_prev) * noise",
        ),
    ),
    Mutant(
        "q_step_one_based",
        "q_step indexes the tables at t − 1 (the paper's 1-based steps on 0-based t)",
        Edit(
            "forward",
            Q_STEP,
            "return extract(schedule.alphas.sqrt(), t - 1, x_prev) * x_prev + extract(schedule.betas.sqrt(), t - 1, x_prev) * noise",
        ),
    ),
    Mutant(
        "q_mean_variance_std",
        "q_mean_variance returns the std √(1 − ᾱ_t) as the variance",
        Edit(
            "forward",
            "variance = extract(1 - schedule.alpha_bars, t, x0)",
            "variance = extract((1 - schedule.alpha_bars).sqrt(), t, x0)",
        ),
    ),
    Mutant(
        "q_mean_variance_beta",
        "q_mean_variance returns the single-step β_t as the variance instead of 1 − ᾱ_t",
        Edit(
            "forward", "variance = extract(1 - schedule.alpha_bars, t, x0)", "variance = extract(schedule.betas, t, x0)"
        ),
    ),
    Mutant(
        "q_mean_variance_mean_no_sqrt",
        "q_mean_variance mean ᾱ_t·x0 instead of √ᾱ_t·x0",
        Edit(
            "forward",
            "mean = extract(schedule.alpha_bars.sqrt(), t, x0) * x0",
            "mean = extract(schedule.alpha_bars, t, x0) * x0",
        ),
    ),
    Mutant(
        "q_mean_variance_flat_variance",
        "q_mean_variance variance indexed as (1 − ᾱ)[t] of shape (B,), float64, not shaped to broadcast against x0",
        Edit(
            "forward", "variance = extract(1 - schedule.alpha_bars, t, x0)", "variance = (1 - schedule.alpha_bars)[t]"
        ),
    ),
    Mutant(
        "q_sample_clamps_x0",
        "q_sample clamps x0 to [−1, 1] 'since data lives there': latents and other wider inputs are changed",
        Edit(
            "forward",
            "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0",
            "x0 = x0.clamp(-1, 1)\n    return extract(schedule.alpha_bars.sqrt(), t, x0) * x0",
        ),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Mutant(
        "q_sample_float32_coefficients_by_hand",
        "own gather instead of extract, casting the table to float32 'because the data is float32' (float64 data loses precision)",
        Edit(
            "forward",
            "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars).sqrt(), t, x0) * noise",
            "shape = (-1,) + (1,) * (x0.dim() - 1)\n"
            "    a = schedule.alpha_bars.float()[t].reshape(shape)\n"
            "    return a.sqrt() * x0 + (1 - a).sqrt() * noise",
        ),
    ),
    Mutant(
        "q_step_returns_float64",
        "indexed the float64 table directly instead of extract: float32 data comes back float64",
        Edit(
            "forward",
            "return extract(schedule.alphas.sqrt(), t, x_prev) * x_prev + extract(schedule.betas.sqrt(), t, x_prev) * noise",
            "shape = (-1,) + (1,) * (x_prev.dim() - 1)\n"
            "    return schedule.alphas.sqrt()[t].reshape(shape) * x_prev + schedule.betas.sqrt()[t].reshape(shape) * noise",
        ),
    ),
)

ALTERNATIVES: tuple[Alternative, ...] = (
    Alternative(
        "forward_by_gather",
        "q_sample and q_mean_variance with torch.gather and explicit reshapes instead of extract",
        (
            Edit(
                "forward",
                "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars).sqrt(), t, x0) * noise",
                "alpha_bar = schedule.alpha_bars.gather(0, t.cpu()).to(x0).reshape(-1, *([1] * (x0.dim() - 1)))\n"
                "    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise",
            ),
        ),
    ),
    Alternative(
        "forward_float64_inside",
        "q_sample and q_step computed in float64 then cast back; q_mean_variance's mean as q_sample with zero noise",
        (
            Edit(
                "forward",
                Q_SAMPLE,
                "x = x0.to(torch.float64)\n"
                "    alpha_bar = schedule.alpha_bars.to(x.device)[t.to(x.device)].reshape(-1, *([1] * (x.dim() - 1)))\n"
                "    return (alpha_bar.sqrt() * x + (1 - alpha_bar).sqrt() * noise.to(x)).to(x0.dtype)",
            ),
            Edit(
                "forward",
                Q_STEP,
                "x = x_prev.to(torch.float64)\n"
                "    beta = schedule.betas.to(x.device)[t.to(x.device)].reshape(-1, *([1] * (x.dim() - 1)))\n"
                "    return (torch.sqrt(1 - beta) * x + beta.sqrt() * noise.to(x)).to(x_prev.dtype)",
            ),
            Edit(
                "forward",
                "mean = extract(schedule.alpha_bars.sqrt(), t, x0) * x0",
                "mean = q_sample(schedule, x0, t, torch.zeros_like(x0))",
            ),
        ),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Alternative(
        "q_sample_via_q_mean_variance",
        "reparameterised sample of q(x_t | x0): mean + std · noise",
        (
            Edit(
                "forward",
                "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars).sqrt(), t, x0) * noise",
                "mean, variance = q_mean_variance(schedule, x0, t)\n    return mean + variance.sqrt() * noise",
            ),
        ),
    ),
    Alternative(
        "q_sample_float64_inside",
        "computed in float64 and cast back to the data's dtype",
        (
            Edit(
                "forward",
                "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars).sqrt(), t, x0) * noise",
                "x0_64, noise_64 = x0.double(), noise.double()\n"
                "    out = extract(schedule.alpha_bars.sqrt(), t, x0_64) * x0_64 + extract((1 - schedule.alpha_bars).sqrt(), t, x0_64) * noise_64\n"
                "    return out.to(x0.dtype)",
            ),
        ),
    ),
    Alternative(
        "q_step_sqrt_one_minus_alpha",
        "√β_t written as √(1 − α_t)",
        (
            Edit(
                "forward",
                "extract(schedule.betas.sqrt(), t, x_prev) * noise",
                "extract((1 - schedule.alphas).sqrt(), t, x_prev) * noise",
            ),
        ),
    ),
)
