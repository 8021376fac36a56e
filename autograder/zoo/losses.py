"""Bug zoo of part 4 (losses): mistakes in normal_kl, ddpm_loss and vlb_term that must lose points, rewrites that must not."""

from __future__ import annotations

from autograder.zoo.edits import Alternative, Edit, Mutant

KL = (
    "return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)"
)
DRAW_T = "t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)"
DRAW_NOISE = "noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)"
LOSS = "return ((noise - model(x_t, t, **model_kwargs)) ** 2).mean()"
RAISE = "if bool((t == 0).any()):"
P_STEP = 'out = p_mean_variance(model, schedule, x_t, t, clip_denoised=False, variance="fixed_small")'
REDUCE = "return kl.reshape(len(kl), -1).mean(dim=1)  # (B,) data too: one value per sample"


def kl(replace: str) -> Edit:
    return Edit("losses", KL, replace)


MUTANTS: tuple[Mutant, ...] = (
    # --- normal_kl ---
    Mutant(
        "normal_kl_missing_half",
        "the ½ of the Gaussian KL dropped: twice the divergence",
        kl(
            "return logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0"
        ),
    ),
    Mutant(
        "normal_kl_half_on_mean_term_only",
        "the ½ applied to the mean term (mean1 − mean2)²/σ2² only, not to the log and ratio terms",
        kl(
            "return logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + 0.5 * (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0"
        ),
    ),
    Mutant(
        "normal_kl_logvars_swapped",
        "log σ1² − log σ2² where log σ2² − log σ1² belongs (the log term's sign flipped)",
        kl(
            "return 0.5 * (logvar1 - logvar2 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)"
        ),
    ),
    Mutant(
        "normal_kl_missing_minus_one",
        "the − 1 of the closed form dropped: KL(p ‖ p) = ½ instead of 0",
        kl(
            "return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))"
        ),
    ),
    Mutant(
        "normal_kl_ratio_inverted",
        "σ2²/σ1² where the variance ratio σ1²/σ2² belongs",
        kl(
            "return 0.5 * (logvar2 - logvar1 + torch.exp(logvar2 - logvar1) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)"
        ),
    ),
    Mutant(
        "normal_kl_logvar_as_variance",
        "the squared mean gap divided by logvar2 itself: the log-variance used where the variance σ2² belongs",
        kl("return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 / logvar2 - 1.0)"),
    ),
    Mutant(
        "normal_kl_mean_term_over_sigma1",
        "the squared mean gap divided by σ1² instead of σ2² (the wrong Gaussian's variance)",
        kl(
            "return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar1) - 1.0)"
        ),
    ),
    Mutant(
        "normal_kl_logvar_as_log_std",
        "logvar read as log σ: the variance ratio e^((logvar1 − logvar2)/2) and the mean term over σ2 instead of σ2²",
        kl(
            "return 0.5 * (logvar2 - logvar1 + torch.exp(0.5 * (logvar1 - logvar2)) + (mean1 - mean2) ** 2 * torch.exp(-0.5 * logvar2) - 1.0)"
        ),
    ),
    # --- ddpm_loss ---
    Mutant(
        "ddpm_loss_sum",
        "the squared error summed over every element instead of averaged",
        Edit("losses", LOSS, "return ((noise - model(x_t, t, **model_kwargs)) ** 2).sum()"),
    ),
    Mutant(
        "ddpm_loss_sum_per_sample",
        "the squared error summed over the pixels of each sample, then averaged over the batch",
        Edit(
            "losses",
            LOSS,
            "return ((noise - model(x_t, t, **model_kwargs)) ** 2).reshape(len(x0), -1).sum(dim=1).mean()",
        ),
    ),
    Mutant(
        "ddpm_loss_target_x0",
        "the target is x0 instead of the noise eps (the model predicts eps)",
        Edit("losses", LOSS, "return ((x0 - model(x_t, t, **model_kwargs)) ** 2).mean()"),
    ),
    Mutant(
        "ddpm_loss_target_x_t",
        "the loss compares the model's output with x_t instead of with the noise",
        Edit("losses", LOSS, "return ((x_t - model(x_t, t, **model_kwargs)) ** 2).mean()"),
    ),
    Mutant(
        "ddpm_loss_model_sees_x0",
        "the model is given the clean x0 instead of the noised x_t",
        Edit("losses", LOSS, "return ((noise - model(x0, t, **model_kwargs)) ** 2).mean()"),
    ),
    Mutant(
        "ddpm_loss_forgets_model_kwargs",
        "**model_kwargs not passed on to the model: the class label y is lost",
        Edit("losses", LOSS, "return ((noise - model(x_t, t)) ** 2).mean()"),
    ),
    Mutant(
        "ddpm_loss_t_one_based",
        "t drawn from the paper's 1..T instead of the 0-based 0..T−1",
        Edit(
            "losses", DRAW_T, "t = torch.randint(1, schedule.T + 1, (x0.shape[0],), generator=generator).to(x0.device)"
        ),
    ),
    Mutant(
        "ddpm_loss_t_excludes_last",
        "t drawn from 0..T−2: randint(0, T − 1) forgets that randint excludes its upper bound",
        Edit(
            "losses", DRAW_T, "t = torch.randint(0, schedule.T - 1, (x0.shape[0],), generator=generator).to(x0.device)"
        ),
    ),
    Mutant(
        "ddpm_loss_t_excludes_zero",
        "t drawn from 1..T−1: the first timestep t = 0 is never trained",
        Edit("losses", DRAW_T, "t = torch.randint(1, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)"),
    ),
    Mutant(
        "ddpm_loss_noise_global_rng",
        "the noise drawn from torch's global RNG instead of the given generator",
        Edit("losses", DRAW_NOISE, "noise = torch.randn(x0.shape, dtype=x0.dtype).to(x0.device)"),
    ),
    Mutant(
        "ddpm_loss_t_global_rng",
        "t drawn from torch's global RNG instead of the given generator",
        Edit("losses", DRAW_T, "t = torch.randint(0, schedule.T, (x0.shape[0],)).to(x0.device)"),
    ),
    Mutant(
        "ddpm_loss_uniform_noise",
        "noise ~ U[0, 1) (torch.rand) instead of N(0, I) (torch.randn)",
        Edit("losses", DRAW_NOISE, "noise = torch.rand(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)"),
    ),
    # --- vlb_term ---
    Mutant(
        "vlb_term_fixed_large",
        "the model's step with the fixed-large variance β_t instead of the fixed-small β̃_t",
        Edit(
            "losses",
            P_STEP,
            'out = p_mean_variance(model, schedule, x_t, t, clip_denoised=False, variance="fixed_large")',
        ),
    ),
    Mutant(
        "vlb_term_clipped",
        "x̂0 clamped to [−1, 1] in the model's step (p_mean_variance's default clip_denoised=True)",
        Edit("losses", P_STEP, 'out = p_mean_variance(model, schedule, x_t, t, variance="fixed_small")'),
    ),
    Mutant(
        "vlb_term_sum",
        "the KL summed over the non-batch dimensions instead of averaged",
        Edit("losses", REDUCE, "return kl.reshape(len(kl), -1).sum(dim=1)"),
    ),
    Mutant(
        "vlb_term_batch_mean",
        "the KL averaged over the batch too: a scalar instead of one value per sample",
        Edit("losses", REDUCE, "return kl.mean()"),
    ),
    Mutant(
        "vlb_term_bits",
        "the KL in bits (divided by ln 2, as in improved DDPM's code) instead of nats",
        Edit("losses", REDUCE, "return kl.reshape(len(kl), -1).mean(dim=1) / torch.log(torch.tensor(2.0))"),
    ),
    Mutant(
        "vlb_term_posterior_t_minus_one",
        "the true posterior taken at t − 1 (the paper's 1-based index) while the model steps from t",
        Edit(
            "losses",
            "true_mean, _, true_log_variance = q_posterior_mean_variance(schedule, x0, x_t, t)",
            "true_mean, _, true_log_variance = q_posterior_mean_variance(schedule, x0, x_t, t - 1)",
        ),
    ),
    Mutant(
        "vlb_term_raises_only_if_all_zero",
        "ValueError only when every t is 0 (all) instead of when any t is 0",
        Edit("losses", RAISE, "if bool((t == 0).all()):"),
    ),
    Mutant(
        "vlb_term_never_raises",
        "no check of t == 0: the decoder's term L_0 silently computed as a KL",
        Edit("losses", RAISE, "if False:"),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Mutant(
        "one_t_for_the_batch",
        "one timestep per batch, as in some training loops; 'the expectation over t is the same'",
        Edit(
            "losses",
            "t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)",
            "t = torch.randint(0, schedule.T, (1,), generator=generator).expand(x0.shape[0]).to(x0.device)",
        ),
    ),
    Mutant(
        "noise_from_global_rng",
        "randn_like is the idiomatic way to draw noise shaped like the data; it ignores the generator",
        Edit(
            "losses",
            "noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)",
            "noise = torch.randn_like(x0)",
        ),
    ),
    Mutant(
        "draws_t_and_noise_together",
        "drew t and noise as a pair; a given t (or noise) is overwritten when only the other one is missing",
        Edit(
            "losses",
            "    if t is None:\n"
            "        t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)\n"
            "    if noise is None:\n"
            "        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)\n",
            "    if t is None or noise is None:\n"
            "        t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)\n"
            "        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)\n",
        ),
    ),
    Mutant(
        "vlb_no_raise_at_t0",
        "the KL formula 'works' at t = 0 too (β̃ clipped), so the promised ValueError was left out",
        Edit(
            "losses",
            "    if bool((t == 0).any()):\n"
            '        raise ValueError("vlb_term is the KL term L_t for t >= 1; t == 0 is the decoder term L_0")\n',
            "",
        ),
    ),
    Mutant(
        "vlb_sums_over_dims",
        "a KL between diagonal Gaussians sums over dimensions; the docstring asks for the mean",
        Edit(
            "losses",
            "return kl.reshape(len(kl), -1).mean(dim=1)",
            "return kl.reshape(len(kl), -1).sum(dim=1)",
        ),
    ),
    Mutant(
        "vlb_in_bits",
        "improved-DDPM reports the bound in bits per dim; the docstring asks for nats",
        Edit(
            "losses",
            "return kl.reshape(len(kl), -1).mean(dim=1)",
            "return kl.reshape(len(kl), -1).mean(dim=1) / 0.6931471805599453",
        ),
    ),
    Mutant(
        "vlb_flatten_breaks_1d_data",
        "flatten(1) is the usual per-sample mean; it fails for data of shape (B,)",
        Edit(
            "losses",
            "return kl.reshape(len(kl), -1).mean(dim=1)",
            "return kl.flatten(1).mean(dim=1)",
        ),
    ),
)

ALTERNATIVES: tuple[Alternative, ...] = (
    Alternative(
        "normal_kl_by_torch_distributions",
        "normal_kl as torch.distributions.kl_divergence of two Normal distributions with σ = e^(logvar/2)",
        (
            kl(
                "p = torch.distributions.Normal(mean1, torch.exp(0.5 * logvar1), validate_args=False)\n"
                "    q = torch.distributions.Normal(mean2, torch.exp(0.5 * logvar2), validate_args=False)\n"
                "    return torch.distributions.kl_divergence(p, q)"
            ),
        ),
    ),
    Alternative(
        "losses_written_out",
        "ddpm_loss by F.mse_loss with the noise drawn before t and x_t written out; vlb_term as a python loop "
        "over the samples with the closed-form KL (μ̃ − μ_θ)²/(2β̃) of equal variances",
        (
            Edit(
                "losses",
                "    if t is None:\n"
                "        " + DRAW_T + "\n"
                "    if noise is None:\n"
                "        " + DRAW_NOISE + "\n"
                "    x_t = q_sample(schedule, x0, t, noise)\n"
                "    " + LOSS,
                "    if noise is None:\n"
                "        noise = torch.randn(*x0.shape, generator=generator, dtype=torch.float64).to(x0)\n"
                "    if t is None:\n"
                "        t = torch.randint(schedule.T, size=(len(x0),), generator=generator).to(x0.device)\n"
                "    a = schedule.alpha_bars.to(x0.device)[t].to(x0.dtype).reshape(-1, *([1] * (x0.dim() - 1)))\n"
                "    x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise\n"
                "    return torch.nn.functional.mse_loss(model(x_t, t, **model_kwargs), noise)",
            ),
            Edit(
                "losses",
                "    " + RAISE + "\n"
                '        raise ValueError("vlb_term is the KL term L_t for t >= 1; t == 0 is the decoder term L_0")\n'
                "    true_mean, _, true_log_variance = q_posterior_mean_variance(schedule, x0, x_t, t)\n"
                "    " + P_STEP + "\n"
                '    kl = normal_kl(true_mean, true_log_variance, out["mean"], out["log_variance"])\n'
                "    " + REDUCE,
                "    if (t < 1).any().item():\n"
                '        raise ValueError("t = 0 has no KL term")\n'
                "    terms = []\n"
                "    for i in range(len(t)):\n"
                "        ti = t[i : i + 1]\n"
                "        true_mean, variance, _ = q_posterior_mean_variance(schedule, x0[i : i + 1], x_t[i : i + 1], ti)\n"
                '        model_mean = p_mean_variance(model, schedule, x_t[i : i + 1], ti, clip_denoised=False)["mean"]\n'
                "        terms.append(((true_mean - model_mean) ** 2 / (2 * variance)).mean())\n"
                "    return torch.stack(terms)",
            ),
        ),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Alternative(
        "noise_drawn_before_t",
        "draws the noise first, then t, from the same generator (another order of draws)",
        (
            Edit(
                "losses",
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
    ),
    Alternative(
        "t_by_scaled_uniform_noise_float32_mse_loss",
        "t = ⌊T·U⌋ from the generator, noise drawn in float32 then cast, loss via F.mse_loss: same law, same value",
        (
            Edit(
                "losses",
                "t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)",
                "u = torch.rand(x0.shape[0], generator=generator, dtype=torch.float64)\n"
                "        t = (u * schedule.T).long().clamp(max=schedule.T - 1).to(x0.device)",
            ),
            Edit(
                "losses",
                "noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)",
                "noise = torch.randn(x0.shape, generator=generator).to(device=x0.device, dtype=x0.dtype)",
            ),
            Edit(
                "losses",
                "return ((noise - model(x_t, t, **model_kwargs)) ** 2).mean()",
                "return torch.nn.functional.mse_loss(model(x_t, t, **model_kwargs), noise)",
            ),
        ),
    ),
    Alternative(
        "normal_kl_variance_form",
        "log(σ2/σ1) + (σ1² + (μ1 − μ2)²)/(2σ2²) − ½",
        (
            Edit(
                "losses",
                "return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)",
                "var2 = torch.exp(logvar2)\n"
                "    return 0.5 * (logvar2 - logvar1) + (torch.exp(logvar1) + (mean1 - mean2) ** 2) / (2 * var2) - 0.5",
            ),
        ),
    ),
    Alternative(
        "vlb_per_sample_loop",
        "per-sample means in a loop (works for (B,) data as well); the t == 0 test written as a count",
        (
            Edit(
                "losses",
                "return kl.reshape(len(kl), -1).mean(dim=1)",
                "return torch.stack([k.mean() for k in kl])",
            ),
            Edit(
                "losses",
                "if bool((t == 0).any()):",
                "if (t == 0).sum().item() > 0:",
            ),
        ),
    ),
)
