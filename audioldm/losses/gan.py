"""GAN losses: hinge (the VAE's PatchGAN) and least-squares + feature matching (HiFi-GAN).

The HiFi-GAN losses take lists with one entry per sub-discriminator and sum over them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """0.5 * (mean relu(1 - D(real)) + mean relu(1 + D(fake)))."""
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def hinge_g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """-mean D(fake)."""
    return -logits_fake.mean()


def lsgan_d_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """sum_k mean (1 - D_k(real))^2 + mean D_k(fake)^2."""
    return sum(((1 - r) ** 2).mean() + (f**2).mean() for r, f in zip(real, fake))


def lsgan_g_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    """sum_k mean (1 - D_k(fake))^2."""
    return sum(((1 - f) ** 2).mean() for f in fake)


def feature_matching_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """sum over discriminators and layers of mean |F(real) - F(fake)| (real features detached)."""
    return sum((r.detach() - f).abs().mean() for rs, fs in zip(real, fake) for r, f in zip(rs, fs))
