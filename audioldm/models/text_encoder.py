"""A frozen Flan-T5 encoder for the cross-attention condition (``model.condition: crossattn_t5``), as the
official ``FlanT5HiddenState``: the last hidden states of ``T5EncoderModel`` [B, L, 1024 for T5-large] and the
attention mask, captions truncated at ``max_length`` (128) tokens; the null condition is the encoding of "".

Its part config (what a checkpoint stores to rebuild it) is a plain dict: ``{"encoder": "t5", "hf_config":
T5Config as a dict, "tokenizer": a local tokenizer folder, "max_length": 128}``.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn as nn
from transformers import T5Config, T5EncoderModel

from audioldm.models.clap_tokenizer import TokenizerError, load_hf_tokenizer

ENCODERS = ("t5",)


class T5TextEncoder(nn.Module):
    """``token_states(texts)`` -> (states [B, max_length, d_model], mask [B, max_length])."""

    def __init__(self, part_config: dict[str, Any]):
        super().__init__()
        if part_config.get("encoder") not in ENCODERS:
            raise ValueError(f"text encoder {part_config.get('encoder')!r} is not one of {', '.join(ENCODERS)}")
        self.part_config = dict(part_config)
        self.max_length = int(part_config.get("max_length", 128))
        self.model = T5EncoderModel(T5Config(**part_config["hf_config"]))
        self._tokenizer = None

    @property
    def width(self) -> int:
        """The width W of the token states (T5's d_model)."""
        return self.model.config.d_model

    @property
    def tokenizer(self):
        """The T5 tokenizer of the local folder ``part_config["tokenizer"]``, read on first use."""
        if self._tokenizer is None:
            path = self.part_config.get("tokenizer")
            if not path or not os.path.isdir(path):
                raise TokenizerError(
                    f"T5 tokenizer folder not found: {path} (a local folder saved from google/flan-t5-large's "
                    f"tokenizer; give it with --tokenizer or model.text_encoder_path)"
                )
            self._tokenizer = load_hf_tokenizer(path)
        return self._tokenizer

    def token_states(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """B captions -> (last hidden states [B, max_length, W], mask [B, max_length]; padding masked)."""
        tokens = self.tokenizer(
            list(texts), padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        device = self.model.shared.weight.device
        ids, mask = tokens["input_ids"].to(device), tokens["attention_mask"].to(device)
        return self.model(input_ids=ids, attention_mask=mask).last_hidden_state, mask
