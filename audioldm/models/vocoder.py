"""Vocoders: log-mel [B, 1, T, 64] -> 16 kHz waveform [B, T * 160].

``HifiGanVocoder`` wraps transformers' ``SpeechT5HifiGan``, which is AudioLDM's HiFi-GAN
generator (upsample rates [5, 4, 2, 2, 2] = 160x, kernels [16, 16, 8, 4, 4], 1024 initial
channels, residual kernels [3, 7, 11] with dilations [1, 3, 5]; 55.3M parameters). It is
trained with plain weights (no weight norm) so its state dict has the layout of released
16 kHz AudioLDM vocoders. ``GriffinLimVocoder`` needs no training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

from audioldm.audio.mel import MelConfig, MelFrontEnd
from audioldm.constraints import INF, in_range, one_of, only_with

GENERATORS = ("hifigan", "istft")


@dataclass
class VocoderConfig:
    """Generator and discriminator shapes, loss weights (``model:`` section of a vocoder config)."""

    # hifigan: AudioLDM's HiFi-GAN (transformers SpeechT5HifiGan; the layout of official weights).
    # istft: a Vocos-style frame-rate network + inverse STFT (audioldm/models/istft_vocoder.py), far cheaper
    generator: str = one_of("hifigan", *GENERATORS)
    istft_n_fft: int = 640
    istft_channels: int = 256
    istft_layers: int = 8
    # istft only: predict a log-gain on the mel's pseudo-inverse magnitude (needs istft_n_fft = the mel's n_fft),
    # and run this many differentiable fast Griffin-Lim projections from the predicted phase
    istft_mel_anchor: bool = only_with(False, "generator", "istft")
    istft_phase_iters: int = in_range(0, 0, INF, only_with=("generator", "istft"))
    # istft only: projections in eval mode (generation, validation); null: istft_phase_iters
    istft_inference_phase_iters: int | None = in_range(None, 0, INF, only_with=("generator", "istft"))
    # istft with istft_mel_anchor only: the predicted phase is a correction to the phase the anchor magnitude
    # implies (its instantaneous frequency summed over time, audioldm/audio/phase_prior.py); head at zero
    istft_phase_prior: bool = only_with(False, "generator", "istft")
    upsample_rates: list[int] = field(default_factory=lambda: [5, 4, 2, 2, 2])
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [16, 16, 8, 4, 4])
    upsample_initial_channel: int = 1024
    resblock_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: list[list[int]] = field(default_factory=lambda: [[1, 3, 5]] * 3)
    mpd_periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    disc_width: float = 1.0  # multiplies every discriminator channel count (HiFi-GAN: 1.0)
    mel_weight: float = 45.0
    feature_weight: float = 2.0
    adversarial_weight: float = 1.0
    # multi-resolution STFT loss (spectral convergence + log magnitude, Parallel WaveGAN) beside the mel L1;
    # 0 = HiFi-GAN's recipe. Resolutions are [n_fft, hop, window].
    stft_weight: float = 0.0
    stft_resolutions: list[list[int]] = field(
        default_factory=lambda: [[1024, 120, 600], [2048, 240, 1200], [512, 50, 240]]
    )
    # istft only: losses on the predicted spectrum against the real clip's STFT at the generator's frames
    # (audioldm/losses/spectrum.py, APNet): log-amplitude L1, and the anti-wrapped instantaneous phase, group
    # delay and instantaneous frequency losses (summed); 0 = off
    amplitude_weight: float = in_range(0.0, 0.0, INF, only_with=("generator", "istft"))
    phase_weight: float = in_range(0.0, 0.0, INF, only_with=("generator", "istft"))
    disc_start: int = 0  # batches trained on the reconstruction losses alone before the discriminators join
    betas: list[float] = field(default_factory=lambda: [0.8, 0.99])
    lr_decay: float = 0.999  # ExponentialLR gamma, applied once per epoch


def build_generator(config: VocoderConfig, n_mels: int = 64, sample_rate: int = 16000) -> SpeechT5HifiGan:
    """transformers' HiFi-GAN generator: spectrogram [B, T, n_mels] -> waveform [B, T * prod(rates)]."""
    levels = len(config.upsample_rates)
    if config.upsample_initial_channel % 2**levels:
        raise ValueError(
            f"model.upsample_initial_channel={config.upsample_initial_channel} must be divisible by "
            f"2^{levels} (channels halve at each of the {levels} upsampling layers)"
        )
    return SpeechT5HifiGan(
        SpeechT5HifiGanConfig(
            model_in_dim=n_mels,
            sampling_rate=sample_rate,
            upsample_initial_channel=config.upsample_initial_channel,
            upsample_rates=list(config.upsample_rates),
            upsample_kernel_sizes=list(config.upsample_kernel_sizes),
            resblock_kernel_sizes=list(config.resblock_kernel_sizes),
            resblock_dilation_sizes=[list(d) for d in config.resblock_dilation_sizes],
            normalize_before=False,
        )
    )


def build_vocoder(config: VocoderConfig, mel: MelConfig | None = None) -> nn.Module:
    """The generator ``config.generator`` names: log-mel [B, 1, T, n_mels] -> waveform [B, T * hop], for the
    log-mels of ``mel`` (default AudioLDM's settings)."""
    mel = mel or MelConfig()
    if config.generator == "hifigan":
        return HifiGanVocoder(build_generator(config, mel.n_mels, mel.sample_rate))
    if config.generator == "istft":
        from audioldm.models.istft_vocoder import IstftVocoder

        basis = MelFrontEnd(mel).mel_basis if config.istft_mel_anchor else None
        return IstftVocoder(
            mel.n_mels,
            mel.hop_length,
            config.istft_n_fft,
            config.istft_channels,
            config.istft_layers,
            mel_basis=basis,
            phase_iters=config.istft_phase_iters,
            phase_prior=config.istft_phase_prior,
            log_floor=mel.log_floor,
            inference_phase_iters=config.istft_inference_phase_iters,
        )
    raise ValueError(f"model.generator={config.generator!r} is unknown (one of {', '.join(GENERATORS)})")


class HifiGanVocoder(nn.Module):
    """log-mel [B, 1, T, F] -> waveform [B, T * hop] through the HiFi-GAN generator."""

    def __init__(self, generator: SpeechT5HifiGan):
        super().__init__()
        self.generator = generator

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        """The transposed convolutions overshoot by a few samples; the tail is cut to T * hop."""
        hop = int(torch.tensor(self.generator.config.upsample_rates).prod())
        return self.generator(log_mel.squeeze(1))[..., : log_mel.shape[2] * hop]


class GriffinLimVocoder(nn.Module):
    """log-mel [B, 1, T, F] -> waveform [B, T * hop] by Griffin-Lim (no weights, a preview)."""

    def __init__(self, mel: MelConfig | None = None, n_iter: int = 32):
        super().__init__()
        self.front_end = MelFrontEnd(mel)
        self.n_iter = n_iter

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self.front_end.griffin_lim(log_mel, n_iter=self.n_iter)
