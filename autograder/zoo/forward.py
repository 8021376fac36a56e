"""Bug-zoo mutants of part 2 (forward process)."""

from __future__ import annotations

from autograder.zoo.edits import Edit, Mutant

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
