"""CLAP as an evaluation backbone: audio embeddings (for an FD in CLAP space) and text-audio
similarity (the CLAP score), from this project's CLAP stage or the CLAP inside an LDM checkpoint.

Numbers computed with a CLAP trained here are not comparable with published ones (papers use
LAION-CLAP); they are for comparing runs with each other, fully offline.
"""
from __future__ import annotations

import os

import torch

from audioldm.audio.mel import MelConfig, normalize_waveform
from audioldm.models.clap import ClapEmbedder


class ClapBackbone:
    """Wraps a ``ClapEmbedder``: waveforms are normalised as in CLAP training (zero mean, peak 0.5)."""

    def __init__(self, embedder: ClapEmbedder, source: str):
        self.embedder = embedder.eval()
        self.source = source  # where the weights came from, for the report

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "ClapBackbone":
        """A clap stage checkpoint, or an ldm checkpoint (its frozen CLAP)."""
        from audioldm.checkpoint import checkpoint_stage, read_checkpoint

        if checkpoint_stage(path, read_checkpoint(path)) == "ldm":
            from audioldm.pipeline.loading import load_latent_diffusion

            return cls(load_latent_diffusion(path, device).clap, f"{path} (its CLAP)")
        from audioldm.models.frozen_stages import load_frozen

        embedder, _, _ = load_frozen(path, "clap", MelConfig())
        return cls(embedder.to(device), str(path))

    @property
    def device(self) -> torch.device:
        return self.embedder.model.logit_scale_a.device

    @property
    def dim(self) -> int:
        return self.embedder.config.projection_dim

    @torch.no_grad()
    def embed_audio(self, waves: torch.Tensor) -> torch.Tensor:
        """[B, S] or [S] at 16 kHz -> [B, D], L2-normalised."""
        waves = waves.reshape(-1, waves.shape[-1]).to(self.device)
        return self.embedder.embed_audio(normalize_waveform(waves))

    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """B captions -> [B, D], L2-normalised."""
        return self.embedder.embed_text(list(texts))
