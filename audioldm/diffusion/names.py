"""Sampler names and default step counts, importable without torch (command-line parsers use them)."""

from __future__ import annotations

SAMPLERS = ("ddim", "dpmsolver++", "lcm")
LCM_GRID = 50  # timesteps of the consistency distillation's solver grid (LCM's original_inference_steps)
DEFAULT_STEPS = {"ddim": 200, "dpmsolver++": 200, "lcm": 4}


def default_steps(sampler: str, steps: int | None = None) -> int:
    """``steps`` when given, else the sampler's default (200; 4 for lcm)."""
    return DEFAULT_STEPS[sampler] if steps is None else steps
