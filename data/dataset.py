"""The one Dataset every stage reads: manifest entries -> waveform, log-mel, captions, id.

A file that cannot be decoded (missing, corrupt, empty, truncated, unreadable) is skipped:
one warning names it, the item's ``skipped`` flag is set so the epoch's count can be logged,
and the next readable clip stands in so the batch keeps its size. Training never stops for one
bad clip; it stops with a clear error only when ``max_consecutive_failures`` files in a row fail.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch.utils.data import Dataset

from audioldm.audio.io import AudioReadError, audio_info
from audioldm.audio.mel import MelConfig, MelFrontEnd
from data.captions import pick_caption
from data.manifest import ManifestEntry, ManifestError
from data.mel_cache import MelCache
from data.segment import read_segment

log = logging.getLogger(__name__)


@dataclass
class ClipOptions:
    """How a manifest entry becomes a training item."""

    segment_seconds: float = 10.24
    random_crop: bool = True  # False: deterministic crop from the start (validation)
    return_waveform: bool = True
    return_mel: bool = True
    cache_dir: str | None = None
    max_consecutive_failures: int = 50


class AudioClipDataset(Dataset):
    """Items are dicts::

    waveform  [N]         float32, 16 kHz, zero mean, peak 0.5, N = segment samples
    log_mel   [1, T, F]   float32, T = N / hop
    caption   str         a random caption when cropping randomly, else the first ("" if none)
    captions  list[str]
    labels    list[str]
    id        str
    skipped   int         1 when this index's own file was unreadable and another stood in
    """

    def __init__(
        self, entries: Sequence[ManifestEntry], mel: MelConfig | None = None, options: ClipOptions | None = None
    ):
        if len(entries) == 0:
            raise ValueError("AudioClipDataset: no entries (is the manifest or split empty?)")
        self.entries = list(entries)
        self.mel_config = mel or MelConfig()
        self.options = options or ClipOptions()
        self.segment_samples = self.mel_config.samples_for_seconds(self.options.segment_seconds)
        self.front_end = MelFrontEnd(self.mel_config)
        self.cache = (
            MelCache(self.options.cache_dir, self.mel_config, self.segment_samples) if self.options.cache_dir else None
        )
        self._bad: set[int] = set()  # per process: with workers, each may warn once per file

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Any]:
        """``index``, or ``(index, crop_seed)`` from ``ResumableSampler`` (a seeded random crop)."""
        index, crop_seed = index if isinstance(index, tuple) else (index, None)
        skipped = 0
        n = len(self.entries)
        for offset in range(min(n, self.options.max_consecutive_failures)):
            i = (index + offset) % n
            if i in self._bad:
                skipped = skipped or int(offset == 0)
                continue
            try:
                item = self._load(i, crop_seed)
            except AudioReadError as e:
                self._bad.add(i)
                log.warning("skipping unreadable clip %s", e)
                skipped = skipped or int(offset == 0)
                continue
            item["skipped"] = skipped
            return item
        raise ManifestError(
            f"{self.options.max_consecutive_failures} clips in a row could not be read "
            f"(from index {index}, e.g. {self.entries[index].path}); check the manifest's audio paths"
        )

    def _rng(self, crop_seed: int | None) -> random.Random | None:
        """None = fixed crop. Random crops use the sampler's seed, else torch's (per-worker) RNG."""
        if not self.options.random_crop:
            return None
        return random.Random(crop_seed if crop_seed is not None else int(torch.randint(0, 2**62, (1,))))

    def _load(self, i: int, crop_seed: int | None = None) -> dict[str, Any]:
        entry = self.entries[i]
        info = audio_info(entry.path)
        rng = self._rng(crop_seed)
        window = self.segment_samples * info.sample_rate / self.mel_config.sample_rate
        deterministic = rng is None or info.frames <= window
        key = self.cache.key(entry.path) if self.cache and deterministic else None
        tensors = self.cache.load(key) if key else None
        if tensors is None:
            wave, _ = read_segment(entry.path, info, self.mel_config.sample_rate, self.segment_samples, rng)
            with torch.no_grad():
                tensors = {"waveform": wave, "log_mel": self.front_end(wave)[0]}
            if key:
                self.cache.save(key, tensors)
        item: dict[str, Any] = {
            "id": entry.id,
            "captions": list(entry.captions),
            "caption": pick_caption(entry.captions, rng)[1],
            "labels": list(entry.labels),
        }
        if self.options.return_waveform:
            item["waveform"] = tensors["waveform"]
        if self.options.return_mel:
            item["log_mel"] = tensors["log_mel"]
        return item


def collate_clips(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors, keep strings as lists, sum ``skipped`` into a 0-d tensor.

    Returns {"waveform": [B, N], "log_mel": [B, 1, T, F] (each tensor field stacked), "caption": list[str],
    "captions": list[list[str]], "labels": list[list[str]], "id": list[str], "skipped": []}.
    """
    batch: dict[str, Any] = {}
    for key, value in items[0].items():  # waveform, log_mel (or pre-encoded posterior, clap_audio)
        if isinstance(value, torch.Tensor):
            batch[key] = torch.stack([item[key] for item in items])
    for key in ("caption", "captions", "labels", "id"):
        batch[key] = [item[key] for item in items]
    batch["skipped"] = torch.tensor(sum(item["skipped"] for item in items))
    return batch
