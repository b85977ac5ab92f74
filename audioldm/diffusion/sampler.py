"""The sampling loop: guided denoising of a latent with a diffusers scheduler."""
from __future__ import annotations

import torch

from audioldm.diffusion.guidance import Denoiser, guided_noise
from audioldm.diffusion.schedule import make_scheduler


@torch.no_grad()
def sample(denoiser: Denoiser, noise: torch.Tensor, condition: torch.Tensor, null_condition: torch.Tensor,
           steps: int = 200, guidance: float = 2.5, sampler: str = "ddim", eta: float = 0.0,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Denoise ``noise`` [B, C, T', F'] into a latent of the same shape.

    ``condition`` [B, D] and ``null_condition`` [D] feed classifier-free guidance (one doubled
    batch per step). ``eta`` is DDIM's stochasticity (0: deterministic; AudioLDM used 1.0), with
    its noise drawn from ``generator``.
    """
    scheduler = make_scheduler(sampler)
    scheduler.set_timesteps(steps, device=noise.device)
    latent = noise * scheduler.init_noise_sigma
    extra = {"eta": eta, "generator": generator} if sampler == "ddim" else {"generator": generator}
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(latent, t)
        eps = guided_noise(denoiser, model_input, t.reshape(()), condition, null_condition, guidance)
        latent = scheduler.step(eps, t, latent, **extra).prev_sample
    return latent
