"""Checkpoints written atomically: a crash mid-write never leaves a truncated .ckpt behind."""

from __future__ import annotations

import os
from typing import Any

from pytorch_lightning.plugins.io import TorchCheckpointIO

from audioldm.checkpoint import save_atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    """Local paths through ``audioldm.checkpoint.save_atomic`` (``<path>.tmp``, fsync, ``os.replace``)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any | None = None
    ) -> None:
        if "://" in str(path):  # remote storage: fsspec writes the object in one piece
            return super().save_checkpoint(checkpoint, path, storage_options)
        save_atomic(checkpoint, path)
