"""Write converted weights: our checkpoint format (what train.py writes, so ``generate.py``,
``evaluate.py``, ``model.*_ckpt`` and ``init_from`` read it) or the diffusers AudioLDM folder.

Our ldm checkpoint: ``config`` (an ldm experiment config whose ``model.unet`` rebuilds the UNet),
``stage: ldm``, ``state_dict`` with ``model.unet.*`` (raw weights), ``model.unet_ema.module.*`` (EMA;
the raw set again when the source has one), ``model.vae.*``, ``model.clap.*``, ``model.vocoder.*``,
``model.scale_factor``, ``model.null_condition``; ``stage_configs`` for the frozen stages.
Our stage checkpoint: ``config``, ``stage``, ``state_dict`` with ``vae.*`` + ``scale_factor``,
``embedder.*`` (CLAP) or ``vocoder.*``. Files are written to ``<path>.tmp`` and renamed.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn

from audioldm.checkpoint import CheckpointError, save_atomic
from audioldm.convert.ldm import LdmWeights, to_latent_diffusion
from audioldm.convert.stages import OURS_PREFIX, stage_config
from audioldm.diffusion.schedule import make_scheduler
from audioldm.models.latent_diffusion import LatentDiffusion, LdmConfig


def ldm_experiment_config(weights: LdmWeights) -> dict:
    """An ldm config that rebuilds these networks (frozen stages come from ``stage_configs``)."""
    model = LdmConfig(unet=weights.unet_config, vae_ckpt=None, clap_ckpt=None, vocoder_ckpt=None)
    return stage_config("ldm", model, weights.mel, weights.path)


def save_ours_ldm(weights: LdmWeights, path: str | os.PathLike) -> None:
    model = to_latent_diffusion(weights, with_ema=True)
    save_atomic({"config": ldm_experiment_config(weights), "stage": "ldm",
                 "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                 "stage_configs": weights.stage_configs, "converted_from": str(weights.path)}, path)


def save_ours_stage(stage: str, network: nn.Module, config: dict, path: str | os.PathLike,
                    scale_factor: torch.Tensor | None = None) -> None:
    state = {f"{OURS_PREFIX[stage]}{k}": v for k, v in network.state_dict().items()}
    if stage == "vae":
        state["scale_factor"] = torch.as_tensor(scale_factor, dtype=torch.float32).reshape(())
    save_atomic({"config": config, "stage": stage, "state_dict": state, "converted_from": config["name"]}, path)


def save_diffusers(model: LatentDiffusion, folder: str | os.PathLike) -> None:
    """The diffusers AudioLDM folder (``AudioLDMPipeline.save_pretrained``): unet/, vae/ (scaling_factor
    = our ``scale_factor``), vocoder/, text_encoder/ (ClapTextModelWithProjection), tokenizer/, scheduler/."""
    from diffusers import AudioLDMPipeline
    from transformers import AutoTokenizer, ClapTextModelWithProjection

    tokenizer_path = model.clap.config.tokenizer_path
    if not tokenizer_path:
        raise CheckpointError("the diffusers layout needs a RoBERTa tokenizer folder; this CLAP uses open_clip's BPE "
                              "tokenizer (model.tokenizer_path unset), which diffusers' AudioLDMPipeline cannot load")
    if not isinstance(model.vocoder, nn.Module) or not hasattr(model.vocoder, "generator"):
        raise CheckpointError(f"the diffusers layout needs a HiFi-GAN vocoder; this model uses "
                              f"{type(model.vocoder).__name__} (model.generator other than hifigan, or Griffin-Lim)")
    clap = model.clap.model
    text_encoder = ClapTextModelWithProjection(clap.config.text_config)
    text_encoder.load_state_dict({k: v for k, v in clap.state_dict().items()
                                  if k.startswith(("text_model.", "text_projection."))}, strict=True)
    model.vae.register_to_config(scaling_factor=float(model.scale_factor))
    pipe = AudioLDMPipeline(vae=model.vae, text_encoder=text_encoder.eval(),
                            tokenizer=AutoTokenizer.from_pretrained(tokenizer_path, local_files_only=True),
                            unet=model.unet, scheduler=make_scheduler("ddim"), vocoder=model.vocoder.generator)
    tmp = Path(f"{folder}.tmp")
    pipe.save_pretrained(str(tmp))
    if Path(folder).exists():
        raise CheckpointError(f"{folder}: already exists; choose a new output folder")
    os.replace(tmp, folder)
