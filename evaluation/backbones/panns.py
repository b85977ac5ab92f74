"""PANNs CNN14 at 16 kHz (Kong et al., 2020) as audioldm_eval uses it for FD, KL and IS.

The network is frechet-audio-distance's copy of the PANNs model (same layers and keys as
audioldm_eval's, with the official 16 kHz front-end: 512-point STFT, hop 160, 64 mel bands 50-8000 Hz).
audioldm_eval's features, in eval mode: ``"2048"`` = relu(fc1(x)) (the model's ``embedding``) and
``"logits"`` = fc_audioset of that embedding (before the sigmoid).

``frechet_audio_distance`` imports laion_clap and Hugging Face tokenizers when its package loads
(about 11 s offline, minutes with network look-ups), so it is imported only when a model is built.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from evaluation.backbones import BackboneError, load_state, read_weights, weights_path

PANN_FILE = "Cnn14_16k_mAP=0.438.pth"
PANN_URL = "https://zenodo.org/record/3987831/files/Cnn14_16k_mAP%3D0.438.pth"

SAMPLE_RATE = 16000
MIN_SAMPLES = 31 * 160  # 32 STFT frames: the time axis survives CNN14's five 2x poolings
EMBEDDING_DIM, NUM_CLASSES = 2048, 527


def build_cnn14() -> nn.Module:
    """frechet-audio-distance's ``Cnn14_16k`` (random weights), with audioldm_eval's 16 kHz settings."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the package import otherwise looks up tokenizers online
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from frechet_audio_distance.models.pann import Cnn14_16k

    return Cnn14_16k(
        sample_rate=SAMPLE_RATE, window_size=512, hop_size=160, mel_bins=64, fmin=50, fmax=8000, classes_num=NUM_CLASSES
    )


class Cnn14Features(nn.Module):
    """Wraps a PANNs CNN14 (``.model``) and returns audioldm_eval's two feature layers."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    @torch.no_grad()
    def forward(self, waves: torch.Tensor) -> dict[str, torch.Tensor]:
        """[B, S] at 16 kHz -> {"2048": [B, 2048] (>= 0), "logits": [B, 527] (pre-sigmoid)}."""
        if waves.dim() != 2:
            raise ValueError(f"CNN14 expects waveforms [B, S] at 16 kHz, got shape {list(waves.shape)}")
        if waves.shape[1] < MIN_SAMPLES:
            raise ValueError(
                f"CNN14 needs at least {MIN_SAMPLES} samples ({MIN_SAMPLES / SAMPLE_RATE:.2f} s "
                f"at 16 kHz) per clip, got {waves.shape[1]}"
            )
        embedding = self.model(waves)["embedding"]
        return {"2048": embedding, "logits": self.model.fc_audioset(embedding)}


def cnn14_from_state_dict(state_dict: dict, where: str = "CNN14 state dict") -> Cnn14Features:
    """A ``Cnn14Features`` holding ``state_dict`` (the official file's ``"model"`` entry), in eval mode."""
    model = build_cnn14()
    load_state(model, state_dict, where)
    return Cnn14Features(model).eval()


def load_cnn14(weights_dir: str | os.PathLike, device: str | torch.device = "cpu") -> Cnn14Features:
    """CNN14 16 kHz from the official ``Cnn14_16k_mAP=0.438.pth`` in ``weights_dir``, in eval mode."""
    path = weights_path(weights_dir, PANN_FILE, "PANNs CNN14 (16 kHz)", PANN_URL)
    checkpoint = read_weights(path)
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        found = f"keys {list(checkpoint)[:5]}" if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise BackboneError(f"{path}: not a PANNs checkpoint (no 'model' entry; found {found})")
    return cnn14_from_state_dict(checkpoint["model"], str(path)).to(device)
