"""Audio file reading with soundfile: decode, downmix to mono, resample.

Every failure becomes an ``AudioReadError`` that names the file and the problem, so a
dataset can skip and count a bad clip instead of crashing deep inside a decoder.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

# Containers whose header frame count is exact, so a short read means a truncated file.
_EXACT_LENGTH_FORMATS = {"WAV", "WAVEX", "FLAC", "AIFF", "W64", "RF64", "CAF"}
# libsndfile reports a WAV data chunk longer than the file as "data : 64000 (should be 21304)"
_WAV_SHORT_DATA = re.compile(r"\bdata : (\d+) \(should be (\d+)\)")
_STREAMING_SIZES = {0, 0xFFFFFFFF}  # writers that did not know the length: not truncated


class AudioReadError(RuntimeError):
    """An audio file that cannot be used. ``path`` and ``reason`` are kept separately."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    frames: int
    channels: int
    format: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def not_a_file(path: str | os.PathLike, what: str = "file") -> str:
    """Why ``path`` is not a readable regular file, for messages: ``"is a directory, not a file"``,
    ``"file does not exist"`` or ``"not a regular file"`` (``what`` replaces "file" in them)."""
    if os.path.isdir(path):
        return f"is a directory, not {'an' if what[0] in 'aeiou' else 'a'} {what}"
    if not os.path.lexists(path):
        return f"{what} does not exist"
    if not os.path.exists(path):
        return f"{what} does not exist (a broken symbolic link)"
    return f"not a regular file (a {what} was expected)"


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Header information, without decoding. Raises ``AudioReadError``."""
    if not os.path.isfile(path):
        raise AudioReadError(path, not_a_file(path))
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile raises several error types
        raise AudioReadError(path, f"cannot open as audio ({_short(e)})") from None
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioReadError(path, f"invalid header (rate {info.samplerate}, {info.channels} channels)")
    short = _WAV_SHORT_DATA.search(info.extra_info or "")
    if short and int(short[1]) not in _STREAMING_SIZES and int(short[1]) > int(short[2]):
        raise AudioReadError(path, f"truncated: header declares {short[1]} data bytes, file holds {short[2]}")
    return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels), str(info.format))


def load_audio(
    path: str | os.PathLike,
    sample_rate: int | None = 16000,
    start_frame: int = 0,
    num_frames: int = -1,
    info: AudioInfo | None = None,
    channel: int | None = None,
) -> torch.Tensor:
    """Decode ``path`` to a mono float32 waveform [N] at ``sample_rate`` (None keeps the file's).

    ``start_frame`` and ``num_frames`` select a window in the file's own sample rate. Channels are
    averaged, or ``channel`` alone is kept (audioldm_eval's evaluation reads channel 0).
    Raises ``AudioReadError`` for a missing, unreadable, empty, truncated or non-finite file.
    """
    info = info or audio_info(path)
    if info.frames == 0:
        raise AudioReadError(path, "empty file (0 samples)")
    try:
        data, sr = sf.read(str(path), start=start_frame, frames=num_frames, dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioReadError(path, f"decode failed ({_short(e)})") from None
    expected = info.frames - start_frame if num_frames < 0 else min(num_frames, info.frames - start_frame)
    if info.format in _EXACT_LENGTH_FORMATS and data.shape[0] < expected:
        raise AudioReadError(path, f"truncated: header says {expected} samples, only {data.shape[0]} readable")
    if data.shape[0] == 0:
        raise AudioReadError(path, "no samples decoded")
    if not np.isfinite(data).all():
        raise AudioReadError(path, "contains NaN or infinite samples")
    mono = data.mean(axis=1) if channel is None else data[:, min(channel, data.shape[1] - 1)]
    wave = torch.from_numpy(np.ascontiguousarray(mono))
    if sample_rate is not None and sr != sample_rate:
        wave = AF.resample(wave, sr, sample_rate)
    return wave


def save_audio(path: str | os.PathLike, wave: torch.Tensor | np.ndarray, sample_rate: int) -> None:
    """Write a mono waveform [N] (or [1, N]) as 16-bit PCM WAV, atomically."""
    if isinstance(wave, torch.Tensor):
        wave = wave.detach().cpu().float().numpy()
    wave = np.asarray(wave).reshape(-1)
    from audioldm.safe_output import atomic_file

    buffer = io.BytesIO()  # encoded in memory: libsndfile hides the cause of a failed write
    sf.write(buffer, np.clip(wave, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    with atomic_file(path, ".tmp.wav") as f:
        f.write(buffer.getvalue())


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[-1] if text else type(e).__name__
