"""The Fréchet distance between two sets of features, each summarised by a Gaussian (Heusel et al. 2017).

For ``N(μ₁, Σ₁)`` and ``N(μ₂, Σ₂)``:

    FD = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½,

the squared 2-Wasserstein distance between the two Gaussians. ``tr (Σ₁^½ Σ₂ Σ₁^½)^½`` equals
``tr (Σ₁ Σ₂)^½`` (the matrices are similar), but the symmetric form is positive semi-definite, so
both square roots come from :func:`torch.linalg.eigh` with no complex arithmetic. Everything is float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Gaussian:
    """The mean ``(D,)`` and covariance ``(D, D)`` of a set of features, float64 on the CPU."""

    mean: torch.Tensor
    covariance: torch.Tensor

    @classmethod
    def fit(cls, features: torch.Tensor) -> Gaussian:
        """The sample mean and unbiased covariance ``Σ = (F − μ)ᵀ (F − μ) / (N − 1)`` of ``features`` ``(N, D)``."""
        if features.dim() != 2 or features.shape[0] < 2:
            raise ValueError(f"need features of shape (N, D) with N >= 2; got {tuple(features.shape)}")
        f = features.detach().to(device="cpu", dtype=torch.float64)
        return cls(f.mean(dim=0), torch.cov(f.T).reshape(f.shape[1], f.shape[1]))


def sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite ``a`` ``(D, D)``: ``V diag(√λ) Vᵀ``.

    Eigenvalues below zero (rounding) are taken as zero.
    """
    eigenvalues, eigenvectors = torch.linalg.eigh(a)
    return (eigenvectors * eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T


def frechet_distance(p: Gaussian, q: Gaussian) -> float:
    """``‖μ_p − μ_q‖² + tr Σ_p + tr Σ_q − 2 tr (Σ_p^½ Σ_q Σ_p^½)^½``, a float ≥ 0 (up to rounding)."""
    root = sqrtm_psd(p.covariance)
    middle = root @ q.covariance @ root  # (D, D), symmetric PSD
    cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()  # tr (Σ_p^½ Σ_q Σ_p^½)^½
    squared_mean = (p.mean - q.mean).square().sum()
    return float(squared_mean + p.covariance.trace() + q.covariance.trace() - 2 * cross)
