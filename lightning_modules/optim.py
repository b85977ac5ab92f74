"""The stages' optimiser: AdamW with a linear warm-up, then a constant or cosine learning rate, stepped every batch."""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch

from audioldm.config.schema import OptimConfig


def adamw_with_schedule(
    params: Iterable[torch.nn.Parameter],
    optim: OptimConfig,
    total_steps: int,
    lr: float | None = None,
    betas: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """AdamW over ``params`` with linear warm-up over ``optim.warmup_steps``, then ``optim.decay`` (constant, or
    cosine to ``min_lr_ratio`` at scheduler step ``total_steps``), as Lightning's optimiser dict."""
    optimizer = torch.optim.AdamW(
        params, lr=lr or optim.lr, betas=betas or tuple(optim.betas), weight_decay=optim.weight_decay
    )
    factor = lr_factor(max(0, optim.warmup_steps), optim.decay, optim.min_lr_ratio, total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


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
