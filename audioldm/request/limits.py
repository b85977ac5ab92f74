"""The one set of bounds every front end (generate.py, app.py, evaluate.py) checks a request against, before any
model loads; a value out of bounds raises ``RequestError`` with one line naming the generate.py flag.

Duration: the UNet has no length limit of its own (convolutions, and self-attention without positions),
so any length runs, but AudioLDM learns from 10.24 s clips and the self-attention's time and memory grow
with the square of the length (1 s = 25 latent frames): a clip of S seconds costs about (S / 10.24)^2
times a 10.24 s one per attention layer. ``MAX_SECONDS`` (30 s, ~9x a 10.24 s clip) is the default bound;
``--max-duration`` raises it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_SECONDS = 30.0
TRAINED_SECONDS = 10.24  # AudioLDM's training segment
GUIDANCE = (0.0, 100.0)  # e_u + w (e_c - e_u): 0 = unconditional, 1 = no guidance
ETA = (0.0, 1.0)  # DDIM: 0 = deterministic, 1 = DDPM-like (AudioLDM's setting)
LORA_SCALE = (-4.0, 4.0)  # a LoRA adapter's scale: 0 = the base, 1 = as trained, negative = pushed away
STEPS = (1, 1000)  # sampling steps: at most the schedule's 1000 timesteps
CANDIDATES = (1, 16)  # draws per output, re-ranked by CLAP
SEED = (0, 2**32 - 1)  # as numpy's; clip i of a request draws from seed + i


class RequestError(ValueError):
    """A request that cannot run as given: one line, shown as it is (in the page, or after ``error:``)."""


@dataclass
class Limits:
    """What a front end allows beyond the fixed bounds above: the longest clip made or read (``--max-duration``),
    and the most clips one request makes (None: no bound; the app shows four)."""

    max_seconds: float = MAX_SECONDS
    max_clips: int | None = None

    def __post_init__(self) -> None:
        if not (
            isinstance(self.max_seconds, (int, float)) and math.isfinite(self.max_seconds) and self.max_seconds > 0
        ):
            raise RequestError(f"--max-duration must be a positive number of seconds, got {self.max_seconds}")


def check_number(name: str, value: float | None, low: float, high: float) -> float:
    """``value`` as a float if it is a finite number in [low, high], else ``RequestError`` naming ``name``."""
    if (
        value is None
        or isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and low <= value <= high)
    ):
        raise RequestError(f"{name} must be from {low:g} to {high:g}, got {_shown(value)}")
    return float(value)


def check_whole(name: str, value: float | None, low: int, high: int | None = None) -> int:
    """``value`` as an int if it is a whole number in [low, high] (no upper bound when None), else ``RequestError``."""
    ok = (
        value is not None
        and not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and value == int(value)
        and low <= value
        and (high is None or value <= high)
    )
    if not ok:
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise RequestError(f"{name} must be a whole number {bound}, got {_shown(value)}")
    return int(value)


def _shown(value) -> str:
    """A rejected value as messages show it, the same whichever front end passed it (2000.0 and 2000: 2000)."""
    if value is None:
        return "nothing"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value) if isinstance(value, int) else f"{value:g}"


def check_duration(seconds: float | None, max_seconds: float = MAX_SECONDS, name: str = "--duration") -> float:
    """``seconds`` if 0 < seconds <= ``max_seconds``, else ``RequestError`` saying why the bound is there."""
    if seconds is not None and math.isfinite(seconds) and 0 < seconds <= max_seconds:
        return float(seconds)
    got = "nothing" if seconds is None else f"{seconds:g} s"
    why = ""
    if seconds is not None and seconds > max_seconds:
        cost = (seconds / TRAINED_SECONDS) ** 2 if math.isfinite(seconds) else math.inf
        why = (
            f" (the model learned {TRAINED_SECONDS:g} s clips and its self-attention's time and memory grow "
            f"with the square of the length: this one would cost ~{cost:,.0f}x a {TRAINED_SECONDS:g} s clip; "
            f"raise the bound with --max-duration)"
        )
    raise RequestError(f"{name} must be more than 0 and at most {max_seconds:g} s, got {got}{why}")


def check_port(host: str, port: int) -> None:
    """``port`` is a TCP port number that ``host`` can listen on now (``RequestError`` naming ``--port`` else)."""
    import errno
    import socket

    check_whole("--port", port, 1, 65535)
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise RequestError(
                f"--port {port}: already in use on {host} (choose another --port, or stop what listens there)"
            ) from None
        raise RequestError(f"--port {port} on --host {host}: cannot listen there ({e.strerror or e})") from None


def resolve_device(name: str) -> str:
    """ "auto" -> "cuda" when torch sees a GPU, else "cpu"; any other name must be a device torch has here,
    else ``RequestError`` (one line)."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise RequestError(f"--device {name!r}: not a device name (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RequestError(f"--device {name}: torch sees no CUDA GPU on this machine; use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise RequestError(f"--device {name}: this machine has {count} CUDA GPU(s) (cuda:0 to cuda:{count - 1})")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise RequestError(f"--device {name}: torch sees no Apple GPU (MPS) on this machine; use --device cpu")
    elif device.type != "cpu":
        raise RequestError(f"--device {name}: not supported (use auto, cpu, cuda, cuda:N or mps)")
    return name
