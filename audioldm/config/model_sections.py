"""Which training stages exist, and the dataclass each one's ``model:`` section must match."""

from __future__ import annotations

KNOWN_STAGES = ("clap", "vae", "vocoder", "ldm", "lcm")


def model_config_class(stage: str) -> type:
    """The ``model:`` schema for ``stage`` (one of ``KNOWN_STAGES``).

    Explicit registry with per-stage imports (no import strings): loading a vae config does not
    import the CLAP code and vice versa.
    """
    if stage == "vae":
        from audioldm.models.vae import VaeConfig

        return VaeConfig
    if stage == "clap":
        from audioldm.models.clap import ClapConfig

        return ClapConfig
    if stage == "vocoder":
        from audioldm.models.vocoder import VocoderConfig

        return VocoderConfig
    if stage == "ldm":
        from audioldm.models.latent_diffusion import LdmConfig

        return LdmConfig
    if stage == "lcm":
        from audioldm.models.lcm import LcmConfig

        return LcmConfig
    raise ValueError(f"unknown stage {stage!r} (one of {', '.join(KNOWN_STAGES)})")
