"""Everything an exact resume needs beyond the weights and the optimiser, in one callback.

Saved with every checkpoint: the torch, numpy and Python (and CUDA) random states, under ``rng_states``. Restored
when training continues from a checkpoint: the random states at the first training batch, so noise and posterior
samples continue exactly as in an uninterrupted run; and, through the DataModule's ``resume_after(batches)``,
the batches of the interrupted epoch that the checkpoint had already trained on are skipped (Lightning's own
loop progress in the checkpoint says how many).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch


class ResumeState(pl.Callback):
    def __init__(self) -> None:
        self._rng_to_restore: dict[str, Any] | None = None

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        checkpoint["rng_states"] = capture_rng_states()

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self._rng_to_restore = checkpoint.get("rng_states")
        datamodule = getattr(trainer, "datamodule", None)
        if hasattr(datamodule, "resume_after"):
            datamodule.resume_after(batches_done(checkpoint))

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._rng_to_restore:
            restore_rng_states(self._rng_to_restore)
            self._rng_to_restore = None


def batches_done(checkpoint: dict) -> int:
    """Training batches of the checkpoint's epoch whose step ran (Lightning's ``processed``; ``completed`` lags by
    one in a checkpoint written at a batch's end)."""
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.batch_progress", {})
    return int(progress.get("current", {}).get("processed", 0))


def capture_rng_states() -> dict[str, Any]:
    """Torch, numpy and Python RNG states in types that ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
