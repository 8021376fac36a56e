"""Bug zoo of part 3 (posterior and reparameterisations): mistakes that must lose points, rewrites that must not."""

from __future__ import annotations

from autograder.zoo.edits import Alternative, Edit, Mutant

COEF_X0 = "coef_x0 = betas * alpha_bars_prev.sqrt() / (1 - alpha_bars)"
COEF_XT = "coef_xt = (1 - alpha_bars_prev) * schedule.alphas.sqrt() / (1 - alpha_bars)"
VARIANCE = "posterior_variance = betas * (1 - alpha_bars_prev) / (1 - alpha_bars)"
FIRST = "first = posterior_variance[1:2] if schedule.T > 1 else betas[:1]"
LOG_VARIANCE = "log_variance_clipped = torch.log(torch.cat([first, posterior_variance[1:]]))"
MEAN = "mean = extract(coef_x0, t, x_t) * x0 + extract(coef_xt, t, x_t) * x_t"
RETURN = "return mean, extract(posterior_variance, t, x_t), extract(log_variance_clipped, t, x_t)"
X0_FROM_EPS = "return (x_t - extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * eps) / extract(schedule.alpha_bars.sqrt(), t, x_t)"
EPS_FROM_X0 = "return (x_t - extract(schedule.alpha_bars.sqrt(), t, x_t) * x0) / extract((1 - schedule.alpha_bars).sqrt(), t, x_t)"
V = "return extract(schedule.alpha_bars.sqrt(), t, x0) * eps - extract((1 - schedule.alpha_bars).sqrt(), t, x0) * x0"
X0_FROM_V = (
    "return extract(schedule.alpha_bars.sqrt(), t, x_t) * x_t - extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * v"
)
POSTERIOR_BODY = "\n".join(
    [
        "    betas, alpha_bars, alpha_bars_prev = schedule.betas, schedule.alpha_bars, schedule.alpha_bars_prev",
        "    " + COEF_X0,
        "    " + COEF_XT,
        "    " + VARIANCE,
        "    " + FIRST,
        "    " + LOG_VARIANCE,
        "    " + MEAN,
        "    " + RETURN,
    ]
)


def _edit(find: str, replace: str) -> Edit:
    return Edit("posterior", find, replace)


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "mean_x0_coef_alpha_bar_t",
        "ᾱ_t where ᾱ_prev belongs in the posterior mean's x0 coefficient β_t√ᾱ_prev/(1 − ᾱ_t)",
        _edit(COEF_X0, "coef_x0 = betas * alpha_bars.sqrt() / (1 - alpha_bars)"),
    ),
    Mutant(
        "mean_xt_coef_alpha_bar_t",
        "ᾱ_t where ᾱ_prev belongs in the posterior mean's x_t coefficient (1 − ᾱ_prev)√α_t/(1 − ᾱ_t)",
        _edit(COEF_XT, "coef_xt = (1 - alpha_bars) * schedule.alphas.sqrt() / (1 - alpha_bars)"),
    ),
    Mutant(
        "mean_xt_coef_no_sqrt",
        "α_t instead of √α_t in the posterior mean's x_t coefficient",
        _edit(COEF_XT, "coef_xt = (1 - alpha_bars_prev) * schedule.alphas / (1 - alpha_bars)"),
    ),
    Mutant(
        "mean_x0_coef_no_sqrt",
        "ᾱ_prev instead of √ᾱ_prev in the posterior mean's x0 coefficient",
        _edit(COEF_X0, "coef_x0 = betas * alpha_bars_prev / (1 - alpha_bars)"),
    ),
    Mutant(
        "mean_coefs_swapped",
        "posterior mean coefficients swapped between x0 and x_t",
        _edit(MEAN, "mean = extract(coef_xt, t, x_t) * x0 + extract(coef_x0, t, x_t) * x_t"),
    ),
    Mutant(
        "posterior_variance_beta",
        "β_t (the 'fixed large' variance) returned instead of the posterior variance β̃_t",
        _edit(RETURN, "return mean, extract(betas, t, x_t), extract(log_variance_clipped, t, x_t)"),
    ),
    Mutant(
        "posterior_variance_t_prev_swapped",
        "β̃_t with ᾱ_t and ᾱ_prev swapped: β_t(1 − ᾱ_t)/(1 − ᾱ_prev), infinite at t = 0",
        _edit(VARIANCE, "posterior_variance = betas * (1 - alpha_bars) / (1 - alpha_bars_prev)"),
    ),
    Mutant(
        "log_variance_not_clipped",
        "log_variance_clipped = log β̃_t without the clip: −∞ at t = 0",
        _edit(LOG_VARIANCE, "log_variance_clipped = torch.log(posterior_variance)"),
    ),
    Mutant(
        "log_variance_clipped_with_beta_0",
        "log_variance_clipped uses log β_0 at t = 0 instead of log β̃_1",
        _edit(FIRST, "first = betas[:1]"),
    ),
    Mutant(
        "log_variance_clamped_to_constant",
        "log_variance_clipped clamps β̃ at a small constant (log 1e-20 at t = 0) instead of using β̃_1",
        _edit(LOG_VARIANCE, "log_variance_clipped = torch.log(posterior_variance.clamp(min=1e-20))"),
    ),
    Mutant(
        "log_variance_of_beta",
        "log_variance_clipped built from log β_t instead of log β̃_t for t ≥ 1",
        _edit(LOG_VARIANCE, "log_variance_clipped = torch.log(torch.cat([first, betas[1:]]))"),
    ),
    Mutant(
        "x0_from_eps_no_sqrt",
        "predict_x0_from_eps scales eps by 1 − ᾱ_t instead of √(1 − ᾱ_t)",
        _edit(
            X0_FROM_EPS,
            "return (x_t - extract(1 - schedule.alpha_bars, t, x_t) * eps) / extract(schedule.alpha_bars.sqrt(), t, x_t)",
        ),
    ),
    Mutant(
        "x0_from_eps_divides_by_alpha_bar",
        "predict_x0_from_eps divides by ᾱ_t instead of √ᾱ_t",
        _edit(
            X0_FROM_EPS,
            "return (x_t - extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * eps) / extract(schedule.alpha_bars, t, x_t)",
        ),
    ),
    Mutant(
        "eps_from_x0_alpha_bar_prev",
        "predict_eps_from_x0 with ᾱ_prev where ᾱ_t belongs",
        _edit(
            EPS_FROM_X0,
            "return (x_t - extract(schedule.alpha_bars_prev.sqrt(), t, x_t) * x0) / extract((1 - schedule.alpha_bars).sqrt(), t, x_t)",
        ),
    ),
    Mutant(
        "predict_v_coefs_swapped",
        "v with the coefficients swapped: √(1 − ᾱ_t)·eps − √ᾱ_t·x0",
        _edit(
            V,
            "return extract((1 - schedule.alpha_bars).sqrt(), t, x0) * eps - extract(schedule.alpha_bars.sqrt(), t, x0) * x0",
        ),
    ),
    Mutant(
        "predict_v_negated",
        "v with the signs swapped: √(1 − ᾱ_t)·x0 − √ᾱ_t·eps",
        _edit(
            V,
            "return extract((1 - schedule.alpha_bars).sqrt(), t, x0) * x0 - extract(schedule.alpha_bars.sqrt(), t, x0) * eps",
        ),
    ),
    Mutant(
        "x0_from_v_plus",
        "x0 from v with a plus sign: √ᾱ_t·x_t + √(1 − ᾱ_t)·v",
        _edit(
            X0_FROM_V,
            "return extract(schedule.alpha_bars.sqrt(), t, x_t) * x_t + extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * v",
        ),
    ),
    Mutant(
        "x0_from_v_coefs_swapped",
        "x0 from v with the coefficients swapped: √(1 − ᾱ_t)·x_t − √ᾱ_t·v",
        _edit(
            X0_FROM_V,
            "return extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * x_t - extract(schedule.alpha_bars.sqrt(), t, x_t) * v",
        ),
    ),
    Mutant(
        "posterior_clamps_x0",
        "q_posterior_mean_variance clamps x0 to [−1, 1] 'since data lives there': wider inputs are changed",
        Edit(
            "posterior",
            "    mean = extract(coef_x0, t, x_t) * x0",
            "    x0 = x0.clamp(-1, 1)\n    mean = extract(coef_x0, t, x_t) * x0",
        ),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Mutant(
        "log_variance_breaks_for_T_1",
        "index 1 always exists in practice; a one-step schedule leaves the clipped log-variance empty",
        Edit(
            "posterior",
            "first = posterior_variance[1:2] if schedule.T > 1 else betas[:1]",
            "first = posterior_variance[1:2]",
        ),
    ),
    Mutant(
        "coef_xt_uses_alpha_bars",
        "α and ᾱ confusion in the x_t coefficient of eq. 7",
        Edit(
            "posterior",
            "coef_xt = (1 - alpha_bars_prev) * schedule.alphas.sqrt() / (1 - alpha_bars)",
            "coef_xt = (1 - alpha_bars_prev) * alpha_bars.sqrt() / (1 - alpha_bars)",
        ),
    ),
    Mutant(
        "posterior_mean_float64_on_float32",
        "indexed the float64 coefficient tables by hand: the mean of float32 data comes back float64",
        Edit(
            "posterior",
            "mean = extract(coef_x0, t, x_t) * x0 + extract(coef_xt, t, x_t) * x_t",
            "view = (-1,) + (1,) * (x_t.dim() - 1)\n"
            "    mean = coef_x0[t].view(view) * x0 + coef_xt[t].view(view) * x_t",
        ),
    ),
    Mutant(
        "predict_x0_divides_by_alpha",
        "mixed eq. 4 with eq. 11's 1/√α_t",
        Edit(
            "posterior",
            "return (x_t - extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * eps) / extract(schedule.alpha_bars.sqrt(), t, x_t)",
            "return (x_t - extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * eps) / extract(schedule.alphas.sqrt(), t, x_t)",
        ),
    ),
    Mutant(
        "predict_eps_divides_by_variance",
        "divided by 1 − ᾱ_t, forgetting the square root",
        Edit(
            "posterior",
            "return (x_t - extract(schedule.alpha_bars.sqrt(), t, x_t) * x0) / extract((1 - schedule.alpha_bars).sqrt(), t, x_t)",
            "return (x_t - extract(schedule.alpha_bars.sqrt(), t, x_t) * x0) / extract(1 - schedule.alpha_bars, t, x_t)",
        ),
    ),
    Mutant(
        "predict_v_roles_swapped",
        "wrote v like x_t with a minus sign: √ᾱ·x0 − √(1−ᾱ)·eps",
        Edit(
            "posterior",
            "return extract(schedule.alpha_bars.sqrt(), t, x0) * eps - extract((1 - schedule.alpha_bars).sqrt(), t, x0) * x0",
            "return extract(schedule.alpha_bars.sqrt(), t, x0) * x0 - extract((1 - schedule.alpha_bars).sqrt(), t, x0) * eps",
        ),
    ),
)

ALTERNATIVES: tuple[Alternative, ...] = (
    Alternative(
        "posterior_mean_via_eps_float64",
        "posterior mean as (x_t − β_t/√(1 − ᾱ_t)·ε)/√α_t with ε = predict_eps_from_x0(x_t, x0), computed in "
        "float64 and cast back; log β̃ clipped by overwriting index 0",
        (
            _edit(
                POSTERIOR_BODY,
                "    x0_64, x_t_64 = x0.to(torch.float64), x_t.to(torch.float64)\n"
                "    eps = predict_eps_from_x0(schedule, x_t_64, t, x0_64)\n"
                "    beta = extract(schedule.betas, t, x_t_64)\n"
                "    mean = (x_t_64 - beta / extract((1 - schedule.alpha_bars).sqrt(), t, x_t_64) * eps) / extract(\n"
                "        schedule.alphas.sqrt(), t, x_t_64\n"
                "    )\n"
                "    posterior_variance = schedule.betas * (1 - schedule.alpha_bars_prev) / (1 - schedule.alpha_bars)\n"
                "    log_variance = torch.log(posterior_variance)\n"
                "    log_variance[0] = log_variance[1] if schedule.T > 1 else torch.log(schedule.betas[0])\n"
                "    return mean.to(x_t.dtype), extract(posterior_variance, t, x_t), extract(log_variance, t, x_t)",
            ),
        ),
    ),
    Alternative(
        "reparam_improved_diffusion",
        "improved-diffusion's √(1/ᾱ_t)·x_t − √(1/ᾱ_t − 1)·eps forms with torch.gather; v with einsum over "
        "flattened samples; x0 from v in float64 and cast back",
        (
            _edit(
                X0_FROM_EPS,
                "recip = torch.gather(1 / schedule.alpha_bars, 0, t.cpu())\n"
                "    shape = (-1, *([1] * (x_t.dim() - 1)))\n"
                "    sqrt_recip = recip.sqrt().to(x_t).reshape(shape)\n"
                "    sqrt_recipm1 = (recip - 1).sqrt().to(x_t).reshape(shape)\n"
                "    return sqrt_recip * x_t - sqrt_recipm1 * eps",
            ),
            _edit(
                EPS_FROM_X0,
                "recip = torch.gather(1 / schedule.alpha_bars, 0, t.cpu())\n"
                "    shape = (-1, *([1] * (x_t.dim() - 1)))\n"
                "    return (recip.sqrt().to(x_t).reshape(shape) * x_t - x0) / (recip - 1).sqrt().to(x_t).reshape(shape)",
            ),
            _edit(
                V,
                "alpha_bar = torch.gather(schedule.alpha_bars, 0, t.cpu())\n"
                "    signal, noise = alpha_bar.sqrt().to(x0), (1 - alpha_bar).sqrt().to(x0)\n"
                "    flat_eps, flat_x0 = eps.reshape(len(t), -1), x0.reshape(len(t), -1)\n"
                "    return (torch.einsum('b,bn->bn', signal, flat_eps) - torch.einsum('b,bn->bn', noise, flat_x0)).reshape(x0.shape)",
            ),
            _edit(
                X0_FROM_V,
                "alpha_bar = torch.gather(schedule.alpha_bars, 0, t.cpu())\n"
                "    signal, noise = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()\n"
                "    flat_x_t, flat_v = x_t.to(torch.float64).reshape(len(t), -1), v.to(torch.float64).reshape(len(t), -1)\n"
                "    x0 = signal[:, None] * flat_x_t - noise[:, None] * flat_v\n"
                "    return x0.reshape(x_t.shape).to(x_t.dtype)",
            ),
        ),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Alternative(
        "posterior_mean_via_eps",
        "μ̃ written through the implied noise, eq. 11's form: (x_t − β_t/√(1 − ᾱ_t) · eps)/√α_t",
        (
            Edit(
                "posterior",
                "mean = extract(coef_x0, t, x_t) * x0 + extract(coef_xt, t, x_t) * x_t",
                "eps = (x_t - extract(alpha_bars.sqrt(), t, x_t) * x0) / extract((1 - alpha_bars).sqrt(), t, x_t)\n"
                "    mean = (x_t - extract(betas / (1 - alpha_bars).sqrt(), t, x_t) * eps) / extract(schedule.alphas.sqrt(), t, x_t)",
            ),
        ),
    ),
    Alternative(
        "log_variance_clipped_with_where",
        "replace index 0 with torch.where before the log",
        (
            Edit(
                "posterior",
                "    first = posterior_variance[1:2] if schedule.T > 1 else betas[:1]\n"
                "    log_variance_clipped = torch.log(torch.cat([first, posterior_variance[1:]]))\n",
                "    fallback = posterior_variance[1] if schedule.T > 1 else betas[0]\n"
                "    is_first = torch.arange(schedule.T) == 0\n"
                "    log_variance_clipped = torch.where(is_first, fallback, posterior_variance).log()\n",
            ),
        ),
    ),
    Alternative(
        "predict_x0_reciprocal_form",
        "the original DDPM code's sqrt_recip_alphas_cumprod · x_t − sqrt_recipm1_alphas_cumprod · eps",
        (
            Edit(
                "posterior",
                "return (x_t - extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * eps) / extract(schedule.alpha_bars.sqrt(), t, x_t)",
                "return extract((1 / schedule.alpha_bars).sqrt(), t, x_t) * x_t - extract((1 / schedule.alpha_bars - 1).sqrt(), t, x_t) * eps",
            ),
        ),
    ),
    Alternative(
        "predict_x0_from_v_via_predict_v_algebra",
        "same formula with named coefficients and addcmul",
        (
            Edit(
                "posterior",
                "return extract(schedule.alpha_bars.sqrt(), t, x_t) * x_t - extract((1 - schedule.alpha_bars).sqrt(), t, x_t) * v",
                "a = extract(schedule.alpha_bars.sqrt(), t, x_t)\n"
                "    b = extract((1 - schedule.alpha_bars).sqrt(), t, x_t)\n"
                "    return torch.addcmul(a * x_t, b, v, value=-1)",
            ),
        ),
    ),
)
