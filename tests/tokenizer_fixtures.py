"""A tiny RoBERTa (byte-level BPE) tokenizer folder built by hand: the 256 byte symbols, RoBERTa's
special tokens and a few merges. It stands in for roberta-base's tokenizer, which cannot be
downloaded here, wherever a test needs a RoBERTa-style tokenizer (LAION-CLAP text, diffusers folders)."""

from __future__ import annotations

import json
from pathlib import Path

MERGES = ["Ġ d", "o g", "Ġd og", "Ġ b", "a r", "Ġb ar", "k s", "Ġbar ks", "Ġ a", "i n", "Ġ t", "Ġt in"]


def byte_symbols() -> list[str]:
    """GPT-2/RoBERTa's printable stand-in for each of the 256 byte values."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def write_tiny_roberta_tokenizer(folder: Path) -> Path:
    """Write ``folder/raw/{vocab.json, merges.txt}``, then save them with transformers' RobertaTokenizer
    into ``folder``; returns ``folder``."""
    from transformers import RobertaTokenizer

    raw = folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for symbol in byte_symbols() + [m.replace(" ", "") for m in MERGES] + ["<mask>"]:
        vocab.setdefault(symbol, len(vocab))
    (raw / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (raw / "merges.txt").write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n", encoding="utf-8")
    RobertaTokenizer(str(raw / "vocab.json"), str(raw / "merges.txt")).save_pretrained(str(folder))
    return folder
