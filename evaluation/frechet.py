"""Frechet distance between two sets of embeddings, as audioldm_eval computes FAD and FD.

Each set is summarised by its mean and unbiased covariance (``np.mean`` / ``np.cov(rowvar=False)``
in the reference); the distance between N(mu1, S1) and N(mu2, S2) is
``||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr(sqrtm(S1 S2))``.

- FAD: VGGish frame embeddings, every frame of every clip pooled into one set ([N_frames, 128]).
- FD: PANNs CNN14 clip embeddings ([N_clips, 2048]).

The distance itself is ``torchaudio.functional.frechet_distance`` in float64, which takes
tr(sqrtm(S1 S2)) as the sum of the square roots of the eigenvalues of S1 S2 (real part), the
same quantity scipy's ``sqrtm`` trace gives. The reference's fallbacks (adding 1e-6 to the
diagonals when ``sqrtm`` is not finite, an error when its diagonal has an imaginary part over
1e-3) have no counterpart: the eigenvalue form is always finite.
"""

from __future__ import annotations

import numpy as np
import torch
from torchaudio.functional import frechet_distance as _torchaudio_frechet_distance
from torchmetrics import Metric

ArrayLike = torch.Tensor | np.ndarray


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2): means [D], covariances [D, D].

    Computed in float64 on the CPU whatever the inputs' dtype and device.
    """
    as64 = lambda x: torch.as_tensor(x).detach().to("cpu", torch.float64)  # noqa: E731
    return float(_torchaudio_frechet_distance(as64(mu1), as64(sigma1), as64(mu2), as64(sigma2)))


class FrechetDistance(Metric):
    """Streaming Frechet distance between a reference ("real") set and a generated set.

    Streaming: states are per-set counts, sums [D] and sums of outer products [D, D] (float64,
    dist_reduce_fx="sum"), so any batching and any number of ranks give the same result.
    The covariance is (sum x x^T - n mu mu^T) / (n - 1); in float64 this loses about
    log10(|mu|^2 / var) of its ~16 digits to cancellation, far below what the metric resolves.
    Memory: 2 x D x D float64 (64 MiB for D = 2048).
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = False

    def __init__(self, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dim = dim
        for name in ("real", "fake"):
            self.add_state(f"{name}_count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
            self.add_state(f"{name}_sum", torch.zeros(dim, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{name}_outer", torch.zeros(dim, dim, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, embeddings: torch.Tensor, real: bool) -> None:
        """Add embeddings [N, D] to the reference set (real=True) or the generated set."""
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim:
            raise ValueError(f"expected embeddings of shape [N, {self.dim}], got {list(embeddings.shape)}")
        x = embeddings.detach().to(torch.float64)
        name = "real" if real else "fake"
        setattr(self, f"{name}_count", getattr(self, f"{name}_count") + x.shape[0])
        setattr(self, f"{name}_sum", getattr(self, f"{name}_sum") + x.sum(dim=0))
        setattr(self, f"{name}_outer", getattr(self, f"{name}_outer") + x.T @ x)

    def forward(self, *args, **kwargs) -> None:
        """Same as update (a per-batch value means nothing for a set-level statistic; torchmetrics'
        forward would compute one, and fail on batches too small for it)."""
        self.update(*args, **kwargs)

    def _mean_cov(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean [D] and unbiased covariance [D, D] of one set."""
        n = int(getattr(self, f"{name}_count"))
        if n < 2:
            raise ValueError(f"FrechetDistance needs at least 2 {name} embeddings to estimate a covariance, got {n}")
        mean = getattr(self, f"{name}_sum") / n
        cov = (getattr(self, f"{name}_outer") - n * torch.outer(mean, mean)) / (n - 1)
        return mean, cov

    def compute(self) -> torch.Tensor:
        """Float64 scalar: the distance between the two sets' Gaussians."""
        mu_real, cov_real = self._mean_cov("real")
        mu_fake, cov_fake = self._mean_cov("fake")
        return torch.tensor(frechet_distance(mu_fake, cov_fake, mu_real, cov_real), dtype=torch.float64)
