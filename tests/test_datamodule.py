"""DataModules: deterministic splits and batches of the right shape for each stage."""

from __future__ import annotations

from audioldm.audio.mel import MelConfig
from audioldm.config.schema import DataConfig
from data.datamodule import ClapDataModule, VaeDataModule, VocoderDataModule, split_entries
from data.manifest import ManifestEntry, read_manifest


def entries(n: int, split=None) -> list[ManifestEntry]:
    return [ManifestEntry(id=f"clip{i}", path=f"{i}.wav", split=split) for i in range(n)]


def test_hash_split_is_deterministic_and_disjoint():
    train, val = split_entries(entries(1000), None, 0.1)
    again_train, again_val = split_entries(list(reversed(entries(1000))), None, 0.1)
    assert {e.id for e in val} == {e.id for e in again_val}
    assert not {e.id for e in train} & {e.id for e in val}
    assert 60 < len(val) < 140 and len(train) + len(val) == 1000


def test_split_field_wins_and_test_never_trains():
    rows = entries(4, "train") + [
        ManifestEntry(id="v", path="v", split="val"),
        ManifestEntry(id="t", path="t", split="test"),
    ]
    train, val = split_entries(rows, None, 0.5)
    assert [e.id for e in val] == ["v"] and "t" not in {e.id for e in train} and len(train) == 4
    train, val = split_entries(rows, [ManifestEntry(id="x", path="x")], 0.5)
    assert [e.id for e in val] == ["x"] and len(train) == 4


def test_stage_datamodules_batch_shapes(tone_dataset):
    config = DataConfig(train_manifest=str(tone_dataset), segment_seconds=1.28, batch_size=4, num_workers=0)
    vae = VaeDataModule(config, MelConfig())
    vae.setup("fit")
    assert len(vae.train_set) == 21 - 1 + 1 and len(vae.val_set) == 4  # 20 good + 1 bad train clip
    batch = next(iter(vae.train_dataloader()))
    assert "waveform" not in batch and batch["log_mel"].shape == (4, 1, 128, 64)
    clap = ClapDataModule(config, MelConfig())
    clap.setup("fit")
    batch = next(iter(clap.val_dataloader()))
    assert "log_mel" not in batch and batch["waveform"].shape == (4, 20480)
    assert batch["caption"] == [f"tone {i}" for i in (0, 6, 12, 18)]  # validation: first caption, fixed order
    vocoder = VocoderDataModule(config, MelConfig())
    vocoder.setup("fit")
    batch = next(iter(vocoder.train_dataloader()))
    assert batch["waveform"].shape == (4, 20480) and batch["log_mel"].shape == (4, 1, 128, 64)
    assert len(read_manifest(tone_dataset)) == 25
