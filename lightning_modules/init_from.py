"""``init_from: PATH``: start a vae, clap or vocoder stage's network from existing weights in any format
``audioldm/formats`` reads (fine-tuning); the optimiser and step count start fresh. (The ldm stage's
``init_from``, a whole AudioLDM, is read by ``audioldm.assembly.latent_diffusion.ldm_for_training``.)

The stage's network comes from any source holding one; a checkpoint of the same stage written by train.py
restores the whole module (discriminators included). The config's ``model`` section must describe the same
network shape; a mismatch is reported by name.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig, OmegaConf

from audioldm.assembly.parts import load_part
from audioldm.checkpoint import CheckpointError, is_checkpoint, load_weights
from audioldm.formats.registry import open_source

log = logging.getLogger(__name__)
NETWORK_ATTRIBUTE = {"vae": "vae", "clap": "embedder", "vocoder": "vocoder"}


def apply_init_from(module, config: DictConfig) -> None:
    """Load ``config.init_from`` into a vae/clap/vocoder module (the ldm stage reads its own:
    ``audioldm.assembly.latent_diffusion.ldm_for_training``)."""
    path, stage = config.init_from, config.stage
    source = open_source(path)
    if is_checkpoint(source.raw) and source.kind == stage:
        load_weights(module, source.state, f"init_from {path}")
        return
    mel = OmegaConf.to_object(config.audio)
    tokenizer = config.model.get("tokenizer_path") if stage == "clap" else None
    part = load_part(source, stage, mel, tokenizer)
    network = part.network
    target = getattr(module, NETWORK_ATTRIBUTE[stage])
    if stage == "clap" and network.config.text_layer_norm_eps != target.config.text_layer_norm_eps:
        log.warning(
            "init_from %s: its text LayerNorm eps is %g, the config's model.text_layer_norm_eps %g",
            path,
            network.config.text_layer_norm_eps,
            target.config.text_layer_norm_eps,
        )
    state = network.state_dict()
    try:
        load_weights(target, state, f"init_from {path} ({stage})")
    except CheckpointError as e:
        raise CheckpointError(f"{e}; make the config's model section match the weights") from None
    if stage == "vae" and part.scale_factor is not None:
        module.scale_factor.copy_(part.scale_factor)
