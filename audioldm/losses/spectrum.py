"""Losses on a vocoder's predicted complex spectrum against the real clip's, frame by frame (APNet, Ai &
Ling 2023): they train the amplitude and the phase directly, where a mel L1 sees neither the phase nor the
detail inside a mel band. Written here because no installed library ships them.

With S the real STFT and P its phase, Ŝ and P̂ the prediction, at the predictor's own frames:
    amplitude                 = mean |log max(|S|, floor) - max(log |Ŝ|, log floor)|
    instantaneous phase       = mean aw(P̂ - P)
    group delay               = mean aw(D_f P̂ - D_f P)    (D_f: difference along frequency bins)
    instantaneous frequency   = mean aw(D_t P̂ - D_t P)    (D_t: difference along frames)
    phase                     = the sum of the three
where aw(x) = |x - 2 pi round(x / 2 pi)| is the anti-wrapping distance (0 for a whole turn, at most pi).
APNet uses the squared log-amplitude error; the L1 here matches the mel L1 the vocoder already uses.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def anti_wrap(x: torch.Tensor) -> torch.Tensor:
    """|x - 2 pi round(x / 2 pi)|: the distance of an angle difference from a whole number of turns, in [0, pi]."""
    return (x - 2 * math.pi * torch.round(x / (2 * math.pi))).abs()


def centred_stft(wave: torch.Tensor, n_fft: int, hop: int, frames: int) -> torch.Tensor:
    """wave [B, N] -> complex STFT [B, n_fft / 2 + 1, frames] with frame t centred on sample t * hop + hop / 2
    (our mel's frames; reflect padding at the ends), Hann window of n_fft."""
    left = n_fft // 2 - hop // 2
    needed = (frames - 1) * hop + n_fft - left - wave.shape[-1]  # samples missing on the right
    padded = F.pad(wave[:, None], (left, max(needed, 0)), mode="reflect")[:, 0]
    window = torch.hann_window(n_fft, device=wave.device, dtype=wave.dtype)
    spec = torch.stft(padded, n_fft, hop, n_fft, window, center=False, return_complex=True)
    return spec[..., :frames]


def amplitude_loss(fake_log_magnitude: torch.Tensor, real: torch.Tensor, floor: float = 1e-5) -> torch.Tensor:
    """Mean L1 between a predicted log magnitude [B, F, T] and the log magnitude of the real complex spectrum
    [B, F, T], both floored at log(floor)."""
    floor_log = math.log(floor)
    return (fake_log_magnitude.clamp(min=floor_log) - real.abs().clamp(min=floor).log()).abs().mean()


def phase_losses(fake_phase: torch.Tensor, real_phase: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(instantaneous phase, group delay, instantaneous frequency) losses of phases [B, F, T] in radians."""
    ip = anti_wrap(fake_phase - real_phase).mean()
    gd = anti_wrap(fake_phase.diff(dim=1) - real_phase.diff(dim=1)).mean()
    iaf = anti_wrap(fake_phase.diff(dim=2) - real_phase.diff(dim=2)).mean()
    return ip, gd, iaf
