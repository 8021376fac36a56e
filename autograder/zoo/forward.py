"""Bug zoo of part 2 (forward process): mistakes that must lose points, rewrites that must not."""

from __future__ import annotations

from autograder.zoo.edits import Alternative, Edit, Mutant

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
)
