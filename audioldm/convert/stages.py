"""Our VAE, CLAP and vocoder networks with weights from any layout (see ``layouts.py``), each with a
stage config (the plain dict a checkpoint of that stage would carry) so that it can be rebuilt.

    vae, vae_config, scale_factor = load_vae(path, mel)
    clap, clap_config = load_clap(path, mel, tokenizer="roberta-tokenizer/")
    vocoder, vocoder_config = load_vocoder(path, mel)

Where each stage is found, by layout:

- ours: a stage checkpoint's ``vae.*`` (+ ``scale_factor``), ``embedder.*`` (CLAP) or ``vocoder.*``;
  an ldm checkpoint's ``model.vae.*``, ``model.clap.*``, ``model.vocoder.*`` (+ ``model.scale_factor``).
- audioldm ``.ckpt``: VAE ``first_stage_model.*`` less ``vocoder.*``, vocoder ``first_stage_model.vocoder.*``,
  CLAP ``cond_stage_model.model.*``, and ``scale_factor``.
- diffusers folder: ``vae/`` (``scaling_factor``), ``vocoder/``, ``text_encoder/`` + ``tokenizer/`` (the CLAP
  text tower only: ``ClapConfig.text_only``).
- single models: audioldm_vae, diffusers_vae; laion_clap, transformers_clap(_text); hifigan,
  transformers_hifigan.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from diffusers import AutoencoderKL

from audioldm.audio.mel import MelConfig
from audioldm.checkpoint import CheckpointError, check_mel, load_weights, sub_state_dict
from audioldm.convert.layouts import Source, read_folder_weights, read_json, read_source
from audioldm.models.clap import ClapConfig, ClapEmbedder
from audioldm.models.frozen_stages import build_frozen
from audioldm.models.vae import VaeConfig, build_autoencoder
from audioldm.models.vocoder import HifiGanVocoder, VocoderConfig, build_generator

log = logging.getLogger(__name__)
OURS_PREFIX = {"vae": "vae.", "clap": "embedder.", "vocoder": "vocoder."}
OURS_LDM_PREFIX = {"vae": "model.vae.", "clap": "model.clap.", "vocoder": "model.vocoder."}


def stage_config(stage: str, model: Any, mel: MelConfig, source: str) -> dict:
    """The experiment config dict of a stage whose weights were converted from ``source``."""
    name = f"converted_{stage}_from_{Path(source).name}"
    return {"stage": stage, "name": name, "audio": asdict(mel), "model": asdict(model), "data": {"train_manifest": ""}}


def as_source(path: str | os.PathLike | Source) -> Source:
    return path if isinstance(path, Source) else read_source(path)


def _ours(src: Source, stage: str, mel: MelConfig) -> tuple[nn.Module, dict, dict[str, torch.Tensor]]:
    """(network, stage config, the stage's state dict) from one of our stage or ldm checkpoints."""
    raw = src.raw
    if raw["stage"] == stage:
        config, state = raw["config"], sub_state_dict(src.state, OURS_PREFIX[stage])
        extra = {"scale_factor": src.state.get("scale_factor")}
    elif raw["stage"] in ("ldm", "lcm") and raw.get("stage_configs", {}).get(stage):
        config, state = raw["stage_configs"][stage], sub_state_dict(src.state, OURS_LDM_PREFIX[stage])
        extra = {"scale_factor": src.state.get("model.scale_factor")}
    else:
        raise CheckpointError(f"{src.path}: is a '{raw['stage']}' checkpoint without a {stage} in it")
    check_mel(src.path, config.get("audio", {}), mel)
    network = build_frozen(stage, config, mel)
    load_weights(network, state, f"{src.path} ({stage})")
    return network, config, extra


def _config_of(folder: Path, what: str) -> dict:
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder}: no config.json ({what} folder expected)")
    return read_json(folder / "config.json")


# -- VAE ---------------------------------------------------------------------------------------
def vae_config_from_diffusers(folder: Path) -> VaeConfig:
    c = _config_of(folder, "AutoencoderKL")
    if c.get("in_channels") != 1 or c.get("out_channels") != 1:
        raise CheckpointError(f"{folder}: a VAE with {c.get('in_channels')} input channels is not a mel VAE (1)")
    return VaeConfig(block_out_channels=list(c["block_out_channels"]), layers_per_block=c.get("layers_per_block", 2),
                     latent_channels=c.get("latent_channels", 8), norm_num_groups=c.get("norm_num_groups", 32))


def load_vae(path: str | os.PathLike | Source, mel: MelConfig) -> tuple[AutoencoderKL, dict, torch.Tensor]:
    """(VAE in eval mode, its stage config, ``scale_factor``) from any layout that holds a VAE."""
    src = as_source(path)
    if src.layout == "ours":
        network, config, extra = _ours(src, "vae", mel)
        return network.eval().requires_grad_(False), config, extra["scale_factor"]
    if src.layout in ("audioldm", "audioldm_vae"):
        from audioldm.convert.original_vae import vae_from_original

        state = sub_state_dict(src.state, "first_stage_model.") or src.state
        state = {k: v for k, v in state.items() if not k.startswith("vocoder.")}
        vae_config, converted = vae_from_original(state)
        scale = src.state.get("scale_factor")
        if scale is None:  # a VAE saved on its own: the LDM's latent scale is not known
            log.warning("%s: no scale_factor entry; using 1.0 (an LDM on this VAE needs its own)", src.path)
            scale = torch.tensor(1.0)
    elif src.layout in ("diffusers", "diffusers_vae"):
        folder = src.folder / "vae" if src.layout == "diffusers" else src.folder
        vae_config = vae_config_from_diffusers(folder)
        converted = read_folder_weights(folder)
        scale = torch.tensor(float(_config_of(folder, "AutoencoderKL").get("scaling_factor", 1.0)))
    else:
        raise CheckpointError(f"{src.path}: a '{src.layout}' source holds no VAE")
    network = build_autoencoder(vae_config)
    load_weights(network, converted, f"{src.path} (vae)")
    return network.eval().requires_grad_(False), stage_config("vae", vae_config, mel, src.path), \
        torch.as_tensor(scale, dtype=torch.float32).reshape(())


# -- CLAP --------------------------------------------------------------------------------------
def _tokenizer_for(src: Source, tokenizer: str | None) -> str:
    if src.layout == "diffusers" and tokenizer is None:
        tokenizer = str(src.folder / "tokenizer")
    if not tokenizer:
        raise CheckpointError(f"{src.path}: LAION-CLAP text weights need their RoBERTa tokenizer: pass --tokenizer DIR "
                              f"(a folder with vocab.json and merges.txt, e.g. the tokenizer/ folder of a diffusers "
                              f"AudioLDM download, or roberta-base saved locally)")
    if not os.path.isdir(tokenizer):
        raise CheckpointError(f"tokenizer folder not found: {tokenizer}")
    return os.path.abspath(tokenizer)  # the stage config keeps it: valid from any working directory


def clap_config_from_transformers(config: dict, text_only: bool) -> ClapConfig:
    """Our ClapConfig from a transformers ClapConfig (or ClapTextConfig) dict."""
    text = config.get("text_config", config)
    audio = config.get("audio_config", {})
    if audio.get("enable_fusion"):
        raise CheckpointError("fusion CLAP models are not supported (AudioLDM uses a non-fusion CLAP)")
    base = ClapConfig()
    return ClapConfig(
        projection_dim=config.get("projection_dim", text.get("projection_dim", 512)),
        text_hidden_size=text.get("hidden_size", 768), text_layers=text.get("num_hidden_layers", 12),
        text_heads=text.get("num_attention_heads", 12), text_intermediate_size=text.get("intermediate_size", 3072),
        text_layer_norm_eps=text.get("layer_norm_eps", 1e-12),
        audio_patch_embeds_hidden_size=audio.get("patch_embeds_hidden_size", base.audio_patch_embeds_hidden_size),
        audio_depths=list(audio.get("depths", base.audio_depths)),
        audio_heads=list(audio.get("num_attention_heads", base.audio_heads)), text_only=text_only)


def load_clap(path: str | os.PathLike | Source, mel: MelConfig,
              tokenizer: str | None = None) -> tuple[ClapEmbedder, dict]:
    """(CLAP in eval mode, its stage config) from any layout that holds a CLAP. LAION weights and
    transformers folders need a RoBERTa tokenizer folder (``tokenizer``; a diffusers folder has its own)."""
    src = as_source(path)
    if src.layout == "ours":
        network, config, _ = _ours(src, "clap", mel)
        return network.eval().requires_grad_(False), config
    if src.layout in ("audioldm", "laion_clap"):
        from audioldm.convert.laion_clap import clap_from_laion, strip_laion_prefix

        clap_config, converted = clap_from_laion(strip_laion_prefix(src.state))
        if src.layout == "audioldm":  # AudioLDM tokenizes captions to 512 tokens (LAION-CLAP: 77)
            clap_config.max_text_length = 512
    elif src.layout in ("diffusers", "transformers_clap", "transformers_clap_text"):
        folder = src.folder / "text_encoder" if src.layout == "diffusers" else src.folder
        text_only = src.layout != "transformers_clap"
        clap_config = clap_config_from_transformers(_config_of(folder, "CLAP"), text_only)
        converted = read_folder_weights(folder)
    else:
        raise CheckpointError(f"{src.path}: a '{src.layout}' source holds no CLAP")
    clap_config.tokenizer_path = _tokenizer_for(src, tokenizer)
    network = ClapEmbedder(clap_config, mel.sample_rate)
    if clap_config.text_only:  # the audio tower keeps its random initialisation and is refused by embed_audio
        converted = {**{k: v for k, v in network.model.state_dict().items() if not k.startswith("text_")}, **converted}
    load_weights(network.model, converted, f"{src.path} (clap)")
    return network.eval().requires_grad_(False), stage_config("clap", clap_config, mel, src.path)


# -- vocoder -----------------------------------------------------------------------------------
def vocoder_config_from_transformers(folder: Path) -> tuple[VocoderConfig, dict]:
    c = _config_of(folder, "SpeechT5HifiGan")
    if c.get("normalize_before"):
        raise CheckpointError(f"{folder}: a vocoder that normalises its input (normalize_before) is not AudioLDM's")
    return VocoderConfig(upsample_rates=list(c["upsample_rates"]),
                         upsample_kernel_sizes=list(c["upsample_kernel_sizes"]),
                         upsample_initial_channel=c["upsample_initial_channel"],
                         resblock_kernel_sizes=list(c["resblock_kernel_sizes"]),
                         resblock_dilation_sizes=[list(d) for d in c["resblock_dilation_sizes"]]), c


def load_vocoder(path: str | os.PathLike | Source, mel: MelConfig) -> tuple[HifiGanVocoder, dict]:
    """(HiFi-GAN in eval mode, its stage config) from any layout that holds one."""
    src = as_source(path)
    if src.layout == "ours":
        network, config, _ = _ours(src, "vocoder", mel)
        return network.eval().requires_grad_(False), config
    if src.layout in ("audioldm", "hifigan"):
        from audioldm.convert.original_hifigan import vocoder_from_original

        state = sub_state_dict(src.state, "first_stage_model.vocoder.") if src.layout == "audioldm" else src.state
        if not state:
            raise CheckpointError(f"{src.path}: no first_stage_model.vocoder.* weights in this AudioLDM checkpoint")
        vocoder_config, converted = vocoder_from_original(state)
    elif src.layout in ("diffusers", "transformers_hifigan"):
        folder = src.folder / "vocoder" if src.layout == "diffusers" else src.folder
        vocoder_config, c = vocoder_config_from_transformers(folder)
        found = (c.get("model_in_dim", mel.n_mels), c.get("sampling_rate", mel.sample_rate))
        if found != (mel.n_mels, mel.sample_rate):
            raise CheckpointError(f"{folder}: vocoder for {c.get('model_in_dim')} mel bins at {c.get('sampling_rate')} "
                                  f"Hz; the mel settings are {mel.n_mels} bins at {mel.sample_rate} Hz")
        converted = read_folder_weights(folder)
    else:
        raise CheckpointError(f"{src.path}: a '{src.layout}' source holds no vocoder")
    network = HifiGanVocoder(build_generator(vocoder_config, mel.n_mels, mel.sample_rate))
    load_weights(network.generator, converted, f"{src.path} (vocoder)")
    return network.eval().requires_grad_(False), stage_config("vocoder", vocoder_config, mel, src.path)


def ldm_stage_source(config: Any, stage: str) -> str:
    """Where an ldm config's frozen ``stage`` comes from: ``model.<stage>_ckpt``, else ``init_from``."""
    path = getattr(config.model, f"{stage}_ckpt", None) or config.get("init_from")
    if not path:
        raise CheckpointError(f"model.{stage}_ckpt is not set (nor init_from)")
    return path


def load_stage_network(path: str | os.PathLike | Source, stage: str, mel: MelConfig,
                       tokenizer: str | None = None) -> tuple[nn.Module, dict, dict]:
    """``load_frozen``'s contract for any layout: (network, stage config, extra tensors)."""
    if stage == "vae":
        network, config, scale = load_vae(path, mel)
        return network, config, {"scale_factor": scale}
    if stage == "clap":
        return (*load_clap(path, mel, tokenizer), {})
    if stage == "vocoder":
        return (*load_vocoder(path, mel), {})
    raise ValueError(f"no frozen network for stage {stage!r}")
