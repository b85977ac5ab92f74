"""The generation pipeline on a tiny random checkpoint (CPU): text to audio, seeds, candidates,
style transfer, inpainting, super-resolution, DDIM inversion and the editing masks."""

from __future__ import annotations

import pytest
import torch

from audioldm.audio.mel import MelConfig, normalize_waveform
from audioldm.diffusion.sampler import ddim_invert, sample
from audioldm.diffusion.schedule import make_scheduler
from audioldm.pipeline.masks import band_mask, mel_bin_centres, time_mask
from audioldm.pipeline.text_to_audio import SamplingOptions, TextToAudio

FAST = SamplingOptions(steps=3, sampler="dpmsolver++", seed=7)


@pytest.fixture(scope="module")
def pipe(tiny_ldm_checkpoint) -> TextToAudio:
    return TextToAudio.from_checkpoint(str(tiny_ldm_checkpoint))


def source_clip(seconds: float = 1.28) -> torch.Tensor:
    t = torch.arange(int(seconds * 16000)) / 16000
    return 0.3 * torch.sin(2 * torch.pi * 440 * t) * (1 + torch.sin(2 * torch.pi * 3 * t))


@pytest.mark.slow
def test_text_to_audio_shapes_and_length(pipe):
    result = pipe.text_to_audio(["a dog barks", "rain"], seconds=0.7, options=FAST)
    # 0.7 s = 70 frames, rounded up to 72 (a multiple of the VAE's 4); the waveform is cut to 0.7 s
    assert result.waveform.shape == (2, 11200) and result.log_mel.shape == (2, 1, 72, 64)
    assert result.latent.shape == (2, 8, 18, 16) and torch.isfinite(result.waveform).all()
    assert result.texts == ["a dog barks", "rain"] and result.clap_score is None


@pytest.mark.slow
def test_seeded_and_independent_of_the_batch(pipe):
    both = pipe.text_to_audio(["a dog barks", "rain"], 0.64, FAST)
    again = pipe.text_to_audio(["a dog barks", "rain"], 0.64, FAST)
    torch.testing.assert_close(both.waveform, again.waveform, rtol=0, atol=0)
    # output i draws from seed + i: "rain" alone with seed 8 is the second clip of the batch
    alone = pipe.text_to_audio(["rain"], 0.64, SamplingOptions(steps=3, sampler="dpmsolver++", seed=8))
    torch.testing.assert_close(alone.latent[0], both.latent[1], rtol=1e-3, atol=1e-4)  # batched float sums
    split = pipe.text_to_audio(
        ["a dog barks", "rain"], 0.64, SamplingOptions(steps=3, sampler="dpmsolver++", seed=7, batch_size=1)
    )
    torch.testing.assert_close(split.latent, both.latent, rtol=1e-3, atol=1e-4)
    other_seed = pipe.text_to_audio(["a dog barks"], 0.64, SamplingOptions(steps=3, sampler="dpmsolver++", seed=1))
    assert not torch.allclose(other_seed.latent[0], both.latent[0])


@pytest.mark.slow
def test_candidates_are_ranked_by_clap(pipe):
    options = SamplingOptions(steps=2, sampler="dpmsolver++", seed=3, n_candidates=3)
    best = pipe.text_to_audio(["a dog barks", "rain"], 0.64, options)
    assert best.waveform.shape == (2, 10240) and best.clap_score.shape == (2,)
    model = pipe.model
    for k in range(3):  # candidate k of prompt i is the single draw with seed + i + 1_000_003 k
        draw = pipe.text_to_audio(
            ["a dog barks", "rain"], 0.64, SamplingOptions(steps=2, sampler="dpmsolver++", seed=3 + 1_000_003 * k)
        )
        score = (model.embed_audio(normalize_waveform(draw.waveform)) * model.embed_text(draw.texts)).sum(-1)
        assert (best.clap_score >= score - 1e-5).all()


def test_empty_prompt_and_bad_duration_are_refused(pipe):
    with pytest.raises(ValueError, match="a prompt is empty"):
        pipe.text_to_audio(["ok", " "], 0.64, FAST)
    with pytest.raises(ValueError, match="duration must be positive"):
        pipe.text_to_audio(["ok"], 0.0, FAST)


def vae_reconstruction(pipe: TextToAudio, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    latent, _, _ = pipe._encode_source(wave)
    return latent, pipe.model.decode(latent)


@pytest.mark.slow
def test_style_transfer_strength_zero_is_the_vae_reconstruction(pipe):
    wave = source_clip()
    latent, recon = vae_reconstruction(pipe, wave)
    result = pipe.style_transfer(wave, "rain", strength=0.0, options=FAST)
    torch.testing.assert_close(result.latent, latent, rtol=0, atol=0)
    torch.testing.assert_close(result.log_mel, recon, rtol=1e-5, atol=1e-5)
    moved = pipe.style_transfer(wave, "rain", strength=0.6, options=SamplingOptions(steps=5, seed=0))
    assert not torch.allclose(moved.latent, latent, atol=1e-2)


@pytest.mark.slow
def test_inpainting_keeps_the_source_outside_the_span(pipe):
    wave = source_clip(1.28)  # 128 frames -> 32 latent frames of 0.04 s
    latent, recon = vae_reconstruction(pipe, wave)
    result = pipe.inpaint(wave, "a dog barks", [(0.48, 0.8)], SamplingOptions(steps=4, seed=0))
    kept = time_mask(32, 4, MelConfig(), [(0.48, 0.8)], 1.28)[0, 0, :, 0].bool()  # frames 12-19 regenerated
    assert kept.sum() == 24 and not kept[12:20].any()
    torch.testing.assert_close(result.latent[:, :, kept], latent[:, :, kept], rtol=0, atol=0)
    assert not torch.allclose(result.latent[:, :, ~kept], latent[:, :, ~kept], atol=1e-2)
    # decoded: outside the span the output is the source up to the VAE's own error (the decoder's
    # context reaches across the span a little), while inside it the sound changes
    source_mel = pipe.model.log_mel(wave[None])[0, 0]
    vae_error = (recon[0, 0] - source_mel).abs()[kept.repeat_interleave(4)].mean()
    drift = (result.log_mel - recon).abs()[0, 0]
    kept_frames = kept.repeat_interleave(4)
    assert drift[kept_frames].mean() < 0.1 * vae_error
    assert drift[kept_frames].mean() < 0.5 * drift[~kept_frames].mean()


@pytest.mark.slow
def test_super_resolution_keeps_the_low_band(pipe):
    wave = source_clip(1.28)
    result = pipe.super_resolution(wave, "birdsong", cutoff_hz=2000, options=SamplingOptions(steps=4, seed=0))
    keep = band_mask(16, 4, MelConfig(), 2000)[0, 0, 0].bool()
    assert keep.tolist() == [True] * 9 + [False] * 7  # mel bins 0-35 lie at or below 2 kHz
    latent, _ = vae_reconstruction(pipe, lowpassed(wave, 2000))
    torch.testing.assert_close(result.latent[..., keep], latent[..., keep], rtol=0, atol=0)
    assert not torch.allclose(result.latent[..., ~keep], latent[..., ~keep], atol=1e-2)


def lowpassed(wave: torch.Tensor, cutoff: int) -> torch.Tensor:
    import torchaudio.functional as AF

    return AF.resample(AF.resample(wave, 16000, 2 * cutoff), 2 * cutoff, 16000)[: wave.numel()]


@pytest.mark.slow
def test_editing_input_errors(pipe):
    wave = source_clip(1.0)
    with pytest.raises(ValueError, match=r"span 0.5-2 s is outside the clip \(0-1 s\)"):
        pipe.inpaint(wave, "x", [(0.5, 2.0)], FAST)
    with pytest.raises(ValueError, match="strength must be in"):
        pipe.style_transfer(wave, "x", 1.5, FAST)
    with pytest.raises(ValueError, match="cutoff must be between"):
        pipe.super_resolution(wave, "x", 9000, FAST)
    with pytest.raises(ValueError, match="too short"):
        pipe.style_transfer(wave[:100], "x", 0.5, FAST)


def test_masks():
    mel = MelConfig()
    mask = time_mask(25, 4, mel, [(0.0, 0.05), (0.9, 1.0)], 1.0)[0, 0, :, 0]
    assert mask.tolist() == [0, 0] + [1] * 20 + [0] * 3  # latent frames of 0.04 s overlapping the spans
    centres = mel_bin_centres(mel)
    assert centres[0] < 60 and 7000 < centres[-1] <= 8000 and (centres.diff() > 0).all()
    # the top quarter of the 16 latent bins: the default AudioLDM super-resolution band
    assert band_mask(16, 4, mel, float(centres[47]))[0, 0, 0].tolist() == [1.0] * 12 + [0.0] * 4
    with pytest.raises(ValueError, match="keeps no latent band"):
        band_mask(16, 4, mel, 50.0)


def gaussian_denoiser(mu: float, s: float):
    """The exact epsilon-predictor for data ~ N(mu, s^2): a smooth denoiser whose DDIM ODE is exact."""
    alphas = make_scheduler("ddpm").alphas_cumprod

    def denoise(x, t, c):
        a = alphas[t.long()].view(-1, *[1] * (x.dim() - 1)).to(x)
        return (1 - a).sqrt() * (x - a.sqrt() * mu) / (a * s * s + 1 - a)

    return denoise


def test_ddim_eta_zero_is_deterministic_and_inverts_a_latent():
    denoise = gaussian_denoiser(0.5, 0.7)
    x0 = 0.5 + 0.7 * torch.randn(2, 8, 16, 16, generator=torch.Generator().manual_seed(0))
    cond, null = torch.randn(2, 512), torch.zeros(512)
    errors = []
    for steps in (10, 50):
        noise = ddim_invert(denoise, x0, cond, null, steps=steps)
        assert abs(float(noise.std()) - 1.0) < 0.1 and abs(float(noise.mean())) < 0.2  # looks like N(0, 1)
        back = sample(denoise, noise, cond, null, steps=steps, guidance=1.0, sampler="ddim", eta=0.0)
        again = sample(denoise, noise, cond, null, steps=steps, guidance=1.0, sampler="ddim", eta=0.0)
        torch.testing.assert_close(back, again, rtol=0, atol=0)
        errors.append(float((back - x0).norm() / x0.norm()))
    assert errors[1] < 0.05 and errors[1] < errors[0] / 2  # approximate, improving with steps


@pytest.mark.slow
def test_bf16_unet_stays_close_to_float32(pipe):
    """``bf16=True`` runs only the UNet under autocast: the same seeded latents to bf16 precision."""
    options = SamplingOptions(steps=4, sampler="dpmsolver++", guidance=2.5, seed=3)
    reference = pipe.text_to_audio(["a dog barks"], seconds=0.32, options=options)
    fast = TextToAudio(pipe.model, bf16=True).text_to_audio(["a dog barks"], seconds=0.32, options=options)
    assert fast.latent.dtype == torch.float32 and fast.waveform.dtype == torch.float32
    relative = (fast.latent - reference.latent).norm() / reference.latent.norm()
    assert 0 < relative < 0.05  # it did run in bf16, and stayed close
