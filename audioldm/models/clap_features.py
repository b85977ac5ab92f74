"""CLAP's audio input features in torch (batched, GPU-ready), equal to transformers'
``ClapFeatureExtractor`` for the non-fusion model (``truncation="rand_trunc"``,
``padding="repeatpad"``).

16 kHz waveform [B, N] -> resample to 48 kHz -> each clip cut to ``max_seconds`` (a random
window when training, the start otherwise) or repeated then zero-padded to it -> power STFT
(n_fft 1024, Hann, hop 480, centred with reflect padding) -> slaney mel (64 bins, 50-14000 Hz)
-> dB (10 log10, floor 1e-10) -> features [B, 1, T, 64] (T = 1001 for 10 s).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torchaudio.functional as AF


class ClapAudioFeatures(nn.Module):
    def __init__(
        self,
        input_rate: int = 16000,
        rate: int = 48000,
        max_seconds: float = 10.0,
        n_fft: int = 1024,
        hop: int = 480,
        n_mels: int = 64,
        f_min: float = 50.0,
        f_max: float = 14000.0,
    ):
        super().__init__()
        self.input_rate, self.rate, self.n_fft, self.hop = input_rate, rate, n_fft, hop
        self.max_samples = int(round(max_seconds * rate))
        fb = AF.melscale_fbanks(n_fft // 2 + 1, f_min, f_max, n_mels, rate, norm="slaney", mel_scale="slaney")
        self.register_buffer("mel_basis", fb, persistent=False)  # [F_lin, n_mels]
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def fit_length(self, wave: torch.Tensor, random_crop: bool) -> torch.Tensor:
        """One 48 kHz clip [N] -> [max_samples]: random/initial window, or repeat + zero pad."""
        n, target = wave.shape[-1], self.max_samples
        if n > target:
            start = int(torch.randint(0, n - target + 1, (1,))) if random_crop else 0
            return wave[start : start + target]
        if n < target:
            wave = wave.repeat(target // n)
            wave = torch.nn.functional.pad(wave, (0, target - wave.shape[-1]))
        return wave

    def forward(self, wave: torch.Tensor, random_crop: bool = False, already_resampled: bool = False) -> torch.Tensor:
        """wave [B, N] at ``input_rate`` (or at 48 kHz with ``already_resampled``) -> [B, 1, T, n_mels].

        Always computed in float32, also under autocast: in bf16 the resampler's rounding noise fills the
        empty band above 8 kHz of 16 kHz audio, which moved the top mel bins by ~11 dB and the embedding by 28%."""
        with torch.autocast(wave.device.type, enabled=False):
            return self._features(wave.float(), random_crop, already_resampled)

    def _features(self, wave: torch.Tensor, random_crop: bool, already_resampled: bool) -> torch.Tensor:
        if not already_resampled and self.input_rate != self.rate:
            wave = AF.resample(wave, self.input_rate, self.rate)
        wave = torch.stack([self.fit_length(w, random_crop) for w in wave])
        spec = (
            torch.stft(
                wave, self.n_fft, self.hop, window=self.window, center=True, pad_mode="reflect", return_complex=True
            )
            .abs()
            .pow(2)
        )  # [B, F_lin, T]
        mel = spec.transpose(1, 2) @ self.mel_basis  # [B, T, n_mels]
        return (10.0 * torch.log10(mel.clamp(min=1e-10))).unsqueeze(1)
