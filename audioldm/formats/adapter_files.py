"""LoRA adapter files: the adapter alone, ``NAME.safetensors``, beside ``NAME.json``.

The safetensors file holds the adapter's weights under peft's names (``<module>.lora_A.weight`` [rank, in],
``<module>.lora_B.weight`` [out, rank]) and, in its metadata, the peft ``LoraConfig`` (``lora_adapter_metadata``),
which is diffusers' own LoRA layout: ``UNet2DConditionModel.load_lora_adapter`` reads the file as it is
(``export_diffusers`` writes it under diffusers' file name). The JSON says what the adapter was trained on and how:

    {"format": "audioldm-lora", "version": 1, "kind": "ldm",
     "base": {"fingerprint": the base UNet's weights (audioldm.checkpoint.fingerprint), "source": its path,
              "condition": film_clap | crossattn_*},
     "lora": {"rank", "alpha", "dropout", "targets", "condition"}, "peft_config": {...}, "step": N,
     "config": the training run's config}

An adapter applied to a base with another fingerprint is refused unless forced (``audioldm.assembly.adapters``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from audioldm.checkpoint import CheckpointError

FORMAT = "audioldm-lora"
DIFFUSERS_FILE = "pytorch_lora_weights.safetensors"


def json_path(path: str | os.PathLike) -> Path:
    """``NAME.safetensors`` -> ``NAME.json``."""
    return Path(path).with_suffix(".json")


def write_adapter(path: str | os.PathLike, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """The adapter's weights at ``path`` (.safetensors) and ``meta`` beside it (.json), each written atomically."""
    from safetensors.torch import save_file

    from audioldm.safe_output import atomic_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: an adapter file is a .safetensors file")
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": "pt", "lora_adapter_metadata": json.dumps(meta["peft_config"], sort_keys=True)}
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    with atomic_file(str(json_path(path)), f".{os.getpid()}.tmp", text=True) as f:
        json.dump({"format": FORMAT, "version": 1, **meta}, f, indent=2, sort_keys=True, default=str)


def read_adapter(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(weights, meta) of an adapter file; a missing or unreadable file, or one without its JSON, is named."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"adapter not found: {path} (a .safetensors file written by a model.lora run)")
    meta_file = json_path(path)
    if not meta_file.is_file():
        raise CheckpointError(f"{path}: its description {meta_file.name} is missing beside it (written with it)")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{meta_file}: not readable JSON ({str(e).splitlines()[0]})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_file}: not an adapter description (format {meta.get('format')!r})")
    try:
        state = load_file(str(path))
    except Exception as e:  # truncated, not safetensors
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    if not state or not all(".lora_A." in k or ".lora_B." in k for k in state):
        raise CheckpointError(f"{path}: holds no LoRA weights (lora_A / lora_B)")
    return state, meta


def export_diffusers(path: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """The adapter at ``path`` as a diffusers LoRA folder (``folder/pytorch_lora_weights.safetensors``), which
    ``UNet2DConditionModel.load_lora_adapter(folder)`` reads."""
    import shutil

    read_adapter(path)  # a readable adapter, named if not
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / DIFFUSERS_FILE
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(path, tmp)
    os.replace(tmp, target)
    return target
