"""The LDM's frozen parts (VAE, CLAP, vocoder): built from the config of the stage that trains each, with weights
from a checkpoint in any format (``audioldm.formats``).

A part is described by the experiment config its stage's checkpoint carries (a plain dict), so an LDM
checkpoint that stores these dicts (``stage_configs``) rebuilds the exact networks without the original files.
A vocoder config of None is Griffin-Lim (no weights).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from omegaconf import OmegaConf

from audioldm.audio.mel import MelConfig
from audioldm.checkpoint import CheckpointError, load_weights
from audioldm.config.loader import load_config_dict
from audioldm.formats.registry import as_source, read_network
from audioldm.formats.source import ReadOptions, Source
from audioldm.models.clap import ClapEmbedder
from audioldm.models.vae import build_autoencoder
from audioldm.models.vocoder import GriffinLimVocoder, build_vocoder

PARTS = ("vae", "clap", "vocoder")  # each made by the training stage of the same name


@dataclass
class LoadedPart:
    """A frozen network (eval mode, no gradients), the stage config that rebuilds it, the VAE's latent scale."""

    network: nn.Module
    config: dict | None
    scale_factor: torch.Tensor | None = None


def build_part(part: str, stage_config: dict[str, Any] | None, mel: MelConfig) -> nn.Module:
    """An untrained network shaped like the one ``stage_config`` trained; a vocoder config of None gives
    Griffin-Lim (no weights)."""
    if part == "vocoder" and stage_config is None:
        return GriffinLimVocoder(mel)
    config = load_config_dict(stage_config, source=f"{stage_config.get('stage')} stage config")
    model, audio = OmegaConf.to_object(config.model), OmegaConf.to_object(config.audio)
    if part == "vae":
        return build_autoencoder(model)
    if part == "clap":
        return ClapEmbedder(model, audio.sample_rate)
    if part == "vocoder":
        return build_vocoder(model, audio)
    raise ValueError(f"no frozen network for part {part!r} (one of {', '.join(PARTS)})")


def load_part(
    source: str | os.PathLike | Source,
    part: str,
    mel: MelConfig | None,
    tokenizer: str | None = None,
    griffin_lim_allowed: bool = False,
) -> LoadedPart:
    """The frozen ``part`` of ``source`` (any format) for the mel settings ``mel`` (None: the source's own).
    ``tokenizer``: the RoBERTa folder LAION-CLAP text weights need. An LDM of ours that renders with Griffin-Lim
    gives Griffin-Lim for its vocoder when ``griffin_lim_allowed`` (reading a whole LDM), and is refused otherwise."""
    source = as_source(source)
    weights = read_network(source, part, ReadOptions(mel, tokenizer))
    if weights.config is None and not griffin_lim_allowed:
        raise CheckpointError(f"{source.path}: is a '{source.kind}' checkpoint without a {part} in it")
    network = build_part(part, weights.config, mel or weights.mel or MelConfig())
    state = weights.state
    if part == "clap" and network.config.text_only:  # the audio tower keeps its initialisation (embed_audio refuses)
        state = {**{k: v for k, v in network.state_dict().items() if not k.startswith("model.text_")}, **state}
    if weights.config is not None:
        load_weights(network, state, f"{source.path} ({part})")
    return LoadedPart(network.eval().requires_grad_(False), weights.config, weights.scale_factor)


def part_source(config: Any, part: str) -> str:
    """Where an ldm config's frozen ``part`` comes from: ``model.<part>_ckpt``, else ``init_from``."""
    path = getattr(config.model, f"{part}_ckpt", None) or config.get("init_from")
    if not path:
        raise CheckpointError(f"model.{part}_ckpt is not set (nor init_from)")
    return path
