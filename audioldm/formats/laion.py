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
    from audioldm.formats.keymaps.laion_clap import clap_from_laion, strip_laion_prefix

    if part != "clap":
        raise holds_no(source, part)
    config, converted = clap_from_laion(strip_laion_prefix(source.state))
    config.tokenizer_path = tokenizer_for(source, options.tokenizer)
    return NetworkWeights(stage_config("clap", config, options.foreign_mel, source.path), prefixed(converted, "model."))
