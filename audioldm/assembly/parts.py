"""The LDM's frozen parts (VAE, CLAP, vocoder, and the T5 text encoder of ``crossattn_t5``): built from the config
of the stage that trains each (the T5: its part config), with weights from a checkpoint in any format
(``audioldm.formats``).

A part is described by the experiment config its stage's checkpoint carries (a plain dict), so an LDM
checkpoint that stores these dicts (``stage_configs``) rebuilds the exact networks without the original files.
A vocoder config of None is Griffin-Lim (no weights); a CLAP or text encoder config of None is no such part.
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
from audioldm.models.text_encoder import T5TextEncoder
from audioldm.models.vae import build_autoencoder
from audioldm.models.vocoder import GriffinLimVocoder, build_vocoder

PARTS = ("vae", "clap", "vocoder", "text_encoder")  # the first three made by the training stage of the same name
OPTIONAL = ("clap", "text_encoder")  # absent (None) in some LDMs: crossattn_t5 may have no CLAP, film no T5


@dataclass
class LoadedPart:
    """A frozen network (eval mode, no gradients), the stage config that rebuilds it, the VAE's latent scale."""

    network: nn.Module | None
    config: dict | None
    scale_factor: torch.Tensor | None = None


def build_part(part: str, stage_config: dict[str, Any] | None, mel: MelConfig) -> nn.Module | None:
    """An untrained network shaped like the one ``stage_config`` trained; a vocoder config of None gives
    Griffin-Lim (no weights), a CLAP or text encoder config of None no network."""
    if part == "vocoder" and stage_config is None:
        return GriffinLimVocoder(mel)
    if part in OPTIONAL and stage_config is None:
        return None
    if part == "text_encoder":
        return T5TextEncoder(stage_config)
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
    text_max_length: int = 128,
) -> LoadedPart:
    """The frozen ``part`` of ``source`` (any format) for the mel settings ``mel`` (None: the source's own).
    ``tokenizer``: the folder LAION-CLAP text weights (RoBERTa) or a T5 (its own) need. An LDM of ours that renders
    with Griffin-Lim gives Griffin-Lim for its vocoder when ``griffin_lim_allowed`` (reading a whole LDM), and is
    refused otherwise. ``text_max_length``: a T5's caption length in tokens."""
    source = as_source(source)
    weights = read_network(source, part, ReadOptions(mel, tokenizer, text_max_length=text_max_length))
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
