"""Bug zoo of part 10 (latent diffusion): mistakes that must lose points, rewrites that must not."""

from __future__ import annotations

from autograder.zoo.edits import Alternative, Edit, Mutant

SCALE_FACTOR = "return 1.0 / latents.double().std().item()"
ENCODE = "mu, _ = self.vae.encode(x)\n        return self.scale_factor * mu"
DECODE = "return self.vae.decode(z / self.scale_factor)"


def latent(find: str, replace: str) -> Edit:
    return Edit("latent", find, replace)


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "scale_factor_inverted",
        "the scale factor is std(latents) instead of 1 / std(latents)",
        latent(SCALE_FACTOR, "return latents.double().std().item()"),
    ),
    Mutant(
        "scale_factor_of_variance",
        "the scale factor is 1 / variance instead of 1 / std",
        latent(SCALE_FACTOR, "return 1.0 / latents.double().var().item()"),
    ),
    Mutant(
        "scale_factor_root_mean_square",
        "the scale factor divides by the root mean square, not the standard deviation (the mean not removed)",
        latent(SCALE_FACTOR, "return 1.0 / latents.double().pow(2).mean().sqrt().item()"),
    ),
    Mutant(
        "scale_factor_per_channel",
        "one scale factor per latent channel instead of one for the whole set",
        latent(SCALE_FACTOR, "return 1.0 / latents.double().transpose(0, 1).flatten(1).std(dim=1)"),
    ),
    Mutant(
        "encode_divides_by_scale",
        "encode divides the VAE's mean by the scale factor (the scale applied the wrong way)",
        latent(ENCODE, "mu, _ = self.vae.encode(x)\n        return mu / self.scale_factor"),
    ),
    Mutant(
        "encode_samples_the_posterior",
        "encode samples z ~ q(z | x) instead of taking the mean",
        latent(
            ENCODE,
            "mu, logvar = self.vae.encode(x)\n"
            "        return self.scale_factor * (mu + torch.exp(0.5 * logvar) * torch.randn_like(mu))",
        ),
    ),
    Mutant(
        "decode_unscaled_latents",
        "decode hands the scaled latents to the VAE's decoder without undoing the scale",
        latent(DECODE, "return self.vae.decode(z)"),
    ),
    Mutant(
        "decode_scales_again",
        "decode multiplies by the scale factor instead of dividing",
        latent(DECODE, "return self.vae.decode(z * self.scale_factor)"),
    ),
    Mutant(
        "sample_skips_the_decoder_scale",
        "sample decodes with the VAE directly, skipping decode's unscaling",
        latent("return self.decode(z)\n", "return self.vae.decode(z)\n"),
    ),
    Mutant(
        "sample_without_guidance",
        "with labels, sample calls the conditional model directly: guidance_scale has no effect",
        latent(
            "model = guidance.guided_denoiser(self.model, guidance_scale, self.num_classes)",
            "model = self.model",
        ),
    ),
    Mutant(
        "sample_ignores_num_steps",
        "sample does not pass num_steps to DDIM (always its default step count)",
        latent("                num_steps=num_steps,\n", ""),
    ),
    Mutant(
        "sample_ignores_generator",
        "sample does not pass its generator on: samples are not reproducible",
        latent(
            "                num_steps=num_steps,\n                generator=generator,\n",
            "                num_steps=num_steps,\n",
        ),
    ),
    Mutant(
        "sample_seeds_global_rng",
        "sample seeds the global RNG first 'for reproducible images' (the samplers still draw from the generator)",
        latent("shape = (n, *self.latent_shape)\n", "torch.manual_seed(0)\n        shape = (n, *self.latent_shape)\n"),
    ),
    Mutant(
        "sampler_name_case_insensitive",
        "sample accepts 'DDPM' (any case) for the DDPM branch: an unknown sampler name is not refused",
        latent('elif sampler == "ddpm":', 'elif sampler.lower() == "ddpm":'),
    ),
    # Found by mutation testing (benchmarks/mutation_survivors.md):
    Mutant(
        "guidance_without_labels_refused_above_one_only",
        "guidance_scale > 1 without labels refused, but s < 1 (e.g. 0, the unconditional model) let through: the "
        "contract refuses every s ≠ 1 without y",
        latent("if y is None and guidance_scale != 1.0:", "if y is None and guidance_scale > 1.0:"),
    ),
    Mutant(
        "sampler_compared_by_identity",
        'sampler is "ddim" (identity) instead of == (equality): an equal name that is not the same str object, '
        "as any name decoded or built at run time, is refused",
        latent('if sampler == "ddim":', 'if sampler is "ddim":'),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Mutant(
        "scale_factor_tensor",
        "returned a 0-d tensor (computed in the latents' dtype), not a Python float",
        Edit(
            "latent",
            "return 1.0 / latents.double().std().item()",
            "return 1.0 / latents.std()",
        ),
    ),
    Mutant(
        "scale_factor_mean_of_channel_stds",
        "averaged per-channel standard deviations; the docstring asks for the std of the whole set",
        Edit(
            "latent",
            "return 1.0 / latents.double().std().item()",
            "return 1.0 / latents.double().std(dim=tuple(d for d in range(latents.dim()) if d != 1)).mean().item()",
        ),
    ),
    Mutant(
        "ddpm_branch_clips",
        "p_sample_loop's default clip_denoised=True clamps x̂0 of latents to [−1, 1]",
        Edit(
            "latent",
            "                clip_denoised=False,\n",
            "",
        ),
    ),
    Mutant(
        "ddim_branch_clips",
        "clipped x̂0 in the DDIM branch 'like for images'; latents are not confined to [−1, 1]",
        Edit(
            "latent",
            "                num_steps=num_steps,\n",
            "                num_steps=num_steps,\n                clip_denoised=True,\n",
        ),
    ),
    Mutant(
        "ddpm_branch_drops_generator",
        "generator= forwarded in the DDIM branch only: DDPM samples come from the global RNG",
        Edit(
            "latent",
            "                generator=generator,\n"
            "                device=self.device,\n"
            "                clip_denoised=False,\n",
            "                device=self.device,\n                clip_denoised=False,\n",
        ),
    ),
    Mutant(
        "no_raise_guidance_without_labels",
        "guidance without labels 'just does nothing'; the promised ValueError is missing",
        Edit(
            "latent",
            "        if y is None and guidance_scale != 1.0:\n"
            '            raise ValueError(f"guidance_scale={guidance_scale} needs labels y=; without y samples are unconditional")\n',
            "",
        ),
    ),
    Mutant(
        "no_raise_labels_without_num_classes",
        "did not check num_classes before guiding; the error is not the promised ValueError",
        Edit(
            "latent",
            "            if self.num_classes is None:\n"
            '                raise ValueError("y= needs a class-conditional model: build LatentDiffusion with num_classes=K")\n',
            "",
        ),
    ),
    Mutant(
        "no_raise_label_shape",
        "assumed y has one label per image; a wrong shape is not rejected with ValueError",
        Edit(
            "latent",
            "            if tuple(y.shape) != (n,):\n"
            '                raise ValueError(f"y must hold one label per image, shape ({n},); got {tuple(y.shape)}")\n',
            "",
        ),
    ),
    Mutant(
        "unknown_sampler_runs_ddpm",
        "'anything but ddim is ddpm': an unknown sampler name runs DDPM instead of raising",
        Edit(
            "latent",
            'elif sampler == "ddpm":',
            'elif sampler != "ddim":',
        ),
    ),
    Mutant(
        "start_noise_scaled_down",
        "'the latents are scaled, so the starting noise must be too': DDIM starts from N(0, 1/f²)",
        Edit(
            "latent",
            "                shape,\n                num_steps=num_steps,\n",
            "                shape,\n"
            "                noise=torch.randn(shape, generator=generator).to(self.device) / self.scale_factor,\n"
            "                num_steps=num_steps,\n",
        ),
    ),
)

ALTERNATIVES: tuple[Alternative, ...] = (
    Alternative(
        "latent_float32_factor",
        "the scale factor from the float32 std of the latents, 1 / torch.std(latents).item(); encode through "
        "encode()[0] (a 0-dim tensor factor is the mutant scale_factor_tensor: the docstring promises a float)",
        (
            latent(SCALE_FACTOR, "return 1.0 / torch.std(latents).item()"),
            latent(ENCODE, "return self.vae.encode(x)[0] * self.scale_factor"),
        ),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Alternative(
        "scale_factor_by_hand",
        "unbiased variance written out, f = 1/√variance",
        (
            Edit(
                "latent",
                "return 1.0 / latents.double().std().item()",
                "flat = latents.detach().double().flatten()\n"
                "    variance = ((flat - flat.mean()) ** 2).sum() / (flat.numel() - 1)\n"
                "    return float(variance.rsqrt())",
            ),
        ),
    ),
    Alternative(
        "sample_common_kwargs_and_early_sampler_check",
        "the sampler name checked first; the shared sampler arguments gathered in one dict",
        (
            Edit(
                "latent",
                "        if y is None and guidance_scale != 1.0:\n",
                '        if sampler not in ("ddim", "ddpm"):\n'
                '            raise ValueError(f"unknown sampler {sampler!r}")\n'
                "        if y is None and guidance_scale != 1.0:\n",
            ),
            Edit(
                "latent",
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
            Edit(
                "latent",
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
    ),
    Alternative(
        "decode_by_reciprocal",
        "z · (1/f) instead of z / f",
        (
            Edit(
                "latent",
                "return self.vae.decode(z / self.scale_factor)",
                "return self.vae.decode(z * (1.0 / self.scale_factor))",
            ),
        ),
    ),
)
