"""A phase for an STFT magnitude that has none: the instantaneous frequency implied by the magnitude,
integrated over time, and fast Griffin-Lim from a given phase. Written here because torchaudio's
``griffinlim`` starts only from zero or random phase and no installed library estimates phase from a magnitude.

Instantaneous frequency: the time-direction phase gradient of phase-gradient heap integration (PGHI, Prusa,
Balazs and Sondergaard 2017), which holds exactly for a Gaussian window and closely for Hann:

    dphi/dt (m, n) = (hop * n_fft / gamma) * d(log s)/dm (m, n) + 2 pi hop m / n_fft     [radians per frame]

with gamma = 0.25645 * win_length^2 for a Hann window, s the magnitude, m the bin and d/dm a centred difference.
A stationary sinusoid between two bins then advances its phase at its own frequency in the bins of its
peak (the correction is bounded at ``MAX_OFFSET_BINS`` from the bin's centre: next to a zero of the window's
spectrum the log-magnitude slope is meaningless), where a zero phase makes a frame-rate buzz and a random phase
noise. The heap integration of PGHI, which also aligns the bins of a transient, is sequential; here the gradient
is summed along time only (vectorised, differentiable), and the Griffin-Lim projections that follow align what it
leaves out.
Convention: torch.stft's (a frame's phase is measured from its first sample).
"""

from __future__ import annotations

import math

import torch

HANN_GAMMA = 0.25645  # PGHI's Gaussian-equivalent time-frequency ratio of a Hann window, times win_length^2
MAX_OFFSET_BINS = 2.0  # how far from its bin's centre a frequency estimate may be


def instantaneous_frequency(log_magnitude: torch.Tensor, hop: int, n_fft: int) -> torch.Tensor:
    """log magnitude [B, n_fft / 2 + 1, T] (natural log) -> phase advance per frame [B, n_fft / 2 + 1, T]."""
    bins = log_magnitude.shape[-2]
    if bins != n_fft // 2 + 1:
        raise ValueError(f"log magnitude has {bins} bins; n_fft {n_fft} needs {n_fft // 2 + 1}")
    gamma = HANN_GAMMA * n_fft**2
    padded = torch.cat([log_magnitude[..., 1:2, :], log_magnitude, log_magnitude[..., -2:-1, :]], dim=-2)
    d_bin = (padded[..., 2:, :] - padded[..., :-2, :]) / 2  # centred difference, mirrored at DC and Nyquist
    centre = 2 * math.pi * hop / n_fft * torch.arange(bins, device=log_magnitude.device, dtype=log_magnitude.dtype)
    limit = 2 * math.pi * hop / n_fft * MAX_OFFSET_BINS
    return (hop * n_fft / gamma * d_bin).clamp(-limit, limit) + centre[:, None]


def integrated_phase(log_magnitude: torch.Tensor, hop: int, n_fft: int, seed: int = 0) -> torch.Tensor:
    """log magnitude [B, F, T] -> phase [B, F, T]: the instantaneous frequency summed over frames (trapezoid),
    from a fixed random phase per bin in frame 0 (``seed``): the same phase in every bin would start the clip with a
    click and bin-centre advances from there make a click train; measured on the demo's real mels, a random start
    keeps the spectrum more consistent (mel L1 0.39) than Schroeder's low-crest phases (0.58) or zeros (0.58)."""
    advance = instantaneous_frequency(log_magnitude, hop, n_fft)
    steps = (advance[..., 1:] + advance[..., :-1]) / 2
    generator = torch.Generator().manual_seed(seed)  # on the CPU: the same start on every device
    start = 2 * math.pi * torch.rand(advance.shape[-2], 1, generator=generator, dtype=torch.float64)
    start = start.to(advance).expand_as(advance[..., :1])
    return torch.cat([start, start + steps.cumsum(-1)], dim=-1)


def fast_griffin_lim(
    spec: torch.Tensor, n_iter: int, n_fft: int, hop: int, window: torch.Tensor, length: int, momentum: float = 0.99
) -> torch.Tensor:
    """Complex STFT [B, F, T] (centred Hann frames) -> complex STFT [B, F, T] with ``spec``'s magnitude and a
    phase from ``n_iter`` fast Griffin-Lim projections (Perraudin et al. 2013) that start from ``spec``'s phase."""
    magnitude = spec.abs()
    angles = spec / (magnitude + 1e-8)
    previous = torch.zeros_like(spec)
    for _ in range(n_iter):
        wave = torch.istft(magnitude * angles, n_fft, hop, n_fft, window, center=True, length=length)
        rebuilt = torch.stft(wave, n_fft, hop, n_fft, window, center=True, pad_mode="reflect", return_complex=True)
        angles = rebuilt - (momentum / (1 + momentum)) * previous
        angles = angles / (angles.abs() + 1e-8)
        previous = rebuilt
    return magnitude * angles
