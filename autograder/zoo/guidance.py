"""Bug zoo of part 8 (guidance): mistakes that must lose points, rewrites that must not."""

from __future__ import annotations

from autograder.zoo.edits import Alternative, Edit, Mutant

_DROP = "drop = (torch.rand(y.shape, generator=generator) < p_uncond).to(y.device)"
_WHERE = "return torch.where(drop, torch.full_like(y, num_classes), y)"
_CALL = "eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), y=torch.cat([y, null]))  # (2B, ...)"
_SPLIT = "eps_cond, eps_uncond = eps.chunk(2)"
_CFG = "return eps_uncond + guidance_scale * (eps_cond - eps_uncond)"
_MEAN = "return mean + scale * variance * grad_log_prob"
_EPS = "return eps - scale * extract((1 - schedule.alpha_bars).sqrt(), t, eps) * grad_log_prob"

MUTANTS: tuple[Mutant, ...] = (
    # drop_labels
    Mutant(
        "drop_labels_keep_probability",
        "labels dropped with probability 1 − p_uncond (p_uncond read as the keep probability)",
        Edit("guidance", _DROP, _DROP.replace("< p_uncond", "< 1 - p_uncond")),
    ),
    Mutant(
        "drop_labels_where_swapped",
        "torch.where arguments swapped: the labels where the uniform is < p_uncond are kept, the others dropped",
        Edit("guidance", _WHERE, "return torch.where(drop, y, torch.full_like(y, num_classes))"),
    ),
    Mutant(
        "drop_labels_in_place",
        "the null label written into the caller's y in place (y[drop] = num_classes) instead of a new tensor",
        Edit("guidance", _WHERE, "y[drop] = num_classes\n    return y"),
    ),
    Mutant(
        "drop_labels_global_rng",
        "uniforms drawn from the global RNG instead of the generator (not reproducible from its seed)",
        Edit("guidance", _DROP, "drop = (torch.rand(y.shape) < p_uncond).to(y.device)"),
    ),
    Mutant(
        "drop_labels_at_most_p",
        "dropped where the uniform is ≤ p_uncond: torch.rand draws from [0, 1) and can draw 0 itself, so "
        "p_uncond = 0 still drops a label now and then (found by mutation testing)",
        Edit("guidance", _DROP, _DROP.replace("< p_uncond", "<= p_uncond")),
    ),
    Mutant(
        "drop_labels_null_zero",
        "null label 0 instead of num_classes (0 is a real class)",
        Edit("guidance", _WHERE, "return torch.where(drop, torch.zeros_like(y), y)"),
    ),
    Mutant(
        "drop_labels_null_minus_one",
        "null label −1 instead of num_classes (the embedding's null row is index num_classes)",
        Edit("guidance", _WHERE, "return torch.where(drop, torch.full_like(y, -1), y)"),
    ),
    Mutant(
        "drop_labels_one_coin",
        "one uniform for the whole batch: the batch is dropped all together with probability p_uncond",
        Edit("guidance", _DROP, "drop = (torch.rand(1, generator=generator) < p_uncond).to(y.device)"),
    ),
    # cfg_eps
    Mutant(
        "cfg_sign_flipped",
        "eps_c + s·(eps_u − eps_c): guidance pushes towards the unconditional model (s = 1 gives eps_u)",
        Edit("guidance", _CFG, "return eps_cond + guidance_scale * (eps_uncond - eps_cond)"),
    ),
    Mutant(
        "cfg_one_minus_s_mixup",
        "(1 − s)·eps_c + s·eps_u: the weights of the two branches exchanged",
        Edit("guidance", _CFG, "return (1 - guidance_scale) * eps_cond + guidance_scale * eps_uncond"),
    ),
    Mutant(
        "cfg_w_convention",
        "Ho & Salimans' (1 + w)·eps_c − w·eps_u with s passed as w (w = s − 1 belongs there)",
        Edit("guidance", _CFG, "return (1 + guidance_scale) * eps_cond - guidance_scale * eps_uncond"),
    ),
    Mutant(
        "cfg_halves_swapped",
        "the batched answer split in the wrong order: conditional and unconditional halves exchanged",
        Edit("guidance", _SPLIT, "eps_uncond, eps_cond = eps.chunk(2)"),
    ),
    Mutant(
        "cfg_null_label_unused",
        "the unconditional branch evaluated with the labels y instead of the null label num_classes",
        Edit("guidance", _CALL, "eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), y=torch.cat([y, y]))"),
    ),
    Mutant(
        "cfg_null_label_zero",
        "null label 0 instead of num_classes in the unconditional branch",
        Edit("guidance", "null = torch.full_like(y, num_classes)", "null = torch.zeros_like(y)"),
    ),
    Mutant(
        "cfg_two_calls",
        "two unbatched model calls (conditional, then unconditional) instead of one batched call of size 2B",
        Edit(
            "guidance",
            _CALL + "\n    " + _SPLIT,
            "eps_cond = model(x_t, t, y=y)\n    eps_uncond = model(x_t, t, y=null)",
        ),
    ),
    # classifier guidance
    Mutant(
        "guided_mean_no_variance",
        "classifier-guided mean shifted by scale·∇log p(y | x_t) without the variance Σ",
        Edit("guidance", _MEAN, "return mean + scale * grad_log_prob"),
    ),
    Mutant(
        "guided_mean_std",
        "classifier-guided mean shifted by the standard deviation √Σ instead of the variance Σ",
        Edit("guidance", _MEAN, "return mean + scale * variance.sqrt() * grad_log_prob"),
    ),
    Mutant(
        "guided_mean_minus",
        "classifier-guided mean shifted against the gradient (mean − scale·Σ·∇log p)",
        Edit("guidance", _MEAN, "return mean - scale * variance * grad_log_prob"),
    ),
    Mutant(
        "guided_eps_plus",
        "eps + scale·√(1 − ᾱ_t)·∇log p: the sign of the classifier-guided eps flipped",
        Edit("guidance", _EPS, _EPS.replace("return eps - scale", "return eps + scale")),
    ),
    Mutant(
        "guided_eps_sqrt_alpha_bar",
        "√ᾱ_t where √(1 − ᾱ_t) belongs in the classifier-guided eps",
        Edit("guidance", _EPS, _EPS.replace("(1 - schedule.alpha_bars).sqrt()", "schedule.alpha_bars.sqrt()")),
    ),
    Mutant(
        "guided_eps_alpha_bar_prev",
        "ᾱ_prev where ᾱ_t belongs in √(1 − ᾱ_t) (an off-by-one of the 0-based timesteps)",
        Edit("guidance", _EPS, _EPS.replace("schedule.alpha_bars)", "schedule.alpha_bars_prev)")),
    ),
    Mutant(
        "guided_eps_no_sqrt",
        "(1 − ᾱ_t) without the square root in the classifier-guided eps",
        Edit("guidance", _EPS, _EPS.replace("(1 - schedule.alpha_bars).sqrt()", "(1 - schedule.alpha_bars)")),
    ),
    Mutant(
        "guided_eps_beta",
        "√β_t where √(1 − ᾱ_t) belongs in the classifier-guided eps",
        Edit("guidance", _EPS, _EPS.replace("(1 - schedule.alpha_bars).sqrt()", "schedule.betas.sqrt()")),
    ),
    Mutant(
        "drop_labels_seeds_global_rng",
        "seeds the global RNG before drawing 'so that the dropout is reproducible' (the drops still come from the generator)",
        Edit(
            "guidance",
            "drop = (torch.rand(y.shape, generator=generator) < p_uncond).to(y.device)",
            "torch.manual_seed(0)\n    drop = (torch.rand(y.shape, generator=generator) < p_uncond).to(y.device)",
        ),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Mutant(
        "drop_labels_exact_fraction",
        "dropped exactly round(p·B) random labels 'to hit the rate exactly'; not independent per label",
        Edit(
            "guidance",
            "    drop = (torch.rand(y.shape, generator=generator) < p_uncond).to(y.device)\n",
            "    perm = torch.randperm(y.numel(), generator=generator)\n"
            "    drop = torch.zeros(y.numel(), dtype=torch.bool)\n"
            "    drop[perm[: round(p_uncond * y.numel())]] = True\n"
            "    drop = drop.reshape(y.shape).to(y.device)\n",
        ),
    ),
    Mutant(
        "drop_labels_keeps_with_p",
        "comparison the wrong way round: drops with probability 1 − p (right only at p = ½)",
        Edit(
            "guidance",
            "drop = (torch.rand(y.shape, generator=generator) < p_uncond).to(y.device)",
            "drop = (torch.rand(y.shape, generator=generator) > p_uncond).to(y.device)",
        ),
    ),
    Mutant(
        "drop_labels_null_is_last_class",
        "labels are 0..num_classes−1, so 'the last label' num_classes − 1 was taken as the null label",
        Edit(
            "guidance",
            "return torch.where(drop, torch.full_like(y, num_classes), y)",
            "return torch.where(drop, torch.full_like(y, num_classes - 1), y)",
        ),
    ),
    Mutant(
        "cfg_w_as_s",
        "used Ho & Salimans' (1 + w)·eps_c − w·eps_u with w = guidance_scale; s = 1 is no longer the conditional model",
        Edit(
            "guidance",
            "return eps_uncond + guidance_scale * (eps_cond - eps_uncond)",
            "return eps_cond + guidance_scale * (eps_cond - eps_uncond)",
        ),
    ),
    Mutant(
        "cfg_t_not_doubled",
        "doubled x_t and y but not t 'since t is the same for both halves'",
        Edit(
            "guidance",
            "eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), y=torch.cat([y, null]))",
            "eps = model(torch.cat([x_t, x_t]), t, y=torch.cat([y, null]))",
        ),
    ),
    Mutant(
        "cfg_labels_positional",
        "the UNet's forward is (x, t, y), so the labels went positionally; the contract passes them as y=",
        Edit(
            "guidance",
            "eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), y=torch.cat([y, null]))",
            "eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([y, null]))",
        ),
    ),
    Mutant(
        "guided_eps_float64_on_float32",
        "own broadcasting instead of extract: float32 eps comes back float64",
        Edit(
            "guidance",
            "return eps - scale * extract((1 - schedule.alpha_bars).sqrt(), t, eps) * grad_log_prob",
            "coef = (1 - schedule.alpha_bars).sqrt()[t].reshape(-1, *([1] * (eps.dim() - 1)))\n"
            "    return eps - scale * coef * grad_log_prob",
        ),
    ),
)

ALTERNATIVES: tuple[Alternative, ...] = (
    Alternative(
        "drop_labels_masked_clone",
        "drop_labels by masked assignment on a clone of y (uniforms drawn as a flat vector, then reshaped)",
        (
            Edit(
                "guidance",
                _DROP + "\n    " + _WHERE,
                "uniforms = torch.rand(y.numel(), generator=generator).reshape(y.shape)\n"
                "    out = y.clone()\n"
                "    out[(uniforms < p_uncond).to(y.device)] = num_classes\n"
                "    return out",
            ),
        ),
    ),
    Alternative(
        "cfg_lerp_split",
        "cfg_eps with repeat for the batch, split(B) for the halves and torch.lerp(eps_u, eps_c, s)",
        (
            Edit(
                "guidance",
                "null = torch.full_like(y, num_classes)\n    " + _CALL + "\n    " + _SPLIT + "\n    " + _CFG,
                "batch = x_t.shape[0]\n"
                "    labels = torch.cat([y, y.new_full((batch,), num_classes)])\n"
                "    eps = model(x_t.repeat(2, *([1] * (x_t.dim() - 1))), t.repeat(2), y=labels)\n"
                "    eps_cond, eps_uncond = eps.split(batch)\n"
                "    return torch.lerp(eps_uncond, eps_cond, guidance_scale)",
            ),
        ),
    ),
    Alternative(
        "cfg_null_first_weights",
        "cfg_eps with the null half first, (1 − s)·eps_u + s·eps_c, and classifier guidance by explicit "
        "indexing of the schedule in float64",
        (
            Edit(
                "guidance",
                "null = torch.full_like(y, num_classes)\n    " + _CALL + "\n    " + _SPLIT + "\n    " + _CFG,
                "null = torch.full_like(y, num_classes)\n"
                "    eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), y=torch.cat([null, y]))\n"
                "    eps_uncond, eps_cond = eps.chunk(2)\n"
                "    return (1 - guidance_scale) * eps_uncond + guidance_scale * eps_cond",
            ),
            Edit(
                "guidance",
                _EPS,
                "coef = (1 - schedule.alpha_bars[t.cpu()]).sqrt().reshape(-1, *([1] * (eps.dim() - 1)))\n"
                "    return (eps.double() - scale * coef.to(eps.device) * grad_log_prob.double()).to(eps.dtype)",
            ),
            Edit(
                "guidance",
                _MEAN,
                "return torch.addcmul(mean, variance, grad_log_prob, value=scale)",
            ),
        ),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Alternative(
        "cfg_interleaved_batch",
        "one call of size 2B with conditional and unconditional rows interleaved, unpacked accordingly",
        (
            Edit(
                "guidance",
                "    eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), y=torch.cat([y, null]))  # (2B, ...)\n"
                "    eps_cond, eps_uncond = eps.chunk(2)\n",
                "    x_in = torch.stack([x_t, x_t], dim=1).flatten(0, 1)\n"
                "    t_in = torch.stack([t, t], dim=1).flatten(0, 1)\n"
                "    y_in = torch.stack([y, null], dim=1).flatten(0, 1)\n"
                "    eps = model(x_in, t_in, y=y_in)\n"
                "    eps_cond, eps_uncond = eps[0::2], eps[1::2]\n",
            ),
        ),
    ),
    Alternative(
        "cfg_convex_form",
        "(1 − s)·eps_u + s·eps_c",
        (
            Edit(
                "guidance",
                "return eps_uncond + guidance_scale * (eps_cond - eps_uncond)",
                "return (1 - guidance_scale) * eps_uncond + guidance_scale * eps_cond",
            ),
        ),
    ),
    Alternative(
        "drop_labels_bernoulli_clone",
        "Bernoulli(p) coins from the generator, masked assignment on a copy",
        (
            Edit(
                "guidance",
                "    drop = (torch.rand(y.shape, generator=generator) < p_uncond).to(y.device)\n"
                "    return torch.where(drop, torch.full_like(y, num_classes), y)\n",
                "    drop = torch.bernoulli(torch.full(y.shape, float(p_uncond)), generator=generator).bool().to(y.device)\n"
                "    out = y.clone()\n"
                "    out[drop] = num_classes\n"
                "    return out\n",
            ),
        ),
    ),
    Alternative(
        "classifier_guidance_addcmul",
        "both guided updates with torch.addcmul",
        (
            Edit(
                "guidance",
                "return mean + scale * variance * grad_log_prob",
                "return torch.addcmul(mean, variance, grad_log_prob, value=scale)",
            ),
            Edit(
                "guidance",
                "return eps - scale * extract((1 - schedule.alpha_bars).sqrt(), t, eps) * grad_log_prob",
                "sigma = extract((1 - schedule.alpha_bars).sqrt(), t, eps)\n"
                "    return torch.addcmul(eps, sigma, grad_log_prob, value=-scale)",
            ),
        ),
    ),
)
