"""Bug zoo of part 9 (the VAE): mistakes that must lose points, rewrites that must not."""

from __future__ import annotations

from autograder.zoo.edits import Alternative, Edit, Mutant

REPARAMETERIZE = "return mu + torch.exp(0.5 * logvar) * noise"
KL = "return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).flatten(1).sum(dim=1)"
RECON = "recon = ((x_recon - x) ** 2).flatten(1).sum(dim=1).mean()"
KL_MEAN = "kl = gaussian_kl(mu, logvar).mean()"


def vae(find: str, replace: str) -> Edit:
    return Edit("vae", find, replace)


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "reparameterize_logvar_as_std",
        "logvar used as the standard deviation in the reparameterisation (std vs logvar confusion)",
        vae(REPARAMETERIZE, "return mu + logvar * noise"),
    ),
    Mutant(
        "reparameterize_variance_as_std",
        "exp(logvar), the variance, used as the standard deviation (the ½ missing)",
        vae(REPARAMETERIZE, "return mu + torch.exp(logvar) * noise"),
    ),
    Mutant(
        "reparameterize_detached",
        "the sample detached from mu and logvar: no gradient reaches the encoder",
        vae(REPARAMETERIZE, "return (mu + torch.exp(0.5 * logvar) * noise).detach()"),
    ),
    Mutant(
        "reparameterize_std_detached",
        "σ computed from a detached logvar: the gradient reaches mu but not logvar",
        vae(REPARAMETERIZE, "return mu + torch.exp(0.5 * logvar.detach()) * noise"),
    ),
    Mutant(
        "reparameterize_ignores_noise",
        "torch.normal(mu, σ) draws its own noise: not the given noise, and no gradient",
        vae(REPARAMETERIZE, "return torch.normal(mu, torch.exp(0.5 * logvar))"),
    ),
    Mutant(
        "kl_missing_half",
        "the ½ of the KL to N(0, I) missing",
        vae(KL, "return (mu**2 + logvar.exp() - 1 - logvar).flatten(1).sum(dim=1)"),
    ),
    Mutant(
        "kl_std_for_variance",
        "the KL with the standard deviation exp(½·logvar) where the variance exp(logvar) belongs",
        vae(KL, "return 0.5 * (mu**2 + (0.5 * logvar).exp() - 1 - logvar).flatten(1).sum(dim=1)"),
    ),
    Mutant(
        "kl_sign_of_logvar",
        "+logvar where −logvar belongs in the KL",
        vae(KL, "return 0.5 * (mu**2 + logvar.exp() - 1 + logvar).flatten(1).sum(dim=1)"),
    ),
    Mutant(
        "kl_mean_over_dimensions",
        "the KL averaged over the latent dimensions instead of summed",
        vae(KL, "return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).flatten(1).mean(dim=1)"),
    ),
    Mutant(
        "kl_summed_over_batch",
        "vae_loss's KL summed over the batch instead of averaged",
        vae(KL_MEAN, "kl = gaussian_kl(mu, logvar).sum()"),
    ),
    Mutant(
        "recon_mean_over_pixels",
        "the reconstruction term as the mean squared error over pixels, not the per-sample sum",
        vae(RECON, "recon = ((x_recon - x) ** 2).mean()"),
    ),
    Mutant(
        "kl_weight_ignored",
        "vae_loss ignores kl_weight",
        vae('"loss": recon + kl_weight * kl', '"loss": recon + kl'),
    ),
    Mutant(
        "encode_mu_logvar_swapped",
        "encode takes the first half of the channels as logvar and the second as mu",
        vae("mu, logvar = self.encoder(x).chunk(2, dim=1)", "logvar, mu = self.encoder(x).chunk(2, dim=1)"),
    ),
    Mutant(
        "encode_chunk_count_is_latent_channels",
        "chunk(self.latent_channels) read as pieces of latent_channels channels, but torch.chunk's argument is the "
        "number of pieces: right only for 2 latent channels (mutation testing's chunk(3) behaves alike)",
        vae(
            "mu, logvar = self.encoder(x).chunk(2, dim=1)",
            "mu, logvar = self.encoder(x).chunk(self.latent_channels, dim=1)",
        ),
    ),
    Mutant(
        "decode_without_tanh",
        "decode returns the decoder's output without squashing it into [−1, 1]",
        vae("return torch.tanh(self.decoder(z))", "return self.decoder(z)"),
    ),
    Mutant(
        "forward_decodes_mean",
        "forward decodes mu instead of the reparameterised sample",
        vae("return self.decode(reparameterize(mu, logvar, noise)), mu, logvar", "return self.decode(mu), mu, logvar"),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Mutant(
        "reparameterize_detaches_sigma",
        "detached σ 'so the noise path does not backpropagate'; logvar gets no gradient",
        Edit(
            "vae",
            "return mu + torch.exp(0.5 * logvar) * noise",
            "return mu + torch.exp(0.5 * logvar).detach() * noise",
        ),
    ),
    Mutant(
        "recon_mean_over_elements",
        "F.mse_loss is the usual reconstruction loss; it averages over pixels too",
        Edit(
            "vae",
            "recon = ((x_recon - x) ** 2).flatten(1).sum(dim=1).mean()",
            "recon = torch.nn.functional.mse_loss(x_recon, x)",
        ),
    ),
    Mutant(
        "recon_summed_over_batch",
        "the sum of squared errors over everything, not averaged over the batch",
        Edit(
            "vae",
            "recon = ((x_recon - x) ** 2).flatten(1).sum(dim=1).mean()",
            "recon = ((x_recon - x) ** 2).sum()",
        ),
    ),
    Mutant(
        "reported_kl_is_weighted",
        "weighted the KL once up front; the reported kl is then the weighted one",
        Edit(
            "vae",
            "    kl = gaussian_kl(mu, logvar).mean()\n"
            '    return {"loss": recon + kl_weight * kl, "recon": recon, "kl": kl}\n',
            "    kl = kl_weight * gaussian_kl(mu, logvar).mean()\n"
            '    return {"loss": recon + kl, "recon": recon, "kl": kl}\n',
        ),
    ),
    Mutant(
        "decode_clamps_instead_of_tanh",
        "'squash into [−1, 1]' done with a clamp",
        Edit(
            "vae",
            "return torch.tanh(self.decoder(z))",
            "return self.decoder(z).clamp(-1, 1)",
        ),
    ),
    Mutant(
        "forward_ignores_given_noise",
        "always drew fresh noise; the noise= argument is ignored",
        Edit(
            "vae",
            "        if noise is None:\n            noise = torch.randn_like(mu)\n",
            "        noise = torch.randn_like(mu)\n",
        ),
    ),
)

ALTERNATIVES: tuple[Alternative, ...] = (
    Alternative(
        "vae_pytorch_example_style",
        "σ by logvar.mul(0.5).exp(); the KL as −½·Σ(1 + logvar − mu² − e^logvar) over explicit dimensions; "
        "recon by F.mse_loss(reduction='sum') / B; encode by slicing the channels",
        (
            vae(REPARAMETERIZE, "std = logvar.mul(0.5).exp()\n    return noise.mul(std).add(mu)"),
            vae(
                KL,
                "dims = tuple(range(1, mu.dim()))\n"
                "    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=dims)",
            ),
            vae(
                RECON,
                'recon = torch.nn.functional.mse_loss(x_recon, x, reduction="sum") / x.shape[0]',
            ),
            vae(
                "mu, logvar = self.encoder(x).chunk(2, dim=1)",
                "h = self.encoder(x)\n        mu, logvar = h[:, : self.latent_channels], h[:, self.latent_channels :]",
            ),
        ),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Alternative(
        "kl_kingma_form_reshape",
        "Kingma & Welling's −½ Σ (1 + log σ² − μ² − σ²)",
        (
            Edit(
                "vae",
                "return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).flatten(1).sum(dim=1)",
                "return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).reshape(mu.shape[0], -1).sum(dim=1)",
            ),
        ),
    ),
    Alternative(
        "vae_loss_sum_reductions_over_batch",
        "total sums divided by the batch size",
        (
            Edit(
                "vae",
                "    recon = ((x_recon - x) ** 2).flatten(1).sum(dim=1).mean()\n"
                "    kl = gaussian_kl(mu, logvar).mean()\n",
                "    batch = x.shape[0]\n"
                '    recon = torch.nn.functional.mse_loss(x_recon, x, reduction="sum") / batch\n'
                "    kl = gaussian_kl(mu, logvar).sum() / batch\n",
            ),
        ),
    ),
    Alternative(
        "encode_by_slicing_reparameterize_sqrt",
        "split by slicing with latent_channels; σ = exp(logvar/2) written with mul",
        (
            Edit(
                "vae",
                "        mu, logvar = self.encoder(x).chunk(2, dim=1)\n        return mu, logvar\n",
                "        h = self.encoder(x)\n"
                "        return h[:, : self.latent_channels], h[:, self.latent_channels :]\n",
            ),
            Edit(
                "vae",
                "return mu + torch.exp(0.5 * logvar) * noise",
                "return mu + noise * logvar.mul(0.5).exp()",
            ),
        ),
    ),
)
