"""Which training stages exist, and the dataclass each one's ``model:`` section must match."""
from __future__ import annotations

KNOWN_STAGES = ("clap", "vae", "vocoder", "ldm")
IMPLEMENTED_STAGES = ("clap", "vae", "vocoder")


class StageNotImplementedError(NotImplementedError):
    pass


def model_config_class(stage: str) -> type:
    """The ``model:`` schema for ``stage``; raises for a known stage that is not built yet.

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
    raise StageNotImplementedError(
        f"stage '{stage}' is not implemented yet (implemented: {', '.join(IMPLEMENTED_STAGES)})"
    )
