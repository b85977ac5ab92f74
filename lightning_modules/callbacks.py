"""Training callbacks shared by all stages."""
from __future__ import annotations

import pytorch_lightning as pl


class SkippedClipsLogger(pl.Callback):
    """Logs ``data/skipped_clips_{train,val}``: unreadable files met in the epoch (summed over ranks)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._log(pl_module, batch, "train")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._log(pl_module, batch, "val")

    @staticmethod
    def _log(pl_module: pl.LightningModule, batch, split: str) -> None:
        if isinstance(batch, dict) and "skipped" in batch:
            pl_module.log(f"data/skipped_clips_{split}", batch["skipped"].float(), on_step=False,
                          on_epoch=True, reduce_fx="sum", sync_dist=True, batch_size=1)
