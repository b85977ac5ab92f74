"""The mel VAE: diffusers ``AutoencoderKL`` in AudioLDM's shape (plain torch, no Lightning).

AudioLDM: 1 input/output channel (the log-mel as an image [B, 1, T, F]), ch 128 with
multipliers [1, 2, 4] -> block_out_channels (128, 256, 512), 2 res blocks per level,
8 latent channels; two downsamplings give a 4x smaller latent: [B, 8, T/4, F/4].
"""
from __future__ import annotations

from dataclasses import dataclass, field

from diffusers import AutoencoderKL


@dataclass
class VaeConfig:
    """Network shape and loss weights of the mel VAE (``model:`` section of a vae config)."""

    block_out_channels: list[int] = field(default_factory=lambda: [128, 256, 512])
    layers_per_block: int = 2
    latent_channels: int = 8
    norm_num_groups: int = 32
    # Loss = mean |x - x_hat| + kl_weight * KL_sum / N, N = number of mel elements: the ratio of
    # the two terms is that of the summed form (sum |x - x_hat| + kl_weight * KL_sum).
    kl_weight: float = 1e-6


def build_autoencoder(config: VaeConfig) -> AutoencoderKL:
    """AutoencoderKL mapping [B, 1, T, F] <-> [B, latent_channels, T / 2^(L-1), F / 2^(L-1)]."""
    levels = len(config.block_out_channels)
    return AutoencoderKL(
        in_channels=1,
        out_channels=1,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(config.block_out_channels),
        layers_per_block=config.layers_per_block,
        latent_channels=config.latent_channels,
        norm_num_groups=config.norm_num_groups,
    )


def downsample_factor(config: VaeConfig) -> int:
    return 2 ** (len(config.block_out_channels) - 1)
