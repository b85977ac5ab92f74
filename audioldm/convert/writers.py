"""Write converted weights: our checkpoint format (what train.py writes, so ``generate.py``,
``evaluate.py``, ``model.*_ckpt`` and ``init_from`` read it) or the diffusers AudioLDM folder.

Our ldm checkpoint: ``config`` (an ldm experiment config whose ``model.unet`` rebuilds the UNet),
``stage: ldm``, ``state_dict`` with ``model.unet.*`` (raw weights), ``model.unet_ema.module.*`` (EMA;
the raw set again when the source has one), ``model.vae.*``, ``model.clap.*``, ``model.vocoder.*``,
``model.scale_factor``, ``model.null_condition``; ``stage_configs`` for the frozen stages.
Our stage checkpoint: ``config``, ``stage``, ``state_dict`` with ``vae.*`` + ``scale_factor``,
``embedder.*`` (CLAP) or ``vocoder.*``. Files are written to ``<path>.tmp`` and renamed.
A checkpoint with a RoBERTa-tokenized CLAP keeps its tokenizer beside it (``x.ckpt`` -> ``x.tokenizer/``,
stored as an absolute ``tokenizer_path``); the diffusers folder's ``tokenizer/`` always has a real
``model_max_length`` (the CLAP's ``max_text_length``: 512 for AudioLDM's).
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn as nn

from audioldm.checkpoint import CheckpointError, save_atomic
from audioldm.convert.ldm import LdmWeights, to_latent_diffusion
from audioldm.convert.stages import OURS_PREFIX, stage_config
from audioldm.diffusion.schedule import make_scheduler
from audioldm.models.clap_tokenizer import load_hf_tokenizer
from audioldm.models.latent_diffusion import LatentDiffusion, LdmConfig


def ldm_experiment_config(weights: LdmWeights) -> dict:
    """An ldm config that rebuilds these networks (frozen stages come from ``stage_configs``)."""
    model = LdmConfig(unet=weights.unet_config, vae_ckpt=None, clap_ckpt=None, vocoder_ckpt=None)
    return stage_config("ldm", model, weights.mel, weights.path)


def save_ours_ldm(weights: LdmWeights, path: str | os.PathLike) -> None:
    model = to_latent_diffusion(weights, with_ema=True)
    stage_configs = {**weights.stage_configs}
    if stage_configs.get("clap"):
        stage_configs["clap"] = keep_tokenizer(stage_configs["clap"], path)
    with _removed_on_failure(stage_configs.get("clap"), weights.stage_configs.get("clap")):
        save_atomic({"config": ldm_experiment_config(weights), "stage": "ldm",
                     "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                     "stage_configs": stage_configs, "converted_from": str(weights.path)}, path)


def save_ours_stage(stage: str, network: nn.Module, config: dict, path: str | os.PathLike,
                    scale_factor: torch.Tensor | None = None) -> None:
    state = {f"{OURS_PREFIX[stage]}{k}": v for k, v in network.state_dict().items()}
    if stage == "vae":
        state["scale_factor"] = torch.as_tensor(scale_factor, dtype=torch.float32).reshape(())
    kept = keep_tokenizer(config, path) if stage == "clap" else config
    with _removed_on_failure(kept, config):
        save_atomic({"config": kept, "stage": stage, "state_dict": state, "converted_from": config["name"]}, path)


def tokenizer_folder(path: str | os.PathLike) -> Path:
    """Where a converted checkpoint keeps its CLAP tokenizer: ``x.ckpt`` -> ``x.tokenizer/`` beside it."""
    path = Path(path)
    return path.with_name((path.stem if path.suffix else path.name) + ".tokenizer")


def keep_tokenizer(config: dict, path: str | os.PathLike) -> dict:
    """A copy of a CLAP stage ``config`` whose ``model.tokenizer_path`` (the folder given with --tokenizer, or
    a diffusers source's own) is saved beside the checkpoint at ``path`` (``tokenizer_folder``) and stored as
    that absolute path: the checkpoint then works from any working directory and outlives the source folder.
    A tokenizer without a real ``model_max_length`` gets the CLAP's ``max_text_length``."""
    model = dict(config["model"])
    source = model.get("tokenizer_path")
    if not source:
        return config
    folder = tokenizer_folder(path).resolve()
    if folder.exists():
        raise CheckpointError(f"{folder}: already exists (the converted checkpoint keeps its tokenizer there); "
                              f"choose another output path or remove it")
    tokenizer = with_text_length(load_hf_tokenizer(source), model.get("max_text_length") or 512)
    tmp = folder.with_name(folder.name + ".tmp")
    tokenizer.save_pretrained(str(tmp))
    os.replace(tmp, folder)
    model["tokenizer_path"] = str(folder)
    return {**config, "model": model}


@contextmanager
def _removed_on_failure(kept: dict | None, original: dict | None):
    """Remove the tokenizer folder ``keep_tokenizer`` wrote when the checkpoint itself is not written."""
    try:
        yield
    except BaseException:
        new = (kept or {}).get("model", {}).get("tokenizer_path")
        if new and new != (original or {}).get("model", {}).get("tokenizer_path"):
            shutil.rmtree(new, ignore_errors=True)
        raise


def with_text_length(tokenizer, max_length: int):
    """``tokenizer`` with ``model_max_length`` = ``max_length`` when it has none of its own (transformers' huge
    sentinel, as a folder of vocab.json + merges.txt gives): diffusers' AudioLDMPipeline pads to it."""
    if not tokenizer.model_max_length or tokenizer.model_max_length > 100_000:
        tokenizer.model_max_length = max_length
    return tokenizer


def diffusers_scheduler(prediction_type: str):
    """DDIM on AudioLDM's schedule, told what the UNet outputs (our own samplers always take epsilon, which
    ``predict_noise`` derives; diffusers' pipeline passes the UNet's raw output to the scheduler)."""
    scheduler = make_scheduler("ddim")
    return type(scheduler).from_config(scheduler.config, prediction_type=prediction_type)


def save_diffusers(model: LatentDiffusion, folder: str | os.PathLike) -> None:
    """The diffusers AudioLDM folder (``AudioLDMPipeline.save_pretrained``): unet/, vae/ (scaling_factor
    = our ``scale_factor``), vocoder/, text_encoder/ (ClapTextModelWithProjection), tokenizer/, scheduler/."""
    from diffusers import AudioLDMPipeline
    from transformers import ClapTextModelWithProjection

    tokenizer_path = model.clap.config.tokenizer_path
    if not tokenizer_path:
        raise CheckpointError("the diffusers layout needs a RoBERTa tokenizer folder; this CLAP uses open_clip's BPE "
                              "tokenizer (model.tokenizer_path unset), which diffusers' AudioLDMPipeline cannot load")
    if not isinstance(model.vocoder, nn.Module) or not hasattr(model.vocoder, "generator"):
        raise CheckpointError(f"the diffusers layout needs a HiFi-GAN vocoder; this model uses "
                              f"{type(model.vocoder).__name__} (model.generator other than hifigan, or Griffin-Lim)")
    clap = model.clap.model
    text_encoder = ClapTextModelWithProjection(clap.config.text_config)
    text_encoder.load_state_dict({k: v for k, v in clap.state_dict().items()
                                  if k.startswith(("text_model.", "text_projection."))}, strict=True)
    model.vae.register_to_config(scaling_factor=float(model.scale_factor))
    pipe = AudioLDMPipeline(vae=model.vae, text_encoder=text_encoder.eval(),
                            tokenizer=with_text_length(load_hf_tokenizer(tokenizer_path),
                                                       model.clap.config.max_text_length),
                            unet=model.unet, scheduler=diffusers_scheduler(model.prediction_type),
                            vocoder=model.vocoder.generator)
    tmp = Path(f"{folder}.tmp")
    pipe.save_pretrained(str(tmp))
    if Path(folder).exists():
        raise CheckpointError(f"{folder}: already exists; choose a new output folder")
    os.replace(tmp, folder)
