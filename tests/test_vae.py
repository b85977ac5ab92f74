"""The VAE stage: shapes, full-size parameter counts, GAN training, metrics, media, loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train
from audioldm.audio.mel import MelConfig
from audioldm.config import load_config
from audioldm.models.patchgan import PatchDiscriminator
from audioldm.models.vae import VaeConfig, build_autoencoder
from evaluation.reconstruction import log_spectral_distance
from lightning_modules.loading import CheckpointError, load_stage
from lightning_modules.vae import VaeModule

REPO = Path(__file__).resolve().parents[1]
DEMO = str(REPO / "configs" / "demo" / "vae.yaml")

# diffusers AutoencoderKL with AudioLDM's VAE config (1 in/out channel, [128, 256, 512], 2 res
# blocks, 8 latent channels): the same tree as the official first_stage_model (encoder, decoder,
# quant_conv, post_quant_conv), which diffusers converts to key by key.
AUDIOLDM_VAE_PARAMS = 55_376_873
# taming/latent-diffusion NLayerDiscriminator(input_nc=1, ndf=64, n_layers=3), counted by layer:
# conv 1->64 (+bias), conv 64->128 + BN, conv 128->256 + BN, conv 256->512 + BN, conv 512->1 (+bias)
OFFICIAL_DISC_PARAMS = (
    (1 * 64 * 16 + 64) + (64 * 128 * 16 + 256) + (128 * 256 * 16 + 512) + (256 * 512 * 16 + 1024) + (512 * 16 + 1)
)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_full_size_parameter_counts_on_meta():
    with torch.device("meta"):
        vae = build_autoencoder(VaeConfig())
        disc = PatchDiscriminator(1, 64, 3)
    assert count(vae) == AUDIOLDM_VAE_PARAMS
    assert count(disc) == OFFICIAL_DISC_PARAMS == 2_763_585


def test_shapes_full_segment_tiny_width():
    vae = build_autoencoder(VaeConfig(block_out_channels=[8, 16, 16], layers_per_block=1, norm_num_groups=4))
    x = torch.randn(2, 1, 1024, 64)
    z = vae.encode(x).latent_dist.mode()
    assert z.shape == (2, 8, 256, 16)
    assert vae.decode(z).sample.shape == x.shape
    assert PatchDiscriminator(1, 8, 3)(x).shape[:2] == (2, 1)


def test_lsd_of_a_constant_gain():
    x = torch.randn(1, 1, 10, 64)
    assert torch.allclose(log_spectral_distance(x + 1.0, x), torch.tensor([20 / torch.log(torch.tensor(10.0))]))


def tiny_args(manifest: Path, out: Path, name: str, *extra: str) -> list[str]:
    return [
        "--config",
        DEMO,
        f"data.train_manifest={manifest}",
        f"output_dir={out}",
        f"name={name}",
        "data.num_workers=0",
        "data.segment_seconds=1.28",
        "data.batch_size=3",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        "model.disc_start=2",
        *extra,
    ]


@pytest.mark.slow
def test_gan_training_metrics_media_and_loading(tone_dataset, tmp_path, capsys):
    out = tmp_path / "runs"
    # 7 batches per epoch, 2 optimiser steps per batch: 14 steps = one epoch with validation
    assert train.main(tiny_args(tone_dataset, out, "v", "trainer.max_steps=14")) == 0
    run = out / "v" / "version_0"
    events = EventAccumulator(str(run), size_guidance={"images": 0, "audio": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {
        "train/loss",
        "train/l1",
        "train/kl",
        "train/g_loss",
        "train/d_weight",
        "train/d_loss",
        "val/mel_l1",
        "val/lsd",
        "val/psnr",
        "val/ssim",
        "val/scale_factor",
        "train_scale_factor",
        "grad_norm/optimizer_0",
        "grad_norm/optimizer_1",
        "lr/autoencoder",
    } <= scalars
    assert {"mel/target/0", "mel/reconstruction/0"} <= set(events.Tags()["images"])
    assert "audio/reconstruction_griffinlim/0" in events.Tags()["audio"]

    ckpt = run / "checkpoints" / "last.ckpt"
    vae = load_stage(ckpt, stage="vae", mel=MelConfig())
    assert isinstance(vae, VaeModule) and not vae.training
    latents = torch.cat([vae(b["log_mel"])[2] for b in [collate_val(tone_dataset)]])
    assert 0.05 < float(vae.scale_factor) < 50 and float(vae.scale_factor) != 1.0
    assert 0.5 < float(vae.scale_factor) * float(latents.std()) < 2.0  # roughly 1/std of real latents
    assert int(vae.ae_steps) == 7

    with pytest.raises(CheckpointError, match="is a 'vae' checkpoint, expected 'vocoder'"):
        load_stage(ckpt, stage="vocoder")
    with pytest.raises(CheckpointError, match="n_mels: checkpoint 64 vs config 80"):
        load_stage(ckpt, mel=MelConfig(n_mels=80))
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_stage(truncated)
    assert train.main(tiny_args(tone_dataset, out, "v", f"resume={ckpt}", "audio.hop_length=320")) == 2
    assert "resume: " in capsys.readouterr().err


def collate_val(manifest: Path) -> dict:
    from audioldm.config.schema import DataConfig
    from data.datamodule import VaeDataModule

    data = VaeDataModule(DataConfig(train_manifest=str(manifest), segment_seconds=1.28, batch_size=4, num_workers=0))
    data.setup("fit")
    return next(iter(data.val_dataloader()))


@pytest.mark.slow
def test_loss_falls_on_a_fixed_batch():
    config = load_config(DEMO, ["data.train_manifest=x", "model.disc_start=1000"])
    module = VaeModule(config)
    torch.manual_seed(0)
    t = torch.linspace(0, 1, 128)
    x = (torch.sin(20 * t)[None, :, None] * torch.linspace(-1, 1, 64)[None, None, :] * 3 - 5).expand(2, 128, 64)
    x = x.unsqueeze(1).contiguous()
    optimizer = torch.optim.Adam(module.vae.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        recon, posterior, _ = module(x)
        loss = (recon - x).abs().mean() + 1e-6 * posterior.kl().sum() / x.numel()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.slow
def test_bf16_mixed_precision_from_config(tone_dataset, tmp_path):
    args = tiny_args(
        tone_dataset,
        tmp_path,
        "bf16",
        "trainer.max_steps=6",
        "trainer.precision=bf16-mixed",
        "trainer.limit_val_batches=1",
    )
    assert train.main(args) == 0
    ckpt = torch.load(tmp_path / "bf16" / "version_0" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 6 and ckpt["config"]["trainer"]["precision"] == "bf16-mixed"
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
