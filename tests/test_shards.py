"""Webdataset shards: the writer (audio or pre-encoded latents, unreadable clips skipped and counted),
the streaming dataset (same items as the map-style datasets, each sample once per pass, split by rank
and worker with equal steps per rank), training from shards, and a 2-process gloo DDP run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

import train
from audioldm.audio.mel import MelConfig
from data.dataset import AudioClipDataset, ClipOptions, collate_clips
from data.latent_cache import LatentCache
from data.manifest import read_manifest
from data.shard_dataset import ShardDataset, ShardError, ShardIndex
from data.shard_writer import main as shard_main
from data.shard_writer import write_shards
from tests.conftest import write_manifest_lines, write_tone
from tests.ldm_fixtures import REPO, TINY_OVERRIDES

MEL = MelConfig()
SEGMENT = MEL.samples_for_seconds(0.64)


def clips(folder: Path, n: int, bad: bool = True) -> Path:
    rows = []
    for i in range(n):
        write_tone(folder / f"c{i}.wav", 0.5 + 0.02 * i, (16000, 22050)[i % 2], freq=200 + 40 * i, seed=i)
        rows.append({"id": f"c{i}", "path": f"c{i}.wav", "captions": [f"tone {i}", f"beep {i}"]})
    if bad:
        (folder / "bad.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
        rows.append({"id": "bad", "path": "bad.wav", "captions": ["broken"]})
    return write_manifest_lines(folder / "manifest.jsonl", rows)


@pytest.fixture(scope="module")
def audio_shards(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("shards")
    manifest = clips(folder / "audio", 10)
    out = folder / "shards"
    counts = write_shards(str(manifest), str(out), max_count=3, progress=False)
    assert counts == {"written": 10, "unreadable": 1, "shards": 4}
    return manifest, out


def ids_of(dataset, workers: int = 0) -> list[str]:
    loader = DataLoader(dataset, batch_size=2, num_workers=workers, collate_fn=collate_clips)
    return [i for batch in loader for i in batch["id"]]


def test_index_and_items_match_the_map_style_dataset(audio_shards):
    manifest, out = audio_shards
    index = ShardIndex(out)
    assert index.kind == "audio" and index.samples == 10 and index.counts == [3, 3, 3, 1]
    items = {it["id"]: it for it in ShardDataset(index, MEL, SEGMENT, random_crop=False, shuffle_buffer=4)}
    assert sorted(items) == sorted(f"c{i}" for i in range(10))  # every clip once per pass
    reference = AudioClipDataset(
        [e for e in read_manifest(str(manifest)) if e.id != "bad"],
        MEL,
        ClipOptions(segment_seconds=0.64, random_crop=False),
    )
    for ref in (reference[i] for i in range(len(reference))):
        item = items[ref["id"]]
        assert item["captions"] == ref["captions"] and item["caption"] == ref["caption"]
        # 16-bit FLAC; the writer resamples whole clips, the map-style reader its window: the last samples differ
        assert (item["waveform"] - ref["waveform"])[:-256].abs().max() < 2e-3
        assert item["log_mel"].shape == ref["log_mel"].shape


@pytest.mark.parametrize("world, workers", [(2, 2), (3, 1), (2, 3)])
def test_ranks_and_workers_split_each_pass(audio_shards, world, workers):
    _, out = audio_shards
    index = ShardIndex(out)
    seen = [
        ids_of(ShardDataset(index, MEL, SEGMENT, rank=r, world=world, shuffle_buffer=2), workers) for r in range(world)
    ]
    assert all(len(s) == 10 // world for s in seen)  # the same number of steps on every rank
    assert not set(seen[0]) & set(seen[1])  # whole shards per slot, or (more slots than shards) every n-th sample
    epoch0 = ids_of(ShardDataset(index, MEL, SEGMENT, shuffle_buffer=4, epoch=0))
    epoch1 = ids_of(ShardDataset(index, MEL, SEGMENT, shuffle_buffer=4, epoch=1))
    assert sorted(epoch0) == sorted(epoch1) and epoch0 != epoch1  # reshuffled each epoch


def test_latent_shards_carry_the_cache(tmp_path):
    manifest = clips(tmp_path / "audio", 4, bad=False)
    cache = LatentCache(tmp_path / "cache")
    stored = {}
    for i, entry in enumerate(read_manifest(str(manifest))[:3]):  # the 4th was never encoded
        stored[entry.id] = {"posterior": torch.randn(2, 16, 4, 16), "clap_audio": torch.randn(2, 8)}
        cache.save(cache.key(entry.id), stored[entry.id])
    cache.write_meta({"segment_samples": SEGMENT, "vae_fingerprint": "v1"})
    out = tmp_path / "latent_shards"
    assert write_shards(str(manifest), str(out), latents=str(tmp_path / "cache"), progress=False)["unreadable"] == 1
    index = ShardIndex(out)
    assert index.kind == "latents"
    index.check_meta({"vae_fingerprint": "v1"})
    with pytest.raises(ShardError, match="vae_fingerprint"):
        index.check_meta({"vae_fingerprint": "other"})
    for item in ShardDataset(index, MEL, SEGMENT, random_crop=False, shuffle_buffer=1):
        assert torch.equal(item["posterior"], stored[item["id"]]["posterior"][0])
        assert torch.equal(item["clap_audio"], stored[item["id"]]["clap_audio"][0])


def test_writer_errors_are_one_line(audio_shards, tmp_path, capsys):
    manifest, out = audio_shards
    assert shard_main(["--manifest", str(manifest), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (
        shard_main(["--manifest", str(manifest), "--out", str(tmp_path / "x"), "--latents", str(tmp_path / "nocache")])
        == 2
    )
    assert "meta.json missing" in capsys.readouterr().err
    with pytest.raises(ShardError, match="no shards.json"):
        ShardIndex(tmp_path)


def test_a_corrupt_sample_is_skipped_and_counted(audio_shards, tmp_path):
    import io
    import shutil
    import tarfile

    _, out = audio_shards
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    first = broken / "shard-000000.tar"
    with tarfile.open(first) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(first, "w") as tar:
        for member, data in members:
            if member.name.endswith(".flac") and member.name.startswith("000000001"):
                data = b"not flac" * 10
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    items = list(ShardDataset(ShardIndex(broken), MEL, SEGMENT, shuffle_buffer=1, random_crop=False))
    assert len(items) == 10 and sum(it["skipped"] for it in items) == 1  # quota kept, the skip counted


@pytest.mark.slow
def test_train_vae_from_shards(audio_shards, tmp_path):
    manifest, out = audio_shards
    args = [
        "--config",
        str(REPO / "configs" / "demo" / "vae.yaml"),
        *TINY_OVERRIDES["vae"],
        f"data.shards={out}",
        f"data.val_manifest={manifest}",
        f"output_dir={tmp_path}",
        "data.num_workers=0",
        "data.batch_size=4",
        "data.segment_seconds=0.64",
        "trainer.max_steps=3",
        "trainer.enable_progress_bar=false",
        "trainer.limit_val_batches=1",
        "data.shuffle_buffer=4",
    ]
    assert train.main(args) == 0  # data.train_manifest may stay unset with data.shards
    assert (tmp_path / "demo_vae" / "version_0" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_two_processes_stream_shards_without_duplicates(tmp_path):
    manifest = clips(tmp_path / "audio", 21, bad=False)
    out = tmp_path / "shards"
    write_shards(str(manifest), str(out), max_count=4, progress=False)  # 6 shards >= 2 ranks x 2 workers
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    probe = Path(__file__).with_name("ddp_sampling_probe.py")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(probe),
        str(manifest),
        str(tmp_path),
        str(out),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for epoch in range(2):  # 21 samples, 2 ranks, batch 2: 5 steps, 10 samples per rank per epoch, disjoint
        parts = [s["train"][epoch * 10 : (epoch + 1) * 10] for s in seen]
        assert len(parts[0]) == len(parts[1]) == 10 and not set(parts[0]) & set(parts[1])
    val = seen[0]["val"] + seen[1]["val"]  # 21 validation clips, each scored once per validation (2 epochs)
    assert len(val) == 42 and all(val.count(i) == 2 for i in set(val)) and len(set(val)) == 21


@pytest.mark.slow
def test_ldm_trains_from_latent_shards_and_checks_their_encoders(tmp_path, capsys):
    """Pre-encode, shard the latents, train the LDM from the shards; shards from another VAE are refused."""
    from data import preencode
    from tests.ldm_fixtures import ldm_overrides, stage_checkpoints, write_stage_checkpoint

    ckpts = stage_checkpoints(tmp_path / "stages")
    manifest = clips(tmp_path / "audio", 6)
    demo = str(REPO / "configs" / "demo" / "ldm.yaml")
    base = ldm_overrides(
        ckpts,
        manifest,
        tmp_path / "runs",
        "data.segment_seconds=0.64",
        "data.batch_size=2",
        "trainer.max_steps=2",
        "trainer.num_sanity_val_steps=0",
        "trainer.limit_val_batches=1",
    )
    assert preencode.main(["--config", demo, *base, f"data.latent_cache_dir={tmp_path / 'cache'}"]) == 0
    shards = tmp_path / "latent_shards"
    assert shard_main(["--manifest", str(manifest), "--out", str(shards), "--latents", str(tmp_path / "cache")]) == 0
    capsys.readouterr()
    streamed = [
        *base,
        f"data.shards={shards}",
        f"data.val_manifest={manifest}",
        "data.shuffle_buffer=2",
        "data.latent_cache_dir=null",
    ]  # validation reads audio
    assert train.main(["--config", demo, *streamed]) == 0
    other_vae = write_stage_checkpoint("vae", tmp_path / "other_vae.ckpt", seed=5)
    assert train.main(["--config", demo, *streamed, f"model.vae_ckpt={other_vae}"]) == 2
    assert "latents were made with other settings (vae_fingerprint" in capsys.readouterr().err
