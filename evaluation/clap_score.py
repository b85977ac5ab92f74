"""CLAP score: mean over clips of the cosine similarity between a clip's CLAP audio embedding
and its caption's CLAP text embedding (higher: the audio matches its text better)."""

from __future__ import annotations

import torch
from torch.nn.functional import normalize
from torchmetrics import Metric


class ClapScore(Metric):
    """Mean cosine similarity of paired audio and text embeddings, in float64."""

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, audio: torch.Tensor, text: torch.Tensor) -> None:
        """Embeddings [B, D] each (normalised here again); row i = a clip and its caption."""
        if audio.shape != text.shape or audio.ndim != 2:
            raise ValueError(f"expected two [B, D] embeddings, got {list(audio.shape)} and {list(text.shape)}")
        a, t = normalize(audio.detach().double(), dim=1), normalize(text.detach().double(), dim=1)
        self.total += (a * t).sum()
        self.count += a.shape[0]

    def compute(self) -> torch.Tensor:
        """Float64 scalar in [-1, 1]."""
        if int(self.count) == 0:
            raise ValueError("ClapScore has seen no clips")
        return self.total / self.count
