"""Which training stages exist, and the dataclass each one's ``model:`` section must match."""
from __future__ import annotations

KNOWN_STAGES = ("clap", "vae", "vocoder", "ldm")


class StageNotImplementedError(NotImplementedError):
    pass


def model_config_class(stage: str) -> type:
    """The ``model:`` schema for ``stage``; raises for a known stage that is not built yet."""
    from audioldm.models.vae import VaeConfig  # explicit registry, no import strings

    implemented: dict[str, type] = {"vae": VaeConfig}
    if stage not in implemented:
        raise StageNotImplementedError(
            f"stage '{stage}' is not implemented yet (implemented: {', '.join(sorted(implemented))})"
        )
    return implemented[stage]
