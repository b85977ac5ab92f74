"""The training sampler: seeded per epoch, split across DDP ranks, resumable mid-epoch.

It yields ``(index, crop_seed)`` pairs. The crop seed is a function of (seed, epoch, index), so
which segment of a clip is read does not depend on the number of workers or on any global RNG
state, and a resumed run reads exactly what an uninterrupted run would have read.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import DistributedSampler


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (seed + epoch shuffling, disjoint ranks) that can skip the start of
    its next pass (``skip_next``), used to continue an interrupted epoch."""

    def __init__(
        self, dataset, num_replicas: int = 1, rank: int = 0, shuffle: bool = True, seed: int = 0, pad: bool = True
    ):
        """``pad=False`` (validation): ranks split the samples without padding, so none is seen twice;
        ranks may then differ by one sample."""
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self._skip = 0
        self.pad = pad
        if not pad:
            self.num_samples = len(range(rank, len(dataset), num_replicas))

    def skip_next(self, n_samples: int) -> None:
        """The next ``__iter__`` starts after its first ``n_samples`` samples (once)."""
        self._skip = max(0, int(n_samples))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__()) if self.pad else list(range(self.rank, len(self.dataset), self.num_replicas))
        skip, self._skip = self._skip, 0
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        crop_seeds = torch.randint(0, 2**62, (len(self.dataset),), generator=generator).tolist()
        return iter([(i, crop_seeds[i]) for i in indices[skip:]])
