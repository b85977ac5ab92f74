"""Checkpoints written atomically: a crash mid-write never leaves a truncated .ckpt behind."""
from __future__ import annotations

import os
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save to ``<path>.tmp`` in the same folder, fsync, then ``os.replace``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike,
                        storage_options: Any | None = None) -> None:
        path = str(path)
        if "://" in path:  # remote storage: fsspec writes the object in one piece
            return super().save_checkpoint(checkpoint, path, storage_options)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
