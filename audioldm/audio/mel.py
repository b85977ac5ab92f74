"""AudioLDM's mel front-end, the one place every stage turns audio into a log-mel.

Reference (DESIGN.md section 3): 16 kHz mono, waveform normalised to zero mean and peak 0.5;
STFT n_fft 1024, Hann window 1024, hop 160, ``center=False`` after reflect padding of
(n_fft - hop) / 2 on each side, magnitude; 64 slaney mel bins over 0-8000 Hz; natural log of
the mel magnitude clamped at 1e-5. A segment of N samples (N a multiple of hop) gives exactly
N / hop frames, so 10.24 s gives [1, 1024, 64].

The inverse helpers (mel to linear magnitude, Griffin-Lim) give a preview waveform without a
trained vocoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torchaudio.functional as AF

from audioldm.constraints import INF, in_range


@dataclass
class MelConfig:
    """STFT and mel settings. Defaults are AudioLDM's 16 kHz / 64-bin configuration."""

    sample_rate: int = in_range(16000, 1, INF)
    n_fft: int = in_range(1024, 1, INF)
    win_length: int = in_range(1024, 1, INF)
    hop_length: int = in_range(160, 1, INF)
    n_mels: int = in_range(64, 1, INF)
    f_min: float = in_range(0.0, 0.0, INF)
    f_max: float = in_range(8000.0, 0.0, INF, "()")
    log_floor: float = in_range(1e-5, 0.0, INF, "()")

    def frames_for(self, n_samples: int) -> int:
        """Number of mel frames for a waveform of ``n_samples`` samples."""
        return (n_samples + 2 * self.pad - self.n_fft) // self.hop_length + 1

    def samples_for_seconds(self, seconds: float) -> int:
        """Segment length in samples, rounded to a whole number of hops."""
        return int(round(seconds * self.sample_rate / self.hop_length)) * self.hop_length

    @property
    def pad(self) -> int:
        return (self.n_fft - self.hop_length) // 2


def normalize_waveform(wave: torch.Tensor, peak: float = 0.5, eps: float = 1e-8) -> torch.Tensor:
    """AudioLDM waveform normalisation: remove the mean, scale the peak to ``peak``.

    wave: [..., N]. Silence stays silence (``eps`` avoids division by zero).
    """
    wave = wave - wave.mean(dim=-1, keepdim=True)
    return peak * wave / (wave.abs().amax(dim=-1, keepdim=True) + eps)


class MelFrontEnd(nn.Module):
    """Waveform [B, N] (or [N]) at 16 kHz -> log-mel [B, 1, T, n_mels], T = frames_for(N).

    The filterbank is torchaudio's slaney-scale, slaney-normed bank, identical to librosa's.
    """

    def __init__(self, config: MelConfig | None = None):
        super().__init__()
        self.config = config = config or MelConfig()
        if config.win_length > config.n_fft:
            raise ValueError(f"win_length {config.win_length} > n_fft {config.n_fft}")
        fb = AF.melscale_fbanks(
            n_freqs=config.n_fft // 2 + 1,
            f_min=config.f_min,
            f_max=config.f_max,
            n_mels=config.n_mels,
            sample_rate=config.sample_rate,
            norm="slaney",
            mel_scale="slaney",
        )  # [F_lin, n_mels]
        self.register_buffer("mel_basis", fb.T.contiguous(), persistent=False)  # [n_mels, F_lin]
        self.register_buffer("window", torch.hann_window(config.win_length), persistent=False)

    def magnitude(self, wave: torch.Tensor) -> torch.Tensor:
        """Linear STFT magnitude: [B, N] -> [B, n_fft // 2 + 1, T]."""
        c = self.config
        padded = torch.nn.functional.pad(wave.unsqueeze(1), (c.pad, c.pad), mode="reflect").squeeze(1)
        spec = torch.stft(
            padded,
            c.n_fft,
            hop_length=c.hop_length,
            win_length=c.win_length,
            window=self.window,
            center=False,
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        return spec.abs()

    def mel(self, wave: torch.Tensor) -> torch.Tensor:
        """Mel magnitude (before the log): [B, N] -> [B, n_mels, T]."""
        return self.mel_basis @ self.magnitude(wave)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Log-mel: [B, N] or [N] -> [B, 1, T, n_mels] (float32)."""
        if wave.dim() == 1:
            wave = wave.unsqueeze(0)
        if wave.dim() != 2:
            raise ValueError(f"expected a waveform [B, N] or [N], got shape {tuple(wave.shape)}")
        if wave.shape[-1] <= self.config.pad:
            raise ValueError(f"waveform of {wave.shape[-1]} samples is too short for reflect padding {self.config.pad}")
        mel = self.mel(wave.float())
        log_mel = torch.log(torch.clamp(mel, min=self.config.log_floor))
        return log_mel.transpose(1, 2).unsqueeze(1)

    def log_mel_to_magnitude(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Approximate inverse of the mel projection: [B, 1, T, n_mels] -> [B, n_fft//2+1, T].

        Uses the filterbank's pseudo-inverse, clamped to be non-negative (a preview, not exact).
        """
        mel = torch.exp(log_mel.squeeze(1).transpose(1, 2).float())  # [B, n_mels, T]
        inverse = torch.linalg.pinv(self.mel_basis)  # [F_lin, n_mels]
        return torch.clamp(inverse @ mel, min=0.0)

    def griffin_lim(self, log_mel: torch.Tensor, n_iter: int = 32, momentum: float = 0.99) -> torch.Tensor:
        """Vocoder-free preview: log-mel [B, 1, T, n_mels] -> waveform [B, T * hop].

        torchaudio's Griffin-Lim works on a centred STFT (frame k centred on sample k*hop),
        while our frame k is centred on k*hop + (hop/2) after the (n_fft-hop)/2 reflect pad;
        the output is shifted by that offset so it lines up with the source waveform.
        """
        c = self.config
        magnitude = self.log_mel_to_magnitude(log_mel)
        frames = magnitude.shape[-1]
        offset = c.n_fft // 2 - c.pad
        length = frames * c.hop_length - offset
        wave = AF.griffinlim(
            magnitude,
            window=self.window,
            n_fft=c.n_fft,
            hop_length=c.hop_length,
            win_length=c.win_length,
            power=1.0,
            n_iter=n_iter,
            momentum=momentum,
            length=length,
            rand_init=False,
        )
        return torch.nn.functional.pad(wave, (offset, 0))
