"""Bug zoo of part 1 (noise schedules): mistakes that must lose points, rewrites that must not."""

from __future__ import annotations

from autograder.zoo.edits import Alternative, Edit, Mutant

LINEAR = "return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)"
COSINE_F = "f = torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2"
COSINE_CLIP = "return torch.clamp(1 - f[1:] / f[:-1], max=max_beta)"
SCALED = "return torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64) ** 2"
AS_FLOAT64 = "betas = torch.as_tensor(betas, dtype=torch.float64)"
VALIDATION_TEST = "if not bool(((betas > 0) & (betas < 1)).all()):"
VALIDATION = """    if not bool(((betas > 0) & (betas < 1)).all()):
        raise ValueError(
            f"every beta must lie in (0, 1); got min {betas.min().item():.4g}, max {betas.max().item():.4g}"
        )
"""
CUMPROD = "alpha_bars = torch.cumprod(alphas, dim=0)"
PREV = "alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])"
SNR_INDEX = "alpha_bar = schedule.alpha_bars.to(t.device)[t]"
SNR = "return alpha_bar / (1 - alpha_bar)"


def _edit(find: str, replace: str) -> Edit:
    return Edit("schedules", find, replace)


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "linear_betas_T_plus_one",
        "linspace with T + 1 points, then the last dropped: β_{T−1} falls short of beta_end",
        _edit(LINEAR, "return torch.linspace(beta_start, beta_end, T + 1, dtype=torch.float64)[:-1]"),
    ),
    Mutant(
        "linear_betas_float32",
        "linear betas built in float32 and cast to float64 afterwards (~1e-7 relative error)",
        _edit(LINEAR, "return torch.linspace(beta_start, beta_end, T).double()"),
    ),
    Mutant(
        "cosine_betas_no_square",
        "cosine schedule with f(u) = cos(·) instead of cos²(·)",
        _edit(COSINE_F, "f = torch.cos((u / T + s) / (1 + s) * math.pi / 2)"),
    ),
    Mutant(
        "cosine_betas_no_offset",
        "cosine schedule without the offset s: f(u) = cos²(u/T · π/2)",
        _edit(COSINE_F, "f = torch.cos(u / T * math.pi / 2) ** 2"),
    ),
    Mutant(
        "cosine_betas_no_one_plus_s",
        "cosine schedule with (u/T + s)·π/2, forgetting the division by 1 + s",
        _edit(COSINE_F, "f = torch.cos((u / T + s) * math.pi / 2) ** 2"),
    ),
    Mutant(
        "cosine_betas_one_based",
        "cosine schedule on the paper's 1-based steps: β_t = 1 − f(t+2)/f(t+1)",
        _edit("u = torch.arange(T + 1, dtype=torch.float64)", "u = torch.arange(1, T + 2, dtype=torch.float64)"),
    ),
    Mutant(
        "cosine_betas_unclipped",
        "cosine betas not clipped at max_beta (the last beta reaches 1)",
        _edit(COSINE_CLIP, "return 1 - f[1:] / f[:-1]"),
    ),
    Mutant(
        "cosine_betas_clip_hardcoded",
        "cosine betas clipped at the default 0.999 whatever max_beta is given",
        _edit(COSINE_CLIP, "return torch.clamp(1 - f[1:] / f[:-1], max=0.999)"),
    ),
    Mutant(
        "scaled_linear_no_square",
        "scaled linear schedule without the final square: linspace(√β_start, √β_end, T)",
        _edit(SCALED, "return torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64)"),
    ),
    Mutant(
        "scaled_linear_as_linear",
        "scaled linear schedule written as the plain linear one: linspace(β_start, β_end, T)",
        _edit(SCALED, "return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)"),
    ),
    Mutant(
        "make_schedule_cumsum",
        "ᾱ_t as a cumulative sum of the α_s instead of a cumulative product",
        _edit(CUMPROD, "alpha_bars = torch.cumsum(alphas, dim=0)"),
    ),
    Mutant(
        "make_schedule_cumprod_betas",
        "ᾱ_t as the cumulative product of the β_s instead of the α_s",
        _edit(CUMPROD, "alpha_bars = torch.cumprod(betas, dim=0)"),
    ),
    Mutant(
        "make_schedule_float32",
        "schedule tables in float32 where float64 is asked",
        _edit(AS_FLOAT64, "betas = torch.as_tensor(betas, dtype=torch.float32)"),
    ),
    Mutant(
        "alpha_bars_prev_starts_at_zero",
        "ᾱ_prev[0] = 0 instead of 1 (ᾱ of the clean data is 1)",
        _edit(PREV, "alpha_bars_prev = torch.cat([torch.zeros(1, dtype=torch.float64), alpha_bars[:-1]])"),
    ),
    Mutant(
        "alpha_bars_prev_shifted_left",
        "ᾱ_prev shifted the wrong way: ᾱ_{t+1} (padded with 1 at the end) instead of ᾱ_{t−1}",
        _edit(PREV, "alpha_bars_prev = torch.cat([alpha_bars[1:], torch.ones(1, dtype=torch.float64)])"),
    ),
    Mutant(
        "alpha_bars_prev_drops_first",
        "ᾱ_prev = [1, ᾱ_1, …, ᾱ_{T−1}]: drops the first ᾱ instead of the last",
        _edit(PREV, "alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[1:]])"),
    ),
    Mutant(
        "validation_not_strict",
        "validation with closed bounds: β = 0 and β = 1 are accepted",
        _edit(VALIDATION_TEST, "if not bool(((betas >= 0) & (betas <= 1)).all()):"),
    ),
    Mutant(
        "validation_upper_bound_only",
        "validation rejects β ≥ 1 only: β ≤ 0 is accepted",
        _edit(VALIDATION_TEST, "if bool((betas >= 1).any()):"),
    ),
    Mutant(
        "validation_by_assert",
        "invalid betas rejected by assert (AssertionError) instead of ValueError",
        _edit(VALIDATION, '    assert bool(((betas > 0) & (betas < 1)).all()), "every beta must lie in (0, 1)"\n'),
    ),
    Mutant(
        "validation_missing",
        "no validation: betas outside (0, 1) give a schedule instead of a ValueError",
        _edit(VALIDATION, ""),
    ),
    Mutant(
        "snr_inverted",
        "SNR inverted: (1 − ᾱ_t)/ᾱ_t",
        _edit(SNR, "return (1 - alpha_bar) / alpha_bar"),
    ),
    Mutant(
        "snr_square_roots",
        "SNR as the ratio of the square roots √ᾱ_t/√(1 − ᾱ_t) (the amplitude ratio)",
        _edit(SNR, "return alpha_bar.sqrt() / (1 - alpha_bar).sqrt()"),
    ),
    Mutant(
        "snr_alpha_bars_prev",
        "SNR from ᾱ_prev where ᾱ_t belongs (off by one step, infinite at t = 0)",
        _edit(SNR_INDEX, "alpha_bar = schedule.alpha_bars_prev.to(t.device)[t]"),
    ),
    Mutant(
        "validation_ignores_a_scalar",
        "the shape test written as dim() > 1: a scalar beta gets through to an IndexError instead of ValueError",
        _edit("if betas.dim() != 1 or", "if betas.dim() > 1 or"),
    ),
    Mutant(
        "validation_ignores_a_table",
        "the shape test written as dim() < 1: a 2-D table of betas fails later with another error",
        _edit("if betas.dim() != 1 or", "if betas.dim() < 1 or"),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Mutant(
        "linear_betas_float32_kept",
        "torch.linspace 'obviously' returns the right thing; forgot that the default dtype is float32",
        Edit(
            "schedules",
            "return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)",
            "return torch.linspace(beta_start, beta_end, T)",
        ),
    ),
    Mutant(
        "cosine_computed_in_float32",
        "cast to float64 at the end to satisfy the dtype; 1 − f(t+1)/f(t) cancels badly in float32 for small t",
        Edit(
            "schedules",
            "    u = torch.arange(T + 1, dtype=torch.float64)\n"
            "    f = torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2\n"
            "    return torch.clamp(1 - f[1:] / f[:-1], max=max_beta)",
            "    u = torch.arange(T + 1, dtype=torch.float32)\n"
            "    f = torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2\n"
            "    return torch.clamp(1 - f[1:] / f[:-1], max=max_beta).to(torch.float64)",
        ),
    ),
    Mutant(
        "scaled_linear_no_sqrt_of_endpoints",
        "'scaled linear = square of a linspace': squared the linspace of the betas, not of their square roots",
        Edit(
            "schedules",
            "torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64) ** 2",
            "torch.linspace(beta_start, beta_end, T, dtype=torch.float64) ** 2",
        ),
    ),
    Mutant(
        "make_schedule_accepts_beta_one",
        "a beta of 1 'is still a probability'; the docstring's open interval (0, 1) was read as closed at 1",
        Edit(
            "schedules",
            "if not bool(((betas > 0) & (betas < 1)).all()):",
            "if not bool(((betas > 0) & (betas <= 1)).all()):",
        ),
    ),
    Mutant(
        "make_schedule_keeps_input_dtype",
        "as_tensor to accept lists; forgot that float32 betas then give a float32 schedule",
        Edit(
            "schedules",
            "betas = torch.as_tensor(betas, dtype=torch.float64)",
            "betas = torch.as_tensor(betas)",
        ),
    ),
    Mutant(
        "make_schedule_prev_of_alphas",
        "'the previous alpha' shifted the per-step alphas instead of their cumulative product",
        Edit(
            "schedules",
            "alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])",
            "alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas[:-1]])",
        ),
    ),
    Mutant(
        "snr_one_based_index",
        "paper's SNR(t) uses step t, indexed 1-based; t = 0 silently wraps to the last entry",
        Edit(
            "schedules",
            "alpha_bar = schedule.alpha_bars.to(t.device)[t]",
            "alpha_bar = schedule.alpha_bars.to(t.device)[t - 1]",
        ),
    ),
    Mutant(
        "snr_is_amplitude_ratio",
        "signal-to-noise as a ratio of standard deviations √ᾱ / √(1 − ᾱ), as some blog posts define it",
        Edit(
            "schedules",
            "return alpha_bar / (1 - alpha_bar)",
            "return (alpha_bar / (1 - alpha_bar)).sqrt()",
        ),
    ),
)

ALTERNATIVES: tuple[Alternative, ...] = (
    Alternative(
        "snr_via_reciprocal",
        "SNR = 1/(1 − ᾱ) − 1, equal to ᾱ/(1 − ᾱ) in exact arithmetic (from the blind zoo: it was failed once)",
        (_edit("return alpha_bar / (1 - alpha_bar)", "return 1 / (1 - alpha_bar) - 1"),),
    ),
    Alternative(
        "make_schedule_log_cumsum",
        "ᾱ as exp(cumsum(log α)), ᾱ_prev by padding with F.pad, validation by min/max",
        (
            _edit(
                VALIDATION_TEST,
                "if betas.min().item() <= 0 or betas.max().item() >= 1:",
            ),
            _edit(CUMPROD, "alpha_bars = torch.exp(torch.cumsum(torch.log(alphas), dim=0))"),
            _edit(PREV, "alpha_bars_prev = torch.nn.functional.pad(alpha_bars[:-1], (1, 0), value=1.0)"),
        ),
    ),
    Alternative(
        "schedules_by_arange_and_loops",
        "betas from arange formulas and a python loop over math.cos, ᾱ by a running product, "
        "ᾱ_prev as ᾱ_t/α_t, SNR through logs and torch.gather",
        (
            _edit(
                LINEAR,
                "if T == 1:\n"
                "        return torch.tensor([beta_start], dtype=torch.float64)\n"
                "    k = torch.arange(T, dtype=torch.float64)\n"
                "    return beta_start + (beta_end - beta_start) * k / (T - 1)",
            ),
            _edit(
                "    u = torch.arange(T + 1, dtype=torch.float64)\n"
                "    f = torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2\n"
                "    return torch.clamp(1 - f[1:] / f[:-1], max=max_beta)",
                "    def f(u: float) -> float:\n"
                "        return math.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2\n"
                "\n"
                "    return torch.tensor([min(1 - f(t + 1) / f(t), max_beta) for t in range(T)], dtype=torch.float64)",
            ),
            _edit(
                SCALED,
                "roots = torch.linspace(math.sqrt(beta_start), math.sqrt(beta_end), T, dtype=torch.float64)\n"
                "    return roots * roots",
            ),
            _edit(
                CUMPROD,
                "alpha_bars = torch.empty_like(alphas)\n"
                "    running = 1.0\n"
                "    for i, alpha in enumerate(alphas.tolist()):\n"
                "        running *= alpha\n"
                "        alpha_bars[i] = running",
            ),
            _edit(PREV, "alpha_bars_prev = alpha_bars / alphas"),
            _edit(
                SNR_INDEX + "\n    " + SNR,
                "alpha_bar = torch.gather(schedule.alpha_bars, 0, t.cpu()).to(t.device)\n"
                "    return torch.exp(torch.log(alpha_bar) - torch.log1p(-alpha_bar))",
            ),
        ),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Alternative(
        "linear_betas_by_arange",
        "start + k·step by hand, with T = 1 guarded",
        (
            Edit(
                "schedules",
                "return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)",
                "step = (beta_end - beta_start) / max(T - 1, 1)\n"
                "    return beta_start + step * torch.arange(T, dtype=torch.float64)",
            ),
        ),
    ),
    Alternative(
        "cosine_betas_python_loop",
        "the formula with Python floats in a loop (double precision throughout)",
        (
            Edit(
                "schedules",
                "    u = torch.arange(T + 1, dtype=torch.float64)\n"
                "    f = torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2\n"
                "    return torch.clamp(1 - f[1:] / f[:-1], max=max_beta)\n",
                "    def f(u: float) -> float:\n"
                "        return math.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2\n"
                "\n"
                "    betas = [min(1 - f(k + 1) / f(k), max_beta) for k in range(T)]\n"
                "    return torch.tensor(betas, dtype=torch.float64)\n",
            ),
        ),
    ),
    Alternative(
        "make_schedule_log_cumsum_and_pad",
        "cumulative product as exp of a cumulative log-sum; the shift by F.pad with value 1",
        (
            Edit(
                "schedules",
                "    alpha_bars = torch.cumprod(alphas, dim=0)\n"
                "    alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])\n",
                "    alpha_bars = torch.exp(torch.cumsum(torch.log(alphas), dim=0))\n"
                "    alpha_bars_prev = torch.nn.functional.pad(alpha_bars[:-1], (1, 0), value=1.0)\n",
            ),
        ),
    ),
)
