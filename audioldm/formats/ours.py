"""This project's checkpoints (written by train.py and convert.py), read part by part and written.

A stage checkpoint holds ``config``, ``stage`` and ``state_dict`` with ``vae.*`` + ``scale_factor`` (VAE),
``embedder.*`` (CLAP) or ``vocoder.*``. An ldm (or lcm) checkpoint holds ``model.unet.*`` (raw weights),
``model.unet_ema.module.*`` (EMA), ``model.vae.*``, ``model.clap.*``, ``model.vocoder.*``, ``model.scale_factor``,
``model.null_condition``, and ``stage_configs``: the configs of the stages that trained its VAE, CLAP and vocoder
(vocoder None: Griffin-Lim). Whole models load directly (``audioldm.assembly.load_ldm``); this module serves one
network of a checkpoint (e.g. an LDM's VAE as ``model.vae_ckpt``) and writes converted weights.

A checkpoint with a RoBERTa-tokenized CLAP keeps its tokenizer beside it (``x.ckpt`` -> ``x.tokenizer/``,
stored as an absolute ``tokenizer_path``).
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import torch
from omegaconf import OmegaConf

from audioldm.audio.mel import MelConfig
from audioldm.checkpoint import CheckpointError, check_mel, is_checkpoint, save_atomic, sub_state_dict
from audioldm.config.loader import load_config_dict
from audioldm.formats.source import (
    NETWORKS,
    NetworkWeights,
    ReadOptions,
    Source,
    holds_no,
    stage_config,
    with_text_length,
)
from audioldm.models.clap_tokenizer import load_hf_tokenizer
from audioldm.models.latent_diffusion import LatentDiffusion, LdmConfig
from audioldm.models.unet import UnetConfig

NAME = "ours"
DESCRIPTION = "this project's checkpoint (train.py, convert.py)"
PREFIX = {"vae": "vae.", "clap": "embedder.", "vocoder": "vocoder."}  # in a stage checkpoint
LDM_PREFIX = {
    "unet": "model.unet.",
    "vae": "model.vae.",
    "clap": "model.clap.",
    "vocoder": "model.vocoder.",
    "text_encoder": "model.text_encoder.",
}
OPTIONAL = ("clap", "text_encoder")  # an LDM may be without (crossattn_t5: no CLAP; film: no text encoder)
WHOLE = ("ldm", "lcm")  # stages whose checkpoints hold a whole AudioLDM


def detect(source: Source) -> str | None:
    return source.raw["stage"] if source.raw is not None and is_checkpoint(source.raw) else None


def parts(source: Source) -> tuple[str, ...]:
    if source.kind not in WHOLE:
        return (source.kind,)
    held = source.raw.get("stage_configs", {})
    return tuple(p for p in NETWORKS if p not in OPTIONAL or held.get(p) is not None)


def read(source: Source, part: str, options: ReadOptions) -> NetworkWeights:
    raw = source.raw
    if part == "unet":
        if source.kind not in WHOLE:
            raise holds_no(source, part)
        config = load_config_dict(raw["config"], source=source.path)
        ema = sub_state_dict(source.state, "model.unet_ema.module.") or None
        return NetworkWeights(
            OmegaConf.to_object(config.model).unet,
            sub_state_dict(source.state, "model.unet."),
            ema=ema,
            mel=OmegaConf.to_object(config.audio),
        )
    if source.kind == part:
        config, state = raw["config"], sub_state_dict(source.state, PREFIX[part])
        scale = source.state.get("scale_factor")
    elif source.kind in WHOLE and part in raw.get("stage_configs", {}):
        config, state = raw["stage_configs"][part], sub_state_dict(source.state, LDM_PREFIX[part])
        scale = source.state.get("model.scale_factor")
        if config is None:  # an LDM that renders with Griffin-Lim
            return NetworkWeights(None, {})
    else:
        raise CheckpointError(f"{source.path}: is a '{source.kind}' checkpoint without a {part} in it")
    if part == "text_encoder":  # a part config, without mel settings
        return NetworkWeights(config, state)
    if options.mel is not None:
        check_mel(source.path, config.get("audio", {}), options.mel)
    return NetworkWeights(
        config, state, scale_factor=scale if part == "vae" else None, mel=MelConfig(**config.get("audio", {}))
    )


def ldm_experiment_config(unet: UnetConfig, mel, source: str, condition: str = "film_clap") -> dict:
    """An ldm config that rebuilds a converted LDM's UNet (its frozen networks come from ``stage_configs``)."""
    model = LdmConfig(unet=unet, vae_ckpt=None, clap_ckpt=None, vocoder_ckpt=None, condition=condition)
    return stage_config("ldm", model, mel, source)


def write_ldm(model: LatentDiffusion, unet: UnetConfig, path: str | os.PathLike, source: str) -> None:
    """An ldm checkpoint of ``model`` (raw UNet and its EMA, the frozen networks), converted from ``source``."""
    stage_configs = {**model.stage_configs}
    if stage_configs.get("clap"):
        stage_configs["clap"] = keep_tokenizer(stage_configs["clap"], path)
    if stage_configs.get("text_encoder"):
        stage_configs["text_encoder"] = keep_t5_tokenizer(stage_configs["text_encoder"], path)
    kept = [(stage_configs.get(p), model.stage_configs.get(p)) for p in ("clap", "text_encoder")]
    with _removed_on_failure(kept):
        save_atomic(
            {
                "config": ldm_experiment_config(unet, model.mel, source, model.condition),
                "stage": "ldm",
                "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "stage_configs": stage_configs,
                "converted_from": str(source),
            },
            path,
        )


def write_part(
    part: str, network: torch.nn.Module, config: dict, path: str | os.PathLike, scale_factor: torch.Tensor | None = None
) -> None:
    """A stage checkpoint of one network (usable as ``model.*_ckpt`` or ``init_from``)."""
    state = {f"{PREFIX[part]}{k}": v for k, v in network.state_dict().items()}
    if part == "vae":
        state["scale_factor"] = torch.as_tensor(scale_factor, dtype=torch.float32).reshape(())
    kept = keep_tokenizer(config, path) if part == "clap" else config
    with _removed_on_failure([(kept, config)]):
        save_atomic({"config": kept, "stage": part, "state_dict": state, "converted_from": config["name"]}, path)


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
        raise CheckpointError(
            f"{folder}: already exists (the converted checkpoint keeps its tokenizer there); "
            f"choose another output path or remove it"
        )
    model["tokenizer_path"] = _copy_tokenizer(source, folder, model.get("max_text_length") or 512)
    return {**config, "model": model}


def keep_t5_tokenizer(config: dict, path: str | os.PathLike) -> dict:
    """A copy of a T5 text encoder's part ``config`` whose tokenizer is saved beside the checkpoint at ``path``
    (``x.ckpt`` -> ``x.t5_tokenizer/``), as ``keep_tokenizer`` does for the CLAP's."""
    path = Path(path)
    folder = path.with_name((path.stem if path.suffix else path.name) + ".t5_tokenizer").resolve()
    if folder.exists():
        raise CheckpointError(
            f"{folder}: already exists (the converted checkpoint keeps its T5 tokenizer there); "
            f"choose another output path or remove it"
        )
    return {**config, "tokenizer": _copy_tokenizer(config["tokenizer"], folder, config.get("max_length") or 128)}


def _copy_tokenizer(source: str, folder: Path, max_length: int) -> str:
    """The tokenizer of folder ``source`` saved (atomically) to ``folder``; its absolute path."""
    tokenizer = with_text_length(load_hf_tokenizer(source), max_length)
    tmp = folder.with_name(folder.name + ".tmp")
    tokenizer.save_pretrained(str(tmp))
    os.replace(tmp, folder)
    return str(folder)


def _tokenizer_of(config: dict | None) -> str | None:
    config = config or {}
    return config.get("tokenizer") or config.get("model", {}).get("tokenizer_path")


@contextmanager
def _removed_on_failure(kept: list[tuple[dict | None, dict | None]]):
    """Remove the tokenizer folders ``keep_tokenizer`` / ``keep_t5_tokenizer`` wrote (each pair: the kept
    config, the original) when the checkpoint itself is not written."""
    try:
        yield
    except BaseException:
        for new_config, original in kept:
            new = _tokenizer_of(new_config)
            if new and new != _tokenizer_of(original):
                shutil.rmtree(new, ignore_errors=True)
        raise


def saved_guidance(path: str | os.PathLike | None) -> float | None:
    """``config.model.val_guidance`` of one of our checkpoint files (memory-mapped, not read whole), else None."""
    if not path or not os.path.isfile(path):
        return None
    try:
        raw = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
        value = raw["config"]["model"].get("val_guidance")
        return float(value) if value else None
    except Exception:  # an original .ckpt or another layout: it records no guidance  # noqa: BLE001
        return None
