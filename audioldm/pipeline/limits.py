"""The ranges generate.py and the web app (``audioldm/pipeline/jobs.py``) accept, checked before any work.

Duration: the UNet has no length limit of its own (convolutions, and self-attention without positions),
so any length runs, but AudioLDM learns from 10.24 s clips and the self-attention's time and memory grow
with the square of the length (1 s = 25 latent frames): a clip of S seconds costs about (S / 10.24)^2
times a 10.24 s one per attention layer. ``MAX_SECONDS`` (30 s, ~9x a 10.24 s clip) is the default bound;
``--max-duration`` raises it.
"""
from __future__ import annotations

import math

MAX_SECONDS = 30.0
TRAINED_SECONDS = 10.24  # AudioLDM's training segment
GUIDANCE = (0.0, 100.0)  # e_u + w (e_c - e_u): 0 = unconditional, 1 = no guidance
ETA = (0.0, 1.0)  # DDIM: 0 = deterministic, 1 = DDPM-like (AudioLDM's setting)


def check_number(name: str, value: float | None, low: float, high: float) -> float:
    """``value`` as a float if it is a finite number in [low, high], else ``ValueError`` naming ``name``."""
    if value is None or not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must be from {low:g} to {high:g}, got {'nothing' if value is None else value}")
    return float(value)


def check_duration(seconds: float | None, max_seconds: float = MAX_SECONDS, name: str = "--duration",
                   raise_with: str = "--max-duration") -> float:
    """``seconds`` if 0 < seconds <= ``max_seconds``, else ``ValueError`` saying why the bound is there."""
    if seconds is not None and math.isfinite(seconds) and 0 < seconds <= max_seconds:
        return float(seconds)
    got = "nothing" if seconds is None else f"{seconds:g} s"
    why = ""
    if seconds is not None and seconds > max_seconds:
        cost = (seconds / TRAINED_SECONDS) ** 2 if math.isfinite(seconds) else math.inf
        why = (f" (the model learned {TRAINED_SECONDS:g} s clips and its self-attention's time and memory grow "
               f"with the square of the length: this one would cost ~{cost:,.0f}x a {TRAINED_SECONDS:g} s clip; "
               f"raise the bound with {raise_with})")
    raise ValueError(f"{name} must be more than 0 and at most {max_seconds:g} s, got {got}{why}")


def resolve_device(name: str) -> str:
    """"auto" -> "cuda" when torch sees a GPU, else "cpu"; any other name must be a device torch has here,
    else ``ValueError`` (one line)."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {name!r}: not a device name (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: torch sees no CUDA GPU on this machine; use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"--device {name}: this machine has {count} CUDA GPU(s) (cuda:0 to cuda:{count - 1})")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"--device {name}: torch sees no Apple GPU (MPS) on this machine; use --device cpu")
    elif device.type != "cpu":
        raise ValueError(f"--device {name}: not supported (use auto, cpu, cuda, cuda:N or mps)")
    return name
