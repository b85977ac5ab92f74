"""Training callbacks shared by all stages."""

from __future__ import annotations

import os

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.exceptions import SIGTERMException


class SkippedClipsLogger(pl.Callback):
    """Logs ``data/skipped_clips_{train,val}``: unreadable files met in the epoch (summed over ranks)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._log(pl_module, batch, "train")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._log(pl_module, batch, "val")

    @staticmethod
    def _log(pl_module: pl.LightningModule, batch, split: str) -> None:
        if isinstance(batch, dict) and "skipped" in batch:
            pl_module.log(
                f"data/skipped_clips_{split}",
                batch["skipped"].float(),
                on_step=False,
                on_epoch=True,
                reduce_fx="sum",
                sync_dist=True,
                batch_size=1,
            )


class GradNormLogger(pl.Callback):
    """Logs ``grad_norm/optimizer_<i>``: the total gradient 2-norm of the parameters optimiser i updates, every
    ``log_every_n_steps`` steps (stages with two optimisers log both)."""

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module, optimizer) -> None:
        if pl_module.global_step % max(1, trainer.log_every_n_steps) != 0:
            return
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if params:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad.detach()) for p in params]))
            index = trainer.optimizers.index(optimizer) if optimizer in trainer.optimizers else 0
            pl_module.log(f"grad_norm/optimizer_{index}", norm, on_step=True, on_epoch=False)


class StageCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (interval and top-k checkpoints) with one ``last.ckpt``, the final state.

    ``last.ckpt`` is also written after the final training step (max_steps or the last batch of the last
    epoch), at the same point in the loop as interval checkpoints, so resuming from it with a larger budget
    continues exactly; on Ctrl-C or SIGTERM, the state at the interruption is saved there instead. It is never versioned
    (no ``last-v1.ckpt``): Lightning's own save at the end of training sees it as already written.
    """

    def __init__(self, dirpath: str, **kwargs):
        super().__init__(dirpath=dirpath, enable_version_counter=False, **kwargs)
        self.final_path = os.path.join(self.dirpath, self.CHECKPOINT_NAME_LAST + self.FILE_EXTENSION)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)  # interval checkpoints
        last_step = 0 < trainer.max_steps <= trainer.global_step
        last_epoch = (
            trainer.max_epochs not in (None, -1)
            and trainer.current_epoch + 1 >= trainer.max_epochs
            and trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        )
        if last_step or last_epoch:
            self._save_final(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module, exception: BaseException) -> None:
        super().on_exception(trainer, pl_module, exception)
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)):  # Ctrl-C, or a preempted job
            self._save_final(trainer)

    def _save_final(self, trainer: pl.Trainer) -> None:
        if (
            self.last_model_path == self.final_path
            and self._last_global_step_saved == trainer.global_step
            and self._last_checkpoint_saved == self.final_path
        ):
            return  # the interval save of this very step already wrote it
        self.last_model_path = self.final_path  # before saving: it is part of the saved callback state
        self._save_checkpoint(trainer, self.final_path)


class TextProgress(pl.Callback):
    """One plain line per ``every`` (default: a twentieth of ``max_steps``) optimiser steps, or at least
    every ``seconds``, for runs whose output is not a terminal (a log file, a batch job), where the
    progress bar prints nothing:

        demo_vae: step 120/600 (20%), 41 s, about 164 s left; train/loss 0.812
    """

    def __init__(self, name: str, every: int | None = None, seconds: float = 60.0):
        self.name, self.every, self.seconds = name, every, seconds
        self._start = self._last = 0.0
        self._printed_step = -1

    def on_train_start(self, trainer: pl.Trainer, pl_module) -> None:
        import time

        self._start = self._last = time.monotonic()
        self._first_step = trainer.global_step
        total = trainer.max_steps if trainer.max_steps > 0 else None
        rank_zero_info(
            f"{self.name}: training from step {trainer.global_step}"
            + (f" to {total}" if total else "")
            + " (progress every "
            + (f"{self._interval(trainer)} steps or " if total else "")
            + f"{self.seconds:.0f} s)"
        )

    def _interval(self, trainer: pl.Trainer) -> int:
        return self.every or max(1, trainer.max_steps // 20)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        import time

        step, now = trainer.global_step, time.monotonic()
        total = trainer.max_steps if trainer.max_steps > 0 else None
        every = self._interval(trainer)
        due = total is not None and step // every > max(self._printed_step, self._first_step) // every
        if step == self._printed_step or not (due or now - self._last >= self.seconds or step == total):
            return
        self._printed_step, self._last = step, now
        elapsed = now - self._start
        line = f"{self.name}: step {step}" + (f"/{total} ({step / total:.0%})" if total else "") + f", {elapsed:.0f} s"
        done = step - self._first_step
        if total and done > 0:
            line += f", about {elapsed / done * (total - step):.0f} s left"
        metrics = {k: v for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
        if metrics:
            key = next((k for k in ("train/loss", "train/g_loss") if k in metrics), sorted(metrics)[0])
            line += f"; {key} {float(metrics[key]):.4g}"
        rank_zero_info(line)

    def on_validation_end(self, trainer: pl.Trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        if metrics:
            rank_zero_info(
                f"{self.name}: validation at step {trainer.global_step}: "
                + ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items()))
            )
