"""Bug zoo of part 5 (embedding): mistakes in the sinusoidal timestep embedding that must lose points, rewrites that must not."""

from __future__ import annotations

from autograder.zoo.edits import Alternative, Edit, Mutant

HALF = "half = dim // 2"
FREQS = "freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)"
ARGS = "args = t.float()[:, None] * freqs[None, :]  # (B, half)"
CAT = "emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)"
PAD = "emb = torch.nn.functional.pad(emb, (0, 1))"
BODY = f"""    {HALF}
    {FREQS}
    {ARGS}
    {CAT}
    if dim % 2:
        {PAD}
    return emb
"""


def freqs(replace: str) -> Edit:
    return Edit("embedding", FREQS, replace)


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "embedding_cos_first",
        "the cos block before the sin block: cat[cos(t·freqs), sin(t·freqs)]",
        Edit("embedding", CAT, "emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)"),
    ),
    Mutant(
        "embedding_interleaved",
        "sin and cos interleaved (sin, cos, sin, cos, ...) instead of a sin block then a cos block",
        Edit("embedding", CAT, "emb = torch.stack([torch.sin(args), torch.cos(args)], dim=2).flatten(1)"),
    ),
    Mutant(
        "embedding_freqs_half_minus_one",
        "freqs_i = max_period^(−i/(half − 1)) (the last frequency exactly 1/max_period) instead of max_period^(−i/half)",
        freqs(
            "freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / (half - 1))"
        ),
    ),
    Mutant(
        "embedding_freqs_over_dim",
        "freqs_i = max_period^(−i/dim): the exponent divided by dim instead of half",
        freqs(
            "freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / dim)"
        ),
    ),
    Mutant(
        "embedding_freqs_positive_exponent",
        "freqs_i = max_period^(+i/half): the minus sign of the exponent dropped (periods shrink instead of grow)",
        freqs(
            "freqs = torch.exp(math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)"
        ),
    ),
    Mutant(
        "embedding_freqs_from_one",
        "i runs over 1..half instead of 0..half−1 (arange(1, half + 1)): no frequency 1",
        freqs(
            "freqs = torch.exp(-math.log(max_period) * torch.arange(1, half + 1, dtype=torch.float32, device=t.device) / half)"
        ),
    ),
    Mutant(
        "embedding_log10",
        "log₁₀(max_period) where the natural log ln(max_period) belongs",
        freqs(
            "freqs = torch.exp(-math.log10(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)"
        ),
    ),
    Mutant(
        "embedding_max_period_hard_coded",
        "max_period hard-coded to 10000: the argument ignored",
        freqs("freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)"),
    ),
    Mutant(
        "embedding_half_ceil",
        "half = ⌈dim/2⌉ instead of ⌊dim/2⌋: an odd dim gets one sine and one cosine too many",
        Edit("embedding", f"{HALF}\n    freqs =", "half = math.ceil(dim / 2)\n    freqs ="),
    ),
    Mutant(
        "embedding_odd_not_padded",
        "an odd dim not padded: dim − 1 columns",
        Edit("embedding", PAD, "pass"),
    ),
    Mutant(
        "embedding_padded_at_front",
        "the zero column of an odd dim prepended instead of appended",
        Edit("embedding", PAD, "emb = torch.nn.functional.pad(emb, (1, 0))"),
    ),
    Mutant(
        "embedding_t_not_cast",
        "t not cast to float: a float64 t promotes the embedding to float64",
        Edit("embedding", ARGS, "args = t[:, None] * freqs[None, :]  # (B, half)"),
    ),
    Mutant(
        "embedding_float64_output",
        "computed and returned in float64 instead of float32",
        Edit("embedding", ARGS, "args = t.double()[:, None] * freqs[None, :]  # (B, half)"),
    ),
    Mutant(
        "embedding_t_rescaled",
        "t divided by T = 1000 first (a [0, 1] time) instead of the raw timestep index",
        Edit("embedding", ARGS, "args = (t.float() / 1000)[:, None] * freqs[None, :]  # (B, half)"),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Mutant(
        "odd_dim_not_padded",
        "only ever used even widths; an odd dim returns dim − 1 columns",
        Edit(
            "embedding",
            "    if dim % 2:\n        emb = torch.nn.functional.pad(emb, (0, 1))\n",
            "",
        ),
    ),
)

ALTERNATIVES: tuple[Alternative, ...] = (
    Alternative(
        "embedding_outer_float64",
        "frequencies max_period^(−i/half) and torch.outer in float64, zeros concatenated for odd dim, cast to float32 at the end",
        (
            Edit(
                "embedding",
                BODY,
                "    half = dim // 2\n"
                "    i = torch.arange(half, dtype=torch.float64, device=t.device)\n"
                "    angles = torch.outer(t.to(torch.float64), float(max_period) ** (-i / half))\n"
                "    parts = [angles.sin(), angles.cos()]\n"
                "    if dim % 2 == 1:\n"
                "        parts.append(torch.zeros(len(t), 1, dtype=torch.float64, device=t.device))\n"
                "    return torch.cat(parts, dim=-1).float()\n",
            ),
        ),
    ),
    Alternative(
        "embedding_einsum_preallocated",
        "angles by einsum, written into a preallocated zero (B, dim) float32 tensor, sines then cosines",
        (
            Edit(
                "embedding",
                BODY,
                "    half = dim // 2\n"
                "    freqs = torch.exp(torch.arange(half, device=t.device) * (-math.log(max_period) / half))\n"
                '    angles = torch.einsum("b,h->bh", t.to(torch.float32), freqs.to(torch.float32))\n'
                "    emb = torch.zeros(t.shape[0], dim, device=t.device)\n"
                "    emb[:, :half] = torch.sin(angles)\n"
                "    emb[:, half : 2 * half] = torch.cos(angles)\n"
                "    return emb\n",
            ),
        ),
    ),
    # From the blind zoo (benchmarks/blind/entries.py), written from the student material alone:
    Alternative(
        "freqs_by_pow",
        "max_period^(−i/half) instead of exp(−ln(max_period) · i/half)",
        (
            Edit(
                "embedding",
                "freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)",
                "freqs = max_period ** (-torch.arange(half, dtype=torch.float32, device=t.device) / half)",
            ),
        ),
    ),
    Alternative(
        "float64_inside_outer_and_cat_padding",
        "float64 inside then cast to float32, torch.outer, the odd column appended as zeros",
        (
            Edit(
                "embedding",
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
    ),
)
