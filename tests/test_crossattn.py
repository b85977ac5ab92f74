"""Cross-attention conditions (``model.condition: crossattn_t5 | crossattn_clap_tokens``) with a tiny random T5:
token shapes, the mask honoured, the null condition of "", condition dropout and guidance on whole token tensors,
pre-encoded and raw training giving the same loss, a cache for another encoder refused, exact resume, generation
(with a negative prompt and every mode), and distillation into an lcm student."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import evaluate
import generate
import train
from audioldm.config import ConfigError, load_config
from audioldm.diffusion.guidance import guided_noise
from audioldm.models.token_condition import pack, unpack
from audioldm.models.unet import UnetConfig, build_unet, network_output
from audioldm.pipeline.text_to_audio import TextToAudio
from audioldm.request.jobs import Jobs, default_sampling
from audioldm.request.limits import RequestError
from data import preencode, shard_writer
from data.dataset import AudioClipDataset, ClipOptions, collate_clips
from data.latent_cache import LatentCache, LatentClipDataset
from data.manifest import read_manifest
from data.shard_dataset import ShardDataset, ShardIndex
from lightning_modules.ldm import LdmModule
from lightning_modules.loading import load_stage
from tests.conftest import write_manifest_lines, write_tone
from tests.ldm_fixtures import REPO, ldm_overrides, stage_checkpoints
from tests.t5_fixtures import write_tiny_t5

DEMO = str(REPO / "configs" / "demo" / "ldm.yaml")
LCM = str(REPO / "configs" / "demo" / "lcm.yaml")
LENGTH = 16  # the tiny T5's caption length in tokens


@pytest.fixture(scope="module")
def tiny_ckpts(tmp_path_factory) -> dict[str, Path]:
    return stage_checkpoints(tmp_path_factory.mktemp("stages"))


@pytest.fixture(scope="module")
def t5_folder(tmp_path_factory) -> Path:
    return write_tiny_t5(tmp_path_factory.mktemp("t5") / "t5")


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    """10 short clips with captions of different lengths (every 4th in 'val'), one without a caption."""
    rows = []
    for i in range(10):
        write_tone(tmp_path / "audio" / f"c{i}.wav", 0.5 + 0.01 * i, 16000, freq=200 + 60 * i, seed=i)
        caption = ["a dog barks", "rain falls on a roof", "a man speaks loudly", "birds sing"][i % 4]
        rows.append(
            {"id": f"c{i}", "path": f"audio/c{i}.wav", "captions": [caption], "split": "val" if i % 4 == 0 else "train"}
        )
    write_tone(tmp_path / "audio" / "mute.wav", 0.5, 16000, freq=300, seed=99)
    rows.append({"id": "mute", "path": "audio/mute.wav", "captions": [], "split": "train"})
    return write_manifest_lines(tmp_path / "manifest.jsonl", rows)


def t5_overrides(ckpts, t5: Path, manifest="unused.jsonl", out="runs", *extra: str) -> list[str]:
    return ldm_overrides(
        ckpts,
        manifest,
        out,
        "model.condition=crossattn_t5",
        f"model.text_encoder_path={t5}",
        f"model.text_max_length={LENGTH}",
        "model.text_condition_prob=0",
        "model.unet.condition_init_std=null",
        "data.segment_seconds=0.64",
        "data.batch_size=4",
        "data.latent_cache_dir=null",
        "trainer.log_every_n_steps=1",
        *extra,
    )


def test_padding_and_masked_tokens_change_nothing():
    torch.manual_seed(0)
    unet = build_unet(
        UnetConfig(model_channels=16, channel_mult=[1, 2], layers_per_block=1, head_channels=8, context_dim=6)
    )
    for p in unet.parameters():  # zero-initialised output layers would hide the condition
        p.data.add_(0.05 * torch.randn_like(p))
    x, t = torch.randn(2, 8, 8, 8), torch.tensor([5, 600])
    states, mask = torch.randn(2, 5, 6), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    out = network_output(unet, x, t, pack(states, mask))
    longer = network_output(unet, x, t, pack(states, mask, 12))  # padded further
    garbage = states.clone()
    garbage[0, 3:] = 100.0  # what the mask hides
    hidden = network_output(unet, x, t, pack(garbage, mask))
    torch.testing.assert_close(longer, out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(hidden, out, rtol=1e-5, atol=1e-5)
    seen = states.clone()
    seen[0, 1] += 1.0  # a real token changes the output
    assert (network_output(unet, x, t, pack(seen, mask)) - out)[0].abs().max() > 1e-4
    assert unpack(pack(states, mask, 7))[1].tolist()[0] == [1, 1, 1, 0, 0, 0, 0]


def test_t5_condition_null_dropout_and_guidance(tiny_ckpts, t5_folder):
    module = LdmModule(load_config(DEMO, t5_overrides(tiny_ckpts, t5_folder)))
    model = module.model
    assert model.condition == "crossattn_t5" and model.clap is not None
    assert model.unet.config.cross_attention_dim[-1] == [None, 32]  # the T5's width, set by the assembly
    tokens = model.text_condition(["a dog barks", "", "rain falls on a roof"])
    assert tokens.shape == (3, LENGTH, 33)
    assert unpack(tokens)[1].sum(1).tolist() == [4.0, 1.0, 6.0]  # "" is the end-of-sequence token alone
    torch.testing.assert_close(model.null_condition, tokens[1])
    # the same caption gives the same states whatever else is in the batch (the mask pads, nothing leaks)
    torch.testing.assert_close(model.text_condition(["a dog barks"])[0], tokens[0], rtol=1e-5, atol=1e-6)

    seen = []
    model.network = model.denoiser = lambda use_ema, compile=False: (
        lambda x, t, c: seen.append(c) or torch.zeros_like(x)
    )
    condition = model.text_condition(["a dog barks"] * 64)
    module.diffusion_loss(torch.randn(64, 8, 4, 16), condition, drop_prob=0.5)
    dropped = (seen[0] == model.null_condition).flatten(1).all(1)
    assert 16 < int(dropped.sum()) < 48 and (seen[0][~dropped] == condition[~dropped]).all()

    calls = []

    def denoiser(x, t, c):
        calls.append(c)
        return torch.ones_like(x) * c[:, :1, :1, None].mean()

    latent = torch.randn(2, 8, 4, 4)
    guided_noise(denoiser, latent, torch.tensor(10), condition[:2], model.null_condition, 3.0)
    both = calls[0]
    assert both.shape == (4, LENGTH, 33) and (both[2:] == model.null_condition).all()


def test_cross_attention_config_rules(tiny_ckpts, t5_folder):
    base = t5_overrides(tiny_ckpts, t5_folder)
    with pytest.raises(ConfigError, match="text_condition_prob=0.5 mixes CLAP audio and text"):
        load_config(DEMO, [*base, "model.text_condition_prob=0.5"])
    with pytest.raises(ConfigError, match="condition_init_std initialises the FiLM projection"):
        load_config(DEMO, [*base, "model.unet.condition_init_std=3.0"])
    with pytest.raises(ConfigError, match="model.condition"):
        load_config(DEMO, [*base, "model.condition=crossattn_bert"])


@pytest.mark.slow
def test_preencoded_and_raw_give_the_same_loss_and_other_encoders_are_refused(tiny_ckpts, t5_folder, clips, tmp_path):
    cache_dir = tmp_path / "latents"
    args = t5_overrides(tiny_ckpts, t5_folder, clips, tmp_path, f"data.latent_cache_dir={cache_dir}")
    assert preencode.main(["--config", DEMO, *args, "--max-segments", "2"]) == 0
    module = LdmModule(load_config(DEMO, args))
    entries = [e for e in read_manifest(clips) if e.captions][:4]
    raw = collate_clips([AudioClipDataset(entries, options=ClipOptions(0.64, random_crop=False))[i] for i in range(4)])
    cached = collate_clips(
        [LatentClipDataset(entries, LatentCache(cache_dir), random_segment=False)[i] for i in range(4)]
    )
    assert cached["text_tokens"].shape == (4, LENGTH, 33) and "clap_audio" not in cached
    losses = []
    for batch in (raw, cached):
        torch.manual_seed(123)  # the same posterior sample, dropout, timesteps and noise
        with torch.no_grad():
            losses.append(module.diffusion_loss(*module.latents_and_conditions(batch)))
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)

    # latent shards carry the token states: the same condition for the same clip
    shards = tmp_path / "shards"
    assert shard_writer.main(["--manifest", str(clips), "--out", str(shards), "--latents", str(cache_dir)]) == 0
    mel, segment = module.model.mel, module.model.mel.samples_for_seconds(0.64)
    streamed = {it["id"]: it for it in ShardDataset(ShardIndex(shards), mel, segment, random_crop=False)}
    torch.testing.assert_close(streamed[entries[0].id]["text_tokens"], cached["text_tokens"][0])

    # the cache holds T5 token states: a crossattn_clap_tokens run is refused, naming the encoder
    other = [a for a in args if not a.startswith("model.condition=")] + ["model.condition=crossattn_clap_tokens"]
    other = [*other, "trainer.max_steps=1", f"output_dir={tmp_path / 'runs'}"]
    with pytest.raises(Exception, match="text_encoder: cache .*crossattn_t5.* vs run .*crossattn_clap_tokens"):
        module = LdmModule(load_config(DEMO, other))
        module.conditioning.check_cache(LatentCache(cache_dir))
    assert train.main(["--config", DEMO, *other]) == 2


@pytest.mark.slow
def test_train_resume_generate_and_distil(tiny_ckpts, t5_folder, clips, tmp_path, caplog):
    """Raw audio, captions only (the uncaptioned clip is left out and counted): run A stops at step 2 and resumes
    to 4, run B goes straight to 4: the same weights. The checkpoint holds its T5 and generates alone."""
    out = tmp_path / "runs"

    def run(*extra: str) -> int:
        return train.main(["--config", DEMO, *t5_overrides(tiny_ckpts, t5_folder, clips, out, *extra)])

    assert run("name=a", "trainer.max_steps=2") == 0
    assert "1 of 11 clips have no caption and are left out" in caplog.text
    resume = out / "a" / "version_0" / "checkpoints" / "last.ckpt"
    assert run("name=a", "trainer.max_steps=4", f"resume={resume}") == 0
    assert run("name=b", "trainer.max_steps=4") == 0
    assert run("name=c", "trainer.max_steps=1", "trainer.precision=bf16-mixed") == 0
    a = torch.load(resume, map_location="cpu", weights_only=False)
    b = torch.load(out / "b" / "version_0" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert a["global_step"] == b["global_step"] == 4
    assert a["stage_configs"]["text_encoder"]["encoder"] == "t5"
    assert any(k.startswith("model.text_encoder.model.encoder.") for k in a["state_dict"])
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(value, b["state_dict"][key], rtol=0, atol=0, msg=key)

    module = load_stage(resume, stage="ldm")
    assert module.model.condition == "crossattn_t5" and module.model.unet_ema is not None
    gen = tmp_path / "gen"
    common = ["--ckpt", str(resume), "--steps", "2", "--duration", "0.64"]
    assert generate.main([*common, "--text", "a dog barks", "--negative", "rain", "--out", str(gen)]) == 0
    assert generate.main([*common, "--text", "a dog barks", "--bf16", "--out", str(gen / "bf16")]) == 0
    ranked = [*common, "--text", "a dog barks", "--candidates", "2", "--sampler", "ddim"]
    assert generate.main([*ranked, "--out", str(gen / "c")]) == 0
    source = str(gen / "000_a_dog_barks.wav")
    edit = [*common, "--text", "birds sing", "--audio", source]
    assert generate.main([*edit, "--mode", "transfer", "--strength", "0.5", "--out", str(gen / "t")]) == 0
    assert generate.main([*edit, "--mode", "inpaint", "--span", "0.1-0.3", "--out", str(gen / "i")]) == 0
    assert generate.main([*edit, "--mode", "sr", "--cutoff", "4000", "--out", str(gen / "s")]) == 0
    # a variation conditions on the source's CLAP audio embedding, which a token model does not take
    assert generate.main([*common, "--mode", "variation", "--audio", source, "--out", str(gen / "v")]) == 2

    # the app's requests and evaluate.py --ckpt take it as any LDM
    pipe = TextToAudio.from_checkpoint(str(resume))
    jobs = Jobs(pipe, str(tmp_path / "app"), max_seconds=3.0)
    fast = replace(default_sampling(pipe), steps=2)
    assert len(jobs.text("a dog barks", 0.64, 2, fast).wavs) == 2
    with pytest.raises(RequestError, match="only a film_clap model takes"):
        jobs.variation(source, "", 1.0, 0.64, 1, fast)
    scored = tmp_path / "eval"
    test_set = [e for e in read_manifest(clips) if e.captions][:2]
    manifest = write_manifest_lines(
        tmp_path / "test.jsonl",
        [{"id": e.id, "path": e.path, "captions": e.captions, "split": "test"} for e in test_set],
    )
    run_eval = ["--ckpt", str(resume), "--manifest", str(manifest), "--backbone", "clap", "--steps", "2"]
    assert evaluate.main([*run_eval, "--duration", "0.64", "--out", str(scored)]) == 0
    assert json.loads((scored / "metrics.json").read_text())["pairs"] == 2

    # distilled into a 4-step student on the teacher's T5 conditions
    args = [
        f"model.teacher_ckpt={resume}",
        f"data.train_manifest={clips}",
        f"output_dir={out}",
        "data.latent_cache_dir=null",
        "data.segment_seconds=0.64",
        "data.batch_size=4",
        "data.num_workers=0",
        "trainer.max_steps=2",
        "trainer.enable_progress_bar=false",
        "model.val_steps=2",
        "model.val_seconds=0.64",
        "model.val_prompts=[a dog barks]",
    ]
    assert train.main(["--config", LCM, *args]) == 0
    student = sorted((out / "demo_lcm").glob("version_*/checkpoints/last.ckpt"))[-1]
    fast = ["--ckpt", str(student), "--sampler", "lcm", "--steps", "4", "--duration", "0.64", "--text", "a dog barks"]
    assert generate.main([*fast, "--out", str(gen / "lcm")]) == 0
