"""Classifier-free guidance with the conditional and unconditional predictions in one batch."""

from __future__ import annotations

from typing import Callable

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def guided_noise(
    denoiser: Denoiser,
    latent: torch.Tensor,
    t: torch.Tensor,
    condition: torch.Tensor,
    null_condition: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """e_u + scale * (e_c - e_u), with one denoiser call on the doubled batch.

    latent [B, ...], t [B] (or scalar), condition [B, ...] (FiLM [B, D] or packed tokens [B, L, W + 1]),
    null_condition one condition [...] or [B, ...].
    ``scale`` 1 returns the conditional prediction alone (and skips the unconditional half).
    """
    if scale == 1.0:
        return denoiser(latent, t.expand(latent.shape[0]) if t.dim() == 0 else t, condition)
    batch = latent.shape[0]
    t = t.expand(batch) if t.dim() == 0 else t
    null = expand_null(null_condition, condition)
    both = denoiser(torch.cat([latent, latent]), torch.cat([t, t]), torch.cat([condition, null.to(condition)]))
    e_c, e_u = both.chunk(2)
    return e_u + scale * (e_c - e_u)


def expand_null(null_condition: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """The null condition [...] (or already [B, ...]) as a batch shaped like ``condition`` [B, ...]."""
    null = null_condition.to(condition)
    return null.expand(condition.shape[0], *null.shape) if null.dim() < condition.dim() else null
