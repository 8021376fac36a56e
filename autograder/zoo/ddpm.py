"""Bug zoo of part 6 (ddpm sampling): mistakes that must lose points, rewrites that must not."""

from __future__ import annotations

from autograder.zoo.edits import Alternative, Edit, Mutant

_POSTERIOR = (
    "    mean, posterior_variance, posterior_log_variance = q_posterior_mean_variance(schedule, pred_x0, x_t, t)\n"
)
_CLIP = "    if clip_denoised:\n        pred_x0 = pred_x0.clamp(-1, 1)\n"
_VARIANCES = (
    '    if variance == "fixed_small":\n'
    "        var, log_var = posterior_variance, posterior_log_variance\n"
    '    elif variance == "fixed_large":\n'
    "        var, log_var = extract(schedule.betas, t, x_t), extract(schedule.betas.log(), t, x_t)\n"
)
_LOOP = '    for step in tqdm(range(schedule.T - 1, -1, -1), disable=not progress, desc="DDPM sampling"):\n'
_LOOP_NOISE = "        z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype)\n"
_LOOP_STEP = (
    "        x = p_sample(model, schedule, x, t, z, clip_denoised=clip_denoised, variance=variance, **model_kwargs)\n"
)
_LOOP_T = "        t = torch.full((x.shape[0],), step, dtype=torch.long, device=device)\n"
_START = "    x = torch.randn(tuple(shape), generator=generator) if noise is None else noise\n"
_SAMPLE = '    return out["mean"] + nonzero * out["variance"].sqrt() * noise\n'
_NOISE_SHAPE_CHECK = (
    "    if noise is not None and tuple(noise.shape) != tuple(shape):\n"
    '        raise ValueError(f"noise= has shape {tuple(noise.shape)} but shape={tuple(shape)}; pass matching shapes")\n'
)


def _eq11(coef_eps: str, divisor: str) -> str:
    """Eq. 11 written out, with eps recomputed from the (possibly clamped) x̂0 so clipping still counts."""
    return (
        "    _, posterior_variance, posterior_log_variance = q_posterior_mean_variance(schedule, pred_x0, x_t, t)\n"
        "    eps_used = (x_t - extract(schedule.alpha_bars.sqrt(), t, x_t) * pred_x0) / extract(\n"
        "        (1 - schedule.alpha_bars).sqrt(), t, x_t\n"
        "    )\n"
        f"    mean = (x_t - extract({coef_eps}, t, x_t) * eps_used) / extract({divisor}, t, x_t)\n"
    )


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "eq11_coef_missing_sqrt",
        "eq. 11 mean with β_t/(1 − ᾱ_t) where β_t/√(1 − ᾱ_t) belongs (square root missing)",
        Edit(
            "ddpm",
            _POSTERIOR,
            _eq11("schedule.betas / (1 - schedule.alpha_bars)", "schedule.alphas.sqrt()"),
        ),
    ),
    Mutant(
        "eq11_divides_by_alpha",
        "eq. 11 mean divided by α_t instead of √α_t",
        Edit(
            "ddpm",
            _POSTERIOR,
            _eq11("schedule.betas / (1 - schedule.alpha_bars).sqrt()", "schedule.alphas"),
        ),
    ),
    Mutant(
        "eq11_divides_by_sqrt_alpha_bar",
        "eq. 11 mean divided by √ᾱ_t (the x̂0 denominator) instead of √α_t",
        Edit(
            "ddpm",
            _POSTERIOR,
            _eq11("schedule.betas / (1 - schedule.alpha_bars).sqrt()", "schedule.alpha_bars.sqrt()"),
        ),
    ),
    Mutant(
        "clamp_mean_not_x0",
        "clip_denoised clamps the posterior mean to [−1, 1] instead of x̂0",
        Edit(
            "ddpm",
            _CLIP + _POSTERIOR,
            _POSTERIOR + "    if clip_denoised:\n        mean = mean.clamp(-1, 1)\n",
        ),
    ),
    Mutant(
        "clamp_after_posterior_mean",
        "x̂0 clamped only after the posterior mean was computed from the raw x̂0",
        Edit("ddpm", _CLIP + _POSTERIOR, _POSTERIOR + _CLIP),
    ),
    Mutant(
        "clip_denoised_ignored",
        "clip_denoised ignored: x̂0 never clamped to [−1, 1]",
        Edit("ddpm", _CLIP, ""),
    ),
    Mutant(
        "clip_denoised_always",
        "x̂0 clamped to [−1, 1] even when clip_denoised=False",
        Edit("ddpm", _CLIP, "    pred_x0 = pred_x0.clamp(-1, 1)\n"),
    ),
    Mutant(
        "variances_swapped",
        "fixed_small and fixed_large swapped (β_t for 'fixed_small', β̃_t for 'fixed_large')",
        Edit(
            "ddpm",
            _VARIANCES,
            _VARIANCES.replace('"fixed_small"', '"SMALL"')
            .replace('"fixed_large"', '"fixed_small"')
            .replace('"SMALL"', '"fixed_large"'),
        ),
    ),
    Mutant(
        "fixed_small_unclipped_log",
        "fixed_small log-variance log β̃_t without the clipping: −∞ at t = 0",
        Edit(
            "ddpm",
            "        var, log_var = posterior_variance, posterior_log_variance\n",
            "        var, log_var = posterior_variance, posterior_variance.log()\n",
        ),
    ),
    Mutant(
        "fixed_large_posterior_log_variance",
        "fixed_large returns β_t but the log of β̃_t (the posterior's log-variance)",
        Edit(
            "ddpm",
            "        var, log_var = extract(schedule.betas, t, x_t), extract(schedule.betas.log(), t, x_t)\n",
            "        var, log_var = extract(schedule.betas, t, x_t), posterior_log_variance\n",
        ),
    ),
    Mutant(
        "p_mean_variance_drops_model_kwargs",
        "p_mean_variance calls model(x_t, t) without **model_kwargs (labels lost)",
        Edit("ddpm", "    eps = model(x_t, t, **model_kwargs)\n", "    eps = model(x_t, t)\n"),
    ),
    Mutant(
        "p_sample_noise_at_t0",
        "p_sample adds noise at t = 0 too (no mask on the last step)",
        Edit("ddpm", _SAMPLE, '    return out["mean"] + out["variance"].sqrt() * noise\n'),
    ),
    Mutant(
        "p_sample_variance_not_std",
        "p_sample scales the noise by the variance instead of its square root (the std)",
        Edit("ddpm", _SAMPLE, '    return out["mean"] + nonzero * out["variance"] * noise\n'),
    ),
    Mutant(
        "p_sample_log_variance_as_std",
        "p_sample scales the noise by exp(log_variance) (the variance) instead of exp(½·log_variance)",
        Edit("ddpm", _SAMPLE, '    return out["mean"] + nonzero * out["log_variance"].exp() * noise\n'),
    ),
    Mutant(
        "ddpm_loop_from_T",
        "p_sample_loop iterates t = T, ..., 1 (1-based timesteps) instead of T−1, ..., 0",
        Edit("ddpm", _LOOP, _LOOP.replace("range(schedule.T - 1, -1, -1)", "range(schedule.T, 0, -1)")),
    ),
    Mutant(
        "ddpm_loop_stops_at_1",
        "p_sample_loop stops at t = 1 and never takes the last (noise-free) step at t = 0",
        Edit("ddpm", _LOOP, _LOOP.replace("range(schedule.T - 1, -1, -1)", "range(schedule.T - 1, 0, -1)")),
    ),
    Mutant(
        "ddpm_loop_ascending",
        "p_sample_loop walks t = 0, ..., T−1 (ascending) instead of T−1, ..., 0",
        Edit("ddpm", _LOOP, _LOOP.replace("range(schedule.T - 1, -1, -1)", "range(schedule.T)")),
    ),
    Mutant(
        "ddpm_loop_drops_model_kwargs",
        "p_sample_loop does not pass **model_kwargs on to p_sample (class labels lost)",
        Edit("ddpm", _LOOP_STEP, _LOOP_STEP.replace(", **model_kwargs)", ")")),
    ),
    Mutant(
        "ddpm_loop_ignores_variance",
        "p_sample_loop does not pass variance= on to p_sample (always 'fixed_small')",
        Edit("ddpm", _LOOP_STEP, _LOOP_STEP.replace(", variance=variance", "")),
    ),
    Mutant(
        "ddpm_loop_ignores_clip_denoised",
        "p_sample_loop does not pass clip_denoised= on to p_sample (always clipped)",
        Edit("ddpm", _LOOP_STEP, _LOOP_STEP.replace(", clip_denoised=clip_denoised", "")),
    ),
    Mutant(
        "ddpm_loop_global_rng",
        "p_sample_loop draws each step's noise from the global RNG instead of the generator",
        Edit("ddpm", _LOOP_NOISE, _LOOP_NOISE.replace(", generator=generator", "")),
    ),
    Mutant(
        "ddpm_loop_noise_drawn_once",
        "p_sample_loop draws z once before the loop and adds the same noise at every step",
        Edit("ddpm", _LOOP + _LOOP_T + _LOOP_NOISE, _LOOP_NOISE.replace("        ", "    ", 1) + _LOOP + _LOOP_T),
    ),
    Mutant(
        "ddpm_loop_no_noise_at_t1",
        "p_sample_loop copies Algorithm 2's 'z ~ N(0, I) if t > 1, else 0' (1-based) onto 0-based steps: "
        "the step from t = 1 gets no noise either",
        Edit("ddpm", _LOOP_NOISE, _LOOP_NOISE.replace("x.dtype)\n", "x.dtype) if step > 1 else torch.zeros_like(x)\n")),
    ),
    Mutant(
        "ddpm_loop_clamps_state",
        "p_sample_loop clamps the state x_t to [−1, 1] after every step (clipping meant for x̂0 applied to x_t)",
        Edit("ddpm", _LOOP_STEP, _LOOP_STEP + "        x = x.clamp(-1, 1)\n"),
    ),
    Mutant(
        "ddpm_loop_ignores_noise_start",
        "p_sample_loop ignores noise= and always draws its own starting x_{T−1}",
        Edit("ddpm", _START, "    x = torch.randn(tuple(shape), generator=generator)\n"),
    ),
    Mutant(
        "ddpm_loop_trajectory_without_start",
        "return_trajectory lists only the T states after each step, not the starting noise",
        Edit("ddpm", "    trajectory = [x]\n", "    trajectory = []\n"),
    ),
    Mutant(
        "ddpm_loop_seeds_global_rng",
        "seeds the global RNG 'for reproducible runs' at the start of the loop (the samples still come from the generator)",
        Edit(
            "ddpm",
            "    x = torch.randn(tuple(shape), generator=generator) if noise is None else noise\n",
            "    torch.manual_seed(0)  # reproducible runs\n    x = torch.randn(tuple(shape), generator=generator) if noise is None else noise\n",
        ),
    ),
    Mutant(
        "p_mean_variance_unknown_variance_is_fixed_large",
        "any variance other than 'fixed_small' takes the 'fixed_large' branch instead of raising ValueError",
        Edit(
            "ddpm",
            '    elif variance == "fixed_large":\n'
            "        var, log_var = extract(schedule.betas, t, x_t), extract(schedule.betas.log(), t, x_t)\n"
            "    else:\n"
            "        raise ValueError(f\"variance must be 'fixed_small' or 'fixed_large', got {variance!r}\")\n",
            "    else:\n"
            "        var, log_var = extract(schedule.betas, t, x_t), extract(schedule.betas.log(), t, x_t)\n",
        ),
    ),
    # Found by mutation testing (benchmarks/mutation_survivors.md):
    Mutant(
        "p_mean_variance_variance_compared_by_identity",
        'variance is "fixed_small" (identity) instead of == (equality): an equal name that is not the same str '
        "object, as any name decoded or built at run time, is refused",
        Edit("ddpm", 'if variance == "fixed_small":', 'if variance is "fixed_small":'),
    ),
    Mutant(
        "ddpm_loop_noise_shape_unchecked",
        "p_sample_loop starts from a noise= of another shape than `shape` instead of raising ValueError",
        Edit("ddpm", _NOISE_SHAPE_CHECK, ""),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Mutant(
        "mean_always_eq11",
        "used eq. 11 for the mean (the docstring says they agree); it ignores the clamped x̂0",
        Edit(
            "ddpm",
            "    mean, posterior_variance, posterior_log_variance = q_posterior_mean_variance(schedule, pred_x0, x_t, t)\n",
            "    _, posterior_variance, posterior_log_variance = q_posterior_mean_variance(schedule, pred_x0, x_t, t)\n"
            "    mean = (x_t - extract(schedule.betas / (1 - schedule.alpha_bars).sqrt(), t, x_t) * eps) / extract(\n"
            "        schedule.alphas.sqrt(), t, x_t\n"
            "    )\n",
        ),
    ),
    Mutant(
        "no_noise_unless_t_gt_1",
        "Algorithm 2's 'z ~ N(0, I) if t > 1' copied onto 0-based steps",
        Edit(
            "ddpm",
            "nonzero = expand_like((t != 0).to(x_t.dtype), x_t)",
            "nonzero = expand_like((t > 1).to(x_t.dtype), x_t)",
        ),
    ),
    Mutant(
        "t0_check_for_whole_batch",
        "in the sampling loop the whole batch shares t, so one check per batch 'is enough'",
        Edit(
            "ddpm",
            "    nonzero = expand_like((t != 0).to(x_t.dtype), x_t)\n"
            '    return out["mean"] + nonzero * out["variance"].sqrt() * noise\n',
            "    if bool((t == 0).any()):\n"
            '        return out["mean"]\n'
            '    return out["mean"] + out["variance"].sqrt() * noise\n',
        ),
    ),
    Mutant(
        "p_sample_drops_variance",
        "forwarded clip_denoised but forgot variance=, so fixed_large samples with β̃",
        Edit(
            "ddpm",
            "out = p_mean_variance(model, schedule, x_t, t, clip_denoised=clip_denoised, variance=variance, **model_kwargs)",
            "out = p_mean_variance(model, schedule, x_t, t, clip_denoised=clip_denoised, **model_kwargs)",
        ),
    ),
    Mutant(
        "p_sample_drops_clip_denoised",
        "forwarded variance= but not clip_denoised, so clip_denoised=False still clamps",
        Edit(
            "ddpm",
            "out = p_mean_variance(model, schedule, x_t, t, clip_denoised=clip_denoised, variance=variance, **model_kwargs)",
            "out = p_mean_variance(model, schedule, x_t, t, variance=variance, **model_kwargs)",
        ),
    ),
    Mutant(
        "loop_start_from_global_rng",
        "the generator was threaded into the loop's noise but not the start",
        Edit(
            "ddpm",
            "x = torch.randn(tuple(shape), generator=generator) if noise is None else noise",
            "x = torch.randn(tuple(shape)) if noise is None else noise",
        ),
    ),
    Mutant(
        "loop_drops_variance_and_clip",
        "p_sample's defaults are the usual settings; the loop's clip_denoised= and variance= are ignored",
        Edit(
            "ddpm",
            "x = p_sample(model, schedule, x, t, z, clip_denoised=clip_denoised, variance=variance, **model_kwargs)",
            "x = p_sample(model, schedule, x, t, z, **model_kwargs)",
        ),
    ),
    Mutant(
        "trajectory_recorded_before_the_step",
        "appended x_t at the top of the loop: T + 1 states, the start twice and the final sample missing",
        Edit(
            "ddpm",
            "        x = p_sample(model, schedule, x, t, z, clip_denoised=clip_denoised, variance=variance, **model_kwargs)\n"
            "        if return_trajectory:\n"
            "            trajectory.append(x)\n",
            "        if return_trajectory:\n"
            "            trajectory.append(x)\n"
            "        x = p_sample(model, schedule, x, t, z, clip_denoised=clip_denoised, variance=variance, **model_kwargs)\n",
        ),
    ),
)

ALTERNATIVES: tuple[Alternative, ...] = (
    Alternative(
        "ddpm_eq11_float64",
        "p_mean_variance in float64 with the mean by eq. 11 (eps recomputed from the clamped x̂0), cast back",
        (
            Edit(
                "ddpm",
                "    eps = model(x_t, t, **model_kwargs)\n"
                "    pred_x0 = predict_x0_from_eps(schedule, x_t, t, eps)\n" + _CLIP + _POSTERIOR + _VARIANCES,
                "    eps = model(x_t, t, **model_kwargs)\n"
                "    x, e = x_t.double(), eps.double()\n"
                "    idx = t.cpu()\n"
                "    shape = (-1, *([1] * (x_t.dim() - 1)))\n"
                "    a_bar = schedule.alpha_bars[idx].reshape(shape).to(x.device)\n"
                "    a_bar_prev = schedule.alpha_bars_prev[idx].reshape(shape).to(x.device)\n"
                "    beta = schedule.betas[idx].reshape(shape).to(x.device)\n"
                "    x0 = (x - (1 - a_bar).sqrt() * e) / a_bar.sqrt()\n"
                "    if clip_denoised:\n"
                "        x0 = x0.clamp(-1, 1)\n"
                "        e = (x - a_bar.sqrt() * x0) / (1 - a_bar).sqrt()\n"
                "    mean = ((x - beta / (1 - a_bar).sqrt() * e) / (1 - beta).sqrt()).to(x_t.dtype)\n"
                "    pred_x0 = x0.to(x_t.dtype)\n"
                "    tilde = beta * (1 - a_bar_prev) / (1 - a_bar)\n"
                "    table = schedule.betas * (1 - schedule.alpha_bars_prev) / (1 - schedule.alpha_bars)\n"
                "    table[0] = table[1] if schedule.T > 1 else schedule.betas[0]\n"
                "    log_tilde = table.log()[idx].reshape(shape).to(x.device)\n"
                '    if variance == "fixed_small":\n'
                "        var, log_var = tilde.to(x_t), log_tilde.to(x_t)\n"
                '    elif variance == "fixed_large":\n'
                "        var, log_var = beta.to(x_t), beta.log().to(x_t)\n",
            ),
        ),
    ),
    Alternative(
        "ddpm_std_from_log_variance",
        "p_sample with std exp(½·log_variance) and torch.where for t == 0; the loop over reversed(range(T))",
        (
            Edit(
                "ddpm",
                "    nonzero = expand_like((t != 0).to(x_t.dtype), x_t)\n" + _SAMPLE,
                '    std = torch.exp(0.5 * out["log_variance"])\n'
                "    last = expand_like(t == 0, x_t).to(torch.bool)\n"
                '    return torch.where(last, out["mean"], out["mean"] + std * noise)\n',
            ),
            Edit("ddpm", _LOOP, _LOOP.replace("range(schedule.T - 1, -1, -1)", "reversed(range(schedule.T))")),
        ),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Alternative(
        "p_sample_std_from_log_variance_and_where",
        "the std as exp(½ log-variance) (the clipped log differs only at t = 0, where no noise is added); mask by torch.where",
        (
            Edit(
                "ddpm",
                "    nonzero = expand_like((t != 0).to(x_t.dtype), x_t)\n"
                '    return out["mean"] + nonzero * out["variance"].sqrt() * noise\n',
                "    last = expand_like((t == 0).to(x_t.dtype), x_t).bool()\n"
                '    noisy = out["mean"] + torch.exp(0.5 * out["log_variance"]) * noise\n'
                '    return torch.where(last, out["mean"], noisy)\n',
            ),
        ),
    ),
    Alternative(
        "p_mean_variance_eq11_when_not_clipping",
        "eq. 11 for the mean when x̂0 is not clamped (the docstring says they agree); fixed-large log as log of the variance",
        (
            Edit(
                "ddpm",
                "    mean, posterior_variance, posterior_log_variance = q_posterior_mean_variance(schedule, pred_x0, x_t, t)\n",
                "    mean, posterior_variance, posterior_log_variance = q_posterior_mean_variance(schedule, pred_x0, x_t, t)\n"
                "    if not clip_denoised:\n"
                "        mean = (x_t - extract(schedule.betas / (1 - schedule.alpha_bars).sqrt(), t, x_t) * eps) / extract(\n"
                "            schedule.alphas.sqrt(), t, x_t\n"
                "        )\n",
            ),
            Edit(
                "ddpm",
                "var, log_var = extract(schedule.betas, t, x_t), extract(schedule.betas.log(), t, x_t)",
                "var = extract(schedule.betas, t, x_t)\n        log_var = var.log()",
            ),
        ),
    ),
    Alternative(
        "loop_no_noise_drawn_for_t0",
        "no noise is drawn for the last step, where none is added (one draw fewer)",
        (
            Edit(
                "ddpm",
                "z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype)",
                "z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype) if step > 0 else torch.zeros_like(x)",
            ),
        ),
    ),
    Alternative(
        "loop_all_noise_up_front",
        "every step's noise drawn first in one tensor, the start after it (another order of draws)",
        (
            Edit(
                "ddpm",
                "    x = torch.randn(tuple(shape), generator=generator) if noise is None else noise\n"
                "    x = x.to(device)\n",
                "    step_noise = torch.randn((schedule.T, *tuple(shape)), generator=generator)\n"
                "    x = torch.randn(tuple(shape), generator=generator) if noise is None else noise\n"
                "    x = x.to(device)\n",
            ),
            Edit(
                "ddpm",
                "z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype)",
                "z = step_noise[step].to(device=device, dtype=x.dtype)",
            ),
        ),
    ),
    Alternative(
        "loop_over_reversed_range_with_list",
        "reversed(range(T)), and the trajectory always recorded (returned only when asked)",
        (
            Edit(
                "ddpm",
                '    for step in tqdm(range(schedule.T - 1, -1, -1), disable=not progress, desc="DDPM sampling"):\n',
                "    steps = list(reversed(range(schedule.T)))\n"
                '    for step in tqdm(steps, disable=not progress, desc="DDPM sampling"):\n',
            ),
            Edit(
                "ddpm",
                "        if return_trajectory:\n            trajectory.append(x)\n",
                "        trajectory.append(x)\n",
            ),
        ),
    ),
)
