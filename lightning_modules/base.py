"""What every stage's LightningModule shares: its config, optimiser warm-up, gradient-norm
logging, gradient clipping under manual optimisation, and the resolved config in checkpoints.

Stages may implement ``preview(batch) -> dict[str, Tensor]`` for the media callback: keys
``"mel/<name>"`` map to log-mels [B, 1, T, F], keys ``"audio/<name>"`` to waveforms [B, N] at
16 kHz (e.g. ``mel/target``, ``mel/reconstruction``, ``audio/generated``).
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable, Iterable

import numpy as np

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from audioldm.audio.mel import MelConfig
from audioldm.config.loader import config_to_dict


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

    def make_optimizer(self, params: Iterable[torch.nn.Parameter], lr: float | None = None,
                       betas: tuple[float, float] | None = None) -> dict[str, Any]:
        """AdamW with linear warm-up over ``optim.warmup_steps``, then ``optim.decay`` (constant, or cosine to
        ``min_lr_ratio`` at ``trainer.max_steps``), stepped every batch."""
        o = self.config.optim
        optimizer = torch.optim.AdamW(params, lr=lr or o.lr, betas=betas or tuple(o.betas),
                                      weight_decay=o.weight_decay)
        factor = lr_factor(max(0, o.warmup_steps), o.decay, o.min_lr_ratio,
                           self.config.trainer.max_steps // self.optimizers_per_batch)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def clip_manual(self, optimizer: torch.optim.Optimizer) -> None:
        """Gradient clipping for stages with manual optimisation (Lightning clips only automatic)."""
        value = self.config.trainer.gradient_clip_val
        if value:
            self.clip_gradients(optimizer, gradient_clip_val=value, gradient_clip_algorithm="norm")

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Log the total gradient 2-norm of the parameters this optimiser updates."""
        if self.global_step % max(1, self.trainer.log_every_n_steps) != 0:
            return
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if params:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad.detach()) for p in params]))
            index = self.trainer.optimizers.index(optimizer) if optimizer in self.trainer.optimizers else 0
            self.log(f"grad_norm/optimizer_{index}", norm, on_step=True, on_epoch=False)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["config"] = config_to_dict(self.config)
        checkpoint["stage"] = self.stage
        checkpoint["rng_states"] = capture_rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Before Lightning loads the weights (resume): a checkpoint of another network shape stops with
        one line naming the differing tensors and model settings, not a page of ``size mismatch``."""
        check_state_fits(self, checkpoint, f"resume {self.config.get('resume') or ''}".strip())
        self._rng_to_restore = checkpoint.get("rng_states")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Restore the random state of the checkpoint at the first step after a resume, so noise
        and posterior samples continue exactly as in an uninterrupted run."""
        if getattr(self, "_rng_to_restore", None):
            restore_rng_states(self._rng_to_restore)
            self._rng_to_restore = None

    @classmethod
    def for_checkpoint(cls, config: DictConfig, checkpoint: dict[str, Any]) -> "StageModule":
        """An empty module shaped for ``checkpoint``'s weights (stages whose constructor reads other
        files, such as the LDM's frozen encoders, rebuild them from what the checkpoint carries)."""
        return cls(config)

    @classmethod
    def config_from_checkpoint(cls, checkpoint: dict[str, Any]) -> DictConfig:
        if "config" not in checkpoint:
            raise ValueError("checkpoint has no 'config' entry: not written by this project's train.py")
        return OmegaConf.create(checkpoint["config"])


def check_state_fits(module: torch.nn.Module, checkpoint: dict[str, Any], where: str) -> None:
    """Raise ``CheckpointError`` (one line) unless ``checkpoint["state_dict"]`` has exactly the module's
    tensor names and shapes; the message names a few of them and the ``model.*`` settings in which the
    checkpoint's config differs from the module's."""
    from audioldm.checkpoint import CheckpointError

    state, own = checkpoint.get("state_dict", {}), module.state_dict()
    shapes = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
              if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape)]
    missing, unexpected = [k for k in own if k not in state], [k for k in state if k not in own]
    if not (shapes or missing or unexpected):
        return
    parts = [f"{len(shapes)} tensor(s) of another shape, checkpoint vs model: e.g. {shapes[0]}"] if shapes else []
    parts += [f"{len(missing)} missing, e.g. {missing[0]}"] if missing else []
    parts += [f"{len(unexpected)} unexpected, e.g. {unexpected[0]}"] if unexpected else []
    saved = _flat(checkpoint.get("config", {}).get("model") or {}, "model.")
    current = _flat(config_to_dict(module.config).get("model") or {}, "model.") if hasattr(module, "config") else {}
    settings = [f"{k}: checkpoint {saved.get(k)!r} vs config {current.get(k)!r}"
                for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]
    hint = (f"; model settings that differ: {', '.join(settings[:3])}{', ...' if len(settings) > 3 else ''}"
            if settings else "")
    raise CheckpointError(f"{where}: weights do not fit the model ({', '.join(parts)}){hint}; resuming needs "
                          f"the network shape the checkpoint was trained with")


def _flat(tree: dict, prefix: str) -> dict:
    out = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def capture_rng_states() -> dict[str, Any]:
    """Torch, numpy and Python RNG states in types that ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(),
                              "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached)}
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


def lr_factor(warmup: int, decay: str, min_ratio: float, total: int) -> Callable[[int], float]:
    """The learning-rate multiplier at scheduler step ``step``: linear warm-up over ``warmup`` steps, then 1
    (``constant``) or a cosine from 1 at the warm-up's end to ``min_ratio`` at step ``total``."""
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if decay == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor
