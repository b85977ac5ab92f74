"""Paired reconstruction metrics on log-mels [B, 1, T, F] (natural log of mel magnitude).

- mel L1: mean absolute difference of the log-mels.
- LSD (log-spectral distance, dB): per frame, the RMS over mel bins of the dB difference
  (20 log10 of magnitudes = 20 / ln 10 * log-mel), averaged over frames and clips.
- PSNR and SSIM: torchmetrics' image metrics with the log-mel's range [log 1e-5, 3] as data range.
"""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

MEL_RANGE = (math.log(1e-5), 3.0)
_DB_PER_NEPER = 20.0 / math.log(10.0)


def log_spectral_distance(log_mel: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """LSD in dB for each clip: [B, 1, T, F] x2 -> [B]."""
    diff_db = _DB_PER_NEPER * (log_mel - target)
    return diff_db.pow(2).mean(dim=-1).sqrt().flatten(1).mean(dim=1)


class MeanOf(Metric):
    """Mean of a per-clip value over all clips seen (reduced across DDP ranks)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        values = self.fn(preds.float(), target.float())
        self.total += values.double().sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp(min=1)).float()


def clamp_mel(log_mel: torch.Tensor) -> torch.Tensor:
    """Clamp to the log-mel range (the front-end never produces values below log 1e-5)."""
    return log_mel.float().clamp(*MEL_RANGE)


def mel_reconstruction_metrics(prefix: str = "val/") -> MetricCollection:
    """{mel_l1, lsd, psnr, ssim}; update with ``(clamp_mel(reconstruction), clamp_mel(target))``."""
    data_range = MEL_RANGE[1] - MEL_RANGE[0]
    return MetricCollection(
        {
            "mel_l1": MeanOf(lambda p, t: (p - t).abs().flatten(1).mean(1)),
            "lsd": MeanOf(log_spectral_distance),
            "psnr": PeakSignalNoiseRatio(data_range=data_range),
            "ssim": StructuralSimilarityIndexMeasure(data_range=data_range),
        },
        prefix=prefix,
    )
