"""``init_from: PATH``: start a stage's networks from existing weights in any layout that
``audioldm/convert`` reads (fine-tuning); the optimiser, step count and EMA warm-up start fresh.

- ldm: the UNet (raw weights; its EMA from the source's EMA set), VAE, CLAP, vocoder and
  ``scale_factor`` of a whole AudioLDM (ours, an original .ckpt, a diffusers folder); ``model.unet``
  is replaced by the source's shape (for an original .ckpt, whose weights do not record the attention
  head width, ``model.unet.head_channels`` gives it: 32 in ldm_s.yaml, 64 in ldm_l.yaml, as AudioLDM).
  ``model.clap_ckpt`` / ``model.vocoder_ckpt`` may replace those stages (a diffusers folder has no CLAP
  audio encoder, which training needs).
- vae, clap, vocoder: the stage's network from any source holding one. A checkpoint of the same
  stage written by train.py restores the whole module (discriminators included).
The config's ``model`` section must describe the same network shape; a mismatch is reported by name.
"""
from __future__ import annotations

import logging

from omegaconf import DictConfig, OmegaConf

from audioldm.checkpoint import CheckpointError, load_weights
from audioldm.convert.layouts import read_source
from audioldm.convert.stages import load_stage_network

log = logging.getLogger(__name__)
NETWORK_ATTRIBUTE = {"vae": "vae", "clap": "embedder", "vocoder": "vocoder"}


def init_ldm_model(config: DictConfig):
    """(LatentDiffusion with UNet, EMA and frozen stages from ``config.init_from``, the updated config)."""
    from audioldm.convert.ldm import read_ldm, to_latent_diffusion

    m = config.model
    if m.vae_ckpt:
        raise CheckpointError("init_from brings its own VAE (the UNet was trained on its latents): "
                              "leave model.vae_ckpt unset")
    # an original .ckpt does not record its attention head width: the config's model.unet.head_channels gives it
    weights = read_ldm(config.init_from, m.clap_tokenizer, m.unet.head_channels, clap=m.clap_ckpt,
                       vocoder=m.vocoder_ckpt)
    if weights.frozen["clap"].config.text_only and not config.data.latent_cache_dir:
        raise CheckpointError(f"init_from {config.init_from}: its CLAP has no audio encoder (a diffusers folder ships "
                              f"only the text encoder), and training conditions on audio: set model.clap_ckpt to a "
                              f"CLAP with one (e.g. a LAION-CLAP .pt and model.clap_tokenizer)")
    model = to_latent_diffusion(weights, with_ema=True)
    model.unet_ema.decay, model.unet_ema.warmup = m.ema_decay, m.ema_warmup
    new_unet = OmegaConf.structured(weights.unet_config)
    if OmegaConf.to_container(new_unet) != OmegaConf.to_container(m.unet):
        log.warning("init_from %s: model.unet set to the source's shape %s", config.init_from,
                    OmegaConf.to_container(new_unet))
    config.model.unet = new_unet
    return model


def apply_init_from(module, config: DictConfig) -> None:
    """Load ``config.init_from`` into a vae/clap/vocoder module (the ldm is built by ``init_ldm_model``)."""
    path, stage = config.init_from, config.stage
    source = read_source(path)
    if source.layout == "ours" and source.raw.get("stage") == stage:
        load_weights(module, source.state, f"init_from {path}")
        return
    mel = OmegaConf.to_object(config.audio)
    tokenizer = config.model.get("tokenizer_path") if stage == "clap" else None
    network, _, extra = load_stage_network(source, stage, mel, tokenizer)
    target = getattr(module, NETWORK_ATTRIBUTE[stage])
    if stage == "clap" and network.config.text_layer_norm_eps != target.config.text_layer_norm_eps:
        log.warning("init_from %s: its text LayerNorm eps is %g, the config's model.text_layer_norm_eps %g",
                    path, network.config.text_layer_norm_eps, target.config.text_layer_norm_eps)
    state = network.state_dict()
    try:
        load_weights(target, state, f"init_from {path} ({stage})")
    except CheckpointError as e:
        raise CheckpointError(f"{e}; make the config's model section match the weights") from None
    if stage == "vae" and "scale_factor" in extra:
        module.scale_factor.copy_(extra["scale_factor"])
