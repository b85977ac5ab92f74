"""Latent consistency distillation (LCM, Luo et al. 2023) on AudioLDM's schedule: the guidance-scale
embedding, the coarse grid the teacher's DDIM solver steps over, and the loss of one batch.

Guidance convention: ``guidance`` W is classifier-free guidance as everywhere in this repo,
e_u + W (e_c - e_u) (1 = the conditional prediction alone); the student is told w = W - 1 through LCM's
sinusoidal embedding E(w * 1000) minus E(0), so that W = 1 embeds the zero vector: the unguided
student is the UNet without its guidance input, whatever the embedding's weights.

One batch (x_0 [B, C, T', F'], condition c [B, D]):
  n ~ U{0..N-1}, s = grid[n] (grid = k-1, 2k-1, ..., 999 with k = 1000 / N), t = max(s - k, 0)
  x_s = sqrt(a_s) x_0 + sqrt(1 - a_s) e
  student:  f(x_s, s) = c_skip(s) x_s + c_out(s) x0_hat(x_s, student eps)      (gradient flows here)
  teacher:  eps_W = e_u + W (e_c - e_u), x0_W likewise; x_t = sqrt(a_t) x0_W + sqrt(1 - a_t) eps_W  (DDIM)
  target:   f(x_t, t) with the target network (the EMA of the student), no gradient
  loss = mean(sqrt((f_s - f_t)^2 + c^2) - c)  (pseudo-Huber; "l2": mean squared error)
c_skip(t) = 0.25 / ((10 t)^2 + 0.25), c_out(t) = 10 t / sqrt((10 t)^2 + 0.25): diffusers
``LCMScheduler``'s boundary scalings (f(x, 0) = x), taken from it so sampling and training agree.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import torch
from diffusers.models.embeddings import get_timestep_embedding

from audioldm.diffusion.guidance import Denoiser, expand_null
from audioldm.diffusion.schedule import make_scheduler

# eps(x_t [B, C, T', F'], t [B], condition [B, D], guidance [B]) of a guidance-embedded network
GuidedDenoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES = ("huber", "l2")


def guidance_embedding(guidance: torch.Tensor, dim: int) -> torch.Tensor:
    """guidance W [B] -> [B, dim]: E((W - 1) * 1000) - E(0), E the sin/cos embedding at LCM's frequencies
    (diffusers' timestep embedding with ``downscale_freq_shift=1``, sin first); zero at W = 1."""
    w = torch.cat([(guidance.float().reshape(-1) - 1.0) * 1000.0, guidance.new_zeros(1, dtype=torch.float32)])
    embedding = get_timestep_embedding(w, dim, flip_sin_to_cos=False, downscale_freq_shift=1)
    return embedding[:-1] - embedding[-1:]


def solver_grid(steps: int, train_steps: int = 1000) -> torch.Tensor:
    """The N = ``steps`` timesteps the teacher's solver visits: k-1, 2k-1, ..., train_steps-1 with
    k = train_steps // N (the same grid ``LCMScheduler`` samples from with ``original_inference_steps=N``)."""
    if not 1 <= steps <= train_steps:
        raise ValueError(f"the solver grid needs 1..{train_steps} steps, got {steps}")
    k = train_steps // steps
    return torch.arange(1, steps + 1) * k - 1


@lru_cache(maxsize=1)
def _lcm_scheduler():
    """One LCMScheduler for the scalings (built once: they are needed four times per training step)."""
    return make_scheduler("lcm")


def boundary_scalings(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(c_skip, c_out) [B] at integer timesteps t [B], as ``LCMScheduler`` computes them."""
    return _lcm_scheduler().get_scalings_for_boundary_condition_discrete(t.float())


def _bc(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


def predicted_x0(x: torch.Tensor, eps: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t), with a_t broadcastable to x [B, ...]."""
    return (x - (1 - a).sqrt() * eps) / a.sqrt()


def consistency_function(
    x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, alphas_cumprod: torch.Tensor
) -> torch.Tensor:
    """f(x_t, t) = c_skip(t) x_t + c_out(t) x0_hat(x_t, eps); [B, ...]."""
    skip, out = boundary_scalings(t)
    x0 = predicted_x0(x, eps, _bc(alphas_cumprod[t], x))
    return _bc(skip.to(x.device), x) * x + _bc(out.to(x.device), x) * x0


def consistency_loss(
    student: GuidedDenoiser,
    target: GuidedDenoiser,
    teacher: Denoiser,
    x0: torch.Tensor,
    condition: torch.Tensor,
    null_condition: torch.Tensor,
    guidance: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    grid_steps: int = 50,
    loss: str = "huber",
    huber_c: float = 0.001,
    generator: torch.Generator | None = None,
    index: torch.Tensor | None = None,
) -> torch.Tensor:
    """The LCM distillation loss of one batch (see the module docstring). x0 [B, C, T', F'], condition
    [B, D], null_condition [D], guidance W [B]; ``index`` [B] pins the grid positions n (else drawn)."""
    if loss not in LOSSES:
        raise ValueError(f"unknown consistency loss {loss!r} (one of {', '.join(LOSSES)})")
    b, device = x0.shape[0], x0.device
    train_steps = alphas_cumprod.shape[0]
    grid = solver_grid(grid_steps, train_steps).to(device)
    if index is None:
        index = torch.randint(0, grid_steps, (b,), device=device, generator=generator)
    s = grid[index]
    t = (s - train_steps // grid_steps).clamp(min=0)
    noise = torch.randn(x0.shape, device=device, dtype=x0.dtype, generator=generator)
    a_s, a_t = _bc(alphas_cumprod[s], x0), _bc(alphas_cumprod[t], x0)
    x_s = a_s.sqrt() * x0 + (1 - a_s).sqrt() * noise
    predicted = consistency_function(x_s, s, student(x_s, s, condition, guidance).float(), alphas_cumprod)
    with torch.no_grad():
        null = expand_null(null_condition, condition)
        both = teacher(torch.cat([x_s, x_s]), torch.cat([s, s]), torch.cat([condition, null])).float()
        eps_c, eps_u = both.chunk(2)
        w = _bc(guidance.to(device), x0)
        eps_w = eps_u + w * (eps_c - eps_u)
        x0_c, x0_u = predicted_x0(x_s, eps_c, a_s), predicted_x0(x_s, eps_u, a_s)
        x0_w = x0_u + w * (x0_c - x0_u)
        x_t = a_t.sqrt() * x0_w + (1 - a_t).sqrt() * eps_w  # the teacher's DDIM step s -> t
        wanted = consistency_function(x_t, t, target(x_t, t, condition, guidance).float(), alphas_cumprod)
    diff = predicted.float() - wanted.float()
    if loss == "l2":
        return diff.pow(2).mean()
    return (torch.sqrt(diff.pow(2) + huber_c**2) - huber_c).mean()
