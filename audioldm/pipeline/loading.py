"""Load an AudioLDM for generation, without Lightning: our ldm checkpoint (self-contained: the UNet,
its EMA, and the frozen VAE, CLAP and vocoder with the configs to rebuild them), an original
AudioLDM ``.ckpt`` or a diffusers AudioLDM folder (see ``audioldm/convert/``).
"""
from __future__ import annotations

import os

import torch

from audioldm.convert.ldm import load_ldm
from audioldm.models.latent_diffusion import LatentDiffusion


def load_latent_diffusion(path: str | os.PathLike, device: str | torch.device = "cpu", use_ema: bool = True,
                          vocoder_ckpt: str | os.PathLike | None = None, tokenizer: str | None = None,
                          head_channels: int | None = None) -> LatentDiffusion:
    """The model in eval mode with one UNet: the EMA weights (``use_ema``, when saved) or the raw
    ones. ``vocoder_ckpt`` (a vocoder in any layout) replaces the one the model came with;
    ``tokenizer`` is the RoBERTa tokenizer folder LAION-CLAP text weights need (original .ckpt);
    ``head_channels`` overrides the UNet attention head width inferred for an original .ckpt."""
    return load_ldm(path, device, use_ema, tokenizer, head_channels, vocoder_ckpt)
