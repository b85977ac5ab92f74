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
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str | torch.device = "cpu", tokenizer: str | None = None
    ) -> "ClapBackbone":
        """Any CLAP source (``audioldm.assembly.parts.load_part``): a clap stage checkpoint, an ldm
        checkpoint (its frozen CLAP), a LAION-CLAP .pt, an original AudioLDM .ckpt, a CLAP folder."""
        from audioldm.assembly.parts import load_part
        from audioldm.formats.registry import holds_whole_model, open_source

        source = open_source(path)
        embedder = load_part(source, "clap", MelConfig(), tokenizer).network
        own = holds_whole_model(source)  # the CLAP inside a whole AudioLDM
        return cls(embedder.to(device), f"{path} (its CLAP)" if own else str(path))

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
