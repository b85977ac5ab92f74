"""Exponential moving average of a network's weights, as a module (so checkpoints carry it).

AudioLDM's recipe (latent-diffusion ``LitEma``): decay = min(decay, (1 + n) / (10 + n)) after n
updates, so early averages follow the weights closely. Written here rather than with
``torch.optim.swa_utils.AveragedModel`` because that reads its update count back from the device
at every step (a host sync), and it has no warm-up of the decay.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


class EmaModel(nn.Module):
    """``module``: a frozen copy of the network; ``num_updates``: a buffer (saved, restored)."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, warmup: bool = True):
        super().__init__()
        self.module = copy.deepcopy(model).requires_grad_(False).eval()
        self.decay = decay
        self.warmup = warmup
        self.register_buffer("num_updates", torch.tensor(0, dtype=torch.long))
        self._host_updates: int | None = None  # mirror of num_updates, read once after a restore

    def current_decay(self) -> float:
        if self._host_updates is None:
            self._host_updates = int(self.num_updates)
        n = self._host_updates
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """ema <- decay * ema + (1 - decay) * weights, for every parameter (buffers are copied)."""
        decay = self.current_decay()
        ema = [p for p in self.module.parameters()]
        live = [p.detach().to(e.dtype) for p, e in zip(model.parameters(), ema)]
        torch._foreach_lerp_(ema, live, 1.0 - decay)
        for mine, theirs in zip(self.module.buffers(), model.buffers()):
            mine.copy_(theirs)
        self.num_updates.add_(1)
        self._host_updates += 1

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._host_updates = None

    def train(self, mode: bool = True) -> "EmaModel":
        super().train(mode)
        self.module.eval()  # the average is never trained itself
        return self

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)
