"""Text tokenizers for CLAP: a local RoBERTa tokenizer folder (LAION-CLAP's), or open_clip's
bundled BPE tokenizer when none is on disk (nothing is downloaded).

Both return (input_ids [B, L], attention_mask [B, L]) and say their vocabulary size and padding id,
which the text encoder's embedding table must match.
"""
from __future__ import annotations

import os

import torch


class TokenizerError(ValueError):
    """A tokenizer that cannot be loaded; one line naming the path."""


class ClapTokenizer:
    def __init__(self, path: str | None = None, max_length: int = 77):
        self.max_length = max_length
        self.path = path
        if path:
            if not os.path.isdir(path):
                raise TokenizerError(f"tokenizer folder not found: {path} (a local RoBERTa tokenizer "
                                     f"folder, e.g. one saved from roberta-base; set model.tokenizer_path)")
            from transformers import AutoTokenizer

            try:
                self._hf = AutoTokenizer.from_pretrained(path, local_files_only=True)
            except (OSError, ValueError) as e:
                raise TokenizerError(f"{path}: not a loadable tokenizer folder ({str(e).splitlines()[0]})") from None
            self.vocab_size, self.pad_id = len(self._hf), int(self._hf.pad_token_id)
        else:
            from open_clip.tokenizer import SimpleTokenizer

            self._bpe = SimpleTokenizer(context_length=max_length)
            self.vocab_size, self.pad_id = len(self._bpe.encoder), 0

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.path:
            out = self._hf(list(texts), padding="max_length", truncation=True, max_length=self.max_length,
                           return_tensors="pt")
            return out["input_ids"], out["attention_mask"]
        ids = self._bpe(list(texts))
        return ids, (ids != self.pad_id).long()
