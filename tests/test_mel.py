"""The mel front-end equals AudioLDM's reference computation, written with librosa."""

import librosa
import numpy as np
import pytest
import torch

from audioldm.audio.mel import MelConfig, MelFrontEnd, normalize_waveform


def librosa_log_mel(wave: np.ndarray, c: MelConfig) -> np.ndarray:
    """AudioLDM's recipe in numpy/librosa: reflect pad, centre-less STFT, slaney mel, log."""
    padded = np.pad(wave, (c.pad, c.pad), mode="reflect")
    magnitude = np.abs(
        librosa.stft(
            padded, n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.win_length, window="hann", center=False
        )
    )
    basis = librosa.filters.mel(sr=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.f_min, fmax=c.f_max)
    return np.log(np.maximum(basis @ magnitude, c.log_floor)).T  # [T, n_mels]


def test_filterbank_equals_librosa():
    c = MelConfig()
    ours = MelFrontEnd(c).mel_basis.numpy()
    ref = librosa.filters.mel(sr=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.f_min, fmax=c.f_max)
    assert ours.shape == ref.shape == (64, 513)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("seconds", [1.0, 10.24])
def test_log_mel_equals_librosa_on_random_audio(seconds):
    c = MelConfig()
    n = c.samples_for_seconds(seconds)
    rng = np.random.default_rng(0)
    wave = normalize_waveform(torch.from_numpy(rng.standard_normal(n).astype(np.float32))).numpy()
    ours = MelFrontEnd(c)(torch.from_numpy(wave))
    assert ours.shape == (1, 1, n // c.hop_length, 64)
    ref = librosa_log_mel(wave.astype(np.float64), c)
    np.testing.assert_allclose(ours[0, 0].numpy(), ref, atol=2e-4, rtol=1e-4)


def test_ten_seconds_gives_1024_frames_and_batches():
    c = MelConfig()
    wave = torch.randn(3, c.samples_for_seconds(10.24)) * 0.1
    out = MelFrontEnd(c)(wave)
    assert out.shape == (3, 1, 1024, 64)
    assert c.frames_for(wave.shape[-1]) == 1024


def test_silence_is_log_floor():
    out = MelFrontEnd()(torch.zeros(16000))
    assert torch.allclose(out, torch.full_like(out, np.log(1e-5)))


def test_normalize_waveform_zero_mean_peak_half():
    wave = torch.randn(2, 4000) * 3 + 1
    out = normalize_waveform(wave)
    assert torch.allclose(out.mean(-1), torch.zeros(2), atol=1e-6)
    assert torch.allclose(out.abs().amax(-1), torch.full((2,), 0.5), atol=1e-6)


def test_griffin_lim_preview_is_aligned_and_sized():
    c = MelConfig()
    t = torch.arange(c.samples_for_seconds(1.0)) / c.sample_rate
    wave = 0.5 * torch.sin(2 * torch.pi * 440 * t) * (t > 0.5)  # tone switches on at 0.5 s
    front = MelFrontEnd(c)
    log_mel = front(wave)
    recon = front.griffin_lim(log_mel, n_iter=16)
    assert recon.shape == (1, wave.shape[-1])
    # the onset is reproduced where it was (within two hops), and the spectrum matches roughly
    energy = recon[0].abs().unfold(0, 160, 160).mean(-1)
    onset = int(torch.nonzero(energy > 0.5 * energy.max())[0]) * 160
    assert abs(onset - 8000) <= 320
    assert (front(recon) - log_mel).abs().mean() < 1.0
