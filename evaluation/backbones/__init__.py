"""Embedding backbones of the evaluation: VGGish (FAD), PANNs CNN14 16 kHz (FD, KL, IS), CLAP.

Pretrained weights are never downloaded: the official files go into one folder (``--weights-dir``)
and a missing, unreadable or foreign file gives a one-line ``BackboneError`` that names it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from audioldm.checkpoint import CheckpointError, load_weights


class BackboneError(ValueError):
    """A backbone that cannot be loaded; the message is one line."""


def weights_path(weights_dir: str | os.PathLike, filename: str, what: str, url: str) -> Path:
    """``weights_dir/filename`` if that file exists, else a ``BackboneError`` saying where to get it."""
    path = Path(weights_dir) / filename
    if not path.is_file():
        raise BackboneError(
            f"{what} weights not found: {filename} (looked in {Path(weights_dir).absolute()}); "
            f"download the official file from {url} into that folder"
        )
    return path


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def read_weights(path: Path) -> object:
    """What ``torch.load`` gives for ``path`` (on the CPU); an unreadable file gives a ``BackboneError``.

    Plain tensors are read with ``weights_only=True``; files that also pickle other objects (the
    official PANNs checkpoints keep their training sampler's numpy state) are read in full.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        pass
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated zip, not a torch file, ...
        raise BackboneError(f"{path}: not a readable weight file ({_first_line(e)})") from None


def load_state(module: nn.Module, state_dict: object, where: str) -> None:
    """Strict ``load_state_dict`` whose failure is a one-line ``BackboneError`` naming ``where``
    and the first few missing / unexpected keys."""
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        found = f"keys {list(state_dict)[:5]}" if isinstance(state_dict, dict) else type(state_dict).__name__
        raise BackboneError(f"{where}: not a state dict of tensors (found {found})")
    try:
        load_weights(module, state_dict, where)
    except CheckpointError as e:
        raise BackboneError(" ".join(str(e).split())) from None
