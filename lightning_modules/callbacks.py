"""Training callbacks shared by all stages."""
from __future__ import annotations

import os

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


class FinalCheckpoint(pl.Callback):
    """Writes ``last.ckpt`` after the final training step (max_steps or the last batch of the last
    epoch), at the same point in the loop as interval checkpoints, so resuming from it with a
    larger budget continues exactly. On Ctrl-C, the state at the interruption is saved instead."""

    def __init__(self, dirpath: str):
        self.path = os.path.join(dirpath, "last.ckpt")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        last_step = 0 < trainer.max_steps <= trainer.global_step
        last_epoch = (trainer.max_epochs not in (None, -1) and trainer.current_epoch + 1 >= trainer.max_epochs
                      and trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)
        if last_step or last_epoch:
            trainer.save_checkpoint(self.path)

    def on_exception(self, trainer: pl.Trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            trainer.save_checkpoint(self.path)
