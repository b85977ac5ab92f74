"""Turn one decoded recording into training clips of 5-10 s.

Short sounds (a bark, a footstep) are looped with a short silence between repeats until
they last at least ``min_seconds``; long recordings (ambiences, loops) are cut into
non-overlapping clips of at most ``max_seconds``, at most ``max_clips`` per recording so
that no single file dominates a class. All waveforms are mono float32 [N].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ClipSpec:
    """How clips are cut. Thresholds are linear amplitudes (full scale = 1.0)."""

    sample_rate: int = 16000
    min_seconds: float = 5.0
    max_seconds: float = 10.0
    max_clips: int = 6
    gap_seconds: float = 0.25
    silent_peak: float = 0.01  # a recording whose peak is below this (-40 dBFS) is skipped
    silent_rms: float = 0.001  # a clip whose RMS is below this (-60 dBFS) is dropped
    trim_ratio: float = 0.01  # leading/trailing samples below peak * trim_ratio are trimmed
    min_sound_seconds: float = 0.02  # shorter sounds (after trimming) are not looped
    fade_seconds: float = 0.01
    max_peak: float = 0.95  # louder recordings (e.g. resampling overshoot) are scaled down to this

    def samples(self, seconds: float) -> int:
        return int(round(seconds * self.sample_rate))


def is_nearly_silent(wave: torch.Tensor, spec: ClipSpec) -> bool:
    """True if the recording [N] (DC removed) never reaches ``spec.silent_peak``."""
    if wave.numel() == 0:
        return True
    return float((wave - wave.mean()).abs().max()) < spec.silent_peak


def trim_silence(wave: torch.Tensor, ratio: float) -> torch.Tensor:
    """Drop leading and trailing samples quieter than ``ratio`` times the peak. [N] -> [M]."""
    loud = (wave.abs() >= wave.abs().max() * ratio).nonzero()
    if loud.numel() == 0:
        return wave[:0]
    return wave[int(loud[0]) : int(loud[-1]) + 1]


def apply_fades(wave: torch.Tensor, fade: int) -> torch.Tensor:
    """Linear fade-in and fade-out of ``fade`` samples (to avoid clicks at cuts). [N] -> [N]."""
    fade = min(fade, wave.numel() // 2)
    if fade <= 0:
        return wave
    ramp = torch.linspace(0.0, 1.0, fade, dtype=wave.dtype)
    wave = wave.clone()
    wave[:fade] *= ramp
    wave[-fade:] *= ramp.flip(0)
    return wave


def loop_to_length(wave: torch.Tensor, min_len: int, max_len: int, gap: int) -> torch.Tensor:
    """Repeat ``wave`` [N] with ``gap`` zeros between repeats until it is >= ``min_len``.

    Whole repeats are kept where possible; the result is cut to ``max_len`` samples.
    """
    unit = torch.cat([wave, wave.new_zeros(gap)])
    repeats = max(1, math.ceil((min_len + gap) / unit.numel()))
    looped = unit.repeat(repeats)[: repeats * unit.numel() - gap]
    return looped[:max_len]


def split_long(wave: torch.Tensor, min_len: int, max_len: int, max_clips: int) -> list[torch.Tensor]:
    """Cut a recording longer than ``max_len`` into non-overlapping clips of <= ``max_len``.

    If at most ``max_clips`` equal pieces of length >= ``min_len`` cover it, it is split
    into those; otherwise ``max_clips`` (or fewer) windows of ``max_len`` are spread evenly.
    """
    n = wave.numel()
    pieces = math.ceil(n / max_len)
    if pieces <= max_clips and n // pieces >= min_len:
        length = n // pieces
        return [wave[i * length : (i + 1) * length] for i in range(pieces)]
    count = max(1, min(max_clips, n // max_len))
    starts = [round(i * (n - max_len) / max(count - 1, 1)) for i in range(count)]
    return [wave[s : s + max_len] for s in starts]


def make_clips(wave: torch.Tensor, spec: ClipSpec, gap_seconds: float | None = None) -> list[torch.Tensor]:
    """Clips of ``spec.min_seconds``-``spec.max_seconds`` from one recording [N] at ``spec.sample_rate``.

    Returns [] for a nearly silent recording or one whose sound is too short to loop.
    """
    if is_nearly_silent(wave, spec):
        return []
    wave = trim_silence(wave - wave.mean(), spec.trim_ratio)
    peak = float(wave.abs().max())
    if peak > spec.max_peak:
        wave = wave * (spec.max_peak / peak)
    min_len, max_len = spec.samples(spec.min_seconds), spec.samples(spec.max_seconds)
    fade = spec.samples(spec.fade_seconds)
    if wave.numel() < spec.samples(spec.min_sound_seconds):
        return []
    if wave.numel() < min_len:
        gap = spec.samples(spec.gap_seconds if gap_seconds is None else gap_seconds)
        clips = [loop_to_length(apply_fades(wave, fade), min_len, max_len, gap)]
    elif wave.numel() <= max_len:
        clips = [wave]
    else:
        clips = split_long(wave, min_len, max_len, spec.max_clips)
    clips = [apply_fades(clip, fade) for clip in clips]
    return [clip for clip in clips if float(clip.pow(2).mean().sqrt()) >= spec.silent_rms]


def envelope(wave: torch.Tensor, block: int = 160, max_blocks: int = 3000) -> torch.Tensor:
    """Mean absolute amplitude of consecutive ``block``-sample blocks. [N] -> [<= max_blocks]."""
    usable = min(wave.numel() // block, max_blocks) * block
    return wave[:usable].abs().reshape(-1, block).mean(dim=1)


class RecordingIndex:
    """Recognises a recording already seen, possibly under another encoding.

    Two recordings are the same if their files have the same length and sample rate and
    their amplitude envelopes correlate above ``threshold`` (re-encoded copies do; distinct
    sounds that happen to have the same length do not).
    """

    def __init__(self, threshold: float = 0.99):
        self.threshold = threshold
        self._seen: dict[tuple[int, int], list[torch.Tensor]] = {}

    def seen_before(self, key: tuple[int, int], wave: torch.Tensor) -> bool:
        """True if a recording with this (frames, sample rate) ``key`` and wave [N] was added.

        Otherwise remembers this one and returns False.
        """
        env = envelope(wave)
        for other in self._seen.get(key, []):
            if env.numel() == other.numel() and env.numel() > 1:
                if float(torch.corrcoef(torch.stack([env, other]))[0, 1]) > self.threshold:
                    return True
        self._seen.setdefault(key, []).append(env)
        return False
