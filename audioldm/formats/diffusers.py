"""A diffusers AudioLDM folder (``AudioLDMPipeline``, e.g. cvssp/audioldm-s-full-v2): ``model_index.json``
(kind ``pipeline``), or one diffusers model folder, ``UNet2DConditionModel`` (``unet``) or ``AutoencoderKL``
(``vae``), told by ``config.json``'s ``_class_name``. Read and written.

A pipeline holds ``unet/`` (one weight set), ``vae/`` (``scaling_factor`` = our ``scale_factor``), ``vocoder/``
(``SpeechT5HifiGan``), ``text_encoder/`` (``ClapTextModelWithProjection``: the CLAP text tower only, so its
CLAP cannot embed audio) with ``tokenizer/``, and ``scheduler/`` (its ``prediction_type`` is the UNet's).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from audioldm.checkpoint import CheckpointError
from audioldm.diffusion.schedule import PREDICTION_TYPES, make_scheduler
from audioldm.formats.source import (
    AUDIOLDM_NETWORKS,
    NetworkWeights,
    ReadOptions,
    Source,
    folder_config,
    holds_no,
    read_folder_weights,
    read_json,
    stage_config,
    with_text_length,
)
from audioldm.formats.transformers import read_clap_folder, read_vocoder_folder
from audioldm.models.clap_tokenizer import load_hf_tokenizer
from audioldm.models.latent_diffusion import LatentDiffusion
from audioldm.models.unet import UnetConfig
from audioldm.models.vae import VaeConfig

NAME = "diffusers"
DESCRIPTION = "a diffusers AudioLDM folder (or its unet/ or vae/)"
CLASSES = {"UNet2DConditionModel": "unet", "AutoencoderKL": "vae"}


def detect(source: Source) -> str | None:
    if source.folder is None:
        return None
    if (source.folder / "model_index.json").is_file():
        return "pipeline"
    if not (source.folder / "config.json").is_file():
        return None
    return CLASSES.get(folder_config(source.folder, "model").get("_class_name"))


def parts(source: Source) -> tuple[str, ...]:
    return AUDIOLDM_NETWORKS if source.kind == "pipeline" else (source.kind,)


def read(source: Source, part: str, options: ReadOptions) -> NetworkWeights:
    if part not in parts(source):
        raise holds_no(source, part)
    folder = source.folder / part if source.kind == "pipeline" else source.folder
    if part == "unet":
        return NetworkWeights(unet_config_from_diffusers(folder), read_folder_weights(folder), mel=options.foreign_mel)
    if part == "vae":
        c = folder_config(folder, "AutoencoderKL")
        if c.get("in_channels") != 1 or c.get("out_channels") != 1:
            raise CheckpointError(f"{folder}: a VAE with {c.get('in_channels')} input channels is not a mel VAE (1)")
        config = VaeConfig(
            block_out_channels=list(c["block_out_channels"]),
            layers_per_block=c.get("layers_per_block", 2),
            latent_channels=c.get("latent_channels", 8),
            norm_num_groups=c.get("norm_num_groups", 32),
        )
        scale = torch.tensor(float(c.get("scaling_factor", 1.0)))
        return NetworkWeights(
            stage_config("vae", config, options.foreign_mel, source.path),
            read_folder_weights(folder),
            scale_factor=scale,
        )
    if part == "clap":
        return read_clap_folder(
            source, source.folder / "text_encoder", True, options, default_tokenizer=str(source.folder / "tokenizer")
        )
    return read_vocoder_folder(source, source.folder / "vocoder", options)


def unet_config_from_diffusers(folder: Path) -> UnetConfig:
    """Our UnetConfig from a diffusers UNet2DConditionModel config; refuses UNets not in AudioLDM's form."""
    c = read_json(folder / "config.json")
    channels = list(c["block_out_channels"])
    levels = len(channels)
    expected = {
        "down_block_types": ["DownBlock2D"] + ["CrossAttnDownBlock2D"] * (levels - 1),
        "up_block_types": ["CrossAttnUpBlock2D"] * (levels - 1) + ["UpBlock2D"],
        "class_embed_type": "simple_projection",
        "class_embeddings_concat": True,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "transformer_layers_per_block": 1,
    }
    wrong = [
        f"{k}={c.get(k)!r} (AudioLDM: {v!r})"
        for k, v in expected.items()
        if k in c and (list(c[k]) if isinstance(c[k], (list, tuple)) else c[k]) != v
    ]
    if wrong or any(ch % channels[0] for ch in channels):
        raise CheckpointError(f"{folder}: not a UNet in AudioLDM's form ({'; '.join(wrong) or f'channels {channels}'})")
    prediction = c.get("prediction_type", "epsilon")  # our exports record it on the UNet and the scheduler
    scheduler = folder.parent / "scheduler" / "scheduler_config.json"
    if scheduler.is_file():
        prediction = read_json(scheduler).get("prediction_type", prediction)
    if prediction not in PREDICTION_TYPES:
        raise CheckpointError(
            f"{scheduler}: prediction_type {prediction!r} is not supported (one of {', '.join(PREDICTION_TYPES)})"
        )
    heads = c.get("num_attention_heads") or c.get("attention_head_dim") or 8
    heads = [heads] * levels if isinstance(heads, int) else list(heads)
    return UnetConfig(
        model_channels=channels[0],
        channel_mult=[ch // channels[0] for ch in channels],
        layers_per_block=c.get("layers_per_block", 2),
        latent_channels=c.get("in_channels", 8),
        condition_dim=c["projection_class_embeddings_input_dim"],
        attention_heads=heads,
        resnet_time_scale_shift=c.get("resnet_time_scale_shift", "default"),
        guidance_embed_dim=c.get("time_cond_proj_dim"),
        prediction_type=prediction,
    )


def scheduler_for(prediction_type: str):
    """DDIM on AudioLDM's schedule, told what the UNet outputs (our own samplers always take epsilon, which
    ``predict_noise`` derives; diffusers' pipeline passes the UNet's raw output to the scheduler)."""
    scheduler = make_scheduler("ddim")
    return type(scheduler).from_config(scheduler.config, prediction_type=prediction_type)


def write(model: LatentDiffusion, folder: str | os.PathLike) -> None:
    """``model`` as a diffusers AudioLDM folder (``AudioLDMPipeline.save_pretrained``), its UNet the one it
    samples with; written to ``<folder>.tmp`` and renamed."""
    from diffusers import AudioLDMPipeline
    from transformers import ClapTextModelWithProjection

    if model.condition != "film_clap":
        raise CheckpointError(
            f"diffusers has no pipeline for a {model.condition} AudioLDM: its AudioLDMPipeline conditions the UNet "
            f"on one CLAP embedding (FiLM), and AudioLDM2Pipeline needs CLAP + T5 + a GPT-2 language model; "
            f"keep this model in our format (--to ours)"
        )
    tokenizer_path = model.clap.config.tokenizer_path
    if not tokenizer_path:
        raise CheckpointError(
            "the diffusers layout needs a RoBERTa tokenizer folder; this CLAP uses open_clip's BPE "
            "tokenizer (model.tokenizer_path unset), which diffusers' AudioLDMPipeline cannot load"
        )
    if not isinstance(model.vocoder, torch.nn.Module) or not hasattr(model.vocoder, "generator"):
        raise CheckpointError(
            f"the diffusers layout needs a HiFi-GAN vocoder; this model uses "
            f"{type(model.vocoder).__name__} (model.generator other than hifigan, or Griffin-Lim)"
        )
    clap = model.clap.model
    text_encoder = ClapTextModelWithProjection(clap.config.text_config)
    text_encoder.load_state_dict(
        {k: v for k, v in clap.state_dict().items() if k.startswith(("text_model.", "text_projection."))}, strict=True
    )
    model.vae.register_to_config(scaling_factor=float(model.scale_factor))
    pipe = AudioLDMPipeline(
        vae=model.vae,
        text_encoder=text_encoder.eval(),
        tokenizer=with_text_length(load_hf_tokenizer(tokenizer_path), model.clap.config.max_text_length),
        unet=model.unet,
        scheduler=scheduler_for(model.prediction_type),
        vocoder=model.vocoder.generator,
    )
    tmp = Path(f"{folder}.tmp")
    pipe.save_pretrained(str(tmp))
    if Path(folder).exists():
        raise CheckpointError(f"{folder}: already exists; choose a new output folder")
    os.replace(tmp, folder)
