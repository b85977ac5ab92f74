"""Pre-encoded LDM training data: per clip, the frozen VAE's posterior and CLAP's audio embedding.

Layout: ``root/meta.json`` (which VAE and CLAP made it, their weight fingerprints, the mel settings
and segment length) and one file per clip, ``root/<h[:2]>/<h>.pt`` with h = sha1(clip id):
``{"posterior": [K, 2C, T', F'] (mean and log-variance, diffusers' DiagonalGaussianDistribution
parameters), "clap_audio": [K, D], "clap_text": [M, D]}`` for K consecutive segments of the clip
(segment 0 is the one raw-audio validation reads) and its M captions (``meta.json`` then says
``"text_embeddings": true``; caches written before that have no ``clap_text``). For a cross-attention LDM
(``model.condition: crossattn_*``) each file also holds ``"text_tokens": [M, L', W + 1]`` (every caption's packed
token states up to the clip's longest caption) and ``"text_length"`` (the encoder's padded length L), and
``meta.json`` names the text encoder (``"text_encoder": {"condition", "fingerprint"}``); a model without a CLAP
(crossattn_t5) stores no ``clap_audio``/``clap_text``. Written by ``python -m data.preencode``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from typing import Any, Sequence

import torch
from torch.utils.data import Dataset

from data.captions import caption_text_embedding, caption_text_tokens, pick_caption
from data.manifest import ManifestEntry
from data.tensor_store import TensorStore


class LatentCacheError(ValueError):
    """A latent cache that cannot be used for this run; the message names the folder."""


class LatentCache(TensorStore):
    def key(self, clip_id: str) -> str:
        return hashlib.sha1(clip_id.encode()).hexdigest()

    @property
    def meta_path(self) -> str:
        return os.path.join(self.root, "meta.json")

    def read_meta(self) -> dict[str, Any] | None:
        if not os.path.isfile(self.meta_path):
            return None
        with open(self.meta_path, encoding="utf-8") as f:
            return json.load(f)

    def write_meta(self, meta: dict[str, Any]) -> None:
        from audioldm.safe_output import atomic_file

        # several processes may write the same meta at once: one temporary file each
        with atomic_file(self.meta_path, f".{os.getpid()}.tmp", text=True) as f:
            json.dump(meta, f, indent=2, sort_keys=True)

    @property
    def where(self) -> str:
        return str(self.root)

    @property
    def has_text_embeddings(self) -> bool:
        """Written by a data.preencode that also stores every caption's CLAP text embedding."""
        return bool((self.read_meta() or {}).get("text_embeddings"))

    def check_meta(self, expected: dict[str, Any]) -> None:
        """Raise if the cache was made with other settings (the keys of ``expected`` are compared)."""
        meta = self.read_meta()
        if meta is None:
            raise LatentCacheError(
                f"{self.root}: no pre-encoded latents (meta.json missing); run "
                f"python -m data.preencode --config <this config>"
            )
        diffs = [f"{k}: cache {meta.get(k)!r} vs run {v!r}" for k, v in expected.items() if meta.get(k) != v]
        if diffs:
            raise LatentCacheError(
                f"{self.root}: latents were made with other settings ({'; '.join(diffs)}); "
                f"re-run python -m data.preencode or set another data.latent_cache_dir"
            )


class LatentClipDataset(Dataset):
    """Items: posterior [2C, T', F'], clap_audio [D], caption, captions, labels, id, skipped (0), and
    with a cache that has text embeddings clap_text [D] (the picked caption's) and has_text (bool); with token
    states text_tokens [L, W + 1] (the picked caption's) and has_text.

    With ``random_segment`` one of the clip's cached segments and one of its captions are drawn
    (seeded by the sampler's crop seed); otherwise segment 0 and the first caption."""

    def __init__(self, entries: Sequence[ManifestEntry], cache: LatentCache, random_segment: bool = True):
        if len(entries) == 0:
            raise ValueError("LatentClipDataset: no entries with cached latents")
        self.entries = list(entries)
        self.cache = cache
        self.random_segment = random_segment

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = index if isinstance(index, tuple) else (index, None)
        entry = self.entries[index]
        tensors = self.cache.load(self.cache.key(entry.id))
        if tensors is None:
            raise LatentCacheError(f"{self.cache.root}: the cached latents of {entry.id!r} are missing or unreadable")
        rng = (
            random.Random(seed if seed is not None else int(torch.randint(0, 2**62, (1,))))
            if self.random_segment
            else None
        )
        k = rng.randrange(tensors["posterior"].shape[0]) if rng else 0
        j, caption = pick_caption(entry.captions, rng)
        item = {
            "posterior": tensors["posterior"][k].float(),
            "id": entry.id,
            "captions": list(entry.captions),
            "labels": list(entry.labels),
            "caption": caption,
            "skipped": 0,
        }
        if "clap_audio" in tensors:
            item["clap_audio"] = tensors["clap_audio"][k].float()
        if "clap_text" in tensors:
            item.update(caption_text_embedding(tensors["clap_text"], j))
        if "text_tokens" in tensors:
            item.update(caption_text_tokens(tensors["text_tokens"], int(tensors["text_length"]), j))
        return item
