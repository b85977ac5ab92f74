"""The checkpoint formats this project reads, in the order they are tried, and the one reader that tells which
format a file or folder is. Adding a format is one module with ``source.py``'s interface plus one line in
``FORMATS``. Nothing is downloaded; a missing path, a truncated file or an unknown layout raise
``CheckpointError`` naming the path.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from audioldm.checkpoint import CheckpointError, is_checkpoint
from audioldm.formats import diffusers, hifigan, laion, original, original_crossattn_t5, ours, transformers
from audioldm.formats.source import NetworkWeights, ReadOptions, Source, read_file, read_json

FORMATS = (ours, original_crossattn_t5, original, laion, hifigan, diffusers, transformers)


def open_source(path: str | os.PathLike) -> Source:
    """Read ``path`` (a file, or a folder) and tell its format."""
    path = str(path)
    if os.path.isdir(path):
        return _tell(Source(path, folder=Path(path)))
    if not os.path.isfile(path):
        raise CheckpointError(f"weights not found: {path} (a checkpoint file or a diffusers/transformers folder)")
    raw = read_file(path)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: holds a {type(raw).__name__}, not a state dict or checkpoint dict")
    state = raw["state_dict"] if is_checkpoint(raw) else raw.get("state_dict", raw.get("generator", raw))
    tensors = isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    return _tell(Source(path, raw=raw, state=dict(state) if tensors else {}))


def as_source(path: str | os.PathLike | Source) -> Source:
    return path if isinstance(path, Source) else open_source(path)


def read_network(source: str | os.PathLike | Source, part: str, options: ReadOptions) -> NetworkWeights:
    """One network (``unet``, ``vae``, ``clap`` or ``vocoder``) of a source in any format."""
    source = as_source(source)
    return source.format.read(source, part, options)


def holds_whole_model(source: Source) -> bool:
    """Whether the source is a whole AudioLDM (it holds a UNet and the networks around it)."""
    return "unet" in source.format.parts(source)


def _tell(source: Source) -> Source:
    """``source`` with the format (and kind) the first format module that recognises it says."""
    for fmt in FORMATS:
        kind = fmt.detect(source)
        if kind:
            source.format, source.kind = fmt, kind
            return source
    if source.folder is not None:
        config_file = source.folder / "config.json"
        if not (source.folder / "model_index.json").is_file() and not config_file.is_file():
            raise CheckpointError(
                f"{source.folder}: a folder without model_index.json (a diffusers pipeline) or "
                f"config.json (one diffusers or transformers model)"
            )
        config = read_json(config_file)
        raise CheckpointError(
            f"{config_file}: a model this project cannot use (_class_name "
            f"{config.get('_class_name')!r}, model_type {config.get('model_type')!r})"
        )
    if not source.state:
        raise CheckpointError(f"{source.path}: no tensor state dict in it (top-level keys: {sorted(source.raw)[:8]})")
    raise CheckpointError(
        f"{source.path}: not a weights layout this project knows (first keys: "
        f"{list(source.state)[:5]}); expected {', '.join(fmt.DESCRIPTION for fmt in FORMATS[:-2])}, "
        f"or {' or '.join(fmt.DESCRIPTION for fmt in FORMATS[-2:])}"
    )
