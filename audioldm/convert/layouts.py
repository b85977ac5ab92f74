"""Recognise a weights file or folder by its keys or files, and read it (nothing is downloaded).

Layouts (``Source.layout``), each with what recognises it:

- ``ours``: a checkpoint written by this project's train.py or convert.py (``config``, ``state_dict``,
  ``stage`` entries).
- ``audioldm``: an original AudioLDM ``.ckpt`` (audioldm-s-full, -m-full, -l-full, -s-text-ft, ...):
  ``model.diffusion_model.*`` keys.
- ``audioldm_vae``: an original AudioLDM VAE alone: ``encoder.conv_in.*`` and ``decoder.conv_out.*``
  (optionally under ``first_stage_model.``).
- ``laion_clap``: a LAION-CLAP ``.pt`` (630k-audioset-best.pt, ...): ``text_branch.*``/``audio_branch.*``
  (optionally under ``module.`` or ``cond_stage_model.model.``).
- ``hifigan``: a HiFi-GAN generator (``{"generator": ...}`` or bare): ``conv_pre.*`` and ``ups.*``.
- ``diffusers``: a diffusers AudioLDM folder (cvssp/audioldm-s-full-v2, ...): ``model_index.json``.
- ``diffusers_unet``, ``diffusers_vae``: one diffusers model folder: ``config.json`` ``_class_name``.
- ``transformers_clap``, ``transformers_clap_text``, ``transformers_hifigan``: a transformers ``ClapModel``,
  ``ClapTextModelWithProjection`` or ``SpeechT5HifiGan`` folder: ``config.json`` ``model_type``.

A missing path, a truncated file or an unknown layout raise ``CheckpointError`` naming the path.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from audioldm.checkpoint import CheckpointError, load_torch_file

FOLDER_MODEL_TYPES = {"clap": "transformers_clap", "clap_text_model": "transformers_clap_text",
                      "hifigan": "transformers_hifigan", "speecht5_hifigan": "transformers_hifigan"}
FOLDER_CLASSES = {"UNet2DConditionModel": "diffusers_unet", "AutoencoderKL": "diffusers_vae"}


@dataclass
class Source:
    """A read weights source: ``state`` for files (the flat state dict), ``folder`` for folders."""

    path: str
    layout: str
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    raw: Any = None  # the whole loaded object (ours: the checkpoint dict)
    folder: Path | None = None


def read_source(path: str | os.PathLike) -> Source:
    """Read ``path`` and tell its layout."""
    path = str(path)
    if os.path.isdir(path):
        return Source(path, folder_layout(Path(path)), folder=Path(path))
    if not os.path.isfile(path):
        raise CheckpointError(f"weights not found: {path} (a checkpoint file or a diffusers/transformers folder)")
    raw = _load_file(path)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: holds a {type(raw).__name__}, not a state dict or checkpoint dict")
    if {"config", "state_dict", "stage"} <= raw.keys():
        return Source(path, "ours", dict(raw["state_dict"]), raw)
    state = raw.get("state_dict", raw.get("generator", raw))
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: no tensor state dict in it (top-level keys: {sorted(raw)[:8]})")
    return Source(path, state_layout(path, state), dict(state), raw)


def state_layout(path: str, state: dict[str, torch.Tensor]) -> str:
    """The layout of a flat state dict, from its key names."""
    keys = list(state)

    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keys)

    if has("model.diffusion_model."):
        return "audioldm"
    bare = [k.removeprefix("module.").removeprefix("cond_stage_model.model.") for k in keys]
    if any(k.startswith(("text_branch.", "audio_branch.")) for k in bare):
        return "laion_clap"
    if has("first_stage_model.encoder.") or (has("encoder.conv_in.") and has("decoder.conv_out.")):
        return "audioldm_vae"
    if has("conv_pre.") and has("ups."):
        return "hifigan"
    raise CheckpointError(f"{path}: not a weights layout this project knows (first keys: {keys[:5]}); expected ours, "
                          f"an original AudioLDM .ckpt, a LAION-CLAP .pt, a HiFi-GAN or AudioLDM VAE checkpoint, "
                          f"or a diffusers/transformers folder")


def folder_layout(folder: Path) -> str:
    if (folder / "model_index.json").is_file():
        return "diffusers"
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{folder}: a folder without model_index.json (a diffusers pipeline) or config.json "
                              f"(one diffusers or transformers model)")
    config = read_json(config_file)
    layout = FOLDER_CLASSES.get(config.get("_class_name")) or FOLDER_MODEL_TYPES.get(config.get("model_type"))
    if layout is None:
        raise CheckpointError(f"{config_file}: a model this project cannot use (_class_name "
                              f"{config.get('_class_name')!r}, model_type {config.get('model_type')!r})")
    return layout


def read_folder_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor in a diffusers/transformers model folder's weight files (``*.safetensors``, else
    ``*.bin``; sharded files included), read directly so that a missing key is reported, not re-initialised."""
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if not files:
        raise CheckpointError(f"{folder}: no *.safetensors or *.bin weight files")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        loaded = _load_file(str(file))
        state.update(loaded.get("state_dict", loaded) if isinstance(loaded, dict) else {})
    return state


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not readable JSON ({str(e).splitlines()[0]})") from None


def _load_file(path: str) -> Any:
    """A torch file (``load_torch_file``) or a .safetensors file."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as e:  # truncated header, not safetensors
            raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    return load_torch_file(path)
