"""A Vocos-style vocoder (Siuzdak 2023): ConvNeXt blocks at the mel frame rate predict the STFT
magnitude and phase of each frame, and an inverse STFT makes the waveform. Written here because no
installed library ships one on its own (transformers has iSTFT heads only inside its codecs).

log-mel [B, 1, T, F] -> Conv1d(F, C, 7) -> LayerNorm -> ``layers`` x ConvNeXt(C) -> LayerNorm
-> Linear(C, n_fft + 2) -> (log magnitude, phase) [B, n_fft/2 + 1, T] -> istft(hop, Hann n_fft)
-> waveform [B, T * hop]. Every layer runs at the frame rate (100 Hz for AudioLDM's mel), so it is
far cheaper than HiFi-GAN's sample-rate convolutions and converges in minutes on a CPU; it is a
config choice (``model.generator: istft``), HiFi-GAN stays the default and the layout of official weights.

Two options keep it close to the mel it is given (both off = Vocos):
- ``mel_anchor`` (``model.istft_mel_anchor``; needs ``n_fft`` = the mel's): the network predicts a log-gain
  on the mel's pseudo-inverse magnitude (the magnitude Griffin-Lim starts from) instead of the whole log
  magnitude. Its head starts at zero, so an untrained network already outputs the mel's energy in every
  bin, and quiet bins stay quiet instead of carrying the noise floor free-running vocoders learn first.
- ``phase_iters`` (``model.istft_phase_iters``): that many fast Griffin-Lim projections (Perraudin et al.
  2013, momentum 0.99) start from the predicted phase and keep the predicted magnitude, inside the network
  (differentiable, so training sees them): they make the spectrum one a waveform can have.
  ``inference_phase_iters`` (``model.istft_inference_phase_iters``; None = ``phase_iters``) is the count in eval
  mode: more projections after training leave a more consistent spectrum at little cost (measured on the demo:
  BENCHMARKS.md, "Prompt following").
- ``phase_prior`` (``model.istft_phase_prior``; needs ``mel_anchor``): the predicted phase is a correction to the
  phase the anchor magnitude implies (its instantaneous frequency summed over time, audioldm/audio/phase_prior.py),
  with the phase half of the head at zero. A network at the frame rate sees the same input at every frame of a
  steady sound, so alone it cannot make a phase that advances from frame to frame; the prior does.

Alignment: our mel frame t covers samples centred on t * hop + hop / 2 (``center=False`` with
(n_fft - hop) / 2 reflect padding); ``torch.istft(center=True)`` centres frame t on t * hop, so the
output is delayed by hop / 2 samples to line up with the input audio.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from audioldm.audio.phase_prior import fast_griffin_lim, integrated_phase


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
    """log-mel [B, 1, T, n_mels] -> waveform [B, T * hop].

    ``mel_basis`` [n_mels, n_fft / 2 + 1]: the mel filterbank the log-mels were made with; given, the
    magnitude is anchored to its pseudo-inverse (see the module docstring). ``phase_iters``: Griffin-Lim
    projections after the network.
    """

    def __init__(
        self,
        n_mels: int = 64,
        hop: int = 160,
        n_fft: int = 640,
        channels: int = 256,
        layers: int = 8,
        mel_basis: torch.Tensor | None = None,
        phase_iters: int = 0,
        momentum: float = 0.99,
        log_floor: float = 1e-5,
        phase_prior: bool = False,
        inference_phase_iters: int | None = None,
    ):
        super().__init__()
        if n_fft % 2 or n_fft < hop:
            raise ValueError(f"model.istft_n_fft={n_fft} must be even and at least the hop ({hop})")
        if mel_basis is not None and tuple(mel_basis.shape) != (n_mels, n_fft // 2 + 1):
            raise ValueError(
                f"model.istft_mel_anchor needs model.istft_n_fft equal to the mel's n_fft: the mel "
                f"filterbank has {mel_basis.shape[1]} frequency bins, istft_n_fft={n_fft} has "
                f"{n_fft // 2 + 1}"
            )
        if phase_prior and mel_basis is None:
            raise ValueError(
                "model.istft_phase_prior needs model.istft_mel_anchor: the prior is the phase of the anchor magnitude"
            )
        if phase_iters < 0:
            raise ValueError(f"model.istft_phase_iters={phase_iters} must be >= 0")
        if inference_phase_iters is not None and inference_phase_iters < 0:
            raise ValueError(f"model.istft_inference_phase_iters={inference_phase_iters} must be >= 0")
        self.hop, self.n_fft, self.phase_iters, self.momentum = hop, n_fft, phase_iters, momentum
        self.inference_phase_iters = phase_iters if inference_phase_iters is None else inference_phase_iters
        self.log_floor = log_floor
        self.embed = nn.Conv1d(n_mels, channels, 7, padding=3)
        self.norm_in = nn.LayerNorm(channels, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock1d(channels) for _ in range(layers))
        self.norm_out = nn.LayerNorm(channels, eps=1e-6)
        self.head = nn.Linear(channels, n_fft + 2)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.anchored = mel_basis is not None
        if self.anchored:
            # the pseudo-inverse of the filterbank (not saved: rebuilt from the mel settings)
            self.register_buffer("inverse_basis", torch.linalg.pinv(mel_basis), persistent=False)
            with torch.no_grad():  # the log-gain half of the head starts at zero: output = the mel's magnitude
                self.head.weight[: n_fft // 2 + 1].zero_()
                self.head.bias[: n_fft // 2 + 1].zero_()
        self.phase_prior = phase_prior
        if phase_prior:
            with torch.no_grad():  # the phase half starts at zero too: output phase = the prior
                self.head.weight[n_fft // 2 + 1 :].zero_()
                self.head.bias[n_fft // 2 + 1 :].zero_()

    def anchor(self, log_mel: torch.Tensor) -> torch.Tensor:
        """log-mel [B, 1, T, F] -> log of the pseudo-inverse magnitude [B, n_fft / 2 + 1, T], floored as the mel."""
        mel = log_mel.squeeze(1).transpose(1, 2).float().exp()  # [B, F, T]
        return (self.inverse_basis @ mel).clamp(min=self.log_floor).log()

    def predict(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log-mel [B, 1, T, F] -> (log magnitude, phase in radians), each [B, n_fft / 2 + 1, T]: the
        network's spectrum before any phase projection (what the spectrum losses compare)."""
        x = self.embed(log_mel.squeeze(1).transpose(1, 2))  # [B, C, T]
        x = self.norm_in(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        out = self.head(self.norm_out(x.transpose(1, 2))).transpose(1, 2)  # [B, n_fft + 2, T]
        log_magnitude, phase = out.float().chunk(2, dim=1)
        if self.anchored:
            anchor = self.anchor(log_mel)
            log_magnitude = log_magnitude + anchor
            if self.phase_prior:
                phase = phase + integrated_phase(anchor, self.hop, self.n_fft)
        return log_magnitude.clamp(max=10.0), phase  # as Vocos: bounded, so early steps cannot overflow

    def spectrum(self, log_mel: torch.Tensor) -> torch.Tensor:
        """log-mel [B, 1, T, F] -> complex STFT [B, n_fft / 2 + 1, T] (before any phase projection)."""
        log_magnitude, phase = self.predict(log_mel)
        return torch.polar(log_magnitude.exp(), phase)

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Complex STFT [B, n_fft / 2 + 1, T] -> waveform [B, length] (centred frames, Hann window)."""
        return torch.istft(spec, self.n_fft, self.hop, self.n_fft, self.window, center=True, length=length)

    @property
    def projections(self) -> int:
        """Griffin-Lim projections now: ``phase_iters`` in training mode, ``inference_phase_iters`` in eval mode."""
        return self.phase_iters if self.training else self.inference_phase_iters

    def project_phase(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Fast Griffin-Lim from ``spec``'s phase, keeping its magnitude: ``projections`` times
        waveform -> STFT -> keep the phase (with momentum), as torchaudio's ``griffinlim`` but from a given start."""
        return fast_griffin_lim(spec, self.projections, self.n_fft, self.hop, self.window, length, self.momentum)

    def synthesize(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """log-mel [B, 1, T, F] -> (waveform [B, T * hop], ``predict``'s (log magnitude, phase))."""
        frames = log_mel.shape[2]
        shift = self.hop // 2  # frame t of our mel is centred on t * hop + hop / 2
        # T frames centred on 0, hop, ...: a waveform this long has exactly T STFT frames again (the projection)
        length = frames * self.hop - shift
        log_magnitude, phase = self.predict(log_mel)
        spec = torch.polar(log_magnitude.exp(), phase)
        if self.projections:
            spec = self.project_phase(spec, length)
        return F.pad(self.istft(spec, length), (shift, 0)), (log_magnitude, phase)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self.synthesize(log_mel)[0]
