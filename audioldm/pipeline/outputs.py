"""Writing generated audio: file-safe names, wav files and mel images."""

from __future__ import annotations

import os
import re

import torch

from audioldm.audio.io import save_audio


def slug(text: str, length: int = 40) -> str:
    """A file- and tag-safe short form of a prompt: "A dog barks!" -> "a_dog_barks"."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:length] or "prompt"


def save_clip(
    wave: torch.Tensor, log_mel: torch.Tensor, stem: str | os.PathLike, title: str, sample_rate: int = 16000
) -> tuple[str, str]:
    """Write ``<stem>.wav`` and ``<stem>.png`` (``audioldm.audio.mel_image``); returns both paths."""
    from audioldm.audio.mel_image import save_mel_image  # matplotlib, only when writing

    wav, png = f"{stem}.wav", f"{stem}.png"
    save_audio(wav, wave, sample_rate)
    save_mel_image(log_mel, png, title, sample_rate)
    return wav, png
