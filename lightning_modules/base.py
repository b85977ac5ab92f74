"""What every stage's LightningModule shares: its config, the optimiser warm-up, and the
resolved config written into every checkpoint."""
from __future__ import annotations

from typing import Any, Iterable

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from audioldm.config.loader import config_to_dict


class StageModule(pl.LightningModule):
    """Base class: ``self.config`` is the validated experiment config (``config.model`` is the
    stage's own dataclass); checkpoints carry it under ``checkpoint["config"]``."""

    stage: str = ""

    def __init__(self, config: DictConfig):
        super().__init__()
        if config.stage != self.stage:
            raise ValueError(f"config is for stage '{config.stage}', not '{self.stage}'")
        self.config = config

    def make_optimizer(self, params: Iterable[torch.nn.Parameter]) -> dict[str, Any]:
        """AdamW with linear warm-up over ``optim.warmup_steps``, stepped every batch."""
        o = self.config.optim
        optimizer = torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
        warmup = max(0, o.warmup_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["config"] = config_to_dict(self.config)
        checkpoint["stage"] = self.stage

    @classmethod
    def config_from_checkpoint(cls, checkpoint: dict[str, Any]) -> DictConfig:
        if "config" not in checkpoint:
            raise ValueError("checkpoint has no 'config' entry: not written by this project's train.py")
        return OmegaConf.create(checkpoint["config"])
