"""Diffusion models from the equations up: the assignment's package.

Parts (one module each): 1 ``schedules``, 2 ``forward``, 3 ``posterior``, 4 ``losses``,
5 ``embedding``, 6 ``ddpm``, 7 ``ddim``, 8 ``guidance``, 9 ``vae``, 10 ``latent``. Provided: ``unet``, ``mlp``,
``data``, ``train``, ``plotting``, ``runtime``, ``experiment``.

Conventions: timesteps are 0-based indices (index ``t`` is the paper's step ``t + 1``); ``t`` is a
long tensor of shape ``(B,)``; data lives in [−1, 1]; schedules are float64.
"""

PARTS: tuple[str, ...] = (
    "schedules",
    "forward",
    "posterior",
    "losses",
    "embedding",
    "ddpm",
    "ddim",
    "guidance",
    "vae",
    "latent",
)
"""The graded parts in handout order; part ``i + 1`` is the module ``diffusion.<PARTS[i]>``."""
