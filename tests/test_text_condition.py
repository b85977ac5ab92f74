"""``model.text_condition_prob``: per sample, the CLAP text embedding of one of the clip's captions
instead of its audio embedding, on raw audio, pre-encoded latents and latent shards."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

import train
from audioldm.config import ConfigError, load_config
from data import preencode
from data.dataset import AudioClipDataset, ClipOptions, collate_clips
from data.latent_cache import LatentCache, LatentClipDataset
from data.manifest import read_manifest
from data.shard_dataset import ShardDataset, ShardIndex
from data.shard_writer import write_shards
from lightning_modules.ldm import LdmModule
from tests.conftest import write_manifest_lines, write_tone
from tests.ldm_fixtures import REPO, ldm_overrides, stage_checkpoints

DEMO = str(REPO / "configs" / "demo" / "ldm.yaml")


@pytest.fixture(scope="module")
def tiny_ckpts(tmp_path_factory) -> dict[str, Path]:
    return stage_checkpoints(tmp_path_factory.mktemp("stages"))


@pytest.fixture(scope="module")
def captioned(tmp_path_factory) -> Path:
    """8 clips no longer than the 0.64 s segment with 0-3 captions each (clip 3 has none)."""
    root = tmp_path_factory.mktemp("captioned")
    rows = []
    for i in range(8):
        write_tone(root / "audio" / f"c{i}.wav", 0.5 + 0.01 * i, freq=200 + 70 * i, seed=i)
        captions = [] if i == 3 else [f"tone {i} version {k}" for k in range(1 + i % 3)]
        rows.append({"id": f"c{i}", "path": f"audio/c{i}.wav", "captions": captions, "split": "train"})
    return write_manifest_lines(root / "manifest.jsonl", rows)


def args_for(ckpts, manifest, out, *extra):
    return ldm_overrides(
        ckpts, manifest, out, "data.segment_seconds=0.64", "data.batch_size=4", "data.latent_cache_dir=null", *extra
    )


@pytest.fixture(scope="module")
def cache_dir(tiny_ckpts, captioned, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cache") / "latents"
    args = args_for(tiny_ckpts, captioned, folder.parent, f"data.latent_cache_dir={folder}")
    assert preencode.main(["--config", DEMO, *args]) == 0
    return folder


def module_with(ckpts, manifest, p: float) -> LdmModule:
    return LdmModule(load_config(DEMO, args_for(ckpts, manifest, "runs", f"model.text_condition_prob={p}")))


def batches(manifest: Path, cache_dir: Path, seed: int) -> tuple[dict, dict]:
    """The same 8 clips read as raw audio and as pre-encoded latents, captions drawn with the same seeds."""
    entries = read_manifest(manifest)
    raw = AudioClipDataset(entries, options=ClipOptions(0.64, random_crop=True))
    cached = LatentClipDataset(entries, LatentCache(cache_dir), random_segment=True)
    return (
        collate_clips([raw[(i, seed + i)] for i in range(len(entries))]),
        collate_clips([cached[(i, seed + i)] for i in range(len(entries))]),
    )


def test_the_cache_holds_every_captions_text_embedding(tiny_ckpts, captioned, cache_dir):
    module = module_with(tiny_ckpts, captioned, 0.0)
    cache = LatentCache(cache_dir)
    assert cache.has_text_embeddings
    for entry in read_manifest(captioned):
        stored = cache.load(cache.key(entry.id))["clap_text"]
        assert stored.shape == (len(entry.captions), 512)
        if entry.captions:
            torch.testing.assert_close(stored, module.model.embed_text(entry.captions), rtol=1e-5, atol=1e-6)


def test_probability_zero_gives_exactly_the_audio_conditions(tiny_ckpts, captioned, cache_dir):
    """p = 0: the audio embedding, and no extra random draw (the paper recipe's stream is unchanged)."""
    module = module_with(tiny_ckpts, captioned, 0.0)
    _, cached = batches(captioned, cache_dir, seed=0)
    torch.manual_seed(7)
    x0, condition = module.latents_and_conditions(cached)
    after = torch.rand(3)
    torch.manual_seed(7)
    expected = DiagonalGaussianDistribution(cached["posterior"]).sample() * module.model.scale_factor
    assert torch.equal(x0, expected) and torch.equal(condition, cached["clap_audio"])
    assert torch.equal(after, torch.rand(3))


def test_probability_one_uses_only_the_clips_own_captions(tiny_ckpts, captioned, cache_dir):
    module = module_with(tiny_ckpts, captioned, 1.0)
    entries = read_manifest(captioned)
    picked = set()
    for seed in range(0, 40, 8):
        raw, cached = batches(captioned, cache_dir, seed)
        for batch in (raw, cached):
            _, condition = module.latents_and_conditions(batch)
            for i, entry in enumerate(entries):
                if not entry.captions:  # no caption: audio
                    torch.testing.assert_close(condition[i], cached["clap_audio"][i], rtol=1e-4, atol=1e-5)
                    continue
                own = module.model.embed_text(entry.captions)
                distance = (own - condition[i]).abs().amax(dim=1)
                assert float(distance.min()) < 1e-5, (entry.id, distance)
                assert entry.captions[int(distance.argmin())] == batch["caption"][i]
                picked.add((entry.id, batch["caption"][i]))
    assert len(picked) > 10  # the captions really are drawn among the clip's own


def test_raw_and_preencoded_give_the_same_loss_with_mixing(tiny_ckpts, captioned, cache_dir):
    module = module_with(tiny_ckpts, captioned, 0.5)
    raw, cached = batches(captioned, cache_dir, seed=3)
    raw["caption"] = cached["caption"]  # the same batch (the two datasets spend their seeds differently)
    losses, conditions = [], []
    for batch in (raw, cached):
        torch.manual_seed(11)  # the same posterior sample, text/audio draws, dropout, timesteps and noise
        with torch.no_grad():
            x0, condition = module.latents_and_conditions(batch)
            losses.append(module.diffusion_loss(x0, condition))
        conditions.append(condition)
    torch.testing.assert_close(conditions[0], conditions[1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    mixed = [(c - a).abs().max() < 1e-5 for c, a in zip(conditions[1], cached["clap_audio"])]
    assert 0 < sum(mixed) < len(mixed)  # some audio, some text at p = 0.5


def test_latent_shards_carry_the_text_embeddings(tiny_ckpts, captioned, cache_dir, tmp_path):
    out = tmp_path / "shards"
    write_shards(str(captioned), str(out), latents=str(cache_dir), progress=False)
    index = ShardIndex(out)
    assert index.has_text_embeddings
    cache = LatentCache(cache_dir)
    for item in ShardDataset(index, module_with(tiny_ckpts, captioned, 0.0).mel_config, 10240, shuffle_buffer=1):
        entry = next(e for e in read_manifest(captioned) if e.id == item["id"])
        stored = cache.load(cache.key(entry.id))["clap_text"]
        if entry.captions:
            assert bool(item["has_text"])
            assert torch.equal(item["clap_text"], stored[entry.captions.index(item["caption"])])
        else:
            assert not bool(item["has_text"]) and item["caption"] == ""


@pytest.mark.slow
def test_an_old_cache_without_text_embeddings_is_refused_by_name(tiny_ckpts, captioned, cache_dir, tmp_path, capsys):
    old = tmp_path / "old_latents"
    cache, copy = LatentCache(cache_dir), LatentCache(old)
    meta = cache.read_meta()
    del meta["text_embeddings"]
    copy.write_meta(meta)
    for entry in read_manifest(captioned):
        tensors = cache.load(cache.key(entry.id))
        del tensors["clap_text"]
        copy.save(copy.key(entry.id), tensors)
    args = args_for(
        tiny_ckpts,
        captioned,
        tmp_path / "runs",
        f"data.latent_cache_dir={old}",
        "trainer.max_steps=1",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
    )
    assert train.main(["--config", DEMO, *args, "model.text_condition_prob=0.5"]) == 2
    err = capsys.readouterr().err
    assert f"{old}: these pre-encoded latents have no CLAP text embeddings" in err and len(err.splitlines()) == 1
    assert train.main(["--config", DEMO, *args, "model.text_condition_prob=0"]) == 0  # audio-only still trains


@pytest.mark.parametrize("value", ["1.5", "-0.1"])
def test_the_probability_must_be_in_the_unit_interval(value):
    with pytest.raises(ConfigError, match=rf"model.text_condition_prob={value} is out of range"):
        load_config(
            DEMO,
            [
                "data.train_manifest=x.jsonl",
                "model.vae_ckpt=v",
                "model.clap_ckpt=c",
                f"model.text_condition_prob={value}",
            ],
        )
