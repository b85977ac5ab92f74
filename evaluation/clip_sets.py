"""The sets an evaluation compares: generated and reference clips, keyed so they can be paired.

A set comes from a folder (every audio file in it, key = file name without extension) or from a
manifest (key = the entry's id). Generated and reference clips pair by key, as audioldm_eval pairs
them by file name; KL needs pairs, FAD/FD/IS use every clip of each set.

Audio is read as audioldm_eval reads it: channel 0, mean removed, resampled to 16 kHz, zero-padded
to at least 2 s. No peak normalisation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchaudio.functional as AF

from audioldm.audio.io import audio_info, load_audio

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
MIN_SAMPLES = 32000  # audioldm_eval pads shorter clips to 2 s


@dataclass
class Clip:
    key: str
    path: str
    caption: str | None = None


@dataclass
class Pairing:
    """Keys present in both sets, and those only in one (reported, never silently dropped)."""

    paired: list[str]
    generated_only: list[str] = field(default_factory=list)
    reference_only: list[str] = field(default_factory=list)


def check_folder(folder: str | os.PathLike) -> Path:
    """``folder`` as a Path if it is a folder, else ``FileNotFoundError`` saying what it is."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: is a file, not a folder of clips" if root.is_file() else f"folder not found: {root}"
        )
    return root


def clips_from_folder(*folders: str | os.PathLike) -> list[Clip]:
    """Every audio file in ``folders`` and their subfolders, sorted by name; captions from a
    folder's ``generated.jsonl`` (written by generate.py) when it has one. File names (without
    extension) must be unique: they are the keys that pair clips."""
    clips: dict[str, Clip] = {}
    for folder in folders:
        root = check_folder(folder)
        captions = {}
        index = root / "generated.jsonl"
        if index.is_file():
            from data.manifest import read_manifest

            captions = {Path(e.path).stem: e.captions[0] for e in read_manifest(index) if e.captions}
        for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS):
            if path.stem in clips:
                raise ValueError(
                    f"{path}: another file is also named {path.stem!r} ({clips[path.stem].path}); "
                    f"clips pair by file name, so names must be unique"
                )
            clips[path.stem] = Clip(path.stem, str(path), captions.get(path.stem))
    return sorted(clips.values(), key=lambda c: c.key)


def clips_from_manifest(path: str | os.PathLike, split: str | None = None) -> list[Clip]:
    """Entries of a manifest (only ``split`` if given), key = id, caption = the first caption."""
    from data.manifest import read_manifest

    entries = read_manifest(path)
    if split is not None:
        entries = [e for e in entries if e.split == split]
    return [Clip(e.id, e.path, e.captions[0] if e.captions else None) for e in entries]


def pair(generated: list[Clip], reference: list[Clip]) -> Pairing:
    gen, ref = {c.key for c in generated}, {c.key for c in reference}
    return Pairing(sorted(gen & ref), sorted(gen - ref), sorted(ref - gen))


def load_eval_audio(path: str, sample_rate: int = 16000) -> torch.Tensor:
    """[S] float32 at ``sample_rate``: channel 0, mean removed, at least 2 s (zero-padded)."""
    info = audio_info(path)
    wave = load_audio(path, None, info=info, channel=0)
    wave = wave - wave.mean()
    if info.sample_rate != sample_rate:
        wave = AF.resample(wave, info.sample_rate, sample_rate)
    if wave.numel() < MIN_SAMPLES:
        wave = torch.nn.functional.pad(wave, (0, MIN_SAMPLES - wave.numel()))
    return wave
