"""The seeds of the checks' properties whose text changed after their examples were settled.

Every property runs with ``derandomize=True`` (:data:`~autograder.checks.framework.GRADING`), and Hypothesis then
seeds it with a hash of the property's source text: rewording a property (a failure message, a variable's name)
changes the examples it draws and, for a submission whose mistake shows on some inputs only, its verdict. A
property whose text changed but not what it checks is decorated with :func:`pinned_seed`, the seed its former
text gave it, so it draws the same examples as before.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import seed

SEEDS: dict[str, int] = {
    check: int(digest, 16)
    for check, digest in {
        "make_schedule_rejects_invalid_betas": (
            "62af02fd47f7fdaf22547dcb13ac8ee6ba29623dbf481b8f9705060fb642f352279d98c4295959550123785d5196e94f"
        ),
        "snr_formula": (
            "66f23bf17939b7374a654e4da327aca58ca757033c8cbe2db99babf229ef5c6470522aa76c959cf800859a4b7ddc8443"
        ),
        "composed_steps_match_closed_form": (
            "73ccfaf90211400e339d9b1657f49b7c943eb90f6573a58b654b92ff687da63bbbea8ae6e3a6a2de7dd4216fec36402d"
        ),
        "q_mean_variance_moments": (
            "5e69c2ea2de2a408f40f5c9f3c1cf8bb8037ec0154a917df70937b1e62245bc7aacaf7490354317e29a7615b480948bf"
        ),
        "posterior_log_variance_clipped": (
            "5fd7fdeff92301782ea8020dd76b7202e41f6d74ad23a08887b8177c1567510527c223efba288ed00deafabd0e744b99"
        ),
        "ddpm_loss_given_t_and_noise": (
            "1cac0edccab6316c3f8de3860a24d08b05c3cc6d86c83a7ede082bb7e5da7d33203fb2587942e92a574a88e00919cee5"
        ),
        "vlb_term_formula": (
            "bd5142bdf58066f24c37abbf7fd1a92c85da1b4761181a1274ffd79c2b9d8928be5e3489439dd4422ac45e1a522e8be7"
        ),
        "vlb_term_rejects_t0": (
            "e296b823d40b5587fb42ad2897924e56670ff446edac611e90095af829f92959aa38ad35ed923bfaef8479c6aae8fb62"
        ),
        "embedding_shape_dtype_bounds": (
            "b0d9a45e6405e5253cb45fa04f506c2dac7cf113b82ff2ff8c3a2f45859e1b831994c9f03c3aab0e2d02bd5389d9416a"
        ),
        "embedding_blocks_at_zero": (
            "074ab7ce0b1d8953b5144dcdd8b97c56742f7692f09ee06444000e2b29e17b9666909d71f9a41d3e3775993075af2184"
        ),
        "p_mean_variance_variances": (
            "49e6fdce1dd82e4a17b2a9c821c114625a97a4eeca9d29a486e85210dffff62384a30e726297806a93b1d355949c24a2"
        ),
        "p_mean_variance_model_kwargs": (
            "1cc4b276beb65b761d6196d0bb31fd0d313beb0a385c63a7b4f1d0a37c6569fd7589c050f1b3883efe5983fa6b017066"
        ),
        "p_sample_loop_bookkeeping": (
            "495b189b60a473b7d4f7d15171ed8f7b8ff4a27c034176c4cdd1b09ffd1681c2ef7ae41d54025c06f3fe2c7b6554abc1"
        ),
        "ddim_timesteps_spacings": (
            "dae83bb94d283421ba0402a89cc28129773f608ff77a525120b7e199b2335783766eee3e6399b3951e46c72572c30cec"
        ),
        "ddim_step_formula": (
            "a74e05fb3ec2823928adfbdd4ff7bb02de29d78a7cf3756539f259ea09d8b53ff1df7b5485bdab06d9d5926f589f2899"
        ),
        "ddim_step_clip_and_noise": (
            "ee59f1e0454a4d3f4e9d5b1fd20ce6338bac31f53f806886dd2226ae6f7f4887b7c368cdf9f0f7260613fb5b3ca01258"
        ),
        "ddim_invert_recurrence": (
            "bf8af525022620c25cd2bdb19894058cae0310c9c4237808771ef7fe8405e93bbbd5e9586a00d5afbe0165190bebb6c7"
        ),
        "ddim_loop_recovers_known_x0": (
            "718114884a584537d770d67028fdc560206d3f9986b38cd1efa36875e0d6695975badf95b4ff81be428289c4c07fddf2"
        ),
        "ddim_loop_bookkeeping": (
            "77fc41823eeef93ea3efdcff3b10dc1e14a9d58709454b07088eafe1f4d21bf57ad6d025fa55916c3cc43b8492c5eb1a"
        ),
        "drop_labels_contract": (
            "218c41ea681609926101a9fd28230b945e724c751b9e3428c1d09a7c50a5bc90c8b0440c2ba0d916b92335789c56cdbb"
        ),
        "cfg_eps_single_call": (
            "4d196cc1da8c4ba2e1f5e05bafc58db6f25beeef2c0f9fcd399be4c9737050bc0846450c9898b67e53da26259deb869a"
        ),
        "reparameterize_gradients": (
            "296b5e9d9bd96006a736aeb571fed8b3066f0a55ec6fa87ddcaf67c016a92acd765e6c52e0a5c4d7d8e5578cbab3b42e"
        ),
        "vae_loss_parts_and_weighting": (
            "31da7ff4f97f6038989ddb28b3e342569341f20b77cc799b62e832a2a37cdd1c012cf6e966f7ad439e60874020188de0"
        ),
        "latent_scale_factor_unit_variance": (
            "8499817357027aa149d94b66bdf1067dac38a78ca3b5212a408c958a2f460beeeb3a6c8d301d73d8f078c0b9aa3771a5"
        ),
        "cosine_betas_clipped": (
            "b820287227f88e71870367b54691d407e6a7a75c597591494cd67079bfa6e9352a1fd0e4f1ba0cad200958fb32f3a0bd"
        ),
        "embedding_odd_padding": (
            "6e5a5eacf36b85cc48268950c142de6138636a71957388a065b094db3e1a2022618b5c2a002136a204ccb43b9e851f9d"
        ),
        "linear_betas_formula": (
            "5def1f69a1799f5b0e9ebd89a7340a97e0762ade607993a5b391ac98627277e5c5808a349d440fa1be18e6f9022bcf66"
        ),
        "make_schedule_alpha_bars_prev": (
            "e4af2ce86639bdd091655ede0e19e251834254a268fc8abe30d9b56b824770cc90d4d1faeb22b181fa443763b5602033"
        ),
        "make_schedule_cumprod": (
            "f6d7f8d9481fd1b710b9d3e185adcff78fc063704612019b05884f064b4c8d187bfa45f9ef2e04a7df6bec2b3c4e9030"
        ),
        "p_mean_variance_clipping": (
            "0edf0724e639e90b105f6d740d11db0eb8b02100750967c9710879cc4d9e00b60834648b1b5fca1c5aacc8e6f7287e19"
        ),
        "scaled_linear_betas_formula": (
            "c04625419dc34b7572e67707776bd8770c5bc61d13e3958d17bae77d68cda86341faffc228cfe9cb4563871ef86900de"
        ),
        "posterior_mean_formula": (
            "3b27a67b7f43abf51c184e0774ebb39af68a6a51e81b5f4fddd41a127b9841b1f20b247232e6416eae456577d5b5c34d"
        ),
    }.items()
}
"""Check name → the seed of its property (the SHA-384 digest Hypothesis took of the property's former text)."""


def pinned_seed(check: str) -> Callable:
    """``@hypothesis.seed`` of the seed pinned for the property of ``check`` in :data:`SEEDS`."""
    return seed(SEEDS[check])
