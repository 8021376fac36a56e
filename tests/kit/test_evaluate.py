"""The provided harness job, diffusion.evaluate.run_plan, in-process on the reference at a tiny size."""

from __future__ import annotations

import pytest
import torch

from diffusion import ddim, evaluate

TINY = {"n_train": 256, "T": 20, "schedule": "cosine", "width": 16, "train_steps": 20, "batch_size": 16,
        "n_samples": 12, "ddim": ((5, 0.0), (5, 1.0)), "guidance_scales": (2.0,), "guidance_steps": 5,
        "losses_every": 5, "threads": 1}  # fmt: skip


def test_a_mixture_plan_trains_and_runs_every_sampler():
    report = evaluate.run_plan(TINY)
    assert report["train"]["error"] is None and len(report["train"]["losses"]) == 4
    assert set(report["runs"]) == {"ddpm", "ddim_5_0", "ddim_5_1", "cfg_2"}
    for run in report["runs"].values():
        assert run["samples"].shape == (12, 2) and run["seconds"] > 0
    assert torch.equal(report["labels"], torch.arange(12) % 8)


def test_a_latent_plan_trains_the_vae_samples_latents_and_decodes_them():
    plan = {**TINY, "data": "shapes16", "latent": True, "vae_steps": 10, "vae_width": 8, "ddpm": False}
    report = evaluate.run_plan(plan)
    assert report["train"]["error"] is None
    vae = report["vae"]
    assert vae["reconstructions"].shape == vae["inputs"].shape == (12, 1, 16, 16)
    assert vae["scale_factor"] > 0 and vae["recon_error"] >= 0
    assert report["runs"]["ddim_5_0"]["samples"].shape == (12, 1, 16, 16)


def test_a_deeper_unet_in_bfloat16_autocast_trains_and_samples_float32():
    plan = {**TINY, "data": "shapes16", "channel_mults": (1, 2, 2), "num_res_blocks": 2, "dropout": 0.1,
            "attention": True, "mixed_precision": True, "ddpm": False}  # fmt: skip
    plan_, device, dataset, report = evaluate.prepare(plan)
    trained = evaluate.train_phase(plan_, dataset, device, report)
    assert report["train"]["error"] is None and isinstance(trained.model, evaluate.Autocast)
    with torch.no_grad():
        eps = trained.model(torch.zeros(2, 1, 16, 16), torch.tensor([0, 5]), y=torch.tensor([0, 1]))
    assert eps.dtype == torch.float32 and trained.model.num_classes == dataset.num_classes
    evaluate.sample_phase(plan_, trained, device, report)
    assert report["runs"]["ddim_5_0"]["samples"].shape == (12, 1, 16, 16)


def test_a_failing_sampler_is_reported_and_the_others_run(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a broken sampler")

    monkeypatch.setattr(ddim, "ddim_sample_loop", broken)
    report = evaluate.run_plan({**TINY, "guidance_scales": ()})
    assert report["runs"]["ddim_5_0"]["error"].startswith("RuntimeError: a broken sampler")
    assert report["runs"]["ddpm"]["samples"].shape == (12, 2)


def test_a_bad_plan_is_refused_with_what_is_wrong():
    with pytest.raises(ValueError, match="schedule must be 'linear' or 'cosine'"):
        evaluate.run_plan({"schedule": "quadratic"})
