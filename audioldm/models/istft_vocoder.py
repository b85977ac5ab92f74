"""A Vocos-style vocoder (Siuzdak 2023): ConvNeXt blocks at the mel frame rate predict the STFT
magnitude and phase of each frame, and an inverse STFT makes the waveform. Written here because no
installed library ships one on its own (transformers has iSTFT heads only inside its codecs).

log-mel [B, 1, T, F] -> Conv1d(F, C, 7) -> LayerNorm -> ``layers`` x ConvNeXt(C) -> LayerNorm
-> Linear(C, n_fft + 2) -> (log magnitude, phase) [B, n_fft/2 + 1, T] -> istft(hop, Hann n_fft)
-> waveform [B, T * hop]. Every layer runs at the frame rate (100 Hz for AudioLDM's mel), so it is
far cheaper than HiFi-GAN's sample-rate convolutions and converges in minutes on a CPU; it is a
config choice (``model.generator: istft``), HiFi-GAN stays the default and the layout of official weights.

Alignment: our mel frame t covers samples centred on t * hop + hop / 2 (``center=False`` with
(n_fft - hop) / 2 reflect padding); ``torch.istft(center=True)`` centres frame t on t * hop, so the
output is delayed by hop / 2 samples to line up with the input audio.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvNeXtBlock1d(nn.Module):
    """x [B, C, T] -> x + scale * MLP(LayerNorm(depthwise conv 7(x)))."""

    def __init__(self, channels: int, expansion: int = 3, layer_scale: float = 1e-2):
        super().__init__()
        self.depthwise = nn.Conv1d(channels, channels, 7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.up = nn.Linear(channels, expansion * channels)
        self.down = nn.Linear(expansion * channels, channels)
        self.scale = nn.Parameter(torch.full((channels,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.depthwise(x).transpose(1, 2))
        h = self.down(F.gelu(self.up(h))) * self.scale
        return x + h.transpose(1, 2)


class IstftVocoder(nn.Module):
    """log-mel [B, 1, T, n_mels] -> waveform [B, T * hop]."""

    def __init__(self, n_mels: int = 64, hop: int = 160, n_fft: int = 640, channels: int = 256, layers: int = 8):
        super().__init__()
        if n_fft % 2 or n_fft < hop:
            raise ValueError(f"model.istft_n_fft={n_fft} must be even and at least the hop ({hop})")
        self.hop, self.n_fft = hop, n_fft
        self.embed = nn.Conv1d(n_mels, channels, 7, padding=3)
        self.norm_in = nn.LayerNorm(channels, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock1d(channels) for _ in range(layers))
        self.norm_out = nn.LayerNorm(channels, eps=1e-6)
        self.head = nn.Linear(channels, n_fft + 2)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def spectrum(self, log_mel: torch.Tensor) -> torch.Tensor:
        """log-mel [B, 1, T, F] -> complex STFT [B, n_fft / 2 + 1, T]."""
        x = self.embed(log_mel.squeeze(1).transpose(1, 2))  # [B, C, T]
        x = self.norm_in(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        out = self.head(self.norm_out(x.transpose(1, 2))).transpose(1, 2)  # [B, n_fft + 2, T]
        log_magnitude, phase = out.float().chunk(2, dim=1)
        magnitude = log_magnitude.clamp(max=10.0).exp()  # as Vocos: bounded, so early steps cannot overflow
        return torch.polar(magnitude, phase)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        frames = log_mel.shape[2]
        spec = self.spectrum(log_mel)
        length = frames * self.hop
        wave = torch.istft(spec, self.n_fft, self.hop, self.n_fft, self.window, center=True, length=length)
        shift = self.hop // 2  # frame t of our mel is centred on t * hop + hop / 2
        return F.pad(wave, (shift, 0))[:, :length]
