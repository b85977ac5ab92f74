"""TensorBoard media: mel images and audio clips from a stage's ``preview(batch)``.

At the end of each validation epoch, rank 0 runs ``pl_module.preview`` on the first validation
batch (kept from ``on_validation_batch_end``) and logs up to ``max_items`` examples:
``mel/<name>/<i>`` as images (the picture generate.py writes, ``audioldm.audio.mel_image``: magma
colour map, time in seconds across, mel bin up, a colour bar) and ``audio/<name>/<i>`` as 16 kHz audio.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger

from audioldm.audio.mel_image import mel_image


class MediaLogger(pl.Callback):
    """Logs the stage's preview of the first validation batch once per validation epoch."""

    def __init__(self, max_items: int = 4, sample_rate: int = 16000, hop_length: int = 160):
        self.max_items = max_items
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        self._batch: Any = None

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._batch = None

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self._batch is None and trainer.is_global_zero:
            self._batch = batch

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if (
            self._batch is None
            or trainer.sanity_checking
            or not hasattr(pl_module, "preview")
            or not isinstance(trainer.logger, TensorBoardLogger)
        ):
            return
        with torch.no_grad():
            media = pl_module.preview(self._batch)
        self._batch = None
        writer, step = trainer.logger.experiment, trainer.global_step
        for key, value in media.items():
            value = value.detach().float().cpu()
            for i in range(min(self.max_items, value.shape[0])):
                if key.startswith("mel/"):
                    image = mel_image(value[i], f"{key[4:]} {i} (step {step})", self.sample_rate, self.hop_length)
                    writer.add_image(f"{key}/{i}", image, step, dataformats="HWC")
                elif key.startswith("audio/"):
                    wave = value[i].reshape(-1).clamp(-1, 1)
                    writer.add_audio(f"{key}/{i}", wave, step, sample_rate=self.sample_rate)
                else:
                    raise ValueError(f"preview key {key!r} must start with 'mel/' or 'audio/'")
