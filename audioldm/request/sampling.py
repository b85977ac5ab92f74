"""The sampling settings every request shares: validated against ``limits.py``, turned into the pipeline's
``SamplingOptions`` and written as generate.py flags (``arguments.py`` declares them for the command lines)."""

from __future__ import annotations

from dataclasses import dataclass

from audioldm.diffusion.names import LCM_GRID, SAMPLERS, default_steps
from audioldm.request.limits import CANDIDATES, ETA, GUIDANCE, SEED, STEPS, RequestError, check_number, check_whole


@dataclass
class Sampling:
    """``steps`` None: the sampler's default (200; 4 for lcm)."""

    negative: str = ""
    steps: int | None = None
    sampler: str = "ddim"
    guidance: float = 2.5
    eta: float = 1.0
    seed: int = 0
    candidates: int = 1
    batch_size: int = 8

    def validate(self) -> "Sampling":
        """The same settings with every value checked and typed (``RequestError`` names the first bad one)."""
        if self.sampler not in SAMPLERS:
            raise RequestError(f"--sampler {self.sampler!r} is unknown (one of {', '.join(SAMPLERS)})")
        steps = default_steps(self.sampler, self.steps)
        if self.sampler == "lcm":  # its timesteps come from the distillation's solver grid
            steps = check_whole(
                f"--steps (with --sampler lcm: the {LCM_GRID}-step grid it was distilled on)", steps, 1, LCM_GRID
            )
        return Sampling(
            negative=(self.negative or "").strip(),
            steps=check_whole("--steps", steps, *STEPS),
            sampler=self.sampler,
            guidance=check_number("--guidance", self.guidance, *GUIDANCE),
            eta=check_number("--eta", self.eta, *ETA),
            seed=check_whole("--seed", self.seed, *SEED),
            candidates=check_whole("--candidates", self.candidates, *CANDIDATES),
            batch_size=check_whole("--batch-size", self.batch_size, 1),
        )

    def options(self):
        """The pipeline's ``SamplingOptions`` (validated first)."""
        from audioldm.pipeline.text_to_audio import SamplingOptions

        s = self.validate()
        return SamplingOptions(
            steps=s.steps,
            sampler=s.sampler,
            guidance=s.guidance,
            eta=s.eta,
            seed=s.seed,
            n_candidates=s.candidates,
            batch_size=s.batch_size,
            negative=s.negative,
        )

    def flags(self) -> list[str]:
        """The generate.py flags that give the same sampling."""
        s = self.validate()
        flags = [
            "--steps",
            str(s.steps),
            "--sampler",
            s.sampler,
            "--guidance",
            f"{s.guidance:g}",
            "--eta",
            f"{s.eta:g}",
            "--seed",
            str(s.seed),
            "--candidates",
            str(s.candidates),
        ]
        return flags + (["--negative", s.negative] if s.negative else [])
