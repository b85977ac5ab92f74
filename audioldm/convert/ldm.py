"""A whole AudioLDM (UNet with its EMA, VAE, CLAP, vocoder, ``scale_factor``) from any layout:
our ldm checkpoint, an original AudioLDM ``.ckpt`` or a diffusers AudioLDM folder.

    model = load_ldm("audioldm-s-full.ckpt", tokenizer="roberta-base/")   # EMA weights when present
    weights = read_ldm("cvssp-audioldm-s-full-v2/")                       # both UNet weight sets

Where the UNet is found: ours ``model.unet.*`` (EMA ``model.unet_ema.module.*``); audioldm
``model.diffusion_model.*`` (EMA ``model_ema.*``, names without dots); diffusers ``unet/`` (one set).
The frozen stages come from the same source (``stages.py``) unless ``clap``/``vocoder`` name another.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from omegaconf import OmegaConf

from audioldm.audio.mel import MelConfig
from audioldm.checkpoint import CheckpointError, load_weights, sub_state_dict
from audioldm.config.loader import load_config_dict
from audioldm.convert.keymap import expected_state, map_keys
from audioldm.convert.layouts import Source, read_folder_weights, read_json, read_source
from audioldm.convert.stages import as_source, load_stage_network
from audioldm.diffusion.schedule import PREDICTION_TYPES
from audioldm.models.ema import EmaModel
from audioldm.models.frozen_stages import build_frozen
from audioldm.models.latent_diffusion import LatentDiffusion
from audioldm.models.unet import UnetConfig, build_unet

log = logging.getLogger(__name__)


@dataclass
class LdmWeights:
    """Everything read from one source; ``ema`` is None when the source holds one UNet weight set."""

    path: str
    layout: str
    mel: MelConfig
    unet_config: UnetConfig
    unet: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None
    frozen: dict[str, nn.Module]  # vae, clap, vocoder
    stage_configs: dict[str, Any]
    scale_factor: torch.Tensor


def unet_config_from_diffusers(folder: Path) -> UnetConfig:
    """Our UnetConfig from a diffusers UNet2DConditionModel config; refuses UNets not in AudioLDM's form."""
    c = read_json(folder / "config.json")
    channels = list(c["block_out_channels"])
    levels = len(channels)
    expected = {
        "down_block_types": ["DownBlock2D"] + ["CrossAttnDownBlock2D"] * (levels - 1),
        "up_block_types": ["CrossAttnUpBlock2D"] * (levels - 1) + ["UpBlock2D"],
        "class_embed_type": "simple_projection", "class_embeddings_concat": True,
        "flip_sin_to_cos": True, "freq_shift": 0, "transformer_layers_per_block": 1,
    }
    wrong = [f"{k}={c.get(k)!r} (AudioLDM: {v!r})" for k, v in expected.items()
             if k in c and (list(c[k]) if isinstance(c[k], (list, tuple)) else c[k]) != v]
    if wrong or any(ch % channels[0] for ch in channels):
        raise CheckpointError(f"{folder}: not a UNet in AudioLDM's form ({'; '.join(wrong) or f'channels {channels}'})")
    prediction = c.get("prediction_type", "epsilon")  # our exports record it on the UNet and the scheduler
    scheduler = folder.parent / "scheduler" / "scheduler_config.json"
    if scheduler.is_file():
        prediction = read_json(scheduler).get("prediction_type", prediction)
    if prediction not in PREDICTION_TYPES:
        raise CheckpointError(f"{scheduler}: prediction_type {prediction!r} is not supported "
                              f"(one of {', '.join(PREDICTION_TYPES)})")
    heads = c.get("num_attention_heads") or c.get("attention_head_dim") or 8
    heads = [heads] * levels if isinstance(heads, int) else list(heads)
    return UnetConfig(model_channels=channels[0], channel_mult=[ch // channels[0] for ch in channels],
                      layers_per_block=c.get("layers_per_block", 2), latent_channels=c.get("in_channels", 8),
                      condition_dim=c["projection_class_embeddings_input_dim"], attention_heads=heads,
                      resnet_time_scale_shift=c.get("resnet_time_scale_shift", "default"),
                      guidance_embed_dim=c.get("time_cond_proj_dim"), prediction_type=prediction)


def _read_unet(src: Source, head_channels: int | None) -> tuple[UnetConfig, dict, dict | None]:
    if src.layout == "ours":
        config = load_config_dict(src.raw["config"], source=src.path)
        unet_config = OmegaConf.to_object(config.model).unet
        ema = sub_state_dict(src.state, "model.unet_ema.module.") or None
        return unet_config, sub_state_dict(src.state, "model.unet."), ema
    if src.layout == "audioldm":
        from audioldm.convert.original_unet import unet_from_original, unflatten_ema_keys

        raw = sub_state_dict(src.state, "model.diffusion_model.")
        unet_config, unet = unet_from_original(raw, head_channels)
        ema_flat = {k: v for k, v in sub_state_dict(src.state, "model_ema.").items()
                    if k not in ("num_updates", "decay")}
        ema = unet_from_original(unflatten_ema_keys(ema_flat, raw.keys()), head_channels)[1] if ema_flat else None
        return unet_config, unet, ema
    if src.layout == "diffusers":
        folder = src.folder / "unet"
        return unet_config_from_diffusers(folder), read_folder_weights(folder), None
    raise CheckpointError(f"{src.path}: a '{src.layout}' source is not a whole AudioLDM (it holds no UNet); "
                          f"use an ldm checkpoint, an original AudioLDM .ckpt or a diffusers AudioLDM folder")


def read_ldm(path: str | os.PathLike, tokenizer: str | None = None, head_channels: int | None = None,
             clap: str | os.PathLike | None = None, vocoder: str | os.PathLike | None = None) -> LdmWeights:
    """Read every part of an AudioLDM from ``path``; ``clap``/``vocoder`` (any layout) replace those stages."""
    src = read_source(path)
    if src.layout == "ours" and src.raw.get("stage") not in ("ldm", "lcm"):
        raise CheckpointError(f"{path}: is a '{src.raw.get('stage')}' checkpoint, expected 'ldm' (or 'lcm')")
    unet_config, unet, ema = _read_unet(src, head_channels)
    if src.layout != "audioldm":  # unet_from_original has checked an original file's keys already
        check_unet_weights(unet_config, unet, f"{path} (unet)")
        if ema is not None:
            check_unet_weights(unet_config, ema, f"{path} (unet EMA)")
    mel = MelConfig(**src.raw["config"]["audio"]) if src.layout == "ours" else MelConfig()
    frozen, stage_configs, extra = {}, {}, {}
    for stage, other in (("vae", None), ("clap", clap), ("vocoder", vocoder)):
        part = as_source(other) if other else src
        if stage == "vocoder" and part is src and src.layout == "ours" and not src.raw["stage_configs"].get("vocoder"):
            frozen[stage], stage_configs[stage] = build_frozen("vocoder", None, mel), None
            continue
        frozen[stage], stage_configs[stage], more = load_stage_network(part, stage, mel, tokenizer)
        extra.update(more)
    return LdmWeights(str(path), src.layout, mel, unet_config, unet, ema, frozen, stage_configs, extra["scale_factor"])


def check_unet_weights(config: UnetConfig, state: dict[str, torch.Tensor], where: str) -> None:
    """Raise ``CheckpointError`` listing missing, unexpected or mis-shaped keys (checked on the meta device,
    without allocating the UNet)."""
    expected = expected_state(lambda: build_unet(config), where, config)
    map_keys(state, expected, lambda k: k, lambda k: k, where, config, "the UNet's layout")


def to_latent_diffusion(weights: LdmWeights, use_ema: bool = True, with_ema: bool = False) -> LatentDiffusion:
    """The model with one UNet weight set (EMA when ``use_ema`` and present), or, with ``with_ema``,
    the raw UNet plus an EmaModel holding the EMA set (the raw set when the source has one)."""
    unet = build_unet(weights.unet_config)
    chosen = weights.ema if (use_ema and weights.ema is not None and not with_ema) else weights.unet
    if use_ema and weights.ema is None and not with_ema and weights.layout == "ours":
        log.warning("%s holds no EMA weights; using the raw UNet", weights.path)
    load_weights(unet, chosen, f"{weights.path} (unet)")
    ema = None
    if with_ema:
        ema = EmaModel(unet)
        load_weights(ema.module, weights.ema if weights.ema is not None else weights.unet, f"{weights.path} (ema)")
    f = weights.frozen
    model = LatentDiffusion(unet, f["vae"], f["clap"], f["vocoder"], weights.mel, weights.stage_configs, ema)
    model.scale_factor.copy_(weights.scale_factor)
    model.set_null_condition()
    return model


def load_ldm(path: str | os.PathLike, device: str | torch.device = "cpu", use_ema: bool = True,
             tokenizer: str | None = None, head_channels: int | None = None,
             vocoder_ckpt: str | os.PathLike | None = None) -> LatentDiffusion:
    """An AudioLDM in eval mode from any layout, ready for ``TextToAudio``."""
    weights = read_ldm(path, tokenizer, head_channels, vocoder=vocoder_ckpt)
    return to_latent_diffusion(weights, use_ema).eval().to(device)
