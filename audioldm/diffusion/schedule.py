"""AudioLDM's noise schedule and samplers, as diffusers schedulers used standalone.

T = 1000 steps, betas sqrt-linear from 0.0015 to 0.0195 (diffusers ``scaled_linear``: beta_t =
(sqrt(b0) + t/(T-1) (sqrt(b1) - sqrt(b0)))^2), epsilon prediction. ``make_scheduler`` gives the
training scheduler (DDPM, for ``add_noise``) or a sampler: DDIM (AudioLDM's), DPM-Solver++, or LCM
(multistep consistency sampling for a consistency-distilled UNet, ``stage: lcm``; its timesteps come from
the ``LCM_GRID``-step grid the distillation's solver used).
"""

from __future__ import annotations

import functools

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, LCMScheduler

from audioldm.diffusion.names import LCM_GRID, SAMPLERS  # noqa: F401 (re-exported)

SCHEDULE = dict(
    num_train_timesteps=1000,
    beta_start=0.0015,
    beta_end=0.0195,
    beta_schedule="scaled_linear",
    prediction_type="epsilon",
)
PREDICTION_TYPES = ("epsilon", "v_prediction")  # what a UNet outputs (UnetConfig.prediction_type)


def make_scheduler(kind: str = "ddim"):
    """``"ddpm"`` (training / add_noise), ``"ddim"``, ``"dpmsolver++"`` or ``"lcm"`` on AudioLDM's schedule."""
    if kind == "ddpm":
        return DDPMScheduler(**SCHEDULE, clip_sample=False)
    if kind == "ddim":
        return DDIMScheduler(**SCHEDULE, clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    if kind == "dpmsolver++":
        return DPMSolverMultistepScheduler(**SCHEDULE, algorithm_type="dpmsolver++", solver_order=2)
    if kind == "lcm":
        return LCMScheduler(
            **SCHEDULE, original_inference_steps=LCM_GRID, set_alpha_to_one=False, timestep_scaling=10.0
        )
    raise ValueError(f"unknown sampler {kind!r} (one of ddpm, {', '.join(SAMPLERS)})")


@functools.lru_cache(maxsize=1)
def _alphas_cumprod() -> torch.Tensor:
    return make_scheduler("ddpm").alphas_cumprod.clone()


def alphas_cumprod(device: torch.device | str = "cpu") -> torch.Tensor:
    """a_t = prod_{s <= t} (1 - beta_s) [T], float32, on ``device``."""
    return _alphas_cumprod().to(device)


def _a(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """a_t for timesteps t [B] (or scalar), shaped to broadcast against ``like`` [B, ...]."""
    a = alphas_cumprod(like.device)[t.long().to(like.device)].to(like.dtype)
    return a.reshape(-1, *([1] * (like.ndim - 1))) if a.dim() else a


def v_target(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """v = sqrt(a_t) e - sqrt(1 - a_t) x_0 [B, ...] (diffusers' ``get_velocity``)."""
    a = _a(t, x0)
    return a.sqrt() * noise - (1 - a).sqrt() * x0


def epsilon_from_v(v: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """e = sqrt(a_t) v + sqrt(1 - a_t) x_t [B, ...]: the epsilon a v prediction implies."""
    a = _a(t, x_t)
    return a.sqrt() * v + (1 - a).sqrt() * x_t
