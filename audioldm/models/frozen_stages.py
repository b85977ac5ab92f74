"""The LDM's frozen stages (VAE, CLAP, vocoder), built from their training configs, without Lightning
(``audioldm.convert.stages`` loads their weights from any layout).

Each stage is described by the experiment config its checkpoint carries (a plain dict), so an LDM
checkpoint that stores these dicts can rebuild the exact networks without the original files.
State-dict prefixes in a stage checkpoint: ``vae.`` + ``scale_factor`` (VAE), ``embedder.``
(CLAP), ``vocoder.`` (HiFi-GAN).
"""
from __future__ import annotations

import hashlib
from typing import Any

import torch.nn as nn
from omegaconf import OmegaConf

from audioldm.audio.mel import MelConfig
from audioldm.config.loader import load_config_dict
from audioldm.models.clap import ClapEmbedder
from audioldm.models.vae import build_autoencoder
from audioldm.models.vocoder import GriffinLimVocoder, build_vocoder

PREFIXES = {"vae": "vae.", "clap": "embedder.", "vocoder": "vocoder."}


def _model_config(stage_config: dict[str, Any]) -> Any:
    config = load_config_dict(stage_config, source=f"{stage_config.get('stage')} stage config")
    return OmegaConf.to_object(config.model), OmegaConf.to_object(config.audio)


def build_frozen(stage: str, stage_config: dict[str, Any] | None, mel: MelConfig) -> nn.Module:
    """An untrained network shaped like the one ``stage_config`` trained; a vocoder config of
    None gives Griffin-Lim (no weights)."""
    if stage == "vocoder" and stage_config is None:
        return GriffinLimVocoder(mel)
    model, audio = _model_config(stage_config)
    if stage == "vae":
        return build_autoencoder(model)
    if stage == "clap":
        return ClapEmbedder(model, audio.sample_rate)
    if stage == "vocoder":
        return build_vocoder(model, audio)
    raise ValueError(f"no frozen network for stage {stage!r}")


def fingerprint(module: nn.Module) -> str:
    """A short hash of a network's weights (to tell whether a latent cache was made with it)."""
    h = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes()[:4096])
        h.update(str(float(tensor.float().sum())).encode())
    return h.hexdigest()[:16]

