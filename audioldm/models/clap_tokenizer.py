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


# files that tell AutoTokenizer which tokenizer a folder holds; a bare vocab.json + merges.txt has none
DESCRIBED_BY = ("tokenizer_config.json", "tokenizer.json", "config.json")
ROBERTA_FILES = ("vocab.json", "merges.txt")


def load_hf_tokenizer(path: str):
    """The transformers tokenizer of a local folder: ``AutoTokenizer``, or ``RobertaTokenizer`` for a folder
    holding only ``vocab.json`` + ``merges.txt`` (RoBERTa's byte-level BPE, which AutoTokenizer cannot
    identify without a config). Raises ``TokenizerError`` naming the folder."""
    from transformers import AutoTokenizer, RobertaTokenizer

    bare = not any(os.path.isfile(os.path.join(path, f)) for f in DESCRIBED_BY)
    try:
        if bare and all(os.path.isfile(os.path.join(path, f)) for f in ROBERTA_FILES):
            return RobertaTokenizer.from_pretrained(path, local_files_only=True)
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as e:
        hint = "" if not bare else f"; it has none of {', '.join(DESCRIBED_BY)}, nor both {' and '.join(ROBERTA_FILES)}"
        raise TokenizerError(f"{path}: not a loadable tokenizer folder ({str(e).splitlines()[0]}){hint}") from None


class ClapTokenizer:
    def __init__(self, path: str | None = None, max_length: int = 77):
        self.max_length = max_length
        self.path = path
        if path:
            if not os.path.isdir(path):
                raise TokenizerError(
                    f"tokenizer folder not found: {path} (a local RoBERTa tokenizer "
                    f"folder, e.g. one saved from roberta-base; set model.tokenizer_path)"
                )
            self._hf = load_hf_tokenizer(path)
            self.vocab_size, self.pad_id = len(self._hf), int(self._hf.pad_token_id)
        else:
            from open_clip.tokenizer import SimpleTokenizer

            self._bpe = SimpleTokenizer(context_length=max_length)
            self.vocab_size, self.pad_id = len(self._bpe.encoder), 0

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.path:
            out = self._hf(
                list(texts), padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            return out["input_ids"], out["attention_mask"]
        ids = self._bpe(list(texts))
        return ids, (ids != self.pad_id).long()
