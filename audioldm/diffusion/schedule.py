"""AudioLDM's noise schedule and samplers, as diffusers schedulers used standalone.

T = 1000 steps, betas sqrt-linear from 0.0015 to 0.0195 (diffusers ``scaled_linear``: beta_t =
(sqrt(b0) + t/(T-1) (sqrt(b1) - sqrt(b0)))^2), epsilon prediction. ``make_scheduler`` gives the
training scheduler (DDPM, for ``add_noise``) or a sampler: DDIM (AudioLDM's) or DPM-Solver++.
"""
from __future__ import annotations

from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear",
                prediction_type="epsilon")
SAMPLERS = ("ddim", "dpmsolver++")


def make_scheduler(kind: str = "ddim"):
    """``"ddpm"`` (training / add_noise), ``"ddim"`` or ``"dpmsolver++"`` on AudioLDM's schedule."""
    if kind == "ddpm":
        return DDPMScheduler(**SCHEDULE, clip_sample=False)
    if kind == "ddim":
        return DDIMScheduler(**SCHEDULE, clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    if kind == "dpmsolver++":
        return DPMSolverMultistepScheduler(**SCHEDULE, algorithm_type="dpmsolver++", solver_order=2)
    raise ValueError(f"unknown sampler {kind!r} (one of ddpm, {', '.join(SAMPLERS)})")
