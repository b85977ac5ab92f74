"""The sampling loop: guided denoising of a latent with a diffusers scheduler, with the two hooks
zero-shot editing needs (AudioLDM, section 3.4):

- a shallow start (style transfer): ``init`` is noised to the schedule's step ``strength * steps``
  with the scheduler's own forward process and denoised from there; strength 0 returns ``init``.
- re-imposed observations (inpainting, super-resolution): where ``mask`` is 1, before every
  denoiser call x = q_sample(observed, t) * mask + x * (1 - mask); the kept region of the result
  is ``observed`` itself.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from diffusers import DDIMInverseScheduler
from diffusers.utils.torch_utils import randn_tensor

from audioldm.diffusion.guidance import Denoiser, guided_noise
from audioldm.diffusion.schedule import LCM_GRID, make_scheduler

Generators = torch.Generator | Sequence[torch.Generator] | None


@torch.no_grad()
def sample(
    denoiser: Denoiser,
    noise: torch.Tensor,
    condition: torch.Tensor,
    null_condition: torch.Tensor,
    steps: int = 200,
    guidance: float = 2.5,
    sampler: str = "ddim",
    eta: float = 0.0,
    generator: Generators = None,
    init: torch.Tensor | None = None,
    strength: float = 1.0,
    observed: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    callback: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Denoise ``noise`` [B, C, T', F'] into a latent of the same shape.

    ``condition`` [B, D] and ``null_condition`` [D] feed classifier-free guidance (one doubled
    batch per step). ``eta`` is DDIM's stochasticity (0: deterministic; AudioLDM used 1.0).
    ``generator`` is one generator or one per sample (then each sample's noise is its own,
    whatever the batch). ``init`` [B, C, T', F'] with ``strength`` in [0, 1] starts part-way;
    ``observed`` [B, C, T', F'] with ``mask`` (1 = keep, broadcastable) re-imposes known latents.
    ``callback(i, n)`` is called after each of the n steps. With ``sampler="lcm"`` the denoiser is a
    consistency-distilled student that was told the guidance itself: one call per step, no doubled batch,
    and ``guidance`` / ``null_condition`` are not used here.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if sampler == "lcm" and not 1 <= steps <= LCM_GRID:
        raise ValueError(f"the lcm sampler takes 1 to {LCM_GRID} steps (its distillation grid), got {steps}")
    if sampler == "lcm":
        guidance = 1.0  # built into the student
    scheduler = make_scheduler(sampler)
    scheduler.set_timesteps(steps, device=noise.device)
    timesteps = scheduler.timesteps
    if init is None:
        latent = noise * scheduler.init_noise_sigma
    else:
        begin = steps - int(round(strength * steps))
        timesteps = timesteps[begin:]
        if len(timesteps) == 0:
            return init.clone()
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(begin)
        latent = scheduler.add_noise(init, noise, timesteps[:1].repeat(init.shape[0]))
    extra = {"eta": eta, "generator": generator} if sampler == "ddim" else {"generator": generator}
    for i, t in enumerate(timesteps):
        if mask is not None:
            fresh = randn_tensor(observed.shape, generator=generator, device=observed.device, dtype=observed.dtype)
            known = scheduler.add_noise(observed, fresh, t.reshape(1).repeat(observed.shape[0]))
            latent = known * mask + latent * (1 - mask)
        model_input = scheduler.scale_model_input(latent, t)
        eps = guided_noise(denoiser, model_input, t.reshape(()), condition, null_condition, guidance)
        latent = scheduler.step(eps, t, latent, **extra).prev_sample
        if callback is not None:
            callback(i + 1, len(timesteps))
    if mask is not None:
        latent = observed * mask + latent * (1 - mask)
    return latent


@torch.no_grad()
def ddim_invert(
    denoiser: Denoiser,
    latent: torch.Tensor,
    condition: torch.Tensor,
    null_condition: torch.Tensor,
    steps: int = 50,
    guidance: float = 1.0,
) -> torch.Tensor:
    """Deterministic DDIM run backwards: a clean latent x_0 [B, C, T', F'] -> the noise x_T that
    DDIM with eta 0 (same steps and guidance) maps back to approximately x_0."""
    scheduler = DDIMInverseScheduler.from_config(make_scheduler("ddim").config)
    scheduler.set_timesteps(steps, device=latent.device)
    for t in scheduler.timesteps:
        eps = guided_noise(denoiser, latent, t.reshape(()), condition, null_condition, guidance)
        latent = scheduler.step(eps, t, latent).prev_sample
    return latent
