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
)

ALTERNATIVES: tuple[Alternative, ...] = (
    Alternative(
        "latent_float32_and_tensor_factor",
        "the scale factor as a 0-dim float32 tensor 1 / torch.std(latents); encode through encode()[0]",
        (
            latent(SCALE_FACTOR, "return 1.0 / torch.std(latents)"),
            latent(ENCODE, "return self.vae.encode(x)[0] * self.scale_factor"),
        ),
    ),
)
