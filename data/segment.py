"""Choosing which part of a clip becomes a training segment (AudioLDM's recipe).

A clip longer than the segment is cropped at a random start; up to ``tries`` starts are drawn
and the first whose peak exceeds ``silence_peak`` wins (else the loudest one), so training
rarely sees a silent crop. The crop is chosen in the file's own sample rate and read with a
seek, so a long recording is never decoded whole.
"""

from __future__ import annotations

import random

import torch

from audioldm.audio.io import AudioInfo, load_audio
from audioldm.audio.mel import normalize_waveform


def read_segment(
    path: str,
    info: AudioInfo,
    sample_rate: int,
    segment_samples: int,
    rng: random.Random | None,
    tries: int = 10,
    silence_peak: float = 1e-4,
) -> tuple[torch.Tensor, int]:
    """Decode one segment and return (waveform [segment_samples], start frame in the file).

    ``rng`` None means a deterministic crop from the start of the file. The waveform is
    resampled to ``sample_rate``, normalised (zero mean, peak 0.5) and zero-padded at the end.
    """
    window = int(round(segment_samples * info.sample_rate / sample_rate))
    if info.frames <= window or rng is None:
        start, wave = 0, load_audio(path, sample_rate, 0, min(window, info.frames), info=info)
    else:
        best: tuple[float, int, torch.Tensor] | None = None
        for _ in range(tries):
            candidate = rng.randrange(0, info.frames - window + 1)
            wave = load_audio(path, sample_rate, candidate, window, info=info)
            peak = float(wave.abs().max())
            if best is None or peak > best[0]:
                best = (peak, candidate, wave)
            if peak > silence_peak:
                break
        _, start, wave = best
    return fit_length(normalize_waveform(wave[:segment_samples]), segment_samples), start


def crop_waveform(
    wave: torch.Tensor, segment_samples: int, rng: random.Random | None, tries: int = 10, silence_peak: float = 1e-4
) -> torch.Tensor:
    """``read_segment``'s choice on a decoded waveform [N] (already at the target rate) -> [segment_samples],
    normalised: the start when ``rng`` is None or the clip is short, else the first non-silent random crop."""
    n = wave.shape[-1]
    if n <= segment_samples or rng is None:
        crop = wave[:segment_samples]
    else:
        best: tuple[float, torch.Tensor] | None = None
        for _ in range(tries):
            start = rng.randrange(0, n - segment_samples + 1)
            candidate = wave[start : start + segment_samples]
            peak = float(candidate.abs().max())
            if best is None or peak > best[0]:
                best = (peak, candidate)
            if peak > silence_peak:
                break
        crop = best[1]
    return fit_length(normalize_waveform(crop), segment_samples)


def fit_length(wave: torch.Tensor, n: int) -> torch.Tensor:
    """Zero-pad at the end or cut to exactly ``n`` samples: [N] -> [n]."""
    if wave.shape[-1] >= n:
        return wave[..., :n]
    return torch.nn.functional.pad(wave, (0, n - wave.shape[-1]))


def read_tiles(
    path: str,
    info: AudioInfo,
    sample_rate: int,
    segment_samples: int,
    max_tiles: int,
    min_fill: float = 0.5,
    silence_peak: float = 1e-4,
) -> torch.Tensor:
    """Consecutive segments from the start of a clip: [K, segment_samples], 1 <= K <= ``max_tiles``.

    Tile 0 is exactly ``read_segment(..., rng=None)``. A later tile is kept only if at least
    ``min_fill`` of it is audio (not end padding) and it is not silent. Each tile is normalised.
    """
    window = int(round(segment_samples * info.sample_rate / sample_rate))
    count = max(1, min(max_tiles, (info.frames - int(window * min_fill)) // window + 1))
    wave = load_audio(path, sample_rate, 0, min(info.frames, count * window), info=info)
    tiles = []
    for k in range(count):
        piece = wave[k * segment_samples : (k + 1) * segment_samples]
        if k > 0 and (piece.numel() < min_fill * segment_samples or float(piece.abs().max()) <= silence_peak):
            continue
        tiles.append(fit_length(normalize_waveform(piece), segment_samples))
    return torch.stack(tiles)
