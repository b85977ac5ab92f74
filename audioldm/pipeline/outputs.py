"""Writing generated audio: file-safe names, wav files and mel images."""
from __future__ import annotations

import os
import re

import torch

from audioldm.audio.io import save_audio


def slug(text: str, length: int = 40) -> str:
    """A file- and tag-safe short form of a prompt: "A dog barks!" -> "a_dog_barks"."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:length] or "prompt"


def save_mel_image(log_mel: torch.Tensor, path: str | os.PathLike, title: str = "", sample_rate: int = 16000,
                   hop_length: int = 160) -> None:
    """Log-mel [1, T, F] or [T, F] -> a PNG (time in seconds across, mel bin up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mel = log_mel.detach().float().cpu().reshape(-1, log_mel.shape[-1]).T.numpy()  # [F, T]
    seconds = mel.shape[1] * hop_length / sample_rate
    fig, ax = plt.subplots(figsize=(max(4.0, min(12.0, seconds * 1.2)), 3.0), dpi=100)
    image = ax.imshow(mel, origin="lower", aspect="auto", extent=(0, seconds, 0, mel.shape[0]),
                      cmap="magma", vmin=-11.5, vmax=2.0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel bin")
    ax.set_title(title[:80], fontsize=9)
    fig.colorbar(image, ax=ax, label="log mel")
    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def save_clip(wave: torch.Tensor, log_mel: torch.Tensor, stem: str | os.PathLike, title: str,
              sample_rate: int = 16000) -> tuple[str, str]:
    """Write ``<stem>.wav`` and ``<stem>.png``; returns both paths."""
    wav, png = f"{stem}.wav", f"{stem}.png"
    save_audio(wav, wave, sample_rate)
    save_mel_image(log_mel, png, title, sample_rate)
    return wav, png
