"""The one picture of a log-mel: generate.py's and the web app's PNGs and the training stages'
TensorBoard images all come from ``mel_figure``: the magma colour map over the fixed log-mel range
[-11.5, 2] (log(1e-5) up to loud), time in seconds across, mel bin up (low frequencies at the bottom),
a colour bar. Matplotlib's object API (no pyplot), so it is safe from several threads at once.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

LOW, HIGH = -11.5, 2.0  # the colour map's range of log-mel values (log(clamp(mel, 1e-5)) starts at -11.51)


def mel_figure(log_mel: torch.Tensor, title: str = "", sample_rate: int = 16000, hop_length: int = 160) -> Figure:
    """Log-mel [1, T, F] or [T, F] -> a matplotlib Figure (time in seconds across, mel bin up)."""
    mel = log_mel.detach().float().cpu().reshape(-1, log_mel.shape[-1]).T.numpy()  # [F, T]
    seconds = mel.shape[1] * hop_length / sample_rate
    fig = Figure(figsize=(max(4.0, min(12.0, seconds * 1.2)), 3.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(
        mel, origin="lower", aspect="auto", extent=(0, seconds, 0, mel.shape[0]), cmap="magma", vmin=LOW, vmax=HIGH
    )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel bin")
    ax.set_title(title[:80], fontsize=9)
    fig.colorbar(image, ax=ax, label="log mel")
    fig.tight_layout()
    return fig


def save_mel_image(
    log_mel: torch.Tensor, path: str | os.PathLike, title: str = "", sample_rate: int = 16000, hop_length: int = 160
) -> None:
    """``mel_figure`` written to ``path`` as a PNG (atomically)."""
    from audioldm.safe_output import atomic_file

    with atomic_file(path, ".tmp.png") as f:
        mel_figure(log_mel, title, sample_rate, hop_length).savefig(f, format="png")


def mel_image(log_mel: torch.Tensor, title: str = "", sample_rate: int = 16000, hop_length: int = 160) -> np.ndarray:
    """``mel_figure`` as pixels: uint8 RGB [H, W, 3] (what TensorBoard's ``add_image(..., dataformats="HWC")``
    takes)."""
    fig = mel_figure(log_mel, title, sample_rate, hop_length)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
