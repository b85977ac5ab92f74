"""An original AudioLDM ``.ckpt`` (audioldm-s-full, -m-full, -l-full, -s-text-ft, ...), or its VAE alone.

Recognised by ``model.diffusion_model.*`` keys (kind ``ldm``; with ``cond_stage_models.0.model.encoder.*``
keys it is a crossattn-T5 .ckpt, ``original_crossattn_t5.py``), or ``encoder.conv_in.*`` and
``decoder.conv_out.*`` (optionally under ``first_stage_model.``) without LAION-CLAP keys (kind ``vae``).
Where each network is (the key rules are in ``keymaps/``):

- UNet ``model.diffusion_model.*``, its EMA ``model_ema.*`` (names without dots; ``original_unet.py``);
- VAE ``first_stage_model.*`` less ``vocoder.*`` (``original_vae.py``), and ``scale_factor``;
- HiFi-GAN ``first_stage_model.vocoder.*`` (``original_hifigan.py``);
- LAION-CLAP ``cond_stage_model.model.*`` (``laion_clap.py``), tokenizing captions to 512 tokens.
"""

from __future__ import annotations

import logging

import torch

from audioldm.checkpoint import CheckpointError, sub_state_dict
from audioldm.formats.hifigan import hifigan_weights
from audioldm.formats.laion import laion_clap_weights
from audioldm.formats.source import AUDIOLDM_NETWORKS, NetworkWeights, ReadOptions, Source, holds_no, stage_config

NAME = "audioldm"
DESCRIPTION = "an original AudioLDM .ckpt (or its VAE alone)"
log = logging.getLogger(__name__)
LAION_KEYS = ("text_branch.", "audio_branch.")


def detect(source: Source) -> str | None:
    keys = list(source.state)

    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keys)

    if has("cond_stage_models.0.model.encoder."):
        return None  # an AudioLDM 2 crossattn-T5 .ckpt (original_crossattn_t5.py)
    if has("model.diffusion_model."):
        return "ldm"
    bare = [k.removeprefix("module.").removeprefix("cond_stage_model.model.") for k in keys]
    if any(k.startswith(LAION_KEYS) for k in bare):
        return None  # a LAION-CLAP (laion.py)
    if has("first_stage_model.encoder.") or (has("encoder.conv_in.") and has("decoder.conv_out.")):
        return "vae"
    return None


def parts(source: Source) -> tuple[str, ...]:
    return AUDIOLDM_NETWORKS if source.kind == "ldm" else ("vae",)


def read(source: Source, part: str, options: ReadOptions) -> NetworkWeights:
    if part not in parts(source):
        raise holds_no(source, part)
    return {"unet": _unet, "vae": _vae, "clap": _clap, "vocoder": _vocoder}[part](source, options)


def _unet(source: Source, options: ReadOptions) -> NetworkWeights:
    from audioldm.formats.keymaps.original_unet import EMA_BOOKKEEPING, unet_from_original, unflatten_ema_keys

    raw = sub_state_dict(source.state, "model.diffusion_model.")
    config, unet = unet_from_original(raw, options.head_channels)
    ema_flat = {k: v for k, v in sub_state_dict(source.state, "model_ema.").items() if k not in EMA_BOOKKEEPING}
    ema = unet_from_original(unflatten_ema_keys(ema_flat, raw.keys()), options.head_channels)[1] if ema_flat else None
    return NetworkWeights(config, unet, ema=ema, mel=options.foreign_mel)


def _vae(source: Source, options: ReadOptions) -> NetworkWeights:
    from audioldm.formats.keymaps.original_vae import vae_from_original

    state = sub_state_dict(source.state, "first_stage_model.") or source.state
    config, converted = vae_from_original({k: v for k, v in state.items() if not k.startswith("vocoder.")})
    scale = source.state.get("scale_factor")
    if scale is None:  # a VAE saved on its own: the LDM's latent scale is not known
        log.warning("%s: no scale_factor entry; using 1.0 (an LDM on this VAE needs its own)", source.path)
        scale = torch.tensor(1.0)
    return NetworkWeights(
        stage_config("vae", config, options.foreign_mel, source.path),
        converted,
        scale_factor=torch.as_tensor(scale, dtype=torch.float32).reshape(()),
    )


def _clap(source: Source, options: ReadOptions) -> NetworkWeights:
    return laion_clap_weights(source, options, max_text_length=512)  # AudioLDM tokenizes to 512 (LAION-CLAP: 77)


def _vocoder(source: Source, options: ReadOptions) -> NetworkWeights:
    state = sub_state_dict(source.state, "first_stage_model.vocoder.")
    if not state:
        raise CheckpointError(f"{source.path}: no first_stage_model.vocoder.* weights in this AudioLDM checkpoint")
    return hifigan_weights(source, state, options)
