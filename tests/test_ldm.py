"""The LDM stage: EMA, condition dropout, pre-encoded vs raw-audio training, and train.py end to end
(TensorBoard media, exact resume, loading for generation) on tiny random stage checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import generate
import train
from audioldm.config import load_config
from audioldm.models.ema import EmaModel
from data import preencode
from data.dataset import AudioClipDataset, ClipOptions, collate_clips
from data.latent_cache import LatentCache, LatentClipDataset
from data.manifest import read_manifest
from lightning_modules.ldm import LdmModule
from lightning_modules.loading import load_stage
from tests.conftest import write_manifest_lines, write_tone
from tests.ldm_fixtures import REPO, ldm_overrides, stage_checkpoints, write_stage_checkpoint

DEMO = str(REPO / "configs" / "demo" / "ldm.yaml")


def test_ema_follows_the_latent_diffusion_recipe():
    net = torch.nn.Linear(2, 2)
    ema = EmaModel(net, decay=0.9)
    start = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)  # n = 0: decay min(0.9, 1/10) = 0.1
    torch.testing.assert_close(ema.module.weight, 0.1 * start + 0.9 * net.weight.detach())
    for _ in range(100):
        ema.update(net)
    assert ema.current_decay() == 0.9 and int(ema.num_updates) == 101
    restored = EmaModel(torch.nn.Linear(2, 2), decay=0.9)
    restored.load_state_dict(ema.state_dict())
    assert restored.current_decay() == 0.9 and not restored.module.weight.requires_grad


@pytest.fixture(scope="module")
def tiny_ckpts(tmp_path_factory) -> dict[str, Path]:
    return stage_checkpoints(tmp_path_factory.mktemp("stages"))


@pytest.fixture
def short_clips(tmp_path: Path) -> Path:
    """12 clips no longer than the 0.64 s segment (so raw and cached training read the same audio),
    every 4th in 'val', plus one unreadable file."""
    rows = []
    for i in range(12):
        write_tone(tmp_path / "audio" / f"c{i}.wav", 0.5 + 0.01 * i, (16000, 22050)[i % 2], freq=200 + 60 * i, seed=i)
        rows.append(
            {
                "id": f"c{i}",
                "path": f"audio/c{i}.wav",
                "captions": [f"tone {i}"],
                "split": "val" if i % 4 == 0 else "train",
            }
        )
    (tmp_path / "audio" / "bad.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    rows.append({"id": "bad", "path": "audio/bad.wav", "captions": ["broken"], "split": "train"})
    return write_manifest_lines(tmp_path / "manifest.jsonl", rows)


def overrides(ckpts, manifest, out, *extra):
    return ldm_overrides(
        ckpts,
        manifest,
        out,
        "data.segment_seconds=0.64",
        "data.batch_size=4",
        "data.latent_cache_dir=null",
        "trainer.log_every_n_steps=1",
        "trainer.check_val_every_n_epoch=1",
        *extra,
    )


@pytest.mark.slow
def test_preencoded_and_raw_audio_give_the_same_loss(tiny_ckpts, short_clips, tmp_path):
    cache_dir = tmp_path / "latents"
    args = overrides(tiny_ckpts, short_clips, tmp_path, f"data.latent_cache_dir={cache_dir}")
    assert preencode.main(["--config", DEMO, *args, "--max-segments", "2"]) == 0
    config = load_config(DEMO, args)
    module = LdmModule(config)
    entries = [e for e in read_manifest(short_clips) if e.id != "bad"][:5]
    raw = collate_clips([AudioClipDataset(entries, options=ClipOptions(0.64, random_crop=False))[i] for i in range(5)])
    cached = collate_clips(
        [LatentClipDataset(entries, LatentCache(cache_dir), random_segment=False)[i] for i in range(5)]
    )
    assert cached["posterior"].shape == (5, 16, 16, 16) and cached["clap_audio"].shape == (5, 512)

    losses = []
    for batch in (raw, cached):
        torch.manual_seed(123)  # the same posterior sample, dropout, timesteps and noise
        with torch.no_grad():
            x0, condition = module.latents_and_conditions(batch)
            losses.append(module.diffusion_loss(x0, condition))
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    torch.manual_seed(124)
    with torch.no_grad():
        assert not torch.allclose(module.diffusion_loss(*module.latents_and_conditions(raw)), losses[0])


def test_condition_dropout_uses_the_null_condition(tiny_ckpts):
    module = LdmModule(load_config(DEMO, ldm_overrides(tiny_ckpts)))
    null = module.model.null_condition
    torch.testing.assert_close(null, module.model.embed_text([""])[0])
    x0, condition = torch.randn(64, 8, 4, 16), torch.randn(64, 512)
    seen = []
    # both the training path (the UNet's own output: v for the demo recipe) and validation's (epsilon)
    module.model.network = module.model.denoiser = lambda use_ema, compile=False: (
        lambda x, t, c: seen.append(c) or torch.zeros_like(x)
    )
    module.diffusion_loss(x0, condition, drop_prob=0.5)
    dropped = (seen[0] == null).all(dim=1)
    assert 16 < int(dropped.sum()) < 48 and (seen[0][~dropped] == condition[~dropped]).all()


@pytest.mark.slow
def test_train_resume_generate_end_to_end(tiny_ckpts, short_clips, tmp_path):
    """Raw audio: 8 train clips (one unreadable stands in) in batches of 4. Run A stops at step 3
    (mid-epoch) and resumes to 6; run B goes straight to 6: same weights and EMA."""
    out = tmp_path / "runs"

    def run(*extra: str) -> int:
        return train.main(["--config", DEMO, *overrides(tiny_ckpts, short_clips, out, *extra)])

    assert run("name=a", "trainer.max_steps=3") == 0
    resume = out / "a" / "version_0" / "checkpoints" / "last.ckpt"
    assert run("name=a", "trainer.max_steps=6", f"resume={resume}") == 0
    assert run("name=b", "trainer.max_steps=6") == 0
    a = torch.load(resume, map_location="cpu", weights_only=False)
    b = torch.load(out / "b" / "version_0" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert a["global_step"] == b["global_step"] == 6 and a["stage"] == "ldm"
    assert set(a["stage_configs"]) == {"vae", "clap", "vocoder"}
    assert int(a["state_dict"]["model.unet_ema.num_updates"]) == 6
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(value, b["state_dict"][key], rtol=0, atol=0, msg=key)

    events = EventAccumulator(str(out / "b" / "version_0"), size_guidance={"images": 0, "audio": 0}).Reload()
    assert {"train/loss", "val/loss", "lr-AdamW", "grad_norm/optimizer_0"} <= set(events.Tags()["scalars"])
    assert "mel/generated/0_a_low_tone/0" in events.Tags()["images"]
    assert "audio/generated/1_a_high_beep/0" in events.Tags()["audio"]

    # the checkpoint loads on its own (the stage files are not needed) and generates
    for path in tiny_ckpts.values():
        path.rename(path.with_suffix(".moved"))
    try:
        module = load_stage(resume, stage="ldm")
        assert module.model.unet_ema is not None
        assert (
            generate.main(
                [
                    "--ckpt",
                    str(resume),
                    "--text",
                    "a low tone",
                    "--out",
                    str(tmp_path / "gen"),
                    "--steps",
                    "2",
                    "--duration",
                    "0.64",
                ]
            )
            == 0
        )
        assert (tmp_path / "gen" / "000_a_low_tone.wav").is_file()
    finally:
        for path in tiny_ckpts.values():
            path.with_suffix(".moved").rename(path)


@pytest.mark.slow
def test_training_on_preencoded_latents(tiny_ckpts, short_clips, tmp_path, capsys):
    out, cache = tmp_path / "runs", tmp_path / "latents"
    args = overrides(tiny_ckpts, short_clips, out, f"data.latent_cache_dir={cache}", "trainer.max_steps=2")
    assert train.main(["--config", DEMO, *args]) == 2  # nothing encoded yet: one line, no traceback
    assert "no pre-encoded latents" in capsys.readouterr().err
    assert preencode.main(["--config", DEMO, *args]) == 0
    assert "12 clips encoded (12 segments), 0 already cached, 1 unreadable" in capsys.readouterr().out
    assert preencode.main(["--config", DEMO, *args]) == 0  # resumes: nothing left to do
    assert "0 clips encoded (0 segments), 12 already cached, 1 unreadable" in capsys.readouterr().out
    assert train.main(["--config", DEMO, *args]) == 0
    # latents made by another VAE are refused before the first step
    other_vae = write_stage_checkpoint("vae", tmp_path / "other_vae.ckpt", seed=5)
    other = overrides(
        {**tiny_ckpts, "vae": other_vae}, short_clips, out, f"data.latent_cache_dir={cache}", "trainer.max_steps=2"
    )
    assert train.main(["--config", DEMO, *other]) == 2
    assert "latents were made with other settings (vae_fingerprint" in capsys.readouterr().err


@pytest.mark.slow
def test_preencode_in_parts_covers_every_clip_once(tiny_ckpts, short_clips, tmp_path, capsys):
    """Two processes (here one after the other) with --rank 0/1 --world 2 encode disjoint halves."""
    args = overrides(tiny_ckpts, short_clips, tmp_path / "runs", f"data.latent_cache_dir={tmp_path / 'latents'}")
    assert preencode.main(["--config", DEMO, *args, "--rank", "0", "--world", "2"]) == 0
    first = capsys.readouterr().out
    assert preencode.main(["--config", DEMO, *args, "--rank", "1", "--world", "2"]) == 0
    second = capsys.readouterr().out
    assert "(part 1 of 2): 6 clips encoded" in first and "(part 2 of 2): 6 clips encoded" in second
    assert preencode.main(["--config", DEMO, *args]) == 0
    assert "0 clips encoded (0 segments), 12 already cached, 1 unreadable" in capsys.readouterr().out
    assert preencode.main(["--config", DEMO, *args, "--rank", "2", "--world", "2"]) == 2
    assert "--rank 2 must be in [0, --world 2)" in capsys.readouterr().err


def test_min_snr_weights_each_sample_by_its_timestep(tiny_ckpts):
    """Epsilon prediction (AudioLDM's): min(SNR_t, gamma) / SNR_t from the schedule, and the loss is the weighted
    mean of per-sample MSEs (v-prediction's weights: tests/test_v_prediction.py)."""
    module = LdmModule(
        load_config(
            DEMO,
            ldm_overrides(
                tiny_ckpts, "unused.jsonl", "runs", "model.min_snr_gamma=5.0", "model.unet.prediction_type=epsilon"
            ),
        )
    )
    a = module.alphas_cumprod
    t = torch.tensor([0, 100, 500, 999])
    snr = a[t] / (1 - a[t])
    expected = torch.where(snr > 5.0, 5.0 / snr, torch.ones_like(snr))
    torch.testing.assert_close(module.min_snr_weight(t), expected)
    assert module.min_snr_weight(torch.tensor([0]))[0] < 0.01 and module.min_snr_weight(torch.tensor([999]))[0] == 1

    x0, condition = torch.randn(6, 8, 4, 16), torch.randn(6, 512)
    eps = torch.randn(6, 8, 4, 16)
    module.model.network = module.model.denoiser = lambda use_ema, compile=False: lambda x, t, c: eps
    torch.manual_seed(5)
    weighted = module.diffusion_loss(x0, condition)
    torch.manual_seed(5)
    plain = module.diffusion_loss(x0, condition, weighted=False)
    torch.manual_seed(5)  # the same draws: dropout, t, noise
    torch.rand(6)
    t = torch.randint(0, a.shape[0], (6,))
    noise = torch.randn(x0.shape)
    per_sample = (eps - noise).pow(2).flatten(1).mean(1)
    torch.testing.assert_close(weighted, (per_sample * module.min_snr_weight(t)).mean())
    torch.testing.assert_close(plain, per_sample.mean())


@pytest.mark.parametrize("value", ["0", "-1.0"])
def test_min_snr_gamma_must_be_positive(value):
    from audioldm.config.loader import ConfigError

    with pytest.raises(ConfigError, match=rf"model.min_snr_gamma={float(value)}? is out of range"):
        load_config(DEMO, [f"model.min_snr_gamma={value}"])


def test_caches_from_before_the_fingerprint_change_still_fit(tiny_ckpts, tmp_path):
    """A cache written before 2026-12-07 records version-1 fingerprints (no fingerprint_version): still accepted,
    and still refused when made by another network; a new cache records version 2."""
    from audioldm.checkpoint import fingerprint

    module = LdmModule(load_config(DEMO, ldm_overrides(tiny_ckpts)))
    model, cache = module.model, LatentCache(tmp_path / "cache")
    old = {"vae_fingerprint": fingerprint(model.vae, 1), "clap_fingerprint": fingerprint(model.clap, 1)}
    old["text_embeddings"] = True
    cache.write_meta(old)
    module.conditioning.check_cache(cache)
    cache.write_meta({**old, "vae_fingerprint": "0123456789abcdef"})
    with pytest.raises(ValueError, match="vae_fingerprint"):
        module.conditioning.check_cache(cache)
    new = {"vae_fingerprint": fingerprint(model.vae), "clap_fingerprint": fingerprint(model.clap)}
    cache.write_meta({**new, "fingerprint_version": 2, "text_embeddings": True})
    module.conditioning.check_cache(cache)
    assert new["vae_fingerprint"] != old["vae_fingerprint"]
