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
    # Loss = mean |x - x_hat| + kl_weight * KL_sum / N (N = number of mel elements): the two terms
    # keep the ratio of the summed latent-diffusion convention, whose default kl_weight is 1e-6.
    kl_weight: float = 1e-6
    # Hinge PatchGAN, switched on at disc_start generator steps; adaptive weight times disc_weight.
    disc_start: int = 50001
    disc_weight: float = 0.5
    disc_channels: int = 64
    disc_layers: int = 3
    betas: list[float] = field(default_factory=lambda: [0.5, 0.9])


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
