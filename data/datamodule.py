"""One LightningDataModule per stage, all over the same ``AudioClipDataset``.

Splits: a separate validation manifest if given; else the manifest's ``split`` field
(``train`` / ``val``; ``test`` clips never train); else a deterministic hash of each id puts
``val_fraction`` of the clips in validation, the same on every run and every rank.
DDP: each loader's ``ResumableSampler`` takes this rank's share (seeded, re-shuffled each epoch,
disjoint across ranks; validation is split without padding, so no clip is scored twice), so the
Trainer runs with ``use_distributed_sampler=False``. A run restored mid-epoch continues with the
next batch the interrupted run would have trained on. With ``data.shards`` training streams webdataset
shards instead (``ShardDataset``: split by rank and worker, equal steps per rank).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from audioldm.audio.mel import MelConfig
from audioldm.config.schema import DataConfig
from data.dataset import AudioClipDataset, ClipOptions, collate_clips
from data.latent_cache import LatentCache, LatentCacheError, LatentClipDataset
from data.manifest import ManifestEntry, ManifestError, read_manifest
from data.resumable_sampler import ResumableSampler
from data.shard_dataset import ShardDataset, ShardError, ShardIndex

log = logging.getLogger(__name__)


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` (for deterministic splits across runs and ranks)."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 2**32


def split_entries(
    train: list[ManifestEntry], val: list[ManifestEntry] | None, val_fraction: float
) -> tuple[list[ManifestEntry], list[ManifestEntry]]:
    """Return (train, val) entries following the rules in the module docstring."""
    if val is not None:
        return [e for e in train if e.split not in ("val", "test")], val
    if any(e.split == "val" for e in train):
        return [e for e in train if e.split in ("train", None)], [e for e in train if e.split == "val"]
    pool = [e for e in train if e.split != "test"]
    val_part = [e for e in pool if stable_fraction(e.id) < val_fraction]
    return [e for e in pool if stable_fraction(e.id) >= val_fraction], val_part


class AudioDataModule(pl.LightningDataModule):
    """Base DataModule; subclasses say which fields their stage needs."""

    needs_waveform = True
    needs_mel = True
    needs_captions = False
    accepts_latent_shards = False  # only the ldm trains on pre-encoded latents

    def __init__(self, data: DataConfig, mel: MelConfig | None = None, seed: int = 0):
        super().__init__()
        self.data = data
        self.mel = mel or MelConfig()
        self.seed = seed
        self._resume_batches = 0  # set by resume_after
        self.train_set: AudioClipDataset | None = None
        self.val_set: AudioClipDataset | None = None
        self.shards: ShardIndex | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None or self.shards is not None:
            return
        d = self.data
        val = read_manifest(d.val_manifest) if d.val_manifest else None
        if d.shards:  # training streams the shards; validation reads data.val_manifest when given
            train, val = [], val or []
        else:
            train, val = split_entries(read_manifest(d.train_manifest), val, d.val_fraction)
        if not train and not val and not d.shards:
            raise ManifestError(f"{d.train_manifest}: the manifest is empty (no clips to train on)")
        if self.needs_captions or d.require_captions:
            had, had_val = len(train), len(val)
            # a blank caption captions nothing
            train, val = ([e for e in part if any(c.strip() for c in e.captions)] for part in (train, val))
            left_out = had + had_val - len(train) - len(val)
            if left_out:
                log.warning(
                    "%d of %d clips have no caption and are left out (this stage needs captions)",
                    left_out,
                    had + had_val,
                )
            if had and not train and not d.shards:
                raise ManifestError(
                    f"{d.train_manifest}: none of its {had} training clips has a caption (this stage needs captions)"
                )
        if not train and not d.shards:
            raise ManifestError(f"{d.train_manifest}: no training clips after the split")
        self.train_set = self._dataset(train, d.segment_seconds, d.random_crop) if train else None
        self.val_set = self._dataset(val, d.val_segment_seconds or d.segment_seconds, False) if val else None
        if d.shards:
            self._open_shards()

    def _open_shards(self) -> None:
        self.shards = ShardIndex(self.data.shards)
        if self.shards.kind == "latents" and not self.accepts_latent_shards:
            raise ShardError(f"{self.data.shards}: holds pre-encoded latents; this stage trains on audio shards")

    def _loader_options(self) -> dict:
        """DataLoader arguments every loader shares: workers (kept between epochs), collation, pinning, and a generator
        of its own: starting an epoch's pass then draws its workers' seed from it, not from the global random state
        (a draw there would fall between a checkpoint written at an epoch's end and the next batch in an
        uninterrupted run, but before the restored random states in a resumed one, so resume would not be exact)."""
        workers = self.data.num_workers
        return {
            "generator": torch.Generator().manual_seed(self.seed),
            "num_workers": workers,
            "collate_fn": collate_clips,
            "persistent_workers": workers > 0,
            "pin_memory": self.data.pin_memory and torch.cuda.is_available(),
        }

    def _shard_loader(self) -> DataLoader:
        trainer, d = self.trainer, self.data
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        dataset = ShardDataset(
            self.shards,
            self.mel,
            self.mel.samples_for_seconds(d.segment_seconds),
            rank=rank,
            world=world,
            seed=self.seed,
            epoch=trainer.current_epoch if trainer else 0,
            shuffle_buffer=d.shuffle_buffer,
            random_crop=d.random_crop,
            return_waveform=self.needs_waveform,
            return_mel=self.needs_mel,
            batch_size=d.batch_size,
        )
        return DataLoader(dataset, batch_size=d.batch_size, **self._loader_options())

    def _dataset(self, entries: list[ManifestEntry], seconds: float, random_crop: bool) -> AudioClipDataset:
        options = ClipOptions(
            segment_seconds=seconds,
            random_crop=random_crop,
            return_waveform=self.needs_waveform,
            return_mel=self.needs_mel,
            cache_dir=self.data.mel_cache_dir,
        )
        return AudioClipDataset(entries, self.mel, options)

    def _loader(self, dataset: AudioClipDataset, batch_size: int, train: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self._sampler(dataset, batch_size, train),
            drop_last=train and len(dataset) >= batch_size,
            **self._loader_options(),
        )

    def resume_after(self, batches: int) -> None:
        """The next training pass starts after its first ``batches`` batches (a run restored mid-epoch: the
        ``ResumeState`` callback says how many the checkpoint had trained on)."""
        self._resume_batches = batches

    def _sampler(self, dataset: AudioClipDataset, batch_size: int, train: bool) -> ResumableSampler:
        """This rank's share of the data. For training, seeded by (seed, epoch); after a restore
        mid-epoch, the first pass skips the batches the checkpoint had already trained on."""
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        sampler = ResumableSampler(dataset, num_replicas=world, rank=rank, shuffle=train, seed=self.seed, pad=train)
        if train and trainer is not None:
            sampler.set_epoch(trainer.current_epoch)
            done, self._resume_batches = self._resume_batches, 0
            if 0 < done < len(sampler) // batch_size:
                sampler.skip_next(done * batch_size)
        return sampler

    def train_dataloader(self) -> DataLoader:
        if self.shards is not None:
            return self._shard_loader()
        return self._loader(self.train_set, self.data.batch_size, train=True)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        return self._loader(self.val_set, self.data.val_batch_size or self.data.batch_size, train=False)


class ClapDataModule(AudioDataModule):
    """Waveform + captions (the CLAP wrapper resamples to 48 kHz itself)."""

    needs_mel = False
    needs_captions = True


class VaeDataModule(AudioDataModule):
    """Log-mel only."""

    needs_waveform = False


class VocoderDataModule(AudioDataModule):
    """Waveform + log-mel of the same (usually short, random) segment."""


class LdmDataModule(AudioDataModule):
    """Log-mel (to the VAE) + waveform (to CLAP's audio encoder, the training condition); or, with
    ``data.latent_cache_dir``, the pre-encoded posterior and CLAP embedding of each clip."""

    cache: LatentCache | ShardIndex | None = None

    accepts_latent_shards = True

    def _open_shards(self) -> None:
        """Latent shards carry the cache's meta: the mel settings and segment length must be this run's;
        ``LdmModule.on_fit_start`` checks the VAE/CLAP fingerprints through ``self.cache``."""
        super()._open_shards()
        if self.shards.kind == "latents":
            self.shards.check_meta(
                {"segment_samples": self.mel.samples_for_seconds(self.data.segment_seconds), "mel": asdict(self.mel)}
            )
            self.cache = self.shards

    def _dataset(self, entries: list[ManifestEntry], seconds: float, random_crop: bool):
        if not self.data.latent_cache_dir:
            return super()._dataset(entries, seconds, random_crop)
        self.cache = LatentCache(self.data.latent_cache_dir)
        self.cache.check_meta({"segment_samples": self.mel.samples_for_seconds(seconds), "mel": asdict(self.mel)})
        cached = [e for e in entries if self.cache.has(self.cache.key(e.id))]
        if not cached:
            raise LatentCacheError(
                f"{self.cache.root}: none of {len(entries)} clips is pre-encoded; run "
                f"python -m data.preencode --config <this config>"
            )
        if len(cached) < len(entries):
            log.warning(
                "%d of %d clips have no pre-encoded latents in %s (unreadable when encoded, or added "
                "since); they are left out",
                len(entries) - len(cached),
                len(entries),
                self.cache.root,
            )
        return LatentClipDataset(cached, self.cache, random_segment=random_crop)
