"""Multi-resolution STFT loss (Parallel WaveGAN, Yamamoto et al. 2020), a vocoder reconstruction
term beside HiFi-GAN's mel L1: it converges fast without a discriminator.

Per resolution (n_fft, hop, win), with |S| the Hann-windowed STFT magnitude (torch.stft,
``center=True``) clamped at ``eps``:
    spectral convergence = ||(|S_real| - |S_fake|)||_F / ||S_real||_F   (per clip, then the mean)
    log magnitude        = mean |log |S_real| - log |S_fake||
and the loss is the mean over resolutions of their sum.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

# Parallel WaveGAN's three resolutions: (n_fft, hop, window)
DEFAULT_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))


def stft_magnitude(wave: torch.Tensor, n_fft: int, hop: int, win: int, eps: float = 1e-7) -> torch.Tensor:
    """wave [B, N] -> |STFT| [B, n_fft // 2 + 1, frames], clamped at ``eps``."""
    window = torch.hann_window(win, device=wave.device, dtype=wave.dtype)
    spec = torch.stft(
        wave, n_fft, hop_length=hop, win_length=win, window=window, center=True, pad_mode="reflect", return_complex=True
    )
    return spec.abs().clamp(min=eps)


class MultiResolutionStftLoss(nn.Module):
    """(fake [B, N], real [B, N]) -> (spectral convergence, log magnitude L1), each averaged over resolutions."""

    def __init__(self, resolutions: Sequence[Sequence[int]] = DEFAULT_RESOLUTIONS, eps: float = 1e-7):
        super().__init__()
        self.resolutions = [tuple(int(v) for v in r) for r in resolutions]
        for n_fft, hop, win in self.resolutions:
            if not (0 < hop and 0 < win <= n_fft):
                raise ValueError(
                    f"STFT resolution (n_fft {n_fft}, hop {hop}, window {win}): need hop > 0 and 0 < window <= n_fft"
                )
        self.eps = eps

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fake, real = fake.float(), real.float()
        convergence, magnitude = fake.new_zeros(()), fake.new_zeros(())
        for n_fft, hop, win in self.resolutions:
            s_fake = stft_magnitude(fake, n_fft, hop, win, self.eps)
            s_real = stft_magnitude(real, n_fft, hop, win, self.eps)
            diff = torch.linalg.vector_norm(s_real - s_fake, dim=(1, 2))
            convergence = convergence + (diff / torch.linalg.vector_norm(s_real, dim=(1, 2))).mean()
            magnitude = magnitude + (s_real.log() - s_fake.log()).abs().mean()
        n = len(self.resolutions)
        return convergence / n, magnitude / n
