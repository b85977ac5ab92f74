"""The magnitude-implied phase (audioldm/audio/phase_prior.py) against a sinusoid's true phase, and fast
Griffin-Lim from a given phase against torchaudio's."""

import math

import pytest
import torch
import torchaudio.functional as AF

from audioldm.audio.phase_prior import fast_griffin_lim, instantaneous_frequency, integrated_phase

N_FFT, HOP = 1024, 160


def stft(wave: torch.Tensor) -> torch.Tensor:
    return torch.stft(
        wave,
        N_FFT,
        HOP,
        N_FFT,
        torch.hann_window(N_FFT, dtype=wave.dtype),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )


@pytest.mark.parametrize("bin_position", [40.3, 40.5, 97.7])
def test_instantaneous_frequency_of_a_sinusoid_between_bins(bin_position):
    """In the two bins of its peak the estimate is a stationary sinusoid's frequency (radians per hop) within
    0.07, where the bins' centres are off by up to half a bin (0.49); the next bins out are closer than their
    centres too. Away from the clip's edges."""
    t = torch.arange(16000, dtype=torch.float64)
    spec = stft(torch.cos(2 * math.pi * bin_position / N_FFT * t + 0.4))
    advance = instantaneous_frequency(spec.abs().log(), HOP, N_FFT)[:, 10:-10]  # [F, T]
    true = 2 * math.pi * bin_position * HOP / N_FFT
    low = math.floor(bin_position)
    for m in (low - 1, low, low + 1, low + 2):
        error = float((advance[m] - true).abs().max())
        centre_error = abs(2 * math.pi * m * HOP / N_FFT - true)
        assert error < (0.07 if m in (low, low + 1) else centre_error / 2), (m, error, centre_error)


def test_instantaneous_frequency_at_a_bin_centre_and_next_to_the_windows_zeros():
    """A sinusoid on a bin centre: exact in its bin; its neighbours sit next to zeros of the Hann spectrum, where
    the slope is meaningless, and the correction stops at 2 bins."""
    t = torch.arange(16000, dtype=torch.float64)
    spec = stft(torch.cos(2 * math.pi * 40 / N_FFT * t))
    advance = instantaneous_frequency(spec.abs().log(), HOP, N_FFT)[:, 10:-10]
    true = 2 * math.pi * 40 * HOP / N_FFT
    assert float((advance[40] - true).abs().max()) < 1e-6
    bin_step = 2 * math.pi * HOP / N_FFT
    for m in (38, 39, 41, 42):
        assert float((advance[m] - bin_step * m).abs().max()) <= 2 * bin_step + 1e-9


def test_integrated_phase_follows_the_true_phase_of_a_sinusoid():
    t = torch.arange(16000, dtype=torch.float64)
    spec = stft(torch.cos(2 * math.pi * 55.4 / N_FFT * t))
    phase = integrated_phase(spec.abs().log()[None], HOP, N_FFT)[0]
    start = 2 * math.pi * torch.rand(513, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(phase[:, 0], start)  # a fixed random phase per bin
    assert not torch.equal(integrated_phase(spec.abs().log()[None], HOP, N_FFT, seed=1)[0, :, 0], start)
    true = torch.angle(spec[55, 10:-10])
    # nearly the same advance frame to frame: the difference to the true phase grows by under 0.015 rad a frame,
    # where the bin's centre frequency alone drifts by 0.39 rad a frame
    drift = torch.angle(torch.exp(1j * (phase[55, 10:-10] - true)) * torch.exp(-1j * (phase[55, 10] - true[0])))
    steps = torch.arange(len(drift), dtype=drift.dtype)
    assert float((drift.abs() / steps.clamp(min=1)).max()) < 0.015


def test_instantaneous_frequency_refuses_a_wrong_bin_count():
    with pytest.raises(ValueError, match="n_fft 1024 needs 513"):
        instantaneous_frequency(torch.zeros(1, 512, 4), HOP, N_FFT)


def test_fast_griffin_lim_keeps_the_magnitude_and_matches_torchaudio_from_zero_phase():
    torch.manual_seed(0)
    wave = torch.randn(2, 8000, dtype=torch.float64)
    spec = stft(wave)
    window = torch.hann_window(N_FFT, dtype=torch.float64)
    torch.testing.assert_close(fast_griffin_lim(spec, 0, N_FFT, HOP, window, 8000), spec)
    out = fast_griffin_lim(spec.abs().to(spec.dtype), 8, N_FFT, HOP, window, 8000)
    torch.testing.assert_close(out.abs(), spec.abs(), atol=1e-4, rtol=1e-5)
    ours = torch.istft(out, N_FFT, HOP, N_FFT, window, center=True, length=8000)
    reference = AF.griffinlim(
        spec.abs(), window, N_FFT, HOP, N_FFT, power=1.0, n_iter=8, momentum=0.99, length=8000, rand_init=False
    )
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=1e-5)
