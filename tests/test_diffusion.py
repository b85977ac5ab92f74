"""AudioLDM's schedule and the guided sampling loop."""

from __future__ import annotations

import pytest
import torch

from audioldm.diffusion.sampler import sample
from audioldm.diffusion.schedule import make_scheduler
from audioldm.models.unet import UnetConfig, build_unet, predict_noise


def test_betas_are_sqrt_linear_from_0_0015_to_0_0195():
    expected = torch.linspace(0.0015**0.5, 0.0195**0.5, 1000, dtype=torch.float64) ** 2
    for kind in ("ddpm", "ddim", "dpmsolver++"):
        betas = make_scheduler(kind).betas.double()
        torch.testing.assert_close(betas, expected, rtol=0, atol=1e-8)
    with pytest.raises(ValueError, match="unknown sampler"):
        make_scheduler("euler")


def denoiser_and_inputs():
    torch.manual_seed(0)
    unet = build_unet(UnetConfig(model_channels=16, channel_mult=[1, 2], layers_per_block=1, head_channels=8)).eval()
    noise = torch.randn(2, 8, 16, 16)
    return (lambda x, t, c: predict_noise(unet, x, t, c)), noise, torch.randn(2, 512), torch.zeros(512)


@pytest.mark.parametrize("sampler", ["ddim", "dpmsolver++"])
def test_deterministic_sampling_repeats_exactly(sampler):
    denoiser, noise, cond, null = denoiser_and_inputs()
    a = sample(denoiser, noise, cond, null, steps=5, guidance=2.5, sampler=sampler)
    b = sample(denoiser, noise, cond, null, steps=5, guidance=2.5, sampler=sampler)
    assert a.shape == noise.shape and torch.isfinite(a).all()
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_ddim_eta_draws_from_the_generator():
    denoiser, noise, cond, null = denoiser_and_inputs()

    def run(seed: int):
        return sample(denoiser, noise, cond, null, steps=4, eta=1.0, generator=torch.Generator().manual_seed(seed))

    torch.testing.assert_close(run(1), run(1), rtol=0, atol=0)
    assert not torch.allclose(run(1), run(2))
