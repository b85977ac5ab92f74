"""A LAION-CLAP ``.pt`` (630k-audioset-best.pt, ...): ``text_branch.*`` and ``audio_branch.*`` keys, optionally
under ``module.`` (DDP) or ``cond_stage_model.model.``. The key rules are in ``keymaps/laion_clap.py``; the
text weights need a RoBERTa tokenizer folder (``--tokenizer``), which the file does not carry."""

from __future__ import annotations

from audioldm.formats.source import NetworkWeights, ReadOptions, Source, holds_no, prefixed, stage_config, tokenizer_for

NAME = "laion_clap"
DESCRIPTION = "a LAION-CLAP .pt"
PREFIXES = ("module.", "cond_stage_model.model.")


def detect(source: Source) -> str | None:
    bare = [k.removeprefix(PREFIXES[0]).removeprefix(PREFIXES[1]) for k in source.state]
    return "clap" if any(k.startswith(("text_branch.", "audio_branch.")) for k in bare) else None


def parts(source: Source) -> tuple[str, ...]:
    return ("clap",)


def read(source: Source, part: str, options: ReadOptions) -> NetworkWeights:
    if part != "clap":
        raise holds_no(source, part)
    return laion_clap_weights(source, options)


def laion_clap_weights(source: Source, options: ReadOptions, max_text_length: int | None = None) -> NetworkWeights:
    """The LAION-CLAP in ``source``'s state (under LAION's own names, or ``module.`` / ``cond_stage_model.model.``),
    with its tokenizer folder; ``max_text_length`` replaces LAION's 77 tokens (AudioLDM's .ckpt: 512)."""
    from audioldm.formats.keymaps.laion_clap import clap_from_laion, strip_laion_prefix

    config, converted = clap_from_laion(strip_laion_prefix(source.state))
    if max_text_length is not None:
        config.max_text_length = max_text_length
    config.tokenizer_path = tokenizer_for(source, options.tokenizer)
    return NetworkWeights(stage_config("clap", config, options.foreign_mel, source.path), prefixed(converted, "model."))
