"""CLAP: transformers ``ClapModel`` (HTSAT audio encoder + RoBERTa-style text encoder, LAION-CLAP's
architecture, non-fusion) behind the two calls the other stages use:

    embed_text(list[str])            -> [B, 512], L2-normalised
    embed_audio(waveform [B, N] 16k) -> [B, 512], L2-normalised
    token_states(list[str])          -> [B, 77, 768] text-tower states and mask [B, 77]

The full config is LAION's HTSAT-tiny + roberta-base; the text vocabulary follows the tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
from transformers import ClapAudioConfig, ClapModel, ClapTextConfig
from transformers import ClapConfig as HfClapConfig

from audioldm.models.clap_features import ClapAudioFeatures
from audioldm.models.clap_tokenizer import ClapTokenizer


@dataclass
class ClapConfig:
    """``model:`` section of a clap config (defaults: HTSAT-tiny + roberta-base)."""

    projection_dim: int = 512
    tokenizer_path: str | None = None  # local RoBERTa tokenizer folder; None: open_clip's BPE tokenizer
    max_text_length: int = 77
    text_hidden_size: int = 768
    text_layers: int = 12
    text_heads: int = 12
    text_intermediate_size: int = 3072
    # LayerNorm eps of the text encoder: transformers' CLAP default; LAION-CLAP's roberta-base uses 1e-5
    text_layer_norm_eps: float = 1e-12
    audio_patch_embeds_hidden_size: int = 96  # HTSAT-tiny; stage widths double: 96, 192, 384, 768
    audio_depths: list[int] = field(default_factory=lambda: [2, 2, 6, 2])
    audio_heads: list[int] = field(default_factory=lambda: [4, 8, 16, 32])
    audio_seconds: float = 10.0  # clips are cut or repeat-padded to this at 48 kHz
    zero_shot_template: str = "the sound of {label}"
    # the weights hold only the text tower (e.g. a diffusers folder's text_encoder): embed_audio refuses
    text_only: bool = False


def hf_config(config: ClapConfig, vocab_size: int, pad_id: int) -> HfClapConfig:
    """The transformers config for ``config`` with a text vocabulary of ``vocab_size``."""
    levels = len(config.audio_depths)
    text = ClapTextConfig(
        vocab_size=vocab_size,
        pad_token_id=pad_id,
        hidden_size=config.text_hidden_size,
        num_hidden_layers=config.text_layers,
        num_attention_heads=config.text_heads,
        intermediate_size=config.text_intermediate_size,
        projection_dim=config.projection_dim,
        max_position_embeddings=max(514, config.max_text_length + pad_id + 1),  # RoBERTa: from pad_id + 1
        layer_norm_eps=config.text_layer_norm_eps,
    )
    audio = ClapAudioConfig(
        patch_embeds_hidden_size=config.audio_patch_embeds_hidden_size,
        depths=list(config.audio_depths),
        num_attention_heads=list(config.audio_heads),
        projection_dim=config.projection_dim,
        hidden_size=config.audio_patch_embeds_hidden_size * 2 ** (levels - 1),
        enable_fusion=False,
    )
    return HfClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=config.projection_dim)


class ClapEmbedder(nn.Module):
    """Tokenizer + 48 kHz features + ``ClapModel``; ``logit_scale`` is the learned temperature."""

    def __init__(self, config: ClapConfig, sample_rate: int = 16000):
        super().__init__()
        self.config = config
        self.tokenizer = ClapTokenizer(config.tokenizer_path, config.max_text_length)
        self.model = ClapModel(hf_config(config, self.tokenizer.vocab_size, self.tokenizer.pad_id))
        self.features = ClapAudioFeatures(input_rate=sample_rate, max_seconds=config.audio_seconds)

    @property
    def logit_scale(self) -> torch.Tensor:
        """exp of the learned log temperature, capped at 100 as in CLIP."""
        return self.model.logit_scale_a.exp().clamp(max=100.0)

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """list of B captions -> [B, projection_dim], L2-normalised."""
        device = self.model.logit_scale_a.device
        ids, mask = self.tokenizer(texts)
        out = self.model.get_text_features(input_ids=ids.to(device), attention_mask=mask.to(device))
        return out.pooler_output

    def token_states(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """B captions -> the text tower's last hidden states [B, max_text_length, text_hidden_size] and the
        attention mask [B, max_text_length] (the ``crossattn_clap_tokens`` condition)."""
        device = self.model.logit_scale_a.device
        ids, mask = self.tokenizer(texts)
        ids, mask = ids.to(device), mask.to(device)
        return self.model.text_model(input_ids=ids, attention_mask=mask).last_hidden_state, mask

    @property
    def width(self) -> int:
        """The width of ``token_states`` (the text tower's hidden size)."""
        return self.model.config.text_config.hidden_size

    def embed_audio(self, waveform: torch.Tensor, random_crop: bool = False) -> torch.Tensor:
        """waveform [B, N] at 16 kHz -> [B, projection_dim], L2-normalised."""
        if self.config.text_only:
            raise ValueError(
                "this CLAP holds only text-encoder weights (e.g. from a diffusers folder), so it cannot "
                "embed audio: give a CLAP with an audio encoder (a LAION-CLAP .pt, an original AudioLDM "
                ".ckpt or a clap stage checkpoint), e.g. model.clap_ckpt=PATH"
            )
        features = self.features(waveform, random_crop=random_crop)
        return self.model.get_audio_features(input_features=features).pooler_output
