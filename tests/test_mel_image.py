"""The one mel picture: generate.py's PNG and the TensorBoard image are the same pixels, magma, low bins down."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from audioldm.audio.mel_image import HIGH, LOW, mel_image, save_mel_image


def test_png_and_tensorboard_image_are_the_same_picture(tmp_path):
    log_mel = torch.full((1, 100, 64), LOW)
    log_mel[..., :8] = HIGH  # loud low bins only
    pixels = mel_image(log_mel, "x")
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    save_mel_image(log_mel, tmp_path / "m.png", "x")
    png = np.asarray(Image.open(tmp_path / "m.png").convert("RGB"))
    assert png.shape == pixels.shape and np.array_equal(png, pixels)
    # the plot area's column in the middle: magma's bright end at the bottom, its dark end above
    h, w, _ = pixels.shape
    column = pixels[:, w // 3].astype(int)
    bright_rows = np.nonzero((column.sum(-1) > 600) & (column[:, 2] < 220))[0]  # magma's top, not white paper
    dark_rows = np.nonzero(column.sum(-1) < 60)[0]
    assert bright_rows.size and dark_rows.size and bright_rows.mean() > dark_rows.mean()
