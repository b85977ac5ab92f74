"""The HiFi-GAN vocoder stage: shapes, official parameter counts, GAN losses, training, media."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train
from audioldm.audio.mel import MelConfig, MelFrontEnd
from audioldm.config import load_config
from audioldm.losses.stft import MultiResolutionStftLoss
from audioldm.losses.gan import feature_matching_loss, hinge_d_loss, hinge_g_loss, lsgan_d_loss, lsgan_g_loss
from audioldm.models.hifigan_discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from audioldm.models.vocoder import GriffinLimVocoder, HifiGanVocoder, VocoderConfig, build_generator
from lightning_modules.loading import load_stage
from lightning_modules.vocoder import VocoderModule

REPO = Path(__file__).resolve().parents[1]
DEMO = str(REPO / "configs" / "demo" / "hifigan.yaml")


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv(out_ch: int, in_per_group: int, kernel: int, weight_norm: bool = True) -> int:
    """Parameters of one official conv: weight + bias (+ weight-norm gain g, one per output)."""
    return out_ch * in_per_group * kernel + out_ch + (out_ch if weight_norm else 0)


def official_mpd() -> int:
    """jik876/hifi-gan DiscriminatorP x 5 periods, as specified in the paper's code."""
    per = (conv(32, 1, 5) + conv(128, 32, 5) + conv(512, 128, 5) + conv(1024, 512, 5)
           + conv(1024, 1024, 5) + conv(1, 1024, 3))
    return 5 * per


def official_msd() -> int:
    """DiscriminatorS x 3 (the first with spectral norm: no gain parameters)."""
    def scale(wn: bool) -> int:
        return (conv(128, 1, 15, wn) + conv(128, 32, 41, wn) + conv(256, 8, 41, wn) + conv(512, 16, 41, wn)
                + conv(1024, 32, 41, wn) + conv(1024, 64, 41, wn) + conv(1024, 1024, 5, wn) + conv(1, 1024, 3, wn))
    return scale(False) + 2 * scale(True)


def test_full_size_parameter_counts_on_meta():
    with torch.device("meta"):
        generator = build_generator(VocoderConfig())
        mpd, msd = MultiPeriodDiscriminator(), MultiScaleDiscriminator()
    assert count(generator) == 55_264_897  # AudioLDM's 16 kHz HiFi-GAN: 55.3M
    assert count(mpd) == official_mpd() == 41_105_770
    assert count(msd) == official_msd() == 29_618_821


def test_shapes_and_griffin_lim_interface():
    vocoder = HifiGanVocoder(build_generator(VocoderConfig(upsample_initial_channel=32)))
    log_mel = torch.randn(2, 1, 37, 64) - 5
    assert vocoder(log_mel).shape == (2, 37 * 160)
    assert GriffinLimVocoder(n_iter=2)(log_mel).shape == (2, 37 * 160)
    wave = torch.randn(2, 1, 4000)
    for disc in (MultiPeriodDiscriminator(width=0.0625), MultiScaleDiscriminator(width=0.0625)):
        logits, features = disc(wave)
        assert len(logits) == len(features) and all(l.shape[0] == 2 for l in logits)


def test_gan_losses_on_hand_computed_cases():
    real, fake = [torch.tensor([[1.0, 0.5]])], [torch.tensor([[0.0, 1.0]])]
    assert float(lsgan_d_loss(real, fake)) == pytest.approx((0 + 0.25) / 2 + (0 + 1) / 2)
    assert float(lsgan_g_loss(fake)) == pytest.approx((1 + 0) / 2)
    feats_r, feats_f = [[torch.ones(2, 3), torch.zeros(4)]], [[torch.zeros(2, 3), torch.ones(4)]]
    assert float(feature_matching_loss(feats_r, feats_f)) == pytest.approx(2.0)
    assert float(hinge_d_loss(torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5]))) == pytest.approx(0.5 * (0.5 + 0.75))
    assert float(hinge_g_loss(torch.tensor([1.0, 3.0]))) == pytest.approx(-2.0)


def fit_fixed_batch(overrides: list[str], freqs: tuple[float, float], batches: int) -> tuple[float, float]:
    """Train the demo vocoder (with ``overrides``) on one batch of two 0.4 s tones: (mel L1 before, after)."""
    torch.manual_seed(0)
    module = VocoderModule(load_config(DEMO, ["data.train_manifest=x", "optim.lr=2e-3", *overrides]))
    t = torch.arange(6400) / 16000
    wave = torch.stack([0.4 * torch.sin(2 * torch.pi * f * t) for f in freqs])
    batch = {"waveform": wave, "log_mel": MelFrontEnd(MelConfig())(wave)}

    def mel_l1() -> float:
        with torch.no_grad():
            return float((module.front_end(module(batch["log_mel"])) - batch["log_mel"]).abs().mean())

    before = mel_l1()
    trainer = pl.Trainer(accelerator="cpu", max_steps=2 * batches, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, train_dataloaders=DataLoader([batch] * batches, batch_size=None))
    return before, mel_l1()


def test_generator_mel_loss_falls_on_a_fixed_batch():
    """The full objective (mel + feature matching + LSGAN, both optimisers) on one fixed batch."""
    before, after = fit_fixed_batch([], (220.0, 660.0), 40)
    assert after < 0.9 * before


def test_stft_loss_on_hand_computed_cases():
    """fake = 2 x real: every magnitude doubles, so spectral convergence is exactly 1 and the log-magnitude
    L1 exactly log 2; the same signal gives 0."""
    torch.manual_seed(0)
    real = torch.randn(2, 4000, dtype=torch.float64)
    loss = MultiResolutionStftLoss()
    convergence, magnitude = loss(2 * real, real)
    assert float(convergence) == pytest.approx(1.0, abs=1e-6)
    assert float(magnitude) == pytest.approx(math.log(2.0), abs=1e-6)
    assert [float(v) for v in loss(real, real)] == [0.0, 0.0]


def test_stft_loss_equals_a_numpy_computation():
    """One resolution written out by hand: reflect-pad n_fft / 2, Hann(win) centred in n_fft, rfft per frame."""
    n_fft, hop, win = 64, 16, 48
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal((2, 1000)), rng.standard_normal((2, 1000))

    def magnitude(x: np.ndarray) -> np.ndarray:
        padded = np.pad(x, ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
        window = np.zeros(n_fft)
        left = (n_fft - win) // 2
        window[left:left + win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
        frames = 1 + (padded.shape[1] - n_fft) // hop
        spec = np.stack([np.fft.rfft(padded[:, i * hop:i * hop + n_fft] * window) for i in range(frames)], axis=2)
        return np.maximum(np.abs(spec), 1e-7)

    s_real, s_fake = magnitude(real), magnitude(fake)
    expected_sc = np.mean(np.linalg.norm((s_real - s_fake).reshape(2, -1), axis=1)
                          / np.linalg.norm(s_real.reshape(2, -1), axis=1))
    expected_mag = np.mean(np.abs(np.log(s_real) - np.log(s_fake)))
    convergence, mag = MultiResolutionStftLoss([(n_fft, hop, win)])(torch.from_numpy(fake), torch.from_numpy(real))
    assert float(convergence) == pytest.approx(expected_sc, rel=1e-5)
    assert float(mag) == pytest.approx(expected_mag, rel=1e-5)
    with pytest.raises(ValueError, match="window"):
        MultiResolutionStftLoss([(64, 16, 128)])


def test_discriminators_join_at_disc_start():
    """Before disc_start batches only mel + STFT train the generator; the discriminators stay untouched."""
    torch.manual_seed(0)
    config = load_config(DEMO, ["data.train_manifest=x", "model.disc_start=2", "model.stft_weight=1.0"])
    module = VocoderModule(config)
    wave = 0.4 * torch.sin(2 * torch.pi * 330.0 * torch.arange(6400) / 16000)[None]
    batch = {"waveform": wave, "log_mel": MelFrontEnd(MelConfig())(wave)}
    disc = {k: v.clone() for k, v in module.mpd.state_dict().items()}
    gen = {k: v.clone() for k, v in module.vocoder.state_dict().items()}

    def fit(batches: int) -> None:
        trainer = pl.Trainer(accelerator="cpu", max_steps=2 * batches, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(module, train_dataloaders=DataLoader([batch] * batches, batch_size=None))

    fit(2)
    assert all(torch.equal(v, module.mpd.state_dict()[k]) for k, v in disc.items())
    assert not all(torch.equal(v, module.vocoder.state_dict()[k]) for k, v in gen.items())
    module.mpd.load_state_dict(disc)
    torch.manual_seed(0)
    module = VocoderModule(config)
    fit(3)  # the third batch trains the discriminators
    assert not all(torch.equal(v, module.mpd.state_dict()[k]) for k, v in disc.items())


@pytest.mark.slow
def test_train_resume_and_dashboard(tone_dataset, tmp_path):
    out = tmp_path / "runs"
    args = ["--config", DEMO, f"data.train_manifest={tone_dataset}", f"output_dir={out}", "name=v",
            "data.num_workers=0", "data.batch_size=3", "data.val_segment_seconds=1.28", "trainer.log_every_n_steps=1",
            "trainer.enable_progress_bar=false", "checkpoint.every_n_train_steps=4", "model.disc_start=0"]
    assert train.main(args + ["trainer.max_steps=14"]) == 0  # 7 batches: one epoch with validation
    run = out / "v" / "version_0"
    ckpt = run / "checkpoints" / "last.ckpt"
    first = torch.load(ckpt, weights_only=False)
    assert first["global_step"] == 14
    assert train.main(args + ["trainer.max_steps=20", f"resume={ckpt}"]) == 0
    resumed = torch.load(ckpt, weights_only=False)
    assert resumed["global_step"] == 20
    assert [s["last_epoch"] for s in resumed["lr_schedulers"]] == [1, 1]  # decayed once, after epoch 1
    for optimizer in resumed["optimizer_states"]:
        assert {int(s["step"]) for s in optimizer["state"].values()} == {10}

    events = EventAccumulator(str(run), size_guidance={"images": 0, "audio": 0}).Reload()
    assert {"train/g_loss", "train/mel_l1", "train/feature_matching", "train/adversarial", "train/d_loss",
            "lr/generator", "grad_norm/optimizer_0", "grad_norm/optimizer_1", "val/mel_l1"} <= set(events.Tags()["scalars"])
    assert {"mel/target/0", "mel/generated/0"} <= set(events.Tags()["images"])
    assert {"audio/target/0", "audio/generated/0"} <= set(events.Tags()["audio"])
    vocoder = load_stage(ckpt, stage="vocoder")
    assert vocoder(torch.randn(1, 1, 20, 64)).shape == (1, 3200)


ISTFT = ["model.generator=istft", "model.istft_channels=32", "model.istft_layers=2"]


def test_istft_generator_shapes_loading_and_config_errors(tmp_path):
    """The Vocos-style generator: shapes, a stage checkpoint that every loader reads, a bad name refused."""
    from audioldm.config import ConfigError
    from audioldm.convert.stages import load_vocoder
    from audioldm.models.istft_vocoder import IstftVocoder
    from tests.ldm_fixtures import write_stage_checkpoint

    vocoder = IstftVocoder(64, 160, n_fft=640, channels=32, layers=2)
    assert vocoder(torch.randn(2, 1, 20, 64)).shape == (2, 3200)
    with pytest.raises(ValueError, match="istft_n_fft=100"):
        IstftVocoder(64, 160, n_fft=100)
    path = write_stage_checkpoint("hifigan", tmp_path / "istft.ckpt", extra=tuple(ISTFT))
    loaded, config = load_vocoder(path, MelConfig())
    assert isinstance(loaded, IstftVocoder) and config["model"]["generator"] == "istft"
    stage = load_stage(path, stage="vocoder")
    log_mel = torch.randn(1, 1, 12, 64)
    torch.testing.assert_close(loaded(log_mel), stage(log_mel))
    with pytest.raises(ConfigError, match="model.generator='vocos' is unknown"):
        load_config(DEMO, ["data.train_manifest=x", "model.generator=vocos"])


def test_istft_generator_learns_a_fixed_batch():
    """Mel L1 + multi-resolution STFT alone (discriminators not started) lower the mel L1 of a tone mixture."""
    before, after = fit_fixed_batch(["model.stft_weight=1.0", "model.disc_start=1000", *ISTFT], (220.0, 1320.0), 60)
    assert after < 0.7 * before  # 5.86 -> 3.75 measured
