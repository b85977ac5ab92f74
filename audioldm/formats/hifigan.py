"""A HiFi-GAN generator checkpoint (AudioLDM's 16 kHz, 64-bin vocoder): ``{"generator": state}`` or the bare
state, with ``conv_pre.*`` and ``ups.*`` keys, weight norm folded or not (``keymaps/original_hifigan.py``)."""

from __future__ import annotations

from audioldm.formats.source import NetworkWeights, ReadOptions, Source, holds_no, prefixed, stage_config

NAME = "hifigan"
DESCRIPTION = "a HiFi-GAN generator checkpoint"


def detect(source: Source) -> str | None:
    keys = list(source.state)
    has = lambda prefix: any(k.startswith(prefix) for k in keys)  # noqa: E731
    return "vocoder" if has("conv_pre.") and has("ups.") else None


def parts(source: Source) -> tuple[str, ...]:
    return ("vocoder",)


def read(source: Source, part: str, options: ReadOptions) -> NetworkWeights:
    if part != "vocoder":
        raise holds_no(source, part)
    return hifigan_weights(source, source.state, options)


def hifigan_weights(source: Source, state: dict, options: ReadOptions) -> NetworkWeights:
    """The HiFi-GAN of an original ``Generator`` state dict (``keymaps/original_hifigan.py``)."""
    from audioldm.formats.keymaps.original_hifigan import vocoder_from_original

    config, converted = vocoder_from_original(state)
    return NetworkWeights(
        stage_config("vocoder", config, options.foreign_mel, source.path), prefixed(converted, "generator.")
    )
