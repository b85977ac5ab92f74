"""How a training item picks one of its clip's captions, and that caption's pre-encoded CLAP text
embedding (the LDM's ``model.text_condition_prob`` mixes it with the audio embedding) or token states (the
condition of a cross-attention LDM, ``model.condition: crossattn_*``).

Every dataset (audio, pre-encoded latents, latent shards) draws the caption the same way, so a
clip gets the same caption for the same seed whichever way it is read.
"""

from __future__ import annotations

import random
from typing import Sequence

import torch


def pick_caption(captions: Sequence[str], rng: random.Random | None) -> tuple[int, str]:
    """(index, caption): a random caption when ``rng`` is given, else the first; (-1, "") if none.

    ``rng.randrange(n)`` draws exactly what ``rng.choice`` would, so seeds keep their captions."""
    if not captions:
        return -1, ""
    j = rng.randrange(len(captions)) if rng is not None else 0
    return j, captions[j]


def caption_text_embedding(clap_text: torch.Tensor, index: int) -> dict[str, torch.Tensor]:
    """clap_text [M, D] (one row per caption of the clip, M may be 0), the picked caption's index ->
    {"clap_text": [D] (zeros without a caption), "has_text": 0-d bool}."""
    if index < 0:
        return {"clap_text": torch.zeros(clap_text.shape[-1]), "has_text": torch.tensor(False)}
    if index >= clap_text.shape[0]:
        raise ValueError(f"caption {index} has no pre-encoded text embedding ({clap_text.shape[0]} stored)")
    return {"clap_text": clap_text[index].float(), "has_text": torch.tensor(True)}


def caption_text_tokens(tokens: torch.Tensor, length: int, index: int) -> dict[str, torch.Tensor]:
    """tokens [M, L', W + 1] (each caption's packed token states, stored only up to the clip's longest caption),
    the encoder's padded length L, the picked caption's index -> {"text_tokens": [L, W + 1] (zeros without a
    caption), "has_text": 0-d bool}."""
    if index < 0:
        return {"text_tokens": torch.zeros(length, tokens.shape[-1]), "has_text": torch.tensor(False)}
    if index >= tokens.shape[0]:
        raise ValueError(f"caption {index} has no pre-encoded token states ({tokens.shape[0]} stored)")
    row = tokens[index].float()
    return {
        "text_tokens": torch.nn.functional.pad(row, (0, 0, 0, length - row.shape[0])),
        "has_text": torch.tensor(True),
    }
