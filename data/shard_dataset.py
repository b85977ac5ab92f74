"""Stream webdataset tar shards (written by ``python -m data.shard_writer``) as training items.

Items are those of ``AudioClipDataset`` (audio shards: waveform, log_mel, captions, ...) or of
``LatentClipDataset`` (latent shards: posterior, clap_audio, captions, ...).

Splitting, so that no sample is read twice in a pass and every rank takes the same number of steps:
- Each pass (epoch) shuffles the shard list with (seed, epoch), identically on every rank and worker.
- With at least ranks x workers shards, slot ``rank * workers + worker`` reads every
  (ranks x workers)-th shard; with fewer, every slot reads all shards and keeps every
  (ranks x workers)-th sample.
- A rank yields exactly ``samples // ranks`` items per epoch, rounded down to whole batches (its workers
  share them batch by batch, so every rank takes the same number of steps). A slot whose
  shards hold fewer samples than its quota starts another pass over them, so a few samples may repeat
  and a few be left out of an epoch, as in webdataset's ``with_epoch``.
- Within a slot a shuffle buffer mixes samples across shards. Crops and segment choices are seeded by
  (seed, epoch, sample key). A resumed run starts the restored epoch from its beginning.
Undecodable samples are skipped; the next item carries ``skipped = 1`` so the epoch's count is logged.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import random
from pathlib import Path
from typing import Any, Iterator

import soundfile as sf
import torch
from torch.utils.data import IterableDataset, get_worker_info

from audioldm.audio.mel import MelConfig, MelFrontEnd
from data.captions import caption_text_embedding, caption_text_tokens, pick_caption
from data.segment import crop_waveform

log = logging.getLogger(__name__)


class ShardError(ValueError):
    """A shard folder that cannot be used; the message names it."""


class ShardIndex:
    """``shards.json`` of a shard folder."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        path = self.folder / "shards.json"
        if not path.is_file():
            raise ShardError(f"{folder}: no shards.json (write shards with python -m data.shard_writer)")
        self.index = json.loads(path.read_text(encoding="utf-8"))
        self.kind: str = self.index["kind"]
        self.shards: list[str] = [str(self.folder / s["name"]) for s in self.index["shards"]]
        self.counts: list[int] = [s["samples"] for s in self.index["shards"]]
        self.samples: int = self.index["samples"]
        if not self.shards:
            raise ShardError(f"{folder}: shards.json lists no shards")

    @property
    def where(self) -> str:
        return str(self.folder)

    @property
    def has_text_embeddings(self) -> bool:
        """Latent shards written from a cache that holds every caption's CLAP text embedding."""
        return bool((self.index.get("latent_meta") or {}).get("text_embeddings"))

    def read_meta(self) -> dict[str, Any]:
        """The latent cache's meta the shards were written from (empty for audio shards)."""
        return dict(self.index.get("latent_meta") or {})

    def check_meta(self, expected: dict[str, Any]) -> None:
        """Latent shards must come from this run's VAE/CLAP and settings (the keys of ``expected``)."""
        meta = self.index.get("latent_meta") or {}
        diffs = [f"{k}: shards {meta.get(k)!r} vs run {v!r}" for k, v in expected.items() if meta.get(k) != v]
        if diffs:
            raise ShardError(f"{self.folder}: latents were made with other settings ({'; '.join(diffs)})")


class ShardDataset(IterableDataset):
    """Training items streamed from ``index``'s shards for one DDP ``rank`` of ``world``."""

    def __init__(
        self,
        index: ShardIndex,
        mel: MelConfig,
        segment_samples: int,
        rank: int = 0,
        world: int = 1,
        seed: int = 0,
        epoch: int = 0,
        shuffle_buffer: int = 1000,
        random_crop: bool = True,
        return_waveform: bool = True,
        return_mel: bool = True,
        batch_size: int = 1,
    ):
        super().__init__()
        if index.samples < world * batch_size:
            raise ShardError(
                f"{index.folder}: {index.samples} samples cannot fill a batch of {batch_size} on each of {world} ranks"
            )
        self.index, self.mel, self.segment_samples = index, mel, segment_samples
        self.rank, self.world, self.seed, self.epoch = rank, world, seed, epoch
        self.shuffle_buffer, self.random_crop = shuffle_buffer, random_crop
        self.return_waveform, self.return_mel, self.batch_size = return_waveform, return_mel, batch_size
        self.front_end = MelFrontEnd(mel)

    def __len__(self) -> int:
        """Items this rank yields per epoch: whole batches only, so the DataLoader's length is exact."""
        return self.index.samples // self.world // self.batch_size * self.batch_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        epoch = self.epoch
        self.epoch += 1  # each worker's copy counts its own passes: all agree on the epoch
        batches = len(self) // self.batch_size  # whole batches per worker: every worker's last batch is full
        quota = (batches // workers + (1 if worker < batches % workers else 0)) * self.batch_size
        slot, slots = self.rank * workers + worker, self.world * workers
        rng = random.Random(self.seed * 1_000_003 + epoch)
        size = max(1, min(self.shuffle_buffer, quota))
        yielded, skipped, buffer = 0, 0, []
        for raw in self._samples(slot, slots, epoch):
            if raw is not None:
                buffer.append(raw)
            # a full buffer gives one sample; at the end of a pass (None) it empties, so a pass is read whole
            while buffer and yielded < quota and (len(buffer) >= size or raw is None):
                item = self._decode(buffer.pop(rng.randrange(len(buffer))), epoch)
                if item is None:
                    skipped += 1
                    continue
                item["skipped"], skipped = int(skipped > 0), 0
                yielded += 1
                yield item
            if yielded >= quota:
                return

    def _samples(self, slot: int, slots: int, epoch: int) -> Iterator[dict[str, Any]]:
        """This slot's raw samples, pass after pass (endless); None marks the end of each pass."""
        import webdataset as wds

        shards, by_sample = list(self.index.shards), len(self.index.shards) < slots
        order = random.Random(self.seed * 1_000_003 + epoch).sample(shards, len(shards))
        assigned = order if by_sample else order[slot::slots]  # fixed for the epoch: slots stay disjoint
        for repeat in itertools.count():
            mine = assigned
            if repeat and not by_sample:  # another pass over the same shards, in another order
                mine = random.Random(f"{self.seed}/{epoch}/{repeat}").sample(assigned, len(assigned))
            pipeline = wds.WebDataset(
                mine, shardshuffle=False, nodesplitter=lambda s: s, workersplitter=lambda s: s, empty_check=False
            )
            found = 0
            for j, sample in enumerate(pipeline):
                if by_sample and j % slots != slot:
                    continue
                found += 1
                yield sample
            if not found:
                raise ShardError(f"{self.index.folder}: no samples for slot {slot} of {slots}")
            yield None

    def _decode(self, sample: dict[str, Any], epoch: int) -> dict[str, Any] | None:
        """A raw webdataset sample -> a training item; None when it cannot be decoded."""
        key = sample.get("__key__", "")
        try:
            meta = json.loads(sample["json"])
            rng = random.Random(f"{self.seed}/{epoch}/{key}") if self.random_crop else None
            item = self._latent_item(sample, rng) if self.index.kind == "latents" else self._audio_item(sample, rng)
        except Exception as e:  # a corrupt member: skip it, as the map-style datasets skip unreadable files
            log.warning(
                "skipping undecodable sample %s in %s (%s: %s)", key, sample.get("__url__"), type(e).__name__, e
            )
            return None
        captions = list(meta.get("captions") or [])
        j, caption = pick_caption(captions, rng)
        clap_text = item.pop("clap_text_all", None)
        if clap_text is not None:
            item.update(caption_text_embedding(clap_text, j))
        tokens = item.pop("text_tokens_all", None)
        if tokens is not None:
            item.update(caption_text_tokens(*tokens, j))
        item.update(
            {"id": meta["id"], "captions": captions, "labels": list(meta.get("labels") or []), "caption": caption}
        )
        return item

    def _audio_item(self, sample: dict[str, Any], rng: random.Random | None) -> dict[str, Any]:
        data, rate = sf.read(io.BytesIO(sample["flac"]), dtype="float32", always_2d=True)
        wave = torch.from_numpy(data.mean(axis=1))
        if rate != self.mel.sample_rate:
            import torchaudio.functional as AF

            wave = AF.resample(wave, rate, self.mel.sample_rate)
        wave = crop_waveform(wave, self.segment_samples, rng)
        item: dict[str, Any] = {}
        if self.return_waveform:
            item["waveform"] = wave
        if self.return_mel:
            with torch.no_grad():
                item["log_mel"] = self.front_end(wave)[0]
        return item

    def _latent_item(self, sample: dict[str, Any], rng: random.Random | None) -> dict[str, Any]:
        tensors = torch.load(io.BytesIO(sample["pth"]), map_location="cpu", weights_only=True)
        k = rng.randrange(tensors["posterior"].shape[0]) if rng else 0
        item = {"posterior": tensors["posterior"][k].float()}
        if "clap_audio" in tensors:
            item["clap_audio"] = tensors["clap_audio"][k].float()
        if "clap_text" in tensors:  # every caption's; _decode keeps the picked one's
            item["clap_text_all"] = tensors["clap_text"]
        if "text_tokens" in tensors:  # the same, for a cross-attention LDM
            item["text_tokens_all"] = (tensors["text_tokens"], int(tensors["text_length"]))
        return item
