"""Bug zoo of part 7 (ddim): mistakes that must lose points, rewrites that must not."""

from __future__ import annotations

from autograder.zoo.edits import Alternative, Edit, Mutant

_PADDED = "    return padded.to(t.device)[t + 1]\n"
_UNIFORM = "        steps = np.arange(num_steps) * (T // num_steps)\n"
_LINSPACE = "        steps = np.linspace(0, T - 1, num_steps).round()\n"
_TRAILING = "        steps = np.round(np.arange(T, 0, -T / num_steps))[:num_steps] - 1\n"
_SIGMA_ALPHAS = "    alpha_bar, alpha_bar_prev = alpha_bar_at(schedule, t), alpha_bar_at(schedule, t_prev)\n"
_SIGMA = "    return eta * ((1 - alpha_bar_prev) / (1 - alpha_bar)).sqrt() * (1 - alpha_bar / alpha_bar_prev).sqrt()\n"
_RAISE = (
    "    if eta != 0 and noise is None:\n"
    '        raise ValueError("ddim_step with eta != 0 needs noise=; pass a standard normal tensor shaped like x_t")\n'
)
_STEP_MODEL = "    eps = model(x_t, t, **model_kwargs)\n"
_RECOMPUTE = "        eps = predict_eps_from_x0(schedule, x_t, t, pred_x0)\n"
_STEP_PREV = "    alpha_bar_prev = alpha_bar_at(schedule, t_prev)\n"
_DIRECTION = "    direction = (1 - alpha_bar_prev - sigma**2).clamp(min=0).sqrt()\n"
_STEP_BODY = (
    _STEP_PREV
    + "    sigma = ddim_sigma(schedule, t, t_prev, eta)\n"
    + _DIRECTION
    + "    x_prev = expand_like(alpha_bar_prev.sqrt(), x_t) * pred_x0 + expand_like(direction, x_t) * eps\n"
)
_LOOP_TIMESTEPS = "    timesteps = ddim_timesteps(schedule.T, num_steps, spacing).tolist()\n    if noise"
_LOOP_START = "    x = torch.randn(tuple(shape), generator=generator) if noise is None else noise\n"
_LOOP = '    for k in tqdm(range(num_steps - 1, -1, -1), disable=not progress, desc="DDIM sampling"):\n'
_LOOP_PREV = (
    "        t_prev = torch.full((batch,), timesteps[k - 1] if k > 0 else -1, dtype=torch.long, device=device)\n"
)
_LOOP_NOISE = (
    "        z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype) if eta > 0 else None\n"
)
_LOOP_STEP = "        x = ddim_step(model, schedule, x, t, t_prev, eta=eta, noise=z, clip_denoised=clip_denoised, **model_kwargs)\n"
_LOOP_BODY = (
    _LOOP
    + "        t = torch.full((batch,), timesteps[k], dtype=torch.long, device=device)\n"
    + _LOOP_PREV
    + _LOOP_NOISE
    + _LOOP_STEP
)
_INV_MODEL = "        eps = model(x, t, **model_kwargs)\n"
_INV_ALPHAS = "        alpha_bar, alpha_bar_next = alpha_bar_at(schedule, level), alpha_bar_at(schedule, t)\n"
_INV_BODY = (
    "        pred_x0 = (x - expand_like((1 - alpha_bar).sqrt(), x) * eps) / expand_like(alpha_bar.sqrt(), x)\n"
    "        x = expand_like(alpha_bar_next.sqrt(), x) * pred_x0 + expand_like((1 - alpha_bar_next).sqrt(), x) * eps\n"
)


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "timesteps_unknown_spacing_falls_through",
        "an unknown spacing name (diffusers' 'leading') silently treated as 'trailing' instead of a ValueError",
        Edit("ddim", '    elif spacing == "trailing":\n', '    elif spacing != "uniform" and spacing != "linspace":\n'),
    ),
    Mutant(
        "step_noise_required_only_for_positive_eta",
        "the noise= rule written as eta > 0: a negative η without noise is accepted",
        Edit("ddim", "    if eta != 0 and noise is None:", "    if eta > 0 and noise is None:"),
    ),
    Mutant(
        "alpha_bar_at_minus_one_is_alpha_bar_0",
        "alpha_bar_at(−1) returns ᾱ_0 (clamped index) instead of 1",
        Edit("ddim", _PADDED, "    return schedule.alpha_bars.to(t.device)[t.clamp(min=0)]\n"),
    ),
    Mutant(
        "alpha_bar_at_negative_index_wraps",
        "alpha_bar_at indexes alpha_bars[t] directly, so t = −1 wraps round to ᾱ_{T−1}",
        Edit("ddim", _PADDED, "    return schedule.alpha_bars.to(t.device)[t]\n"),
    ),
    Mutant(
        "uniform_arange_stride",
        "'uniform' as arange(0, T, T // num_steps): more than num_steps timesteps when num_steps does not divide T",
        Edit("ddim", _UNIFORM, "        steps = np.arange(0, T, T // num_steps)\n"),
    ),
    Mutant(
        "uniform_float_stride",
        "'uniform' with the float stride T / num_steps truncated instead of the integer stride T // num_steps",
        Edit("ddim", _UNIFORM, "        steps = np.arange(num_steps) * (T / num_steps)\n"),
    ),
    Mutant(
        "linspace_includes_T",
        "'linspace' as linspace(0, T, num_steps): the last timestep is T, one past the end",
        Edit("ddim", _LINSPACE, "        steps = np.linspace(0, T, num_steps).round()\n"),
    ),
    Mutant(
        "linspace_truncates",
        "'linspace' truncated to integers instead of rounded",
        Edit("ddim", _LINSPACE, "        steps = np.linspace(0, T - 1, num_steps)\n"),
    ),
    Mutant(
        "trailing_truncates",
        "'trailing' truncated to integers instead of rounded",
        Edit("ddim", _TRAILING, "        steps = np.arange(T, 0, -T / num_steps)[:num_steps] - 1\n"),
    ),
    Mutant(
        "sigma_alpha_bars_swapped",
        "σ with ᾱ_t and ᾱ_prev swapped (the pair of timesteps reversed)",
        Edit(
            "ddim",
            _SIGMA_ALPHAS,
            "    alpha_bar_prev, alpha_bar = alpha_bar_at(schedule, t), alpha_bar_at(schedule, t_prev)\n",
        ),
    ),
    Mutant(
        "sigma_consecutive_prev",
        "σ from ᾱ at t − 1 (DDPM's consecutive step) instead of ᾱ at t_prev",
        Edit(
            "ddim",
            _SIGMA_ALPHAS,
            "    alpha_bar, alpha_bar_prev = alpha_bar_at(schedule, t), alpha_bar_at(schedule, t - 1)\n",
        ),
    ),
    Mutant(
        "sigma_missing_eta",
        "σ without the factor η (never deterministic)",
        Edit("ddim", _SIGMA, _SIGMA.replace("return eta * ", "return ")),
    ),
    Mutant(
        "sigma_missing_first_sqrt",
        "σ with (1 − ᾱ_prev)/(1 − ᾱ_t) instead of its square root",
        Edit(
            "ddim",
            _SIGMA,
            _SIGMA.replace(
                "((1 - alpha_bar_prev) / (1 - alpha_bar)).sqrt()", "((1 - alpha_bar_prev) / (1 - alpha_bar))"
            ),
        ),
    ),
    Mutant(
        "step_no_value_error",
        "ddim_step with η ≠ 0 and noise=None silently takes a deterministic step instead of raising ValueError",
        Edit("ddim", _RAISE, ""),
    ),
    Mutant(
        "step_drops_model_kwargs",
        "ddim_step calls model(x_t, t) without **model_kwargs (labels lost)",
        Edit("ddim", _STEP_MODEL, "    eps = model(x_t, t)\n"),
    ),
    Mutant(
        "step_clip_keeps_raw_eps",
        "clip_denoised clamps x̂0 but keeps the model's eps instead of recomputing it from the clamped x̂0",
        Edit("ddim", _RECOMPUTE, ""),
    ),
    Mutant(
        "step_alpha_bar_prev_from_t_minus_1",
        "ddim_step uses ᾱ at t − 1 (alpha_bars_prev[t]) where ᾱ at t_prev belongs",
        Edit("ddim", _STEP_PREV, "    alpha_bar_prev = alpha_bar_at(schedule, t - 1)\n"),
    ),
    Mutant(
        "step_alpha_bar_t_for_prev",
        "ddim_step uses ᾱ_t where ᾱ_prev belongs (the step goes nowhere)",
        Edit("ddim", _STEP_PREV, "    alpha_bar_prev = alpha_bar_at(schedule, t)\n"),
    ),
    Mutant(
        "step_direction_without_sigma",
        "direction term √(1 − ᾱ_prev) without −σ² (too much variance for η > 0)",
        Edit("ddim", _DIRECTION, "    direction = (1 - alpha_bar_prev).sqrt()\n"),
    ),
    Mutant(
        "step_direction_sigma_not_squared",
        "direction term √(1 − ᾱ_prev − σ) with σ where σ² belongs",
        Edit("ddim", _DIRECTION, "    direction = (1 - alpha_bar_prev - sigma).clamp(min=0).sqrt()\n"),
    ),
    Mutant(
        "ddim_loop_ignores_spacing",
        "ddim_sample_loop calls ddim_timesteps without spacing= (always 'uniform')",
        Edit("ddim", _LOOP_TIMESTEPS, _LOOP_TIMESTEPS.replace("num_steps, spacing)", "num_steps)")),
    ),
    Mutant(
        "ddim_loop_ignores_noise_start",
        "ddim_sample_loop ignores noise= and always draws its own start",
        Edit("ddim", _LOOP_START, "    x = torch.randn(tuple(shape), generator=generator)\n"),
    ),
    Mutant(
        "ddim_loop_stops_at_first_timestep",
        "ddim_sample_loop stops at τ_0 and never takes the last step to t_prev = −1",
        Edit("ddim", _LOOP, _LOOP.replace("range(num_steps - 1, -1, -1)", "range(num_steps - 1, 0, -1)")),
    ),
    Mutant(
        "ddim_loop_last_step_wraps",
        "ddim_sample_loop's last step goes to timesteps[−1] (Python wraps k − 1 = −1) instead of t_prev = −1",
        Edit("ddim", _LOOP_PREV, _LOOP_PREV.replace("timesteps[k - 1] if k > 0 else -1", "timesteps[k - 1]")),
    ),
    Mutant(
        "ddim_loop_last_step_to_zero",
        "ddim_sample_loop's last step goes to t_prev = 0 instead of −1 (never reaches ᾱ = 1)",
        Edit("ddim", _LOOP_PREV, _LOOP_PREV.replace("else -1", "else 0")),
    ),
    Mutant(
        "ddim_loop_global_rng",
        "ddim_sample_loop draws the per-step noise (η > 0) from the global RNG instead of the generator",
        Edit("ddim", _LOOP_NOISE, _LOOP_NOISE.replace(", generator=generator", "")),
    ),
    Mutant(
        "ddim_loop_ignores_eta",
        "ddim_sample_loop draws the noise for η > 0 but calls ddim_step without eta= (σ = 0: always deterministic)",
        Edit("ddim", _LOOP_STEP, _LOOP_STEP.replace("eta=eta, ", "")),
    ),
    Mutant(
        "ddim_loop_noise_drawn_once",
        "ddim_sample_loop draws z once before the loop and adds the same noise at every step (η > 0)",
        Edit(
            "ddim",
            _LOOP_BODY,
            _LOOP_NOISE.replace("        ", "    ", 1)
            + _LOOP
            + "        t = torch.full((batch,), timesteps[k], dtype=torch.long, device=device)\n"
            + _LOOP_PREV
            + _LOOP_STEP,
        ),
    ),
    Mutant(
        "ddim_loop_drops_model_kwargs",
        "ddim_sample_loop does not pass **model_kwargs on to ddim_step",
        Edit("ddim", _LOOP_STEP, _LOOP_STEP.replace(", **model_kwargs)", ")")),
    ),
    Mutant(
        "ddim_loop_ignores_clip_denoised",
        "ddim_sample_loop does not pass clip_denoised on to ddim_step",
        Edit("ddim", _LOOP_STEP, _LOOP_STEP.replace(", clip_denoised=clip_denoised", "")),
    ),
    Mutant(
        "invert_alphas_swapped",
        "ddim_invert runs the sampler's step: x̂0 formed with ᾱ at the next timestep and moved to the current level",
        Edit(
            "ddim",
            _INV_ALPHAS,
            "        alpha_bar_next, alpha_bar = alpha_bar_at(schedule, level), alpha_bar_at(schedule, t)\n",
        ),
    ),
    Mutant(
        "invert_descending",
        "ddim_invert walks the subsequence downwards (largest timestep first)",
        Edit("ddim", "    for step in timesteps:\n", "    for step in reversed(timesteps):\n"),
    ),
    Mutant(
        "invert_level_not_updated",
        "ddim_invert never moves its current level: every step starts from ᾱ = 1",
        Edit("ddim", "        level = t\n", ""),
    ),
    Mutant(
        "invert_skips_first_step",
        "ddim_invert treats x0 as already at τ_0 and skips the step from t = −1",
        Edit(
            "ddim",
            "    level = torch.full((batch,), -1, dtype=torch.long, device=x0.device)\n    for step in timesteps:\n",
            "    level = torch.full((batch,), timesteps[0], dtype=torch.long, device=x0.device)\n"
            "    for step in timesteps[1:]:\n",
        ),
    ),
    Mutant(
        "invert_drops_model_kwargs",
        "ddim_invert calls model(x, t) without **model_kwargs (labels lost)",
        Edit("ddim", _INV_MODEL, "        eps = model(x, t)\n"),
    ),
    Mutant(
        "ddim_loop_seeds_global_rng",
        "seeds the global RNG 'for reproducible runs' at the start of the loop (the samples still come from the generator)",
        Edit(
            "ddim",
            "    x = torch.randn(tuple(shape), generator=generator) if noise is None else noise\n",
            "    torch.manual_seed(0)  # reproducible runs\n    x = torch.randn(tuple(shape), generator=generator) if noise is None else noise\n",
        ),
    ),
    # Found by mutation testing (benchmarks/mutation_survivors.md):
    Mutant(
        "timesteps_spacing_compared_by_identity",
        'spacing is "uniform" (identity) instead of == (equality): an equal name that is not the same str '
        "object, as any name decoded or built at run time, is refused",
        Edit("ddim", 'if spacing == "uniform":', 'if spacing is "uniform":'),
    ),
    Mutant(
        "timesteps_trailing_by_order",
        "spacing >= \"trailing\" where == belongs: every unknown name sorting after 'trailing' (e.g. 'uniforms') "
        "is taken for 'trailing' instead of refused",
        Edit("ddim", 'elif spacing == "trailing":', 'elif spacing >= "trailing":'),
    ),
    Mutant(
        "step_direction_unclamped",
        "√(1 − ᾱ_prev − σ²) taken as it is: where the term is 0 up to rounding it can round below 0 and give NaN",
        Edit("ddim", _DIRECTION, "    direction = (1 - alpha_bar_prev - sigma**2).sqrt()\n"),
    ),
    Mutant(
        "ddim_loop_noise_for_any_nonzero_eta",
        "step noise drawn for every η ≠ 0, so η < 0 samples (as |η|) instead of raising ValueError",
        Edit("ddim", "if eta > 0 else None", "if eta != 0 else None"),
    ),
    Mutant(
        "ddim_loop_noise_shape_unchecked",
        "ddim_sample_loop starts from a noise= of another shape than `shape` instead of raising ValueError",
        Edit(
            "ddim",
            "    if noise is not None and tuple(noise.shape) != tuple(shape):\n"
            '        raise ValueError(f"noise= has shape {tuple(noise.shape)} but shape={tuple(shape)}; pass matching shapes")\n',
            "",
        ),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Mutant(
        "alpha_bar_at_wraps_minus_one",
        "indexed ᾱ directly; t = −1 silently wraps to ᾱ_{T−1} instead of 1",
        Edit(
            "ddim",
            "    padded = torch.cat([torch.ones(1, dtype=torch.float64), schedule.alpha_bars])\n"
            "    return padded.to(t.device)[t + 1]\n",
            "    return schedule.alpha_bars.to(t.device)[t]\n",
        ),
    ),
    Mutant(
        "uniform_float_stride_truncated",
        "a float stride T/num_steps 'spreads the steps better'; differs from k·(T // num_steps) when uneven",
        Edit(
            "ddim",
            "steps = np.arange(num_steps) * (T // num_steps)",
            "steps = (np.arange(num_steps) * (T / num_steps)).astype(np.int64)",
        ),
    ),
    Mutant(
        "linspace_by_hand_divides_by_zero",
        "linspace written out as k·(T − 1)/(num_steps − 1); num_steps = 1 divides 0 by 0",
        Edit(
            "ddim",
            "steps = np.linspace(0, T - 1, num_steps).round()",
            "steps = (np.arange(num_steps) * (T - 1) / (num_steps - 1)).round()",
        ),
    ),
    Mutant(
        "trailing_integer_stride",
        "trailing = uniform counted from the top with an integer stride; wrong when T is not a multiple of num_steps",
        Edit(
            "ddim",
            "steps = np.round(np.arange(T, 0, -T / num_steps))[:num_steps] - 1",
            "steps = T - 1 - np.arange(num_steps) * (T // num_steps)",
        ),
    ),
    Mutant(
        "no_num_steps_check",
        "never thought of num_steps > T; the promised ValueError is missing",
        Edit(
            "ddim",
            "    if not 1 <= num_steps <= T:\n"
            '        raise ValueError(f"num_steps must be in 1..T={T}, got {num_steps}")\n',
            "",
        ),
    ),
    Mutant(
        "num_steps_check_upper_only",
        "checked only the upper bound; num_steps = 0 returns an empty subsequence",
        Edit(
            "ddim",
            "if not 1 <= num_steps <= T:",
            "if num_steps > T:",
        ),
    ),
    Mutant(
        "trailing_not_sorted",
        "uniform and linspace come out ascending anyway; trailing is built descending and stays so",
        Edit(
            "ddim",
            "return torch.from_numpy(np.sort(steps).astype(np.int64))",
            "return torch.from_numpy(steps.astype(np.int64))",
        ),
    ),
    Mutant(
        "sigma_is_variance",
        "returned σ² (the variance of eq. 16) instead of σ",
        Edit(
            "ddim",
            "return eta * ((1 - alpha_bar_prev) / (1 - alpha_bar)).sqrt() * (1 - alpha_bar / alpha_bar_prev).sqrt()",
            "return eta * ((1 - alpha_bar_prev) / (1 - alpha_bar)) * (1 - alpha_bar / alpha_bar_prev)",
        ),
    ),
    Mutant(
        "invert_eps_at_lower_level",
        "evaluated eps at the level the step starts from (as in sampling), not the level it goes to",
        Edit(
            "ddim",
            "eps = model(x, t, **model_kwargs)",
            "eps = model(x, level.clamp(min=0), **model_kwargs)",
        ),
    ),
    Mutant(
        "invert_drops_spacing",
        "the inversion walks the default ('uniform') subsequence whatever spacing= says",
        Edit(
            "ddim",
            "    timesteps = ddim_timesteps(schedule.T, num_steps, spacing).tolist()\n    x = x0\n",
            "    timesteps = ddim_timesteps(schedule.T, num_steps).tolist()\n    x = x0\n",
        ),
    ),
)

ALTERNATIVES: tuple[Alternative, ...] = (
    Alternative(
        "ddim_step_xt_form",
        "eq. 12 rearranged in x_t and eps: √(ᾱ_prev/ᾱ_t)·x_t + (√(1 − ᾱ_prev − σ²) − √(ᾱ_prev(1 − ᾱ_t)/ᾱ_t))·eps",
        (
            Edit(
                "ddim",
                _STEP_BODY,
                _STEP_PREV
                + "    alpha_bar = alpha_bar_at(schedule, t)\n"
                + "    sigma = ddim_sigma(schedule, t, t_prev, eta)\n"
                + _DIRECTION
                + "    coef_x = (alpha_bar_prev / alpha_bar).sqrt()\n"
                + "    coef_eps = direction - (alpha_bar_prev * (1 - alpha_bar) / alpha_bar).sqrt()\n"
                + "    x_prev = expand_like(coef_x, x_t) * x_t + expand_like(coef_eps, x_t) * eps\n",
            ),
        ),
    ),
    Alternative(
        "ddim_helpers_by_where_and_integers",
        "alpha_bar_at with torch.where, σ² as one product under a square root, ddim_timesteps in exact integers",
        (
            Edit(
                "ddim",
                "    padded = torch.cat([torch.ones(1, dtype=torch.float64), schedule.alpha_bars])\n" + _PADDED,
                "    alpha_bars = schedule.alpha_bars.to(t.device)\n"
                "    return torch.where(t >= 0, alpha_bars[t.clamp(min=0)], torch.ones((), dtype=torch.float64, device=t.device))\n",
            ),
            Edit(
                "ddim",
                _SIGMA,
                "    return eta * ((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)).sqrt()\n",
            ),
            Edit("ddim", _UNIFORM, "        steps = [k * (T // num_steps) for k in range(num_steps)]\n"),
            Edit(
                "ddim",
                _LINSPACE,
                "        d = max(num_steps - 1, 1)\n"
                "        steps = [(2 * k * (T - 1) + d) // (2 * d) for k in range(num_steps)]\n",
            ),
            Edit(
                "ddim",
                _TRAILING,
                "        steps = [T - (2 * k * T + num_steps) // (2 * num_steps) - 1 for k in range(num_steps)]\n",
            ),
        ),
    ),
    Alternative(
        "ddim_loop_zip_pairs",
        "ddim_sample_loop over zip(reversed(τ), reversed([−1] + τ[:−1])); inversion in the scaled variable x/√ᾱ",
        (
            Edit(
                "ddim",
                _LOOP_BODY,
                "    pairs = zip(reversed(timesteps), reversed([-1, *timesteps[:-1]]), strict=True)\n"
                '    for current, previous in tqdm(pairs, total=num_steps, disable=not progress, desc="DDIM sampling"):\n'
                "        t = torch.full((batch,), current, dtype=torch.long, device=device)\n"
                "        t_prev = torch.full((batch,), previous, dtype=torch.long, device=device)\n"
                + _LOOP_NOISE
                + _LOOP_STEP,
            ),
            Edit(
                "ddim",
                _INV_BODY,
                "        ratio, ratio_next = ((1 - alpha_bar) / alpha_bar).sqrt(), ((1 - alpha_bar_next) / alpha_bar_next).sqrt()\n"
                "        scaled = x / expand_like(alpha_bar.sqrt(), x) + expand_like(ratio_next - ratio, x) * eps\n"
                "        x = expand_like(alpha_bar_next.sqrt(), x) * scaled\n",
            ),
        ),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Alternative(
        "alpha_bar_at_with_where",
        "ᾱ_{−1} = 1 with torch.where instead of a padded table",
        (
            Edit(
                "ddim",
                "    padded = torch.cat([torch.ones(1, dtype=torch.float64), schedule.alpha_bars])\n"
                "    return padded.to(t.device)[t + 1]\n",
                "    table = schedule.alpha_bars.to(t.device)\n"
                "    return torch.where(t >= 0, table[t.clamp(min=0)], torch.ones((), dtype=torch.float64, device=t.device))\n",
            ),
        ),
    ),
    Alternative(
        "timesteps_by_list_comprehensions",
        "the documented formulas for 'uniform' and 'trailing' written per k in Python",
        (
            Edit(
                "ddim",
                "steps = np.arange(num_steps) * (T // num_steps)",
                "steps = np.array([k * (T // num_steps) for k in range(num_steps)])",
            ),
            Edit(
                "ddim",
                "steps = np.round(np.arange(T, 0, -T / num_steps))[:num_steps] - 1",
                "steps = np.array([round(T - k * T / num_steps) - 1 for k in range(num_steps)])",
            ),
        ),
    ),
    Alternative(
        "sigma_one_sqrt",
        "eq. 16 under one square root",
        (
            Edit(
                "ddim",
                "return eta * ((1 - alpha_bar_prev) / (1 - alpha_bar)).sqrt() * (1 - alpha_bar / alpha_bar_prev).sqrt()",
                "return eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev))",
            ),
        ),
    ),
    Alternative(
        "loop_no_noise_on_the_last_step",
        "the step to t_prev = −1 has σ = 0, so it draws no noise (one draw fewer when η > 0)",
        (
            Edit(
                "ddim",
                "        z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype) if eta > 0 else None\n"
                "        x = ddim_step(model, schedule, x, t, t_prev, eta=eta, noise=z, clip_denoised=clip_denoised, **model_kwargs)\n",
                "        step_eta = eta if k > 0 else 0.0  # σ = 0 on the step to t_prev = −1 whatever η is\n"
                "        z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype) if step_eta > 0 else None\n"
                "        x = ddim_step(model, schedule, x, t, t_prev, eta=step_eta, noise=z, clip_denoised=clip_denoised, **model_kwargs)\n",
            ),
        ),
    ),
    Alternative(
        "loop_over_pairs_start_always_drawn",
        "(τ_k, τ_{k−1}) pairs zipped up front; a start is drawn from the generator even when noise= is given",
        (
            Edit(
                "ddim",
                "    x = torch.randn(tuple(shape), generator=generator) if noise is None else noise\n",
                "    x = torch.randn(tuple(shape), generator=generator)\n"
                "    if noise is not None:\n"
                "        x = noise\n",
            ),
            Edit(
                "ddim",
                '    for k in tqdm(range(num_steps - 1, -1, -1), disable=not progress, desc="DDIM sampling"):\n'
                "        t = torch.full((batch,), timesteps[k], dtype=torch.long, device=device)\n"
                "        t_prev = torch.full((batch,), timesteps[k - 1] if k > 0 else -1, dtype=torch.long, device=device)\n",
                "    pairs = list(zip(timesteps[::-1], ([-1] + timesteps[:-1])[::-1]))\n"
                '    for step, step_prev in tqdm(pairs, disable=not progress, desc="DDIM sampling"):\n'
                "        t = torch.full((batch,), step, dtype=torch.long, device=device)\n"
                "        t_prev = torch.full((batch,), step_prev, dtype=torch.long, device=device)\n",
            ),
        ),
    ),
    Alternative(
        "invert_combined_coefficients",
        "x_t = √(ᾱ_t/ᾱ_s)·x + (√(1 − ᾱ_t) − √(ᾱ_t/ᾱ_s)·√(1 − ᾱ_s))·eps, x̂0 eliminated",
        (
            Edit(
                "ddim",
                "        pred_x0 = (x - expand_like((1 - alpha_bar).sqrt(), x) * eps) / expand_like(alpha_bar.sqrt(), x)\n"
                "        x = expand_like(alpha_bar_next.sqrt(), x) * pred_x0 + expand_like((1 - alpha_bar_next).sqrt(), x) * eps\n",
                "        ratio = (alpha_bar_next / alpha_bar).sqrt()\n"
                "        coef_eps = (1 - alpha_bar_next).sqrt() - ratio * (1 - alpha_bar).sqrt()\n"
                "        x = expand_like(ratio, x) * x + expand_like(coef_eps, x) * eps\n",
            ),
        ),
    ),
)
