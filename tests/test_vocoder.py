"""The HiFi-GAN vocoder stage: shapes, official parameter counts, GAN losses, training, media."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader

import train
from audioldm.audio.mel import MelConfig, MelFrontEnd
from audioldm.config import load_config
from audioldm.losses.gan import feature_matching_loss, hinge_d_loss, hinge_g_loss, lsgan_d_loss, lsgan_g_loss
from audioldm.losses.stft import MultiResolutionStftLoss
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
    per = (
        conv(32, 1, 5)
        + conv(128, 32, 5)
        + conv(512, 128, 5)
        + conv(1024, 512, 5)
        + conv(1024, 1024, 5)
        + conv(1, 1024, 3)
    )
    return 5 * per


def official_msd() -> int:
    """DiscriminatorS x 3 (the first with spectral norm: no gain parameters)."""

    def scale(wn: bool) -> int:
        return (
            conv(128, 1, 15, wn)
            + conv(128, 32, 41, wn)
            + conv(256, 8, 41, wn)
            + conv(512, 16, 41, wn)
            + conv(1024, 32, 41, wn)
            + conv(1024, 64, 41, wn)
            + conv(1024, 1024, 5, wn)
            + conv(1, 1024, 3, wn)
        )

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
        assert len(logits) == len(features) and all(logit.shape[0] == 2 for logit in logits)


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
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=2 * batches,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=DataLoader([batch] * batches, batch_size=None))
    return before, mel_l1()


@pytest.mark.slow
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
        window[left : left + win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
        frames = 1 + (padded.shape[1] - n_fft) // hop
        spec = np.stack([np.fft.rfft(padded[:, i * hop : i * hop + n_fft] * window) for i in range(frames)], axis=2)
        return np.maximum(np.abs(spec), 1e-7)

    s_real, s_fake = magnitude(real), magnitude(fake)
    expected_sc = np.mean(
        np.linalg.norm((s_real - s_fake).reshape(2, -1), axis=1) / np.linalg.norm(s_real.reshape(2, -1), axis=1)
    )
    expected_mag = np.mean(np.abs(np.log(s_real) - np.log(s_fake)))
    convergence, mag = MultiResolutionStftLoss([(n_fft, hop, win)])(torch.from_numpy(fake), torch.from_numpy(real))
    assert float(convergence) == pytest.approx(expected_sc, rel=1e-5)
    assert float(mag) == pytest.approx(expected_mag, rel=1e-5)
    with pytest.raises(ValueError, match="window"):
        MultiResolutionStftLoss([(64, 16, 128)])


@pytest.mark.slow
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
        trainer = pl.Trainer(
            accelerator="cpu",
            max_steps=2 * batches,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
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
    args = [
        "--config",
        DEMO,
        f"data.train_manifest={tone_dataset}",
        f"output_dir={out}",
        "name=v",
        "data.num_workers=0",
        "data.batch_size=3",
        "data.val_segment_seconds=1.28",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        "checkpoint.every_n_train_steps=4",
        "model.disc_start=0",
    ]
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
    assert {
        "train/g_loss",
        "train/mel_l1",
        "train/feature_matching",
        "train/adversarial",
        "train/d_loss",
        "lr/generator",
        "grad_norm/optimizer_0",
        "grad_norm/optimizer_1",
        "val/mel_l1",
    } <= set(events.Tags()["scalars"])
    assert {"mel/target/0", "mel/generated/0"} <= set(events.Tags()["images"])
    assert {"audio/target/0", "audio/generated/0"} <= set(events.Tags()["audio"])
    vocoder = load_stage(ckpt, stage="vocoder")
    assert vocoder(torch.randn(1, 1, 20, 64)).shape == (1, 3200)


ISTFT = ["model.generator=istft", "model.istft_channels=32", "model.istft_layers=2"]


def test_istft_generator_shapes_loading_and_config_errors(tmp_path):
    """The Vocos-style generator: shapes, a stage checkpoint that every loader reads, a bad name refused."""
    from audioldm.assembly.parts import load_part
    from audioldm.config import ConfigError
    from audioldm.models.istft_vocoder import IstftVocoder
    from tests.ldm_fixtures import write_stage_checkpoint

    vocoder = IstftVocoder(64, 160, n_fft=640, channels=32, layers=2)
    assert vocoder(torch.randn(2, 1, 20, 64)).shape == (2, 3200)
    with pytest.raises(ValueError, match="istft_n_fft=100"):
        IstftVocoder(64, 160, n_fft=100)
    path = write_stage_checkpoint("hifigan", tmp_path / "istft.ckpt", extra=tuple(ISTFT))
    part = load_part(path, "vocoder", MelConfig())
    loaded, config = part.network, part.config
    assert isinstance(loaded, IstftVocoder) and config["model"]["generator"] == "istft"
    stage = load_stage(path, stage="vocoder")
    log_mel = torch.randn(1, 1, 12, 64)
    torch.testing.assert_close(loaded(log_mel), stage(log_mel))
    with pytest.raises(ConfigError, match="model.generator='vocos' is unknown"):
        load_config(DEMO, ["data.train_manifest=x", "model.generator=vocos"])


@pytest.mark.slow
def test_istft_generator_learns_a_fixed_batch():
    """Mel L1 + multi-resolution STFT alone (discriminators not started) lower the mel L1 of a tone mixture."""
    before, after = fit_fixed_batch(["model.stft_weight=1.0", "model.disc_start=1000", *ISTFT], (220.0, 1320.0), 60)
    assert after < 0.7 * before  # 5.86 -> 3.75 measured


ANCHORED = [
    "model.generator=istft",
    "model.istft_n_fft=1024",
    "model.istft_channels=32",
    "model.istft_layers=2",
    "model.istft_mel_anchor=true",
]


def anchored_vocoder(phase_iters: int) -> torch.nn.Module:
    from audioldm.models.vocoder import build_vocoder

    config = load_config(DEMO, ["data.train_manifest=x", *ANCHORED, f"model.istft_phase_iters={phase_iters}"])
    torch.manual_seed(0)
    return build_vocoder(VocoderConfig(**config.model), MelConfig())


@torch.no_grad()
def test_mel_anchored_istft_starts_at_the_mels_magnitude_and_griffin_lim():
    """Untrained, the anchored generator's magnitude is the mel's pseudo-inverse (its log-gain head starts at 0);
    with the phase head at 0 as well, its projections are torchaudio's fast Griffin-Lim from a zero phase, so it
    equals GriffinLimVocoder (the float rounding of a clamp floor grows over the iterations: 1 and 32 compared)."""
    front_end = MelFrontEnd(MelConfig())
    t = torch.arange(16000) / 16000
    wave = 0.3 * torch.sin(2 * torch.pi * 440 * t) + 0.05 * torch.randn(
        16000, generator=torch.Generator().manual_seed(1)
    )
    log_mel = front_end(wave[None])
    vocoder = anchored_vocoder(0)
    magnitude = front_end.log_mel_to_magnitude(log_mel).clamp(min=1e-5)
    torch.testing.assert_close(vocoder.spectrum(log_mel).abs(), magnitude, rtol=1e-4, atol=1e-6)
    vocoder.head.weight.zero_()
    vocoder.head.bias.zero_()
    for iters, atol in ((1, 1e-3), (32, 0.05)):
        vocoder.phase_iters = iters
        ours, reference = vocoder(log_mel), GriffinLimVocoder(MelConfig(), n_iter=iters)(log_mel)
        assert ours.shape == reference.shape == (1, 16000)
        torch.testing.assert_close(ours, reference, rtol=0, atol=atol * float(reference.abs().max()))
    # the projections make the spectrum consistent: the output's own mel is as close to the input as Griffin-Lim's
    assert float((front_end(ours) - log_mel).abs().mean()) == pytest.approx(
        float((front_end(reference) - log_mel).abs().mean()), abs=2e-3
    )


def test_mel_anchored_istft_config_errors():
    from audioldm.config import ConfigError
    from audioldm.models.istft_vocoder import IstftVocoder

    with pytest.raises(ValueError, match="istft_n_fft equal to the mel's n_fft.*513 frequency bins, istft_n_fft=640"):
        IstftVocoder(64, 160, n_fft=640, mel_basis=MelFrontEnd(MelConfig()).mel_basis)
    with pytest.raises(ConfigError, match="model.istft_phase_iters"):
        load_config(DEMO, ["data.train_manifest=x", "model.istft_phase_iters=-1"])


@torch.no_grad()
def test_inference_projections_apply_in_eval_mode_and_travel_with_the_checkpoint(tmp_path):
    """``model.istft_inference_phase_iters``: training mode projects ``istft_phase_iters`` times, eval mode (what
    loaders return) that many; the count is read back from a stage checkpoint; refused for HiFi-GAN and below 0."""
    from audioldm.assembly.parts import load_part
    from audioldm.config import ConfigError
    from audioldm.models.istft_vocoder import IstftVocoder
    from audioldm.models.vocoder import build_vocoder
    from tests.ldm_fixtures import write_stage_checkpoint

    log_mel = torch.randn(1, 1, 30, 64, generator=torch.Generator().manual_seed(2)) - 4
    counts = ("model.istft_phase_iters=2", "model.istft_inference_phase_iters=16")
    config = load_config(DEMO, ["data.train_manifest=x", *ANCHORED, *counts])
    torch.manual_seed(0)
    vocoder = build_vocoder(VocoderConfig(**config.model), MelConfig())
    two, sixteen = anchored_vocoder(2), anchored_vocoder(16)  # the same weights (seed 0), one count each
    assert vocoder.train().projections == 2 and vocoder.eval().projections == 16
    torch.testing.assert_close(vocoder.train()(log_mel), two(log_mel))
    torch.testing.assert_close(vocoder.eval()(log_mel), sixteen(log_mel))
    assert not torch.allclose(two(log_mel), sixteen(log_mel), atol=1e-3)  # the count changes the waveform
    assert anchored_vocoder(3).eval().projections == 3  # unset: the training count
    path = write_stage_checkpoint("hifigan", tmp_path / "istft.ckpt", extra=(*ANCHORED, *counts))
    part = load_part(path, "vocoder", MelConfig())
    loaded, stage_config = part.network, part.config
    assert loaded.projections == 16 and stage_config["model"]["istft_inference_phase_iters"] == 16
    with pytest.raises(ValueError, match="istft_inference_phase_iters=-1 must be >= 0"):
        IstftVocoder(64, 160, n_fft=640, inference_phase_iters=-1)
    with pytest.raises(ConfigError, match="model.istft_inference_phase_iters=32 needs model.generator=istft"):
        load_config(DEMO, ["data.train_manifest=x", "model.istft_inference_phase_iters=32"])  # HiFi-GAN
    with pytest.raises(ConfigError, match="model.istft_inference_phase_iters=-1 is out of range"):
        load_config(DEMO, ["data.train_manifest=x", *ANCHORED, "model.istft_inference_phase_iters=-1"])


def test_phase_prior_starts_at_the_anchors_implied_phase_and_needs_the_anchor():
    """With ``model.istft_phase_prior`` the untrained generator's phase is the anchor magnitude's integrated
    instantaneous frequency (both halves of the head start at zero); without the anchor it is refused."""
    from audioldm.audio.phase_prior import integrated_phase
    from audioldm.config import ConfigError
    from audioldm.models.istft_vocoder import IstftVocoder
    from audioldm.models.vocoder import build_vocoder

    config = load_config(DEMO, ["data.train_manifest=x", *ANCHORED, "model.istft_phase_prior=true"])
    vocoder = build_vocoder(VocoderConfig(**config.model), MelConfig())
    log_mel = torch.randn(2, 1, 20, 64, generator=torch.Generator().manual_seed(0)) - 4
    log_magnitude, phase = vocoder.predict(log_mel)
    anchor = vocoder.anchor(log_mel)
    torch.testing.assert_close(log_magnitude, anchor.clamp(max=10.0))
    torch.testing.assert_close(phase, integrated_phase(anchor, 160, 1024))
    assert float(phase.detach().diff(dim=-1).abs().mean()) > 0.1  # the phase advances from frame to frame
    with pytest.raises(ValueError, match="istft_phase_prior needs model.istft_mel_anchor"):
        IstftVocoder(64, 160, n_fft=1024, phase_prior=True)
    with pytest.raises(ConfigError, match="model.istft_phase_prior"):
        load_config(DEMO, ["data.train_manifest=x", "model.istft_phase_prior=true"])  # HiFi-GAN


@pytest.mark.slow
def test_mel_anchored_istft_learns_a_fixed_batch_and_reloads(tmp_path):
    """Mel L1 + multi-resolution STFT through 4 projections lower the mel L1 of a tone mixture; the
    checkpoint reloads (the anchor's pseudo-inverse is rebuilt from the mel settings, not stored)."""
    from audioldm.assembly.parts import load_part
    from tests.ldm_fixtures import write_stage_checkpoint

    before, after = fit_fixed_batch(
        ["model.stft_weight=1.0", "model.disc_start=1000", *ANCHORED, "model.istft_phase_iters=4"], (220.0, 1320.0), 30
    )
    assert after < 0.8 * before
    path = write_stage_checkpoint("hifigan", tmp_path / "anchored.ckpt", extra=(*ANCHORED, "model.istft_phase_iters=2"))
    part = load_part(path, "vocoder", MelConfig())
    loaded = part.network
    assert loaded.anchored and loaded.phase_iters == 2 and "inverse_basis" not in loaded.state_dict()
    log_mel = torch.randn(1, 1, 12, 64)
    torch.testing.assert_close(loaded(log_mel), load_stage(path, stage="vocoder")(log_mel))


def test_spectrum_losses_on_hand_computed_cases():
    """anti_wrap, the three phase losses and the amplitude loss on values worked out by hand."""
    from audioldm.losses.spectrum import amplitude_loss, anti_wrap, phase_losses

    pi = math.pi
    x = torch.tensor([0.0, 2 * pi, pi / 2, -pi / 2, 3 * pi / 2, -7 * pi / 2, 0.9 * pi])
    torch.testing.assert_close(anti_wrap(x), torch.tensor([0.0, 0.0, pi / 2, pi / 2, pi / 2, pi / 2, 0.9 * pi]))
    real = torch.zeros(1, 2, 3)  # [B, F, T]
    fake = torch.tensor([[[0.0, pi / 2, 2 * pi], [pi, 0.0, -pi / 2]]])
    ip, gd, iaf = phase_losses(fake, real)
    # ip: |0|, pi/2, 0 | pi, 0, pi/2 -> 2 pi / 6
    assert float(ip) == pytest.approx(2 * pi / 6)
    # gd (along F): pi - 0, 0 - pi/2, -pi/2 - 2 pi (= -5 pi / 2 -> pi/2) -> (pi + pi/2 + pi/2) / 3
    assert float(gd) == pytest.approx(2 * pi / 3)
    # iaf (along T): pi/2, 3 pi/2 (-> pi/2) | -pi, -pi/2 -> (pi/2 + pi/2 + pi + pi/2) / 4
    assert float(iaf) == pytest.approx(2.5 * pi / 4)
    assert all(float(v) == 0 for v in phase_losses(real + 2 * pi, real))
    spec = torch.polar(torch.tensor([[[1.0, 0.0]]]), torch.zeros(1, 1, 2))  # magnitudes 1 and 0 (-> the floor)
    # log 2 - log 1 = log 2; -20 and log(0) both clamp to log(1e-5): 0
    assert float(amplitude_loss(torch.tensor([[[math.log(2.0), -20.0]]]), spec)) == pytest.approx(math.log(2.0) / 2)


def test_centred_stft_has_the_mel_front_ends_frames():
    """At the mel's n_fft and hop, |centred_stft| is exactly the magnitude MelFrontEnd computes its mels from."""
    from audioldm.losses.spectrum import centred_stft

    front_end = MelFrontEnd(MelConfig())
    wave = torch.randn(2, 6400, generator=torch.Generator().manual_seed(0))
    expected = front_end.magnitude(wave)
    spec = centred_stft(wave, 1024, 160, expected.shape[-1])
    assert spec.shape == expected.shape == (2, 513, 40)
    torch.testing.assert_close(spec.abs(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_spectrum_losses_train_the_istft_generator_and_need_it():
    """amplitude_weight and phase_weight are logged, and on a fixed batch of two tones they end lower than the
    same run without them: the amplitude inside a mel band, and the phase's group delay (a frame-rate network
    cannot make a stationary tone's absolute phase advance from frame to frame, so the instantaneous phase
    stays near chance). They are refused for HiFi-GAN before training starts."""
    from audioldm.config import ConfigError
    from audioldm.losses.spectrum import amplitude_loss, centred_stft, phase_losses

    t = torch.arange(6400) / 16000
    wave = torch.stack([0.4 * torch.sin(2 * torch.pi * f * t) for f in (220.0, 1320.0)])
    batch = {"waveform": wave, "log_mel": MelFrontEnd(MelConfig())(wave)}
    logged = {}

    def trained(weight: float) -> tuple[float, float, float, float]:
        """(amplitude, group delay) losses before and after 30 batches with both weights at ``weight``."""
        torch.manual_seed(0)
        module = VocoderModule(
            load_config(
                DEMO,
                [
                    "data.train_manifest=x",
                    "optim.lr=2e-3",
                    "model.disc_start=1000",
                    *ANCHORED,
                    f"model.amplitude_weight={weight}",
                    f"model.phase_weight={weight}",
                ],
            )
        )
        module.log_dict = lambda values, **kwargs: logged.update(values)

        def losses() -> tuple[float, float]:
            with torch.no_grad():
                _, (log_magnitude, phase) = module.vocoder.synthesize(batch["log_mel"])
                target = centred_stft(wave, 1024, 160, phase.shape[-1])
                return float(amplitude_loss(log_magnitude, target)), float(phase_losses(phase, target.angle())[1])

        before = losses()
        trainer = pl.Trainer(
            accelerator="cpu",
            max_steps=2 * 30,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(module, train_dataloaders=DataLoader([batch] * 30, batch_size=None))
        return (*before, *losses())

    amplitude_0, delay_0, amplitude_on, delay_on = trained(1.0)
    assert {"train/amplitude", "train/phase_ip", "train/phase_gd", "train/phase_iaf"} <= set(logged)
    _, _, amplitude_off, delay_off = trained(0.0)
    # measured: amplitude 1.47 -> 1.33 with the losses; group delay 1.70 -> 1.65
    assert amplitude_on < amplitude_0 and amplitude_on < amplitude_off
    assert delay_on < delay_0 and delay_on < delay_off
    with pytest.raises(ConfigError, match="model.phase_weight=1.0 needs model.generator=istft"):
        load_config(DEMO, ["data.train_manifest=x", "model.phase_weight=1.0"])
