"""Inception score over classifier (CNN14) logits of generated clips, as audioldm_eval computes it.

Rows [N, C] are shuffled with ``np.random.RandomState(seed).permutation(N)``, cast to float64,
and cut into ``splits`` chunks [i N // splits, (i + 1) N // splits). For each chunk with
p = softmax(logits), q = the chunk's mean of p:
score_i = exp(mean over rows of sum_c p (log_softmax(logits) - log q)).
The result is the mean and the population std (``np.std``) of the scores.

Row order. The shuffle is seeded, so the score depends on the order rows arrive in, and under
DDP the gathered order (rank 0's rows, then rank 1's, ...) differs from one process's order.
Each row may carry an id (int64, e.g. the rank of its file name in sorted order); when every
row has one, compute() sorts rows by id before the shuffle, which reproduces audioldm_eval's
order (its sorted file list) exactly on any number of ranks. We chose ids over sorting rows
by their values because a value sort is order-independent but matches no reference order.
Repeated ids (e.g. DistributedSampler's padding rows) are an error: drop them before update.
Without ids, rows keep arrival order (exact on one process, in sampler order under DDP).
Every rank must call update at least once (torchmetrics gathers an empty "cat" state as
float32 [0], which does not match the other ranks' shapes).
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


def inception_score(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """Mean and population std of the per-split scores of logits [N, C], taken in the given order."""
    n = logits.shape[0]
    p, log_p = logits.softmax(dim=1), logits.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        rows = slice(i * n // splits, (i + 1) * n // splits)
        q = p[rows].mean(dim=0, keepdim=True)
        scores.append(float((p[rows] * (log_p[rows] - q.log())).sum(dim=1).mean().exp()))
    return float(np.mean(scores)), float(np.std(scores))


class InceptionScore(Metric):
    """Inception score (mean, std over splits); logits kept as a "cat" state (float64)."""

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(self, splits: int = 10, seed: int = 2020, **kwargs) -> None:
        super().__init__(**kwargs)
        self.splits, self.seed = splits, seed
        self.add_state("logits", [], dist_reduce_fx="cat")
        self.add_state("ids", [], dist_reduce_fx="cat")  # -1: no id given

    def update(self, logits: torch.Tensor, ids: torch.Tensor | None = None) -> None:
        """Logits [B, C]; optional ids [B] (int64, unique over the whole evaluation set)."""
        if logits.ndim != 2:
            raise ValueError(f"expected logits of shape [B, C], got {list(logits.shape)}")
        if ids is None:
            ids = torch.full((logits.shape[0],), -1, dtype=torch.long, device=logits.device)
        elif ids.shape != (logits.shape[0],):
            raise ValueError(f"expected ids of shape [{logits.shape[0]}], got {list(ids.shape)}")
        elif bool((ids < 0).any()):
            raise ValueError("ids must be non-negative")
        self.logits.append(logits.detach().double())
        self.ids.append(ids.detach().long().to(logits.device))

    def forward(self, *args, **kwargs) -> None:
        """Same as update (a per-batch value means nothing for a set-level statistic; torchmetrics'
        forward would compute one, and fail on batches too small for it)."""
        self.update(*args, **kwargs)

    def ordered_logits(self) -> torch.Tensor:
        """All rows [N, C] (float64, CPU) sorted by id when ids were given, then seeded-shuffled."""
        if isinstance(self.logits, list) and not self.logits:
            raise ValueError("InceptionScore has seen no rows")
        logits, ids = dim_zero_cat(self.logits).cpu(), dim_zero_cat(self.ids).cpu()
        if logits.shape[0] < self.splits:
            raise ValueError(f"InceptionScore needs at least splits={self.splits} rows, got {logits.shape[0]}")
        has_id = ids >= 0
        if bool(has_id.all()):
            if ids.unique().numel() != ids.numel():
                raise ValueError(f"InceptionScore ids repeat: {ids.numel() - ids.unique().numel()} duplicate rows")
            logits = logits[torch.argsort(ids, stable=True)]
        elif bool(has_id.any()):
            raise ValueError("InceptionScore got ids for some rows only: give ids with every update or none")
        perm = np.random.RandomState(self.seed).permutation(logits.shape[0])
        return logits[torch.from_numpy(perm)]

    def compute(self) -> dict[str, torch.Tensor]:
        """{"is_mean", "is_std"}: float64 scalars."""
        mean, std = inception_score(self.ordered_logits(), self.splits)
        return {"is_mean": torch.tensor(mean, dtype=torch.float64), "is_std": torch.tensor(std, dtype=torch.float64)}
