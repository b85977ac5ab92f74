"""The one place a ``LatentDiffusion`` (AudioLDM: UNet, its EMA, frozen VAE, CLAP, vocoder and text encoder, latent
scale and null condition) or a consistency-distilled student is put together from its parts. Every caller comes here:
training (``ldm_for_training``, ``build_latent_diffusion`` for a checkpoint's shape), loading for generation
(``load_ldm``: ours directly, other formats through ``audioldm.formats``), conversion (``read_ldm`` +
``to_latent_diffusion``) and distillation (``distillation_models``).

Order of construction (it decides the random initialisation a seed gives): the frozen parts (VAE, CLAP,
vocoder, text encoder), then the UNet, then its EMA copy. The condition (``model.condition``) decides the UNet's
cross-attention width: the text encoder's (``crossattn_*``), or none (``film_clap``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from audioldm.assembly.parts import OPTIONAL, PARTS, LoadedPart, build_part, load_part
from audioldm.audio.mel import MelConfig
from audioldm.checkpoint import CheckpointError, check_mel, is_checkpoint, load_weights, sub_state_dict
from audioldm.config.loader import load_config_dict
from audioldm.formats.keymaps.mapping import expected_state, map_keys
from audioldm.formats.registry import as_source, holds_whole_model, open_source, read_network
from audioldm.formats.source import ReadOptions, Source, prefixed
from audioldm.models.ema import EmaModel
from audioldm.models.latent_diffusion import LatentDiffusion, LdmConfig
from audioldm.models.lcm import LcmConfig
from audioldm.models.unet import Unet, UnetConfig, build_unet

log = logging.getLogger(__name__)
WHOLE_STAGES = ("ldm", "lcm")


@dataclass
class LdmWeights:
    """A whole AudioLDM as read from one source; ``ema`` is None when the source holds one UNet weight set."""

    path: str
    mel: MelConfig
    unet_config: UnetConfig
    unet: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None
    parts: dict[str, LoadedPart]  # vae, clap, vocoder, text_encoder (clap / text_encoder: network None if absent)

    @property
    def scale_factor(self) -> torch.Tensor:
        return self.parts["vae"].scale_factor

    @property
    def condition(self) -> str:
        """film_clap, crossattn_t5 or crossattn_clap_tokens (as ``LatentDiffusion.condition``)."""
        if self.unet_config.context_dim is None:
            return "film_clap"
        return "crossattn_t5" if self.parts["text_encoder"].network is not None else "crossattn_clap_tokens"


def assemble(
    unet: Unet,
    parts: dict[str, LoadedPart],
    mel: MelConfig,
    ema: EmaModel | None = None,
    null_condition: bool = True,
) -> LatentDiffusion:
    """The model of ``unet`` (and its ``ema``) with the frozen ``parts``, their VAE's latent scale, and (with
    ``null_condition``) the null condition (that of the empty caption); else both are left for a state dict."""
    model = LatentDiffusion(
        unet,
        parts["vae"].network,
        parts["clap"].network,
        parts["vocoder"].network,
        mel,
        {name: part.config for name, part in parts.items() if name != "text_encoder" or part.config is not None},
        ema,
        text_encoder=parts.get("text_encoder", LoadedPart(None, None)).network,
    )
    if parts["vae"].scale_factor is not None:
        model.scale_factor.copy_(parts["vae"].scale_factor)
    if null_condition:
        model.set_null_condition()
    return model


def build_latent_diffusion(
    config: LdmConfig | LcmConfig, mel: MelConfig, stage_configs: dict[str, Any], with_ema: bool = True
) -> LatentDiffusion:
    """Untrained networks shaped by ``config`` and a checkpoint's ``stage_configs`` (for loading its weights)."""
    unet = build_unet(config.unet)
    ema = EmaModel(unet, config.ema_decay, config.ema_warmup) if with_ema else None
    parts = {
        part: LoadedPart(build_part(part, stage_configs.get(part), mel), stage_configs.get(part)) for part in PARTS
    }
    return assemble(unet, parts, mel, ema, null_condition=False)


def ldm_from_checkpoint(path: str, checkpoint: dict, use_ema: bool = True) -> LatentDiffusion:
    """One of our ldm (or lcm) checkpoints, read directly: its config rebuilds every network and its state dict
    fills them, with one UNet weight set (the EMA's when ``use_ema`` and saved)."""
    stage = checkpoint["stage"]
    if stage not in WHOLE_STAGES:
        raise CheckpointError(f"{path}: is a '{stage}' checkpoint, expected 'ldm' (or 'lcm')")
    if checkpoint.get("adapter"):
        raise CheckpointError(
            f"{path}: holds a LoRA run's training state (its adapter and optimiser), not a whole model: generate with "
            f"--ckpt {checkpoint['adapter']['base']['source']} --lora <its adapter .safetensors>"
        )
    if "stage_configs" not in checkpoint:
        raise CheckpointError(
            f"{path}: ldm checkpoint has no 'stage_configs' entry (not written by this project's train.py)"
        )
    config = load_config_dict(checkpoint["config"], source=path)
    mel = OmegaConf.to_object(config.audio)
    for part, part_config in checkpoint["stage_configs"].items():
        if part_config is not None and "audio" in part_config:  # a text encoder has no mel settings
            check_mel(path, part_config["audio"], mel)
    model = build_latent_diffusion(OmegaConf.to_object(config.model), mel, checkpoint["stage_configs"], with_ema=False)
    state = sub_state_dict(checkpoint["state_dict"], "model.")
    ema = sub_state_dict(state, "unet_ema.module.")
    if use_ema and not ema:
        log.warning("%s holds no EMA weights; using the raw UNet", path)
    state = {k: v for k, v in state.items() if not k.startswith("unet_ema.")}
    if use_ema and ema:
        state = {**{k: v for k, v in state.items() if not k.startswith("unet.")}, **prefixed(ema, "unet.")}
    load_weights(model, state, f"{path} ('{stage}' checkpoint)")
    return model


def read_ldm(
    path: str | os.PathLike | Source,
    tokenizer: str | None = None,
    head_channels: int | None = None,
    clap: str | os.PathLike | None = None,
    vocoder: str | os.PathLike | None = None,
) -> LdmWeights:
    """Every part of a whole AudioLDM in any format (a path, or a source already opened); ``clap``/``vocoder``
    (any format) replace those parts. ``tokenizer``: the CLAP's RoBERTa folder, or a T5's tokenizer folder."""
    source = as_source(path)
    path = source.path
    if is_checkpoint(source.raw) and source.kind not in WHOLE_STAGES:
        raise CheckpointError(f"{path}: is a '{source.kind}' checkpoint, expected 'ldm' (or 'lcm')")
    if not holds_whole_model(source):
        raise CheckpointError(
            f"{path}: a '{source.name}' source is not a whole AudioLDM (it holds no UNet); use an "
            f"ldm checkpoint, an original AudioLDM .ckpt or a diffusers AudioLDM folder"
        )
    unet = read_network(source, "unet", ReadOptions(head_channels=head_channels))
    check_unet_weights(unet.config, unet.state, f"{path} (unet)")
    if unet.ema is not None:
        check_unet_weights(unet.config, unet.ema, f"{path} (unet EMA)")
    parts = read_parts(source, unet.mel, tokenizer, clap=clap, vocoder=vocoder)
    return LdmWeights(path, unet.mel, unet.config, unet.state, unet.ema, parts)


def read_parts(
    source: Source,
    mel: MelConfig,
    tokenizer: str | None,
    clap: str | os.PathLike | None = None,
    vocoder: str | os.PathLike | None = None,
) -> dict[str, LoadedPart]:
    """The VAE, CLAP, vocoder and text encoder of a whole AudioLDM ``source``, ``clap``/``vocoder`` replacing its
    own; a CLAP or text encoder the source does not hold is absent (network None)."""
    others = {"vae": None, "clap": clap, "vocoder": vocoder, "text_encoder": None}
    held = source.format.parts(source)
    return {
        part: LoadedPart(None, None)
        if part in OPTIONAL and not others[part] and part not in held
        else load_part(others[part] or source, part, mel, tokenizer, griffin_lim_allowed=not others[part])
        for part in PARTS
    }


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
    load_weights(unet, chosen, f"{weights.path} (unet)")
    ema = None
    if with_ema:
        ema = EmaModel(unet)
        load_weights(ema.module, weights.ema if weights.ema is not None else weights.unet, f"{weights.path} (ema)")
    return assemble(unet, weights.parts, weights.mel, ema)


def load_ldm(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    use_ema: bool = True,
    tokenizer: str | None = None,
    head_channels: int | None = None,
    vocoder_ckpt: str | os.PathLike | None = None,
    adapters: list[tuple[str, float]] | None = None,
    fuse_adapters: bool = False,
    force_adapters: bool = False,
) -> LatentDiffusion:
    """An AudioLDM in eval mode for generation: one of our ldm/lcm checkpoints directly, or a whole AudioLDM in
    another format (an original .ckpt, a diffusers folder). ``vocoder_ckpt`` (any format) replaces its vocoder;
    ``tokenizer``: the RoBERTa folder LAION-CLAP text needs; ``head_channels``: an original UNet's head width;
    ``adapters``: LoRA adapter files with their scales, on its UNet (``fuse_adapters``: merged into it)."""
    source = open_source(path)
    if is_checkpoint(source.raw) and source.kind in WHOLE_STAGES:
        model = ldm_from_checkpoint(str(path), source.raw, use_ema)
        if vocoder_ckpt:
            replace_vocoder(model, vocoder_ckpt)
    else:
        model = to_latent_diffusion(read_ldm(source, tokenizer, head_channels, vocoder=vocoder_ckpt), use_ema)
    if adapters:
        from audioldm.assembly.adapters import attach_adapters

        attach_adapters(model, adapters, fuse_adapters, force_adapters)
    return model.eval().to(device)


def replace_vocoder(model: LatentDiffusion, path: str | os.PathLike) -> None:
    """``model``'s vocoder (and its stage config) replaced by the one at ``path`` (any format)."""
    part = load_part(path, "vocoder", model.mel)
    model.vocoder = part.network.to(model.scale_factor.device)
    model.stage_configs = {**model.stage_configs, "vocoder": part.config}


def ldm_for_training(config: DictConfig) -> tuple[LatentDiffusion, UnetConfig]:
    """(the model an ldm run starts from, its UNet's config). With ``init_from``: the UNet, its EMA and the frozen
    parts of that whole AudioLDM (``model.clap_ckpt`` / ``model.vocoder_ckpt`` / ``model.text_encoder_path`` may
    replace those parts; the UNet's shape is the source's, and its condition must be ``model.condition``). Else a
    new UNet (and EMA) on the parts of ``model.vae_ckpt``, ``model.clap_ckpt``, ``model.vocoder_ckpt`` (None:
    Griffin-Lim) and, for ``crossattn_t5``, the T5 of ``model.text_encoder_path``."""
    m, mel = config.model, OmegaConf.to_object(config.audio)
    if config.get("init_from"):
        if m.vae_ckpt:
            raise CheckpointError(
                "init_from brings its own VAE (the UNet was trained on its latents): leave model.vae_ckpt unset"
            )
        # an original .ckpt does not record its attention head width: the config's model.unet.head_channels gives it
        weights = read_ldm(
            config.init_from,
            m.clap_tokenizer if m.condition != "crossattn_t5" else (m.text_tokenizer or m.text_encoder_path),
            m.unet.head_channels,
            clap=m.clap_ckpt,
            vocoder=m.vocoder_ckpt,
        )
        if m.text_encoder_path and m.condition == "crossattn_t5":
            weights.parts["text_encoder"] = load_part(
                m.text_encoder_path, "text_encoder", mel, None, False, m.text_max_length
            )
        if weights.condition != m.condition:
            raise CheckpointError(
                f"init_from {config.init_from}: is a {weights.condition} model; set model.condition: "
                f"{weights.condition} (the config says {m.condition})"
            )
        clap = weights.parts["clap"].network
        if m.condition == "film_clap" and clap.config.text_only and not config.data.latent_cache_dir:
            raise CheckpointError(
                f"init_from {config.init_from}: its CLAP has no audio encoder (a diffusers folder "
                f"ships only the text encoder), and training conditions on audio: set model.clap_ckpt "
                f"to a CLAP with one (e.g. a LAION-CLAP .pt and model.clap_tokenizer)"
            )
        if m.lora is not None:  # an adapter on the weight set generation uses (the EMA's when saved); no EMA
            from audioldm.assembly.adapters import start_adapter

            model = to_latent_diffusion(weights, use_ema=True)
            model.adapter_meta = start_adapter(model, OmegaConf.to_object(m.lora), config.init_from)
            return model, weights.unet_config
        model = to_latent_diffusion(weights, with_ema=True)
        model.unet_ema.decay, model.unet_ema.warmup = m.ema_decay, m.ema_warmup
        return model, weights.unet_config
    if m.lora is not None:
        raise CheckpointError("model.lora trains an adapter on a trained UNet: set init_from to the base checkpoint")
    parts = training_parts(m, mel)
    unet_config = OmegaConf.to_object(m.unet)
    if m.condition != "film_clap":  # the UNet cross-attends to the text encoder's token states
        tokens = parts["text_encoder"] if m.condition == "crossattn_t5" else parts["clap"]
        unet_config = replace(unet_config, context_dim=tokens.network.width)
    elif unet_config.context_dim is not None:
        raise CheckpointError(
            f"model.unet.context_dim={unet_config.context_dim} is for the crossattn_* conditions; "
            f"model.condition is film_clap (leave context_dim unset)"
        )
    unet = build_unet(unet_config)
    return assemble(unet, parts, mel, EmaModel(unet, m.ema_decay, m.ema_warmup)), unet_config


def training_parts(m: Any, mel: MelConfig) -> dict[str, LoadedPart]:
    """The frozen parts of a new ldm run (``model`` section ``m``), each from its own file."""
    needed = {
        "vae_ckpt": True,
        "clap_ckpt": m.condition != "crossattn_t5",
        "vocoder_ckpt": False,
        "text_encoder_path": m.condition == "crossattn_t5",
    }
    for key, required in needed.items():
        path = m[key]
        if required and not path:
            raise CheckpointError(
                f"model.{key} is not set (or set init_from to a whole AudioLDM checkpoint)"
                + (" : crossattn_t5 needs a local T5 folder (e.g. google/flan-t5-large saved)" if "text" in key else "")
            )
        if path and not os.path.exists(path):
            raise CheckpointError(f"model.{key}: file not found: {path}")
    absent = LoadedPart(None, None)
    return {
        "vae": load_part(m.vae_ckpt, "vae", mel),
        "clap": load_part(m.clap_ckpt, "clap", mel, m.clap_tokenizer) if m.clap_ckpt else absent,
        "vocoder": load_part(m.vocoder_ckpt, "vocoder", mel)
        if m.vocoder_ckpt
        else LoadedPart(build_part("vocoder", None, mel), None),
        "text_encoder": load_part(m.text_encoder_path, "text_encoder", mel, None, False, m.text_max_length)
        if m.condition == "crossattn_t5"
        else absent,
    }


def parts_of(model: LatentDiffusion) -> dict[str, LoadedPart]:
    """The frozen parts of ``model`` (shared, not copied), e.g. for a student on its teacher's parts."""
    return {
        "vae": LoadedPart(model.vae, model.stage_configs.get("vae"), model.scale_factor.detach().clone()),
        "clap": LoadedPart(model.clap, model.stage_configs.get("clap")),
        "vocoder": LoadedPart(model.vocoder, model.stage_configs.get("vocoder")),
        "text_encoder": LoadedPart(model.text_encoder, model.stage_configs.get("text_encoder")),
    }
