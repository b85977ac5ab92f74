"""Load a trained LDM checkpoint (ours: the UNet, its EMA, and the frozen VAE, CLAP and vocoder
with the configs to rebuild them) for generation, without Lightning or any other file.

State-dict layout of an ldm checkpoint: ``model.unet.*``, ``model.unet_ema.module.*`` (+
``model.unet_ema.num_updates``), ``model.vae.*``, ``model.clap.*``, ``model.vocoder.*``,
``model.scale_factor``, ``model.null_condition``; ``checkpoint["stage_configs"]`` holds the
frozen stages' training configs.
"""
from __future__ import annotations

import logging
import os

import torch
from omegaconf import OmegaConf

from audioldm.checkpoint import CheckpointError, checkpoint_stage, load_weights, read_checkpoint, sub_state_dict
from audioldm.config.loader import load_config_dict
from audioldm.models.frozen_stages import load_frozen
from audioldm.models.latent_diffusion import LatentDiffusion, build_latent_diffusion

log = logging.getLogger(__name__)


def load_latent_diffusion(path: str | os.PathLike, device: str | torch.device = "cpu", use_ema: bool = True,
                          vocoder_ckpt: str | os.PathLike | None = None) -> LatentDiffusion:
    """The model in eval mode with one UNet: the EMA weights (``use_ema``, when saved) or the raw
    ones. ``vocoder_ckpt`` (a vocoder stage checkpoint) replaces the vocoder the LDM was saved with."""
    checkpoint = read_checkpoint(path)
    checkpoint_stage(path, checkpoint, "ldm")
    if "stage_configs" not in checkpoint:
        raise CheckpointError(f"{path}: ldm checkpoint without 'stage_configs' "
                              f"(not written by this project's train.py)")
    config = load_config_dict(checkpoint["config"], source=str(path))
    mel = OmegaConf.to_object(config.audio)
    model = build_latent_diffusion(OmegaConf.to_object(config.model), mel, checkpoint["stage_configs"],
                                   with_ema=False)
    state = sub_state_dict(checkpoint["state_dict"], "model.")
    ema = sub_state_dict(state, "unet_ema.module.")
    state = {k: v for k, v in state.items() if not k.startswith("unet_ema.")}
    if use_ema and ema:
        state.update({f"unet.{k}": v for k, v in ema.items()})
    elif use_ema:
        log.warning("%s holds no EMA weights; using the raw UNet", path)
    load_weights(model, state, f"{path} (ldm)")
    if vocoder_ckpt:
        model.vocoder, config_dict, _ = load_frozen(vocoder_ckpt, "vocoder", mel)
        model.stage_configs = {**model.stage_configs, "vocoder": config_dict}
    return model.eval().to(device)
