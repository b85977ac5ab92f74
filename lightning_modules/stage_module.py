"""What every stage's LightningModule shares: its config (``config.model`` is the stage's own section), the
optimiser (``optim.py``), gradient clipping under manual optimisation, the resolved config in checkpoints, and the
check that a resumed checkpoint fits the network (``state_check.py``). Resume state (random states, batches to
skip) is ``resume.py``'s callback; gradient norms are logged by ``callbacks.GradNormLogger``.

Stages may implement ``preview(batch) -> dict[str, Tensor]`` for the media callback: keys
``"mel/<name>"`` map to log-mels [B, 1, T, F], keys ``"audio/<name>"`` to waveforms [B, N] at
16 kHz (e.g. ``mel/target``, ``mel/reconstruction``, ``audio/generated``).
"""

from __future__ import annotations

from typing import Any, Iterable

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from audioldm.audio.mel import MelConfig
from audioldm.config.loader import config_to_dict
from lightning_modules.optim import adamw_with_schedule
from lightning_modules.state_check import check_state_fits


class StageModule(pl.LightningModule):
    """Base class: ``self.config`` is the validated experiment config (``config.model`` is the
    stage's own section); checkpoints carry it under ``checkpoint["config"]``."""

    stage: str = ""

    def __init__(self, config: DictConfig):
        super().__init__()
        if config.stage != self.stage:
            raise ValueError(f"config is for stage '{config.stage}', not '{self.stage}'")
        self.config = config

    @property
    def mel_config(self) -> MelConfig:
        """``config.audio`` (the mel front-end settings) as a ``MelConfig``."""
        return OmegaConf.to_object(self.config.audio)

    @property
    def model_config(self) -> Any:
        """``config.model`` as its dataclass instance."""
        return OmegaConf.to_object(self.config.model)

    # optimiser steps per scheduler step: 2 for stages that step two optimisers per batch (VAE, vocoder)
    optimizers_per_batch = 1

    def make_optimizer(
        self, params: Iterable[torch.nn.Parameter], lr: float | None = None, betas: tuple[float, float] | None = None
    ) -> dict[str, Any]:
        """``optim.adamw_with_schedule`` over ``params``; its cosine ends at ``trainer.max_steps`` batches."""
        total = self.config.trainer.max_steps // self.optimizers_per_batch
        return adamw_with_schedule(params, self.config.optim, total, lr, betas)

    def clip_manual(self, optimizer: torch.optim.Optimizer) -> None:
        """Gradient clipping for stages with manual optimisation (Lightning clips only automatic)."""
        value = self.config.trainer.gradient_clip_val
        if value:
            self.clip_gradients(optimizer, gradient_clip_val=value, gradient_clip_algorithm="norm")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["config"] = config_to_dict(self.config)
        checkpoint["stage"] = self.stage

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Before Lightning loads the weights (resume): a checkpoint of another network shape stops with
        one line naming the differing tensors and model settings, not a page of ``size mismatch``."""
        check_state_fits(self, checkpoint, f"resume {self.config.get('resume') or ''}".strip())

    @classmethod
    def for_checkpoint(cls, config: DictConfig, checkpoint: dict[str, Any]) -> "StageModule":
        """An empty module shaped for ``checkpoint``'s weights (stages whose constructor reads other
        files, such as the LDM's frozen encoders, rebuild them from what the checkpoint carries)."""
        return cls(config)
