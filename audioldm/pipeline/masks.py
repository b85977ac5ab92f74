"""Where the latent is kept (1) or regenerated (0) for inpainting and super-resolution.

A latent [B, C, T', F'] position j along time covers mel frames [j*k, (j+1)*k) (k = the VAE's
downsampling, 4), i.e. seconds [j*k*hop/sr, (j+1)*k*hop/sr); along frequency, latent bin j covers
mel bins [j*k, (j+1)*k).
"""

from __future__ import annotations

import math

import torch
import torchaudio.functional as AF

from audioldm.audio.mel import MelConfig


def time_mask(
    latent_frames: int, factor: int, mel: MelConfig, spans: list[tuple[float, float]], seconds: float
) -> torch.Tensor:
    """[1, 1, T', 1]: 0 on every latent frame that overlaps a span to regenerate, 1 elsewhere.

    Spans are (start, end) in seconds within [0, ``seconds``]; one outside the clip raises.
    """
    if not spans:
        raise ValueError("no span to regenerate was given")
    frame_seconds = factor * mel.hop_length / mel.sample_rate
    mask = torch.ones(1, 1, latent_frames, 1)
    for start, end in spans:
        if not 0.0 <= start < end <= seconds + 1e-6:
            raise ValueError(f"span {start:g}-{end:g} s is outside the clip (0-{seconds:g} s) or empty")
        first = math.floor(start / frame_seconds + 1e-6)  # the tolerance absorbs float error (0.48 / 0.04)
        last = min(latent_frames, math.ceil(end / frame_seconds - 1e-6))
        mask[:, :, first:last] = 0.0
    return mask


def mel_bin_centres(mel: MelConfig) -> torch.Tensor:
    """Centre frequency (Hz) of each mel bin [n_mels]: the peak of its triangular filter."""
    fb = AF.melscale_fbanks(
        mel.n_fft // 2 + 1, mel.f_min, mel.f_max, mel.n_mels, mel.sample_rate, norm="slaney", mel_scale="slaney"
    )  # [F_lin, n_mels]
    freqs = torch.linspace(0, mel.sample_rate / 2, mel.n_fft // 2 + 1)
    return freqs[fb.argmax(dim=0)]


def band_mask(latent_bins: int, factor: int, mel: MelConfig, cutoff_hz: float) -> torch.Tensor:
    """[1, 1, 1, F']: 1 on latent bins whose mel bins all lie at or below ``cutoff_hz`` (kept),
    0 above (regenerated). AudioLDM's default of keeping the lower three quarters of the 64 bins
    corresponds to a cutoff of about 3.5 kHz."""
    centres = mel_bin_centres(mel)[: latent_bins * factor].reshape(latent_bins, factor)
    keep = (centres.max(dim=1).values <= cutoff_hz).float()
    if keep.sum() == 0:
        raise ValueError(
            f"cutoff {cutoff_hz:g} Hz keeps no latent band (the lowest band reaches {float(centres[0].max()):.0f} Hz)"
        )
    if keep.sum() == latent_bins:
        raise ValueError(f"cutoff {cutoff_hz:g} Hz is above every band (up to {mel.f_max:g} Hz): nothing to regenerate")
    return keep.reshape(1, 1, 1, latent_bins)
