"""Blind entries: realistic student mistakes and correct alternative implementations, as data.

Written from the student-facing material only (the stubs' docstrings, the public tests, the README's
"For students" section and the API contract), against the reference in ``solutions/diffusion/``.

Each :class:`Edit` replaces one snippet of ``solutions/diffusion/<part>.py`` that occurs exactly once
there. A :class:`Mistake` must lose points in its part; an :class:`Alternative` is correct (it follows
the contract, including "checks never depend on the order in which a student draws numbers") and must
keep full marks. ``blind/verify.py`` checks that every edit applies and that the edited modules parse.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    part: str  # the module, e.g. "ddim"
    find: str  # an exact snippet of solutions/diffusion/<part>.py that occurs EXACTLY ONCE in it
    replace: str  # what replaces it


@dataclass(frozen=True)
class Mistake:  # must lose points in `part`
    name: str
    edit: Edit
    why: str  # one line: the realistic student reasoning behind it


@dataclass(frozen=True)
class Alternative:  # correct but written differently: must keep full marks
    name: str
    edits: tuple[Edit, ...]
    why: str


def _m(name: str, part: str, find: str, replace: str, why: str) -> Mistake:
    return Mistake(name=f"{part}.{name}", edit=Edit(part, find, replace), why=why)


def _a(name: str, part: str, edits: tuple[tuple[str, str], ...], why: str) -> Alternative:
    return Alternative(name=f"{part}.{name}", edits=tuple(Edit(part, f, r) for f, r in edits), why=why)


# ============================================================================================ mistakes

_SCHEDULES = (
    _m(
        "linear_betas_float32",
        "schedules",
        "return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)",
        "return torch.linspace(beta_start, beta_end, T)",
        "torch.linspace 'obviously' returns the right thing; forgot that the default dtype is float32",
    ),
    _m(
        "cosine_missing_one_plus_s",
        "schedules",
        "f = torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2",
        "f = torch.cos((u / T + s) * math.pi / 2) ** 2",
        "read f(u) = cos²((u/T + s) · π/2) and dropped the /(1 + s) normalisation of the offset",
    ),
    _m(
        "cosine_computed_in_float32",
        "schedules",
        "    u = torch.arange(T + 1, dtype=torch.float64)\n"
        "    f = torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2\n"
        "    return torch.clamp(1 - f[1:] / f[:-1], max=max_beta)",
        "    u = torch.arange(T + 1, dtype=torch.float32)\n"
        "    f = torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2\n"
        "    return torch.clamp(1 - f[1:] / f[:-1], max=max_beta).to(torch.float64)",
        "cast to float64 at the end to satisfy the dtype; 1 − f(t+1)/f(t) cancels badly in float32 for small t",
    ),
    _m(
        "scaled_linear_no_sqrt_of_endpoints",
        "schedules",
        "torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64) ** 2",
        "torch.linspace(beta_start, beta_end, T, dtype=torch.float64) ** 2",
        "'scaled linear = square of a linspace': squared the linspace of the betas, not of their square roots",
    ),
    _m(
        "make_schedule_accepts_beta_one",
        "schedules",
        "if not bool(((betas > 0) & (betas < 1)).all()):",
        "if not bool(((betas > 0) & (betas <= 1)).all()):",
        "a beta of 1 'is still a probability'; the docstring's open interval (0, 1) was read as closed at 1",
    ),
    _m(
        "make_schedule_keeps_input_dtype",
        "schedules",
        "betas = torch.as_tensor(betas, dtype=torch.float64)",
        "betas = torch.as_tensor(betas)",
        "as_tensor to accept lists; forgot that float32 betas then give a float32 schedule",
    ),
    _m(
        "make_schedule_prev_of_alphas",
        "schedules",
        "alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])",
        "alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas[:-1]])",
        "'the previous alpha' shifted the per-step alphas instead of their cumulative product",
    ),
    _m(
        "snr_one_based_index",
        "schedules",
        "alpha_bar = schedule.alpha_bars.to(t.device)[t]",
        "alpha_bar = schedule.alpha_bars.to(t.device)[t - 1]",
        "paper's SNR(t) uses step t, indexed 1-based; t = 0 silently wraps to the last entry",
    ),
    _m(
        "snr_is_amplitude_ratio",
        "schedules",
        "return alpha_bar / (1 - alpha_bar)",
        "return (alpha_bar / (1 - alpha_bar)).sqrt()",
        "signal-to-noise as a ratio of standard deviations √ᾱ / √(1 − ᾱ), as some blog posts define it",
    ),
)

_FORWARD = (
    _m(
        "q_sample_uses_alphas",
        "forward",
        "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars).sqrt(), t, x0) * noise",
        "return extract(schedule.alphas.sqrt(), t, x0) * x0 + extract((1 - schedule.alphas).sqrt(), t, x0) * noise",
        "mixed up α_t and ᾱ_t: used the one-step coefficients for the closed form",
    ),
    _m(
        "q_sample_noise_coef_not_sqrt",
        "forward",
        "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars).sqrt(), t, x0) * noise",
        "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract(1 - schedule.alpha_bars, t, x0) * noise",
        "multiplied the noise by the variance 1 − ᾱ_t instead of the standard deviation",
    ),
    _m(
        "q_sample_float32_coefficients",
        "forward",
        "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars).sqrt(), t, x0) * noise",
        "shape = (-1,) + (1,) * (x0.dim() - 1)\n"
        "    a = schedule.alpha_bars.float()[t].reshape(shape)\n"
        "    return a.sqrt() * x0 + (1 - a).sqrt() * noise",
        "own gather instead of extract, casting the table to float32 'because the data is float32' (float64 data loses precision)",
    ),
    _m(
        "q_step_uses_alpha_bars",
        "forward",
        "return extract(schedule.alphas.sqrt(), t, x_prev) * x_prev + extract(schedule.betas.sqrt(), t, x_prev) * noise",
        "return extract(schedule.alpha_bars.sqrt(), t, x_prev) * x_prev + extract((1 - schedule.alpha_bars).sqrt(), t, x_prev) * noise",
        "copied q_sample's line for the one-step transition",
    ),
    _m(
        "q_step_returns_float64",
        "forward",
        "return extract(schedule.alphas.sqrt(), t, x_prev) * x_prev + extract(schedule.betas.sqrt(), t, x_prev) * noise",
        "shape = (-1,) + (1,) * (x_prev.dim() - 1)\n"
        "    return schedule.alphas.sqrt()[t].reshape(shape) * x_prev + schedule.betas.sqrt()[t].reshape(shape) * noise",
        "indexed the float64 table directly instead of extract: float32 data comes back float64",
    ),
    _m(
        "q_mean_variance_returns_std",
        "forward",
        "variance = extract(1 - schedule.alpha_bars, t, x0)",
        "variance = extract((1 - schedule.alpha_bars).sqrt(), t, x0)",
        "returned the standard deviation, the coefficient that multiplies the noise in q_sample",
    ),
    _m(
        "q_mean_variance_flat_variance",
        "forward",
        "variance = extract(1 - schedule.alpha_bars, t, x0)",
        "variance = (1 - schedule.alpha_bars)[t]",
        "a per-sample variance of shape (B,) in float64, not (B, 1, ..., 1) in the data's dtype",
    ),
)

_POSTERIOR = (
    _m(
        "log_variance_not_clipped",
        "posterior",
        "log_variance_clipped = torch.log(torch.cat([first, posterior_variance[1:]]))",
        "log_variance_clipped = torch.log(posterior_variance)",
        "took the log of β̃ directly; −∞ at t = 0 'never matters because no noise is added there'",
    ),
    _m(
        "log_variance_first_is_beta0",
        "posterior",
        "first = posterior_variance[1:2] if schedule.T > 1 else betas[:1]",
        "first = betas[:1]",
        "clipped the t = 0 entry with β_0 (the fixed-large value) instead of β̃ at index 1",
    ),
    _m(
        "log_variance_breaks_for_T_1",
        "posterior",
        "first = posterior_variance[1:2] if schedule.T > 1 else betas[:1]",
        "first = posterior_variance[1:2]",
        "index 1 always exists in practice; a one-step schedule leaves the clipped log-variance empty",
    ),
    _m(
        "coef_xt_uses_alpha_bars",
        "posterior",
        "coef_xt = (1 - alpha_bars_prev) * schedule.alphas.sqrt() / (1 - alpha_bars)",
        "coef_xt = (1 - alpha_bars_prev) * alpha_bars.sqrt() / (1 - alpha_bars)",
        "α and ᾱ confusion in the x_t coefficient of eq. 7",
    ),
    _m(
        "coef_x0_uses_alpha_bars",
        "posterior",
        "coef_x0 = betas * alpha_bars_prev.sqrt() / (1 - alpha_bars)",
        "coef_x0 = betas * alpha_bars.sqrt() / (1 - alpha_bars)",
        "used ᾱ_t instead of ᾱ_{t−1} in the x0 coefficient of eq. 7",
    ),
    _m(
        "posterior_mean_float64_on_float32",
        "posterior",
        "mean = extract(coef_x0, t, x_t) * x0 + extract(coef_xt, t, x_t) * x_t",
        "view = (-1,) + (1,) * (x_t.dim() - 1)\n    mean = coef_x0[t].view(view) * x0 + coef_xt[t].view(view) * x_t",
        "indexed the float64 coefficient tables by hand: the mean of float32 data comes back float64",
    ),
    _m(
        "predict_x0_divides_by_alpha",
        "posterior",
        "return (x_t - extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * eps) / extract(schedule.alpha_bars.sqrt(), t, x_t)",
        "return (x_t - extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * eps) / extract(schedule.alphas.sqrt(), t, x_t)",
        "mixed eq. 4 with eq. 11's 1/√α_t",
    ),
    _m(
        "predict_eps_divides_by_variance",
        "posterior",
        "return (x_t - extract(schedule.alpha_bars.sqrt(), t, x_t) * x0) / extract((1 - schedule.alpha_bars).sqrt(), t, x_t)",
        "return (x_t - extract(schedule.alpha_bars.sqrt(), t, x_t) * x0) / extract(1 - schedule.alpha_bars, t, x_t)",
        "divided by 1 − ᾱ_t, forgetting the square root",
    ),
    _m(
        "predict_v_roles_swapped",
        "posterior",
        "return extract(schedule.alpha_bars.sqrt(), t, x0) * eps - extract((1 - schedule.alpha_bars).sqrt(), t, x0) * x0",
        "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 - extract((1 - schedule.alpha_bars).sqrt(), t, x0) * eps",
        "wrote v like x_t with a minus sign: √ᾱ·x0 − √(1−ᾱ)·eps",
    ),
    _m(
        "predict_x0_from_v_sign",
        "posterior",
        "return extract(schedule.alpha_bars.sqrt(), t, x_t) * x_t - extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * v",
        "return extract(schedule.alpha_bars.sqrt(), t, x_t) * x_t + extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * v",
        "sign slip when solving the 2×2 rotation for x0",
    ),
)

_LOSSES = (
    _m(
        "t_drawn_from_one",
        "losses",
        "t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)",
        "t = torch.randint(1, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)",
        "Algorithm 1 says t ~ U{1..T}: kept the lower bound 1 on 0-based steps, so t = 0 is never trained",
    ),
    _m(
        "t_excludes_last",
        "losses",
        "t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)",
        "t = torch.randint(0, schedule.T - 1, (x0.shape[0],), generator=generator).to(x0.device)",
        "'the last index is T − 1' and forgot randint's high is already exclusive",
    ),
    _m(
        "t_from_global_rng",
        "losses",
        "t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)",
        "t = torch.randint(0, schedule.T, (x0.shape[0],)).to(x0.device)",
        "passed the generator to randn but forgot it on randint",
    ),
    _m(
        "one_t_for_the_batch",
        "losses",
        "t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)",
        "t = torch.randint(0, schedule.T, (1,), generator=generator).expand(x0.shape[0]).to(x0.device)",
        "one timestep per batch, as in some training loops; 'the expectation over t is the same'",
    ),
    _m(
        "noise_from_global_rng",
        "losses",
        "noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)",
        "noise = torch.randn_like(x0)",
        "randn_like is the idiomatic way to draw noise shaped like the data; it ignores the generator",
    ),
    _m(
        "draws_t_and_noise_together",
        "losses",
        "    if t is None:\n"
        "        t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)\n"
        "    if noise is None:\n"
        "        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)\n",
        "    if t is None or noise is None:\n"
        "        t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)\n"
        "        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)\n",
        "drew t and noise as a pair; a given t (or noise) is overwritten when only the other one is missing",
    ),
    _m(
        "model_kwargs_dropped",
        "losses",
        "return ((noise - model(x_t, t, **model_kwargs)) ** 2).mean()",
        "return ((noise - model(x_t, t)) ** 2).mean()",
        "the denoiser takes (x_t, t); forgot the class labels travel in **model_kwargs",
    ),
    _m(
        "normal_kl_no_half",
        "losses",
        "return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)",
        "return logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0",
        "dropped the leading ½ (the KL is still 0 for equal Gaussians and nonnegative)",
    ),
    _m(
        "normal_kl_variance_ratio_inverted",
        "losses",
        "return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)",
        "return 0.5 * (logvar2 - logvar1 + torch.exp(logvar2 - logvar1) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)",
        "σ2²/σ1² instead of σ1²/σ2²; still 0 for equal Gaussians",
    ),
    _m(
        "vlb_no_raise_at_t0",
        "losses",
        "    if bool((t == 0).any()):\n"
        '        raise ValueError("vlb_term is the KL term L_t for t >= 1; t == 0 is the decoder term L_0")\n',
        "",
        "the KL formula 'works' at t = 0 too (β̃ clipped), so the promised ValueError was left out",
    ),
    _m(
        "vlb_raises_only_if_all_t0",
        "losses",
        "if bool((t == 0).any()):",
        "if bool((t == 0).all()):",
        "checked the batch as a whole: a mixed batch with some t == 0 passes silently",
    ),
    _m(
        "vlb_sums_over_dims",
        "losses",
        "return kl.reshape(len(kl), -1).mean(dim=1)",
        "return kl.reshape(len(kl), -1).sum(dim=1)",
        "a KL between diagonal Gaussians sums over dimensions; the docstring asks for the mean",
    ),
    _m(
        "vlb_in_bits",
        "losses",
        "return kl.reshape(len(kl), -1).mean(dim=1)",
        "return kl.reshape(len(kl), -1).mean(dim=1) / 0.6931471805599453",
        "improved-DDPM reports the bound in bits per dim; the docstring asks for nats",
    ),
    _m(
        "vlb_model_clips",
        "losses",
        'out = p_mean_variance(model, schedule, x_t, t, clip_denoised=False, variance="fixed_small")',
        'out = p_mean_variance(model, schedule, x_t, t, variance="fixed_small")',
        "relied on p_mean_variance's defaults; clip_denoised defaults to True (only matters when x̂0 leaves [−1, 1])",
    ),
    _m(
        "vlb_flatten_breaks_1d_data",
        "losses",
        "return kl.reshape(len(kl), -1).mean(dim=1)",
        "return kl.flatten(1).mean(dim=1)",
        "flatten(1) is the usual per-sample mean; it fails for data of shape (B,)",
    ),
)

_EMBEDDING = (
    _m(
        "odd_dim_not_padded",
        "embedding",
        "    if dim % 2:\n        emb = torch.nn.functional.pad(emb, (0, 1))\n",
        "",
        "only ever used even widths; an odd dim returns dim − 1 columns",
    ),
    _m(
        "freqs_over_half_minus_one",
        "embedding",
        "torch.arange(half, dtype=torch.float32, device=t.device) / half)",
        "torch.arange(half, dtype=torch.float32, device=t.device) / (half - 1))",
        "tensor2tensor's variant divides by half − 1 so the last frequency is exactly 1/max_period",
    ),
    _m(
        "cos_before_sin",
        "embedding",
        "emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)",
        "emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)",
        "some codebases (e.g. diffusers' flip_sin_to_cos) put cos first",
    ),
    _m(
        "sin_cos_interleaved",
        "embedding",
        "emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)",
        "emb = torch.stack([torch.sin(args), torch.cos(args)], dim=2).flatten(1)",
        "the Transformer paper interleaves sin and cos (even/odd columns)",
    ),
    _m(
        "odd_dim_padded_on_the_left",
        "embedding",
        "emb = torch.nn.functional.pad(emb, (0, 1))",
        "emb = torch.nn.functional.pad(emb, (1, 0))",
        "F.pad's tuple order (left, right) read the wrong way round",
    ),
    _m(
        "float64_t_gives_float64",
        "embedding",
        "args = t.float()[:, None] * freqs[None, :]",
        "args = t[:, None] * freqs[None, :]",
        "long t times float32 freqs is float32 anyway; a float64 t makes the result float64",
    ),
    _m(
        "freqs_on_cpu",
        "embedding",
        "torch.arange(half, dtype=torch.float32, device=t.device) / half)",
        "torch.arange(half, dtype=torch.float32) / half)",
        "arange on the default device; breaks (or moves) when t lives elsewhere",
    ),
)

_DDPM = (
    _m(
        "clip_denoised_ignored",
        "ddpm",
        "    if clip_denoised:\n        pred_x0 = pred_x0.clamp(-1, 1)\n",
        "",
        "clamping 'does nothing for a good model'; only shows when x̂0 leaves [−1, 1]",
    ),
    _m(
        "always_clips",
        "ddpm",
        "    if clip_denoised:\n        pred_x0 = pred_x0.clamp(-1, 1)\n",
        "    pred_x0 = pred_x0.clamp(-1, 1)\n",
        "data lives in [−1, 1], so x̂0 is always clamped whatever clip_denoised says",
    ),
    _m(
        "fixed_large_keeps_small_log_variance",
        "ddpm",
        "var, log_var = extract(schedule.betas, t, x_t), extract(schedule.betas.log(), t, x_t)",
        "var, log_var = extract(schedule.betas, t, x_t), posterior_log_variance",
        "switched the variance to β_t but left the log-variance of the posterior",
    ),
    _m(
        "model_kwargs_dropped",
        "ddpm",
        "    eps = model(x_t, t, **model_kwargs)\n    pred_x0",
        "    eps = model(x_t, t)\n    pred_x0",
        "the denoiser's signature is (x_t, t); labels in **model_kwargs never reach it",
    ),
    _m(
        "mean_always_eq11",
        "ddpm",
        "    mean, posterior_variance, posterior_log_variance = q_posterior_mean_variance(schedule, pred_x0, x_t, t)\n",
        "    _, posterior_variance, posterior_log_variance = q_posterior_mean_variance(schedule, pred_x0, x_t, t)\n"
        "    mean = (x_t - extract(schedule.betas / (1 - schedule.alpha_bars).sqrt(), t, x_t) * eps) / extract(\n"
        "        schedule.alphas.sqrt(), t, x_t\n"
        "    )\n",
        "used eq. 11 for the mean (the docstring says they agree); it ignores the clamped x̂0",
    ),
    _m(
        "no_noise_unless_t_gt_1",
        "ddpm",
        "nonzero = expand_like((t != 0).to(x_t.dtype), x_t)",
        "nonzero = expand_like((t > 1).to(x_t.dtype), x_t)",
        "Algorithm 2's 'z ~ N(0, I) if t > 1' copied onto 0-based steps",
    ),
    _m(
        "t0_check_for_whole_batch",
        "ddpm",
        "    nonzero = expand_like((t != 0).to(x_t.dtype), x_t)\n"
        '    return out["mean"] + nonzero * out["variance"].sqrt() * noise\n',
        "    if bool((t == 0).any()):\n"
        '        return out["mean"]\n'
        '    return out["mean"] + out["variance"].sqrt() * noise\n',
        "in the sampling loop the whole batch shares t, so one check per batch 'is enough'",
    ),
    _m(
        "p_sample_drops_variance",
        "ddpm",
        "out = p_mean_variance(model, schedule, x_t, t, clip_denoised=clip_denoised, variance=variance, **model_kwargs)",
        "out = p_mean_variance(model, schedule, x_t, t, clip_denoised=clip_denoised, **model_kwargs)",
        "forwarded clip_denoised but forgot variance=, so fixed_large samples with β̃",
    ),
    _m(
        "p_sample_drops_clip_denoised",
        "ddpm",
        "out = p_mean_variance(model, schedule, x_t, t, clip_denoised=clip_denoised, variance=variance, **model_kwargs)",
        "out = p_mean_variance(model, schedule, x_t, t, variance=variance, **model_kwargs)",
        "forwarded variance= but not clip_denoised, so clip_denoised=False still clamps",
    ),
    _m(
        "p_sample_variance_not_sqrt",
        "ddpm",
        'return out["mean"] + nonzero * out["variance"].sqrt() * noise',
        'return out["mean"] + nonzero * out["variance"] * noise',
        "scaled the noise by the variance instead of the standard deviation",
    ),
    _m(
        "loop_step_noise_from_global_rng",
        "ddpm",
        "z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype)",
        "z = torch.randn(x.shape).to(device=device, dtype=x.dtype)",
        "passed the generator for the start noise only; per-step noise uses the global RNG",
    ),
    _m(
        "loop_start_from_global_rng",
        "ddpm",
        "x = torch.randn(tuple(shape), generator=generator) if noise is None else noise",
        "x = torch.randn(tuple(shape)) if noise is None else noise",
        "the generator was threaded into the loop's noise but not the start",
    ),
    _m(
        "loop_noise_reused_every_step",
        "ddpm",
        "    trajectory = [x]\n"
        '    for step in tqdm(range(schedule.T - 1, -1, -1), disable=not progress, desc="DDPM sampling"):\n'
        "        t = torch.full((x.shape[0],), step, dtype=torch.long, device=device)\n"
        "        z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype)\n",
        "    trajectory = [x]\n"
        "    z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype)\n"
        '    for step in tqdm(range(schedule.T - 1, -1, -1), disable=not progress, desc="DDPM sampling"):\n'
        "        t = torch.full((x.shape[0],), step, dtype=torch.long, device=device)\n",
        "hoisted the noise draw out of the loop 'for speed'; every step adds the same z",
    ),
    _m(
        "loop_skips_t0",
        "ddpm",
        "range(schedule.T - 1, -1, -1)",
        "range(schedule.T - 1, 0, -1)",
        "range(T − 1, 0, −1) 'goes down to 0'; the last (noise-free) step at t = 0 is never taken",
    ),
    _m(
        "loop_drops_variance_and_clip",
        "ddpm",
        "x = p_sample(model, schedule, x, t, z, clip_denoised=clip_denoised, variance=variance, **model_kwargs)",
        "x = p_sample(model, schedule, x, t, z, **model_kwargs)",
        "p_sample's defaults are the usual settings; the loop's clip_denoised= and variance= are ignored",
    ),
    _m(
        "loop_drops_model_kwargs",
        "ddpm",
        "x = p_sample(model, schedule, x, t, z, clip_denoised=clip_denoised, variance=variance, **model_kwargs)",
        "x = p_sample(model, schedule, x, t, z, clip_denoised=clip_denoised, variance=variance)",
        "class labels y= passed to the loop never reach the model",
    ),
    _m(
        "loop_ignores_given_noise",
        "ddpm",
        "x = torch.randn(tuple(shape), generator=generator) if noise is None else noise",
        "x = torch.randn(tuple(shape), generator=generator)",
        "added noise= to the signature late and never used it",
    ),
    _m(
        "trajectory_missing_start",
        "ddpm",
        "trajectory = [x]",
        "trajectory = []",
        "recorded the states after each step only: T states instead of T + 1",
    ),
    _m(
        "trajectory_recorded_before_the_step",
        "ddpm",
        "        x = p_sample(model, schedule, x, t, z, clip_denoised=clip_denoised, variance=variance, **model_kwargs)\n"
        "        if return_trajectory:\n"
        "            trajectory.append(x)\n",
        "        if return_trajectory:\n"
        "            trajectory.append(x)\n"
        "        x = p_sample(model, schedule, x, t, z, clip_denoised=clip_denoised, variance=variance, **model_kwargs)\n",
        "appended x_t at the top of the loop: T + 1 states, the start twice and the final sample missing",
    ),
    _m(
        "loop_noise_drawn_on_device",
        "ddpm",
        "z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype)",
        "z = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)",
        "drew the noise directly on the target device (faster on a GPU); one seed no longer gives the same samples everywhere",
    ),
)

_DDIM = (
    _m(
        "alpha_bar_at_wraps_minus_one",
        "ddim",
        "    padded = torch.cat([torch.ones(1, dtype=torch.float64), schedule.alpha_bars])\n"
        "    return padded.to(t.device)[t + 1]\n",
        "    return schedule.alpha_bars.to(t.device)[t]\n",
        "indexed ᾱ directly; t = −1 silently wraps to ᾱ_{T−1} instead of 1",
    ),
    _m(
        "uniform_arange_stride",
        "ddim",
        "steps = np.arange(num_steps) * (T // num_steps)",
        "steps = np.arange(0, T, T // num_steps)",
        "arange with the stride; for uneven (T, num_steps) it yields more than num_steps steps",
    ),
    _m(
        "uniform_float_stride",
        "ddim",
        "steps = np.arange(num_steps) * (T // num_steps)",
        "steps = (np.arange(num_steps) * (T / num_steps)).astype(np.int64)",
        "a float stride T/num_steps 'spreads the steps better'; differs from k·(T // num_steps) when uneven",
    ),
    _m(
        "linspace_truncates",
        "ddim",
        "steps = np.linspace(0, T - 1, num_steps).round()",
        "steps = np.linspace(0, T - 1, num_steps)",
        "forgot the round; astype(int64) truncates towards zero",
    ),
    _m(
        "linspace_by_hand_divides_by_zero",
        "ddim",
        "steps = np.linspace(0, T - 1, num_steps).round()",
        "steps = (np.arange(num_steps) * (T - 1) / (num_steps - 1)).round()",
        "linspace written out as k·(T − 1)/(num_steps − 1); num_steps = 1 divides 0 by 0",
    ),
    _m(
        "trailing_integer_stride",
        "ddim",
        "steps = np.round(np.arange(T, 0, -T / num_steps))[:num_steps] - 1",
        "steps = T - 1 - np.arange(num_steps) * (T // num_steps)",
        "trailing = uniform counted from the top with an integer stride; wrong when T is not a multiple of num_steps",
    ),
    _m(
        "no_num_steps_check",
        "ddim",
        "    if not 1 <= num_steps <= T:\n"
        '        raise ValueError(f"num_steps must be in 1..T={T}, got {num_steps}")\n',
        "",
        "never thought of num_steps > T; the promised ValueError is missing",
    ),
    _m(
        "num_steps_check_upper_only",
        "ddim",
        "if not 1 <= num_steps <= T:",
        "if num_steps > T:",
        "checked only the upper bound; num_steps = 0 returns an empty subsequence",
    ),
    _m(
        "trailing_not_sorted",
        "ddim",
        "return torch.from_numpy(np.sort(steps).astype(np.int64))",
        "return torch.from_numpy(steps.astype(np.int64))",
        "uniform and linspace come out ascending anyway; trailing is built descending and stays so",
    ),
    _m(
        "sigma_without_eta",
        "ddim",
        "return eta * ((1 - alpha_bar_prev) / (1 - alpha_bar)).sqrt() * (1 - alpha_bar / alpha_bar_prev).sqrt()",
        "return ((1 - alpha_bar_prev) / (1 - alpha_bar)).sqrt() * (1 - alpha_bar / alpha_bar_prev).sqrt()",
        "wrote eq. 16's square roots and forgot the η in front",
    ),
    _m(
        "sigma_is_variance",
        "ddim",
        "return eta * ((1 - alpha_bar_prev) / (1 - alpha_bar)).sqrt() * (1 - alpha_bar / alpha_bar_prev).sqrt()",
        "return eta * ((1 - alpha_bar_prev) / (1 - alpha_bar)) * (1 - alpha_bar / alpha_bar_prev)",
        "returned σ² (the variance of eq. 16) instead of σ",
    ),
    _m(
        "step_no_raise_without_noise",
        "ddim",
        "    if eta != 0 and noise is None:\n"
        '        raise ValueError("ddim_step with eta != 0 needs noise=; pass a standard normal tensor shaped like x_t")\n',
        "",
        "noise=None 'just means no noise'; η > 0 silently becomes deterministic instead of the promised ValueError",
    ),
    _m(
        "step_clip_keeps_model_eps",
        "ddim",
        "        eps = predict_eps_from_x0(schedule, x_t, t, pred_x0)\n",
        "",
        "clamped x̂0 but kept the model's eps for the direction term (matters only when x̂0 leaves [−1, 1])",
    ),
    _m(
        "step_drops_model_kwargs",
        "ddim",
        "eps = model(x_t, t, **model_kwargs)",
        "eps = model(x_t, t)",
        "eq. 12's ε_θ(x_t, t) has no labels; y= is lost",
    ),
    _m(
        "step_direction_ignores_sigma",
        "ddim",
        "direction = (1 - alpha_bar_prev - sigma**2).clamp(min=0).sqrt()",
        "direction = (1 - alpha_bar_prev).sqrt()",
        "the 'direction pointing to x_t' written as for η = 0; wrong as soon as η > 0",
    ),
    _m(
        "loop_drops_eta",
        "ddim",
        "x = ddim_step(model, schedule, x, t, t_prev, eta=eta, noise=z, clip_denoised=clip_denoised, **model_kwargs)",
        "x = ddim_step(model, schedule, x, t, t_prev, noise=z, clip_denoised=clip_denoised, **model_kwargs)",
        "drew noise when η > 0 and passed it, but ddim_step's eta defaults to 0: deterministic whatever η is",
    ),
    _m(
        "loop_last_step_to_zero",
        "ddim",
        "timesteps[k - 1] if k > 0 else -1",
        "timesteps[k - 1] if k > 0 else 0",
        "'the last step goes to timestep 0' on 0-based steps; the result is x at t = 0, not x̂0",
    ),
    _m(
        "loop_step_noise_from_global_rng",
        "ddim",
        "z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype) if eta > 0 else None",
        "z = torch.randn(x.shape).to(device=device, dtype=x.dtype) if eta > 0 else None",
        "the generator is used for the start noise only; η > 0 noise comes from the global RNG",
    ),
    _m(
        "loop_drops_clip_denoised",
        "ddim",
        "x = ddim_step(model, schedule, x, t, t_prev, eta=eta, noise=z, clip_denoised=clip_denoised, **model_kwargs)",
        "x = ddim_step(model, schedule, x, t, t_prev, eta=eta, noise=z, **model_kwargs)",
        "clip_denoised= accepted by the loop but not forwarded",
    ),
    _m(
        "loop_drops_model_kwargs",
        "ddim",
        "x = ddim_step(model, schedule, x, t, t_prev, eta=eta, noise=z, clip_denoised=clip_denoised, **model_kwargs)",
        "x = ddim_step(model, schedule, x, t, t_prev, eta=eta, noise=z, clip_denoised=clip_denoised)",
        "labels y= given to the loop never reach the model",
    ),
    _m(
        "loop_drops_spacing",
        "ddim",
        '    device = torch.device("cpu") if device is None else torch.device(device)\n'
        "    timesteps = ddim_timesteps(schedule.T, num_steps, spacing).tolist()\n",
        '    device = torch.device("cpu") if device is None else torch.device(device)\n'
        "    timesteps = ddim_timesteps(schedule.T, num_steps).tolist()\n",
        "ddim_timesteps' default spacing is 'uniform'; spacing= is never forwarded",
    ),
    _m(
        "loop_noise_reused_every_step",
        "ddim",
        "    batch = x.shape[0]\n"
        '    for k in tqdm(range(num_steps - 1, -1, -1), disable=not progress, desc="DDIM sampling"):\n'
        "        t = torch.full((batch,), timesteps[k], dtype=torch.long, device=device)\n"
        "        t_prev = torch.full((batch,), timesteps[k - 1] if k > 0 else -1, dtype=torch.long, device=device)\n"
        "        z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype) if eta > 0 else None\n",
        "    batch = x.shape[0]\n"
        "    z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype) if eta > 0 else None\n"
        '    for k in tqdm(range(num_steps - 1, -1, -1), disable=not progress, desc="DDIM sampling"):\n'
        "        t = torch.full((batch,), timesteps[k], dtype=torch.long, device=device)\n"
        "        t_prev = torch.full((batch,), timesteps[k - 1] if k > 0 else -1, dtype=torch.long, device=device)\n",
        "drew the η noise once before the loop; every step adds the same z",
    ),
    _m(
        "loop_ignores_given_noise",
        "ddim",
        "x = torch.randn(tuple(shape), generator=generator) if noise is None else noise",
        "x = torch.randn(tuple(shape), generator=generator)",
        "noise= (e.g. from ddim_invert) is accepted but the start is always drawn",
    ),
    _m(
        "invert_eps_at_lower_level",
        "ddim",
        "eps = model(x, t, **model_kwargs)",
        "eps = model(x, level.clamp(min=0), **model_kwargs)",
        "evaluated eps at the level the step starts from (as in sampling), not the level it goes to",
    ),
    _m(
        "invert_starts_at_first_timestep",
        "ddim",
        "    level = torch.full((batch,), -1, dtype=torch.long, device=x0.device)\n    for step in timesteps:\n",
        "    level = torch.full((batch,), timesteps[0], dtype=torch.long, device=x0.device)\n"
        "    for step in timesteps[1:]:\n",
        "treated x0 as the state at τ_0 (as the sampler's subsequence suggests): one step too few",
    ),
    _m(
        "invert_drops_model_kwargs",
        "ddim",
        "eps = model(x, t, **model_kwargs)",
        "eps = model(x, t)",
        "accepted **model_kwargs in the signature but never passed them on",
    ),
    _m(
        "invert_drops_spacing",
        "ddim",
        "    timesteps = ddim_timesteps(schedule.T, num_steps, spacing).tolist()\n    x = x0\n",
        "    timesteps = ddim_timesteps(schedule.T, num_steps).tolist()\n    x = x0\n",
        "the inversion walks the default ('uniform') subsequence whatever spacing= says",
    ),
)

_GUIDANCE = (
    _m(
        "drop_labels_global_rng",
        "guidance",
        "drop = (torch.rand(y.shape, generator=generator) < p_uncond).to(y.device)",
        "drop = (torch.rand(y.shape) < p_uncond).to(y.device)",
        "generator= in the signature but torch.rand called without it",
    ),
    _m(
        "drop_labels_exact_fraction",
        "guidance",
        "    drop = (torch.rand(y.shape, generator=generator) < p_uncond).to(y.device)\n",
        "    perm = torch.randperm(y.numel(), generator=generator)\n"
        "    drop = torch.zeros(y.numel(), dtype=torch.bool)\n"
        "    drop[perm[: round(p_uncond * y.numel())]] = True\n"
        "    drop = drop.reshape(y.shape).to(y.device)\n",
        "dropped exactly round(p·B) random labels 'to hit the rate exactly'; not independent per label",
    ),
    _m(
        "drop_labels_in_place",
        "guidance",
        "    drop = (torch.rand(y.shape, generator=generator) < p_uncond).to(y.device)\n"
        "    return torch.where(drop, torch.full_like(y, num_classes), y)\n",
        "    drop = (torch.rand(y.shape, generator=generator) < p_uncond).to(y.device)\n"
        "    y[drop] = num_classes\n"
        "    return y\n",
        "masked assignment is the natural way; it overwrites the caller's labels",
    ),
    _m(
        "drop_labels_keeps_with_p",
        "guidance",
        "drop = (torch.rand(y.shape, generator=generator) < p_uncond).to(y.device)",
        "drop = (torch.rand(y.shape, generator=generator) > p_uncond).to(y.device)",
        "comparison the wrong way round: drops with probability 1 − p (right only at p = ½)",
    ),
    _m(
        "drop_labels_one_coin",
        "guidance",
        "drop = (torch.rand(y.shape, generator=generator) < p_uncond).to(y.device)",
        "drop = (torch.rand(1, generator=generator) < p_uncond).to(y.device)",
        "one coin per batch (torch.where broadcasts it): the rate is right, the labels are perfectly correlated",
    ),
    _m(
        "drop_labels_null_is_last_class",
        "guidance",
        "return torch.where(drop, torch.full_like(y, num_classes), y)",
        "return torch.where(drop, torch.full_like(y, num_classes - 1), y)",
        "labels are 0..num_classes−1, so 'the last label' num_classes − 1 was taken as the null label",
    ),
    _m(
        "cfg_w_as_s",
        "guidance",
        "return eps_uncond + guidance_scale * (eps_cond - eps_uncond)",
        "return eps_cond + guidance_scale * (eps_cond - eps_uncond)",
        "used Ho & Salimans' (1 + w)·eps_c − w·eps_u with w = guidance_scale; s = 1 is no longer the conditional model",
    ),
    _m(
        "cfg_two_model_calls",
        "guidance",
        "    eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), y=torch.cat([y, null]))  # (2B, ...)\n"
        "    eps_cond, eps_uncond = eps.chunk(2)\n",
        "    eps_cond = model(x_t, t, y=y)\n    eps_uncond = model(x_t, t, y=null)\n",
        "two calls are clearer; the docstring asks for one batched call of size 2B",
    ),
    _m(
        "cfg_halves_swapped",
        "guidance",
        "eps_cond, eps_uncond = eps.chunk(2)",
        "eps_uncond, eps_cond = eps.chunk(2)",
        "the unconditional half unpacked first although the labels were concatenated y then null",
    ),
    _m(
        "cfg_t_not_doubled",
        "guidance",
        "eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), y=torch.cat([y, null]))",
        "eps = model(torch.cat([x_t, x_t]), t, y=torch.cat([y, null]))",
        "doubled x_t and y but not t 'since t is the same for both halves'",
    ),
    _m(
        "cfg_null_label_zero",
        "guidance",
        "null = torch.full_like(y, num_classes)",
        "null = torch.zeros_like(y)",
        "took label 0 as 'no class'",
    ),
    _m(
        "cfg_labels_positional",
        "guidance",
        "eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), y=torch.cat([y, null]))",
        "eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([y, null]))",
        "the UNet's forward is (x, t, y), so the labels went positionally; the contract passes them as y=",
    ),
    _m(
        "guided_mean_uses_std",
        "guidance",
        "return mean + scale * variance * grad_log_prob",
        "return mean + scale * variance.sqrt() * grad_log_prob",
        "Algorithm 1's Σ read as the standard deviation",
    ),
    _m(
        "guided_mean_descends",
        "guidance",
        "return mean + scale * variance * grad_log_prob",
        "return mean - scale * variance * grad_log_prob",
        "carried the minus sign of Algorithm 2 over to Algorithm 1",
    ),
    _m(
        "guided_eps_uses_sqrt_alpha_bar",
        "guidance",
        "return eps - scale * extract((1 - schedule.alpha_bars).sqrt(), t, eps) * grad_log_prob",
        "return eps - scale * extract(schedule.alpha_bars.sqrt(), t, eps) * grad_log_prob",
        "√ᾱ_t and √(1 − ᾱ_t) confused",
    ),
    _m(
        "guided_eps_plus",
        "guidance",
        "return eps - scale * extract((1 - schedule.alpha_bars).sqrt(), t, eps) * grad_log_prob",
        "return eps + scale * extract((1 - schedule.alpha_bars).sqrt(), t, eps) * grad_log_prob",
        "'guidance adds the gradient' as in Algorithm 1; eps moves against the score",
    ),
    _m(
        "guided_eps_float64_on_float32",
        "guidance",
        "return eps - scale * extract((1 - schedule.alpha_bars).sqrt(), t, eps) * grad_log_prob",
        "coef = (1 - schedule.alpha_bars).sqrt()[t].reshape(-1, *([1] * (eps.dim() - 1)))\n"
        "    return eps - scale * coef * grad_log_prob",
        "own broadcasting instead of extract: float32 eps comes back float64",
    ),
)

_VAE = (
    _m(
        "reparameterize_uses_variance",
        "vae",
        "return mu + torch.exp(0.5 * logvar) * noise",
        "return mu + torch.exp(logvar) * noise",
        "exp(logvar) is the variance, used where the standard deviation belongs",
    ),
    _m(
        "reparameterize_detaches_sigma",
        "vae",
        "return mu + torch.exp(0.5 * logvar) * noise",
        "return mu + torch.exp(0.5 * logvar).detach() * noise",
        "detached σ 'so the noise path does not backpropagate'; logvar gets no gradient",
    ),
    _m(
        "kl_mean_over_dims",
        "vae",
        "return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).flatten(1).sum(dim=1)",
        "return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).flatten(1).mean(dim=1)",
        "averaged over the latent dimensions like a loss instead of summing the per-dimension KLs",
    ),
    _m(
        "kl_no_half",
        "vae",
        "return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).flatten(1).sum(dim=1)",
        "return (mu**2 + logvar.exp() - 1 - logvar).flatten(1).sum(dim=1)",
        "dropped the ½ (still 0 at the prior, still positive away from it)",
    ),
    _m(
        "kl_logvar_sign",
        "vae",
        "return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).flatten(1).sum(dim=1)",
        "return 0.5 * (mu**2 + logvar.exp() - 1 + logvar).flatten(1).sum(dim=1)",
        "sign slip copying −½ Σ(1 + logvar − mu² − e^logvar)",
    ),
    _m(
        "recon_mean_over_elements",
        "vae",
        "recon = ((x_recon - x) ** 2).flatten(1).sum(dim=1).mean()",
        "recon = torch.nn.functional.mse_loss(x_recon, x)",
        "F.mse_loss is the usual reconstruction loss; it averages over pixels too",
    ),
    _m(
        "recon_summed_over_batch",
        "vae",
        "recon = ((x_recon - x) ** 2).flatten(1).sum(dim=1).mean()",
        "recon = ((x_recon - x) ** 2).sum()",
        "the sum of squared errors over everything, not averaged over the batch",
    ),
    _m(
        "kl_summed_over_batch",
        "vae",
        "kl = gaussian_kl(mu, logvar).mean()",
        "kl = gaussian_kl(mu, logvar).sum()",
        "summed the per-sample KLs over the batch, inconsistent with the batch-mean reconstruction",
    ),
    _m(
        "reported_kl_is_weighted",
        "vae",
        "    kl = gaussian_kl(mu, logvar).mean()\n"
        '    return {"loss": recon + kl_weight * kl, "recon": recon, "kl": kl}\n',
        "    kl = kl_weight * gaussian_kl(mu, logvar).mean()\n"
        '    return {"loss": recon + kl, "recon": recon, "kl": kl}\n',
        "weighted the KL once up front; the reported kl is then the weighted one",
    ),
    _m(
        "encode_halves_swapped",
        "vae",
        "mu, logvar = self.encoder(x).chunk(2, dim=1)",
        "logvar, mu = self.encoder(x).chunk(2, dim=1)",
        "unpacked the halves in the wrong order",
    ),
    _m(
        "decode_clamps_instead_of_tanh",
        "vae",
        "return torch.tanh(self.decoder(z))",
        "return self.decoder(z).clamp(-1, 1)",
        "'squash into [−1, 1]' done with a clamp",
    ),
    _m(
        "forward_decodes_mu",
        "vae",
        "return self.decode(reparameterize(mu, logvar, noise)), mu, logvar",
        "return self.decode(mu), mu, logvar",
        "decoded the mean (as latent diffusion's encode does) instead of a reparameterised sample",
    ),
    _m(
        "forward_ignores_given_noise",
        "vae",
        "        if noise is None:\n            noise = torch.randn_like(mu)\n",
        "        noise = torch.randn_like(mu)\n",
        "always drew fresh noise; the noise= argument is ignored",
    ),
)

_LATENT = (
    _m(
        "scale_factor_rms",
        "latent",
        "return 1.0 / latents.double().std().item()",
        "return 1.0 / latents.double().pow(2).mean().sqrt().item()",
        "'unit variance' taken as unit second moment: wrong when the latents have a nonzero mean",
    ),
    _m(
        "scale_factor_tensor",
        "latent",
        "return 1.0 / latents.double().std().item()",
        "return 1.0 / latents.std()",
        "returned a 0-d tensor (computed in the latents' dtype), not a Python float",
    ),
    _m(
        "scale_factor_per_channel",
        "latent",
        "return 1.0 / latents.double().std().item()",
        "return 1.0 / latents.double().std(dim=tuple(d for d in range(latents.dim()) if d != 1)).mean().item()",
        "averaged per-channel standard deviations; the docstring asks for the std of the whole set",
    ),
    _m(
        "scale_factor_one_over_variance",
        "latent",
        "return 1.0 / latents.double().std().item()",
        "return 1.0 / latents.double().var().item()",
        "divided by the variance 'to get unit variance'",
    ),
    _m(
        "encode_samples_posterior",
        "latent",
        "        mu, _ = self.vae.encode(x)\n        return self.scale_factor * mu\n",
        "        mu, logvar = self.vae.encode(x)\n"
        "        return self.scale_factor * (mu + torch.exp(0.5 * logvar) * torch.randn_like(mu))\n",
        "encoded with a reparameterised sample as the VAE's forward does, instead of the mean",
    ),
    _m(
        "encode_divides_by_factor",
        "latent",
        "return self.scale_factor * mu",
        "return mu / self.scale_factor",
        "scale factor applied on the wrong side: 'normalise' by dividing",
    ),
    _m(
        "decode_multiplies_by_factor",
        "latent",
        "return self.vae.decode(z / self.scale_factor)",
        "return self.vae.decode(z * self.scale_factor)",
        "applied the scale factor again on decoding instead of undoing it",
    ),
    _m(
        "decode_forgets_unscale",
        "latent",
        "return self.vae.decode(z / self.scale_factor)",
        "return self.vae.decode(z)",
        "decoded the scaled latents directly",
    ),
    _m(
        "ddim_branch_drops_num_steps",
        "latent",
        "                num_steps=num_steps,\n",
        "",
        "num_steps= not forwarded in the DDIM branch: always 50 steps",
    ),
    _m(
        "ddpm_branch_clips",
        "latent",
        "                clip_denoised=False,\n",
        "",
        "p_sample_loop's default clip_denoised=True clamps x̂0 of latents to [−1, 1]",
    ),
    _m(
        "ddim_branch_clips",
        "latent",
        "                num_steps=num_steps,\n",
        "                num_steps=num_steps,\n                clip_denoised=True,\n",
        "clipped x̂0 in the DDIM branch 'like for images'; latents are not confined to [−1, 1]",
    ),
    _m(
        "ddpm_branch_drops_generator",
        "latent",
        "                generator=generator,\n                device=self.device,\n                clip_denoised=False,\n",
        "                device=self.device,\n                clip_denoised=False,\n",
        "generator= forwarded in the DDIM branch only: DDPM samples come from the global RNG",
    ),
    _m(
        "ddim_branch_drops_generator",
        "latent",
        "                num_steps=num_steps,\n                generator=generator,\n",
        "                num_steps=num_steps,\n",
        "generator= forwarded in the DDPM branch only: DDIM samples come from the global RNG",
    ),
    _m(
        "no_raise_guidance_without_labels",
        "latent",
        "        if y is None and guidance_scale != 1.0:\n"
        '            raise ValueError(f"guidance_scale={guidance_scale} needs labels y=; without y samples are unconditional")\n',
        "",
        "guidance without labels 'just does nothing'; the promised ValueError is missing",
    ),
    _m(
        "no_raise_labels_without_num_classes",
        "latent",
        "            if self.num_classes is None:\n"
        '                raise ValueError("y= needs a class-conditional model: build LatentDiffusion with num_classes=K")\n',
        "",
        "did not check num_classes before guiding; the error is not the promised ValueError",
    ),
    _m(
        "no_raise_label_shape",
        "latent",
        "            if tuple(y.shape) != (n,):\n"
        '                raise ValueError(f"y must hold one label per image, shape ({n},); got {tuple(y.shape)}")\n',
        "",
        "assumed y has one label per image; a wrong shape is not rejected with ValueError",
    ),
    _m(
        "unknown_sampler_runs_ddpm",
        "latent",
        'elif sampler == "ddpm":',
        'elif sampler != "ddim":',
        "'anything but ddim is ddpm': an unknown sampler name runs DDPM instead of raising",
    ),
    _m(
        "start_noise_scaled_down",
        "latent",
        "                shape,\n                num_steps=num_steps,\n",
        "                shape,\n"
        "                noise=torch.randn(shape, generator=generator).to(self.device) / self.scale_factor,\n"
        "                num_steps=num_steps,\n",
        "'the latents are scaled, so the starting noise must be too': DDIM starts from N(0, 1/f²)",
    ),
)

MISTAKES: tuple[Mistake, ...] = (
    _SCHEDULES + _FORWARD + _POSTERIOR + _LOSSES + _EMBEDDING + _DDPM + _DDIM + _GUIDANCE + _VAE + _LATENT
)

# ======================================================================================== alternatives

ALTERNATIVES: tuple[Alternative, ...] = (
    # ---------------------------------------------------------------------------------------- schedules
    _a(
        "snr_via_reciprocal",
        "schedules",
        (("return alpha_bar / (1 - alpha_bar)", "return 1 / (1 - alpha_bar) - 1"),),
        "SNR = ᾱ/(1 − ᾱ) = 1/(1 − ᾱ) − 1",
    ),
    _a(
        "linear_betas_by_arange",
        "schedules",
        (
            (
                "return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)",
                "step = (beta_end - beta_start) / max(T - 1, 1)\n"
                "    return beta_start + step * torch.arange(T, dtype=torch.float64)",
            ),
        ),
        "start + k·step by hand, with T = 1 guarded",
    ),
    _a(
        "cosine_betas_python_loop",
        "schedules",
        (
            (
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
        "the formula with Python floats in a loop (double precision throughout)",
    ),
    _a(
        "make_schedule_log_cumsum_and_pad",
        "schedules",
        (
            (
                "    alpha_bars = torch.cumprod(alphas, dim=0)\n"
                "    alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])\n",
                "    alpha_bars = torch.exp(torch.cumsum(torch.log(alphas), dim=0))\n"
                "    alpha_bars_prev = torch.nn.functional.pad(alpha_bars[:-1], (1, 0), value=1.0)\n",
            ),
        ),
        "cumulative product as exp of a cumulative log-sum; the shift by F.pad with value 1",
    ),
    # ------------------------------------------------------------------------------------------ forward
    _a(
        "q_sample_via_q_mean_variance",
        "forward",
        (
            (
                "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars).sqrt(), t, x0) * noise",
                "mean, variance = q_mean_variance(schedule, x0, t)\n    return mean + variance.sqrt() * noise",
            ),
        ),
        "reparameterised sample of q(x_t | x0): mean + std · noise",
    ),
    _a(
        "q_sample_float64_inside",
        "forward",
        (
            (
                "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 + extract((1 - schedule.alpha_bars).sqrt(), t, x0) * noise",
                "x0_64, noise_64 = x0.double(), noise.double()\n"
                "    out = extract(schedule.alpha_bars.sqrt(), t, x0_64) * x0_64 + extract((1 - schedule.alpha_bars).sqrt(), t, x0_64) * noise_64\n"
                "    return out.to(x0.dtype)",
            ),
        ),
        "computed in float64 and cast back to the data's dtype",
    ),
    _a(
        "q_step_sqrt_one_minus_alpha",
        "forward",
        (
            (
                "extract(schedule.betas.sqrt(), t, x_prev) * noise",
                "extract((1 - schedule.alphas).sqrt(), t, x_prev) * noise",
            ),
        ),
        "√β_t written as √(1 − α_t)",
    ),
    # ---------------------------------------------------------------------------------------- posterior
    _a(
        "posterior_mean_via_eps",
        "posterior",
        (
            (
                "mean = extract(coef_x0, t, x_t) * x0 + extract(coef_xt, t, x_t) * x_t",
                "eps = (x_t - extract(alpha_bars.sqrt(), t, x_t) * x0) / extract((1 - alpha_bars).sqrt(), t, x_t)\n"
                "    mean = (x_t - extract(betas / (1 - alpha_bars).sqrt(), t, x_t) * eps) / extract(schedule.alphas.sqrt(), t, x_t)",
            ),
        ),
        "μ̃ written through the implied noise, eq. 11's form: (x_t − β_t/√(1 − ᾱ_t) · eps)/√α_t",
    ),
    _a(
        "log_variance_clipped_with_where",
        "posterior",
        (
            (
                "    first = posterior_variance[1:2] if schedule.T > 1 else betas[:1]\n"
                "    log_variance_clipped = torch.log(torch.cat([first, posterior_variance[1:]]))\n",
                "    fallback = posterior_variance[1] if schedule.T > 1 else betas[0]\n"
                "    is_first = torch.arange(schedule.T) == 0\n"
                "    log_variance_clipped = torch.where(is_first, fallback, posterior_variance).log()\n",
            ),
        ),
        "replace index 0 with torch.where before the log",
    ),
    _a(
        "predict_x0_reciprocal_form",
        "posterior",
        (
            (
                "return (x_t - extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * eps) / extract(schedule.alpha_bars.sqrt(), t, x_t)",
                "return extract((1 / schedule.alpha_bars).sqrt(), t, x_t) * x_t - extract((1 / schedule.alpha_bars - 1).sqrt(), t, x_t) * eps",
            ),
        ),
        "the original DDPM code's sqrt_recip_alphas_cumprod · x_t − sqrt_recipm1_alphas_cumprod · eps",
    ),
    _a(
        "predict_x0_from_v_via_predict_v_algebra",
        "posterior",
        (
            (
                "return extract(schedule.alpha_bars.sqrt(), t, x_t) * x_t - extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * v",
                "a = extract(schedule.alpha_bars.sqrt(), t, x_t)\n"
                "    b = extract((1 - schedule.alpha_bars).sqrt(), t, x_t)\n"
                "    return torch.addcmul(a * x_t, b, v, value=-1)",
            ),
        ),
        "same formula with named coefficients and addcmul",
    ),
    # ------------------------------------------------------------------------------------------- losses
    _a(
        "noise_drawn_before_t",
        "losses",
        (
            (
                "    if t is None:\n"
                "        t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)\n"
                "    if noise is None:\n"
                "        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)\n",
                "    if noise is None:\n"
                "        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)\n"
                "    if t is None:\n"
                "        t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)\n",
            ),
        ),
        "draws the noise first, then t, from the same generator (another order of draws)",
    ),
    _a(
        "t_by_scaled_uniform_noise_float32_mse_loss",
        "losses",
        (
            (
                "t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)",
                "u = torch.rand(x0.shape[0], generator=generator, dtype=torch.float64)\n"
                "        t = (u * schedule.T).long().clamp(max=schedule.T - 1).to(x0.device)",
            ),
            (
                "noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)",
                "noise = torch.randn(x0.shape, generator=generator).to(device=x0.device, dtype=x0.dtype)",
            ),
            (
                "return ((noise - model(x_t, t, **model_kwargs)) ** 2).mean()",
                "return torch.nn.functional.mse_loss(model(x_t, t, **model_kwargs), noise)",
            ),
        ),
        "t = ⌊T·U⌋ from the generator, noise drawn in float32 then cast, loss via F.mse_loss: same law, same value",
    ),
    _a(
        "normal_kl_variance_form",
        "losses",
        (
            (
                "return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)",
                "var2 = torch.exp(logvar2)\n"
                "    return 0.5 * (logvar2 - logvar1) + (torch.exp(logvar1) + (mean1 - mean2) ** 2) / (2 * var2) - 0.5",
            ),
        ),
        "log(σ2/σ1) + (σ1² + (μ1 − μ2)²)/(2σ2²) − ½",
    ),
    _a(
        "vlb_per_sample_loop",
        "losses",
        (
            (
                "return kl.reshape(len(kl), -1).mean(dim=1)",
                "return torch.stack([k.mean() for k in kl])",
            ),
            ("if bool((t == 0).any()):", "if (t == 0).sum().item() > 0:"),
        ),
        "per-sample means in a loop (works for (B,) data as well); the t == 0 test written as a count",
    ),
    # ---------------------------------------------------------------------------------------- embedding
    _a(
        "freqs_by_pow",
        "embedding",
        (
            (
                "freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)",
                "freqs = max_period ** (-torch.arange(half, dtype=torch.float32, device=t.device) / half)",
            ),
        ),
        "max_period^(−i/half) instead of exp(−ln(max_period) · i/half)",
    ),
    _a(
        "float64_inside_outer_and_cat_padding",
        "embedding",
        (
            (
                "    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)\n"
                "    args = t.float()[:, None] * freqs[None, :]  # (B, half)\n"
                "    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)\n"
                "    if dim % 2:\n"
                "        emb = torch.nn.functional.pad(emb, (0, 1))\n"
                "    return emb\n",
                "    i = torch.arange(half, dtype=torch.float64, device=t.device)\n"
                "    freqs = torch.exp(-math.log(max_period) * i / half)\n"
                "    args = torch.outer(t.to(torch.float64), freqs)\n"
                "    parts = [torch.sin(args), torch.cos(args)]\n"
                "    if dim % 2:\n"
                "        parts.append(torch.zeros(t.shape[0], 1, dtype=torch.float64, device=t.device))\n"
                "    return torch.cat(parts, dim=1).to(torch.float32)\n",
            ),
        ),
        "float64 inside then cast to float32, torch.outer, the odd column appended as zeros",
    ),
    # --------------------------------------------------------------------------------------------- ddpm
    _a(
        "p_sample_std_from_log_variance_and_where",
        "ddpm",
        (
            (
                "    nonzero = expand_like((t != 0).to(x_t.dtype), x_t)\n"
                '    return out["mean"] + nonzero * out["variance"].sqrt() * noise\n',
                "    last = expand_like((t == 0).to(x_t.dtype), x_t).bool()\n"
                '    noisy = out["mean"] + torch.exp(0.5 * out["log_variance"]) * noise\n'
                '    return torch.where(last, out["mean"], noisy)\n',
            ),
        ),
        "the std as exp(½ log-variance) (the clipped log differs only at t = 0, where no noise is added); mask by torch.where",
    ),
    _a(
        "p_mean_variance_eq11_when_not_clipping",
        "ddpm",
        (
            (
                "    mean, posterior_variance, posterior_log_variance = q_posterior_mean_variance(schedule, pred_x0, x_t, t)\n",
                "    mean, posterior_variance, posterior_log_variance = q_posterior_mean_variance(schedule, pred_x0, x_t, t)\n"
                "    if not clip_denoised:\n"
                "        mean = (x_t - extract(schedule.betas / (1 - schedule.alpha_bars).sqrt(), t, x_t) * eps) / extract(\n"
                "            schedule.alphas.sqrt(), t, x_t\n"
                "        )\n",
            ),
            (
                "var, log_var = extract(schedule.betas, t, x_t), extract(schedule.betas.log(), t, x_t)",
                "var = extract(schedule.betas, t, x_t)\n        log_var = var.log()",
            ),
        ),
        "eq. 11 for the mean when x̂0 is not clamped (the docstring says they agree); fixed-large log as log of the variance",
    ),
    _a(
        "loop_no_noise_drawn_for_t0",
        "ddpm",
        (
            (
                "z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype)",
                "z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype) if step > 0 else torch.zeros_like(x)",
            ),
        ),
        "no noise is drawn for the last step, where none is added (one draw fewer)",
    ),
    _a(
        "loop_all_noise_up_front",
        "ddpm",
        (
            (
                "    x = torch.randn(tuple(shape), generator=generator) if noise is None else noise\n"
                "    x = x.to(device)\n",
                "    step_noise = torch.randn((schedule.T, *tuple(shape)), generator=generator)\n"
                "    x = torch.randn(tuple(shape), generator=generator) if noise is None else noise\n"
                "    x = x.to(device)\n",
            ),
            (
                "z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype)",
                "z = step_noise[step].to(device=device, dtype=x.dtype)",
            ),
        ),
        "every step's noise drawn first in one tensor, the start after it (another order of draws)",
    ),
    _a(
        "loop_over_reversed_range_with_list",
        "ddpm",
        (
            (
                '    for step in tqdm(range(schedule.T - 1, -1, -1), disable=not progress, desc="DDPM sampling"):\n',
                "    steps = list(reversed(range(schedule.T)))\n"
                '    for step in tqdm(steps, disable=not progress, desc="DDPM sampling"):\n',
            ),
            (
                "        if return_trajectory:\n            trajectory.append(x)\n",
                "        trajectory.append(x)\n",
            ),
        ),
        "reversed(range(T)), and the trajectory always recorded (returned only when asked)",
    ),
    # --------------------------------------------------------------------------------------------- ddim
    _a(
        "alpha_bar_at_with_where",
        "ddim",
        (
            (
                "    padded = torch.cat([torch.ones(1, dtype=torch.float64), schedule.alpha_bars])\n"
                "    return padded.to(t.device)[t + 1]\n",
                "    table = schedule.alpha_bars.to(t.device)\n"
                "    return torch.where(t >= 0, table[t.clamp(min=0)], torch.ones((), dtype=torch.float64, device=t.device))\n",
            ),
        ),
        "ᾱ_{−1} = 1 with torch.where instead of a padded table",
    ),
    _a(
        "timesteps_by_list_comprehensions",
        "ddim",
        (
            (
                "steps = np.arange(num_steps) * (T // num_steps)",
                "steps = np.array([k * (T // num_steps) for k in range(num_steps)])",
            ),
            (
                "steps = np.round(np.arange(T, 0, -T / num_steps))[:num_steps] - 1",
                "steps = np.array([round(T - k * T / num_steps) - 1 for k in range(num_steps)])",
            ),
        ),
        "the documented formulas for 'uniform' and 'trailing' written per k in Python",
    ),
    _a(
        "sigma_one_sqrt",
        "ddim",
        (
            (
                "return eta * ((1 - alpha_bar_prev) / (1 - alpha_bar)).sqrt() * (1 - alpha_bar / alpha_bar_prev).sqrt()",
                "return eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev))",
            ),
        ),
        "eq. 16 under one square root",
    ),
    _a(
        "loop_no_noise_on_the_last_step",
        "ddim",
        (
            (
                "        z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype) if eta > 0 else None\n"
                "        x = ddim_step(model, schedule, x, t, t_prev, eta=eta, noise=z, clip_denoised=clip_denoised, **model_kwargs)\n",
                "        step_eta = eta if k > 0 else 0.0  # σ = 0 on the step to t_prev = −1 whatever η is\n"
                "        z = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype) if step_eta > 0 else None\n"
                "        x = ddim_step(model, schedule, x, t, t_prev, eta=step_eta, noise=z, clip_denoised=clip_denoised, **model_kwargs)\n",
            ),
        ),
        "the step to t_prev = −1 has σ = 0, so it draws no noise (one draw fewer when η > 0)",
    ),
    _a(
        "loop_over_pairs_start_always_drawn",
        "ddim",
        (
            (
                "    x = torch.randn(tuple(shape), generator=generator) if noise is None else noise\n",
                "    x = torch.randn(tuple(shape), generator=generator)\n"
                "    if noise is not None:\n"
                "        x = noise\n",
            ),
            (
                '    for k in tqdm(range(num_steps - 1, -1, -1), disable=not progress, desc="DDIM sampling"):\n'
                "        t = torch.full((batch,), timesteps[k], dtype=torch.long, device=device)\n"
                "        t_prev = torch.full((batch,), timesteps[k - 1] if k > 0 else -1, dtype=torch.long, device=device)\n",
                "    pairs = list(zip(timesteps[::-1], ([-1] + timesteps[:-1])[::-1]))\n"
                '    for step, step_prev in tqdm(pairs, disable=not progress, desc="DDIM sampling"):\n'
                "        t = torch.full((batch,), step, dtype=torch.long, device=device)\n"
                "        t_prev = torch.full((batch,), step_prev, dtype=torch.long, device=device)\n",
            ),
        ),
        "(τ_k, τ_{k−1}) pairs zipped up front; a start is drawn from the generator even when noise= is given",
    ),
    _a(
        "invert_combined_coefficients",
        "ddim",
        (
            (
                "        pred_x0 = (x - expand_like((1 - alpha_bar).sqrt(), x) * eps) / expand_like(alpha_bar.sqrt(), x)\n"
                "        x = expand_like(alpha_bar_next.sqrt(), x) * pred_x0 + expand_like((1 - alpha_bar_next).sqrt(), x) * eps\n",
                "        ratio = (alpha_bar_next / alpha_bar).sqrt()\n"
                "        coef_eps = (1 - alpha_bar_next).sqrt() - ratio * (1 - alpha_bar).sqrt()\n"
                "        x = expand_like(ratio, x) * x + expand_like(coef_eps, x) * eps\n",
            ),
        ),
        "x_t = √(ᾱ_t/ᾱ_s)·x + (√(1 − ᾱ_t) − √(ᾱ_t/ᾱ_s)·√(1 − ᾱ_s))·eps, x̂0 eliminated",
    ),
    # ----------------------------------------------------------------------------------------- guidance
    _a(
        "cfg_interleaved_batch",
        "guidance",
        (
            (
                "    eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), y=torch.cat([y, null]))  # (2B, ...)\n"
                "    eps_cond, eps_uncond = eps.chunk(2)\n",
                "    x_in = torch.stack([x_t, x_t], dim=1).flatten(0, 1)\n"
                "    t_in = torch.stack([t, t], dim=1).flatten(0, 1)\n"
                "    y_in = torch.stack([y, null], dim=1).flatten(0, 1)\n"
                "    eps = model(x_in, t_in, y=y_in)\n"
                "    eps_cond, eps_uncond = eps[0::2], eps[1::2]\n",
            ),
        ),
        "one call of size 2B with conditional and unconditional rows interleaved, unpacked accordingly",
    ),
    _a(
        "cfg_convex_form",
        "guidance",
        (
            (
                "return eps_uncond + guidance_scale * (eps_cond - eps_uncond)",
                "return (1 - guidance_scale) * eps_uncond + guidance_scale * eps_cond",
            ),
        ),
        "(1 − s)·eps_u + s·eps_c",
    ),
    _a(
        "drop_labels_bernoulli_clone",
        "guidance",
        (
            (
                "    drop = (torch.rand(y.shape, generator=generator) < p_uncond).to(y.device)\n"
                "    return torch.where(drop, torch.full_like(y, num_classes), y)\n",
                "    drop = torch.bernoulli(torch.full(y.shape, float(p_uncond)), generator=generator).bool().to(y.device)\n"
                "    out = y.clone()\n"
                "    out[drop] = num_classes\n"
                "    return out\n",
            ),
        ),
        "Bernoulli(p) coins from the generator, masked assignment on a copy",
    ),
    _a(
        "classifier_guidance_addcmul",
        "guidance",
        (
            (
                "return mean + scale * variance * grad_log_prob",
                "return torch.addcmul(mean, variance, grad_log_prob, value=scale)",
            ),
            (
                "return eps - scale * extract((1 - schedule.alpha_bars).sqrt(), t, eps) * grad_log_prob",
                "sigma = extract((1 - schedule.alpha_bars).sqrt(), t, eps)\n"
                "    return torch.addcmul(eps, sigma, grad_log_prob, value=-scale)",
            ),
        ),
        "both guided updates with torch.addcmul",
    ),
    # ---------------------------------------------------------------------------------------------- vae
    _a(
        "kl_kingma_form_reshape",
        "vae",
        (
            (
                "return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).flatten(1).sum(dim=1)",
                "return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).reshape(mu.shape[0], -1).sum(dim=1)",
            ),
        ),
        "Kingma & Welling's −½ Σ (1 + log σ² − μ² − σ²)",
    ),
    _a(
        "vae_loss_sum_reductions_over_batch",
        "vae",
        (
            (
                "    recon = ((x_recon - x) ** 2).flatten(1).sum(dim=1).mean()\n"
                "    kl = gaussian_kl(mu, logvar).mean()\n",
                "    batch = x.shape[0]\n"
                '    recon = torch.nn.functional.mse_loss(x_recon, x, reduction="sum") / batch\n'
                "    kl = gaussian_kl(mu, logvar).sum() / batch\n",
            ),
        ),
        "total sums divided by the batch size",
    ),
    _a(
        "encode_by_slicing_reparameterize_sqrt",
        "vae",
        (
            (
                "        mu, logvar = self.encoder(x).chunk(2, dim=1)\n        return mu, logvar\n",
                "        h = self.encoder(x)\n"
                "        return h[:, : self.latent_channels], h[:, self.latent_channels :]\n",
            ),
            ("return mu + torch.exp(0.5 * logvar) * noise", "return mu + noise * logvar.mul(0.5).exp()"),
        ),
        "split by slicing with latent_channels; σ = exp(logvar/2) written with mul",
    ),
    # ------------------------------------------------------------------------------------------- latent
    _a(
        "scale_factor_by_hand",
        "latent",
        (
            (
                "return 1.0 / latents.double().std().item()",
                "flat = latents.detach().double().flatten()\n"
                "    variance = ((flat - flat.mean()) ** 2).sum() / (flat.numel() - 1)\n"
                "    return float(variance.rsqrt())",
            ),
        ),
        "unbiased variance written out, f = 1/√variance",
    ),
    _a(
        "sample_common_kwargs_and_early_sampler_check",
        "latent",
        (
            (
                "        if y is None and guidance_scale != 1.0:\n",
                '        if sampler not in ("ddim", "ddpm"):\n'
                '            raise ValueError(f"unknown sampler {sampler!r}")\n'
                "        if y is None and guidance_scale != 1.0:\n",
            ),
            (
                '        if sampler == "ddim":\n'
                "            z = ddim.ddim_sample_loop(\n"
                "                model,\n"
                "                self.schedule,\n"
                "                shape,\n"
                "                num_steps=num_steps,\n"
                "                generator=generator,\n"
                "                device=self.device,\n"
                "                **model_kwargs,\n"
                "            )\n",
                "        common = dict(generator=generator, device=self.device, **model_kwargs)\n"
                '        if sampler == "ddim":\n'
                "            z = ddim.ddim_sample_loop(model, self.schedule, shape, num_steps=num_steps, eta=0.0, **common)\n",
            ),
            (
                "            z = ddpm.p_sample_loop(\n"
                "                model,\n"
                "                self.schedule,\n"
                "                shape,\n"
                "                generator=generator,\n"
                "                device=self.device,\n"
                "                clip_denoised=False,\n"
                "                **model_kwargs,\n"
                "            )\n",
                "            z = ddpm.p_sample_loop(model, self.schedule, shape, clip_denoised=False, **common)\n",
            ),
        ),
        "the sampler name checked first; the shared sampler arguments gathered in one dict",
    ),
    _a(
        "decode_by_reciprocal",
        "latent",
        (("return self.vae.decode(z / self.scale_factor)", "return self.vae.decode(z * (1.0 / self.scale_factor))"),),
        "z · (1/f) instead of z / f",
    ),
)
