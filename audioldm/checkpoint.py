"""This project's checkpoint files without Lightning: reading, checking, writing atomically, and the state-dict
helpers every loader uses (the generation pipeline uses this too).

A missing, truncated or foreign file, or mel settings that differ from the caller's, raise
``CheckpointError`` with one line naming the file and the mismatch.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from typing import Any

import torch

from audioldm.audio.mel import MelConfig


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked; the message is one line."""


def load_torch_file(path: str | os.PathLike) -> Any:
    """``torch.load`` on the CPU, weights only when the file allows it (older official files and Lightning
    checkpoints pickle other objects: the user's own files, trusted); a truncated or foreign file gives a
    one-line ``CheckpointError``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as first:
        if "weights_only" not in str(first) and "Unsupported global" not in str(first):
            raise CheckpointError(
                f"{path}: not a readable checkpoint ({type(first).__name__}: "
                f"{str(first).splitlines()[0] if str(first) else ''})"
            ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated zip, not a torch file, ...
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from None


def is_checkpoint(raw: Any) -> bool:
    """Whether a loaded file is one of this project's checkpoints (``config``, ``state_dict``, ``stage``)."""
    return isinstance(raw, dict) and {"config", "state_dict", "stage"} <= raw.keys()


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The raw checkpoint dict; a missing, truncated or foreign file gives a ``CheckpointError``."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    checkpoint = load_torch_file(path)
    if not isinstance(checkpoint, dict) or "config" not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"{path}: not a checkpoint written by this project's train.py (no 'config' / 'state_dict' entries)"
        )
    return checkpoint


def checkpoint_stage(path: str | os.PathLike, checkpoint: dict, expected: str | None = None) -> str:
    """The stage that wrote ``checkpoint``; raises if it is not ``expected``."""
    found = checkpoint.get("stage", checkpoint["config"].get("stage"))
    if expected is not None and found != expected:
        raise CheckpointError(f"{path}: is a '{found}' checkpoint, expected '{expected}'")
    return found


def check_mel(path: str | os.PathLike, saved: dict, expected: MelConfig) -> None:
    """Raise if the checkpoint's mel settings differ from ``expected`` (naming each field)."""
    diffs = [
        f"{k}: checkpoint {saved.get(k)!r} vs config {v!r}" for k, v in asdict(expected).items() if saved.get(k) != v
    ]
    if diffs:
        raise CheckpointError(f"{path}: mel settings differ from the config ({'; '.join(diffs)})")


def sub_state_dict(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix`` (e.g. ``"vae."``) with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}


def load_weights(module: torch.nn.Module, state_dict: dict[str, torch.Tensor], where: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line error listing what is missing or unexpected."""
    try:
        missing, unexpected = module.load_state_dict(state_dict, strict=False)
    except RuntimeError as e:  # a tensor of the wrong shape
        lines = [line.strip() for line in str(e).splitlines() if "size mismatch" in line]
        raise CheckpointError(f"{where}: weights do not fit the model ({'; '.join(lines[:3]) or e})") from None
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: weights do not fit the model "
            f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})"
        )


def save_atomic(checkpoint: dict, path: str | os.PathLike) -> None:
    """``torch.save`` to ``<path>.tmp`` in the same folder, fsync, then ``os.replace``: a crash mid-write
    never leaves a truncated checkpoint behind; a failed write (full disk, no permission) removes the
    temporary file and raises ``audioldm.safe_output.OutputError`` naming ``path`` and the cause."""
    from audioldm.safe_output import atomic_file

    with atomic_file(path, ".tmp") as f:
        torch.save(checkpoint, f)


FINGERPRINT_VERSION = 2  # caches record it; those without were made with version 1


def fingerprint(module: torch.nn.Module, version: int = FINGERPRINT_VERSION) -> str:
    """A short hash of a network's weights (to tell whether a latent cache was made with it): every byte. Version 1
    (caches written before 2026-12-07) hashed each tensor's first 4 kB and its float sum, which depends on the number
    of threads that reduce it; it is kept to check those caches."""
    h = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        data = tensor.detach().float().cpu().contiguous()
        if version == 1:
            h.update(data.numpy().tobytes()[:4096])
            h.update(str(float(data.sum())).encode())
        else:
            h.update(data.numpy().tobytes())
    return h.hexdigest()[:16]
