"""A transformers model folder: ``ClapModel`` (kind ``clap``), ``ClapTextModelWithProjection`` (``clap_text``: the
text tower only, as a diffusers AudioLDM's ``text_encoder/``), ``SpeechT5HifiGan`` (``hifigan``) or a T5
(``t5``: its encoder is the ``crossattn_t5`` text encoder, e.g. google/flan-t5-large saved locally), told by
``config.json``'s ``model_type``. The CLAP needs a RoBERTa tokenizer folder (``--tokenizer``); the T5 its own
tokenizer, in its folder or given with ``--tokenizer``."""

from __future__ import annotations

from pathlib import Path

from audioldm.checkpoint import CheckpointError
from audioldm.formats.source import (
    NetworkWeights,
    ReadOptions,
    Source,
    folder_config,
    holds_no,
    prefixed,
    read_folder_weights,
    stage_config,
    t5_encoder_state,
    t5_part_config,
    tokenizer_for,
)
from audioldm.models.clap import ClapConfig
from audioldm.models.vocoder import VocoderConfig

NAME = "transformers"
DESCRIPTION = "a transformers CLAP or SpeechT5HifiGan folder"
MODEL_TYPES = {
    "clap": "clap",
    "clap_text_model": "clap_text",
    "hifigan": "hifigan",
    "speecht5_hifigan": "hifigan",
    "t5": "t5",
}
TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "tokenizer_config.json")


def detect(source: Source) -> str | None:
    if source.folder is None or not (source.folder / "config.json").is_file():
        return None
    return MODEL_TYPES.get(folder_config(source.folder, "model").get("model_type"))


def parts(source: Source) -> tuple[str, ...]:
    return {"hifigan": ("vocoder",), "t5": ("text_encoder",)}.get(source.kind, ("clap",))


def read(source: Source, part: str, options: ReadOptions) -> NetworkWeights:
    if part not in parts(source):
        raise holds_no(source, part)
    if part == "vocoder":
        return read_vocoder_folder(source, source.folder, options)
    if part == "text_encoder":
        return read_t5_folder(source, options)
    return read_clap_folder(source, source.folder, source.kind == "clap_text", options)


def clap_config_from_transformers(config: dict, text_only: bool) -> ClapConfig:
    """Our ClapConfig from a transformers ClapConfig (or ClapTextConfig) dict."""
    text = config.get("text_config", config)
    audio = config.get("audio_config", {})
    if audio.get("enable_fusion"):
        raise CheckpointError("fusion CLAP models are not supported (AudioLDM uses a non-fusion CLAP)")
    base = ClapConfig()
    return ClapConfig(
        projection_dim=config.get("projection_dim", text.get("projection_dim", 512)),
        text_hidden_size=text.get("hidden_size", 768),
        text_layers=text.get("num_hidden_layers", 12),
        text_heads=text.get("num_attention_heads", 12),
        text_intermediate_size=text.get("intermediate_size", 3072),
        text_layer_norm_eps=text.get("layer_norm_eps", 1e-12),
        audio_patch_embeds_hidden_size=audio.get("patch_embeds_hidden_size", base.audio_patch_embeds_hidden_size),
        audio_depths=list(audio.get("depths", base.audio_depths)),
        audio_heads=list(audio.get("num_attention_heads", base.audio_heads)),
        text_only=text_only,
    )


def read_clap_folder(
    source: Source, folder: Path, text_only: bool, options: ReadOptions, default_tokenizer: str | None = None
) -> NetworkWeights:
    """A CLAP from a ``ClapModel`` (or text-only) folder; a text-only state holds no ``model.audio_*`` weights
    (``audioldm.assembly`` keeps the audio tower's initialisation, and ``embed_audio`` refuses)."""
    config = clap_config_from_transformers(folder_config(folder, "CLAP"), text_only)
    config.tokenizer_path = tokenizer_for(source, options.tokenizer, default_tokenizer)
    return NetworkWeights(
        stage_config("clap", config, options.foreign_mel, source.path), prefixed(read_folder_weights(folder), "model.")
    )


def read_vocoder_folder(source: Source, folder: Path, options: ReadOptions) -> NetworkWeights:
    """A ``SpeechT5HifiGan`` folder's HiFi-GAN, checked against the mel settings."""
    c = folder_config(folder, "SpeechT5HifiGan")
    if c.get("normalize_before"):
        raise CheckpointError(f"{folder}: a vocoder that normalises its input (normalize_before) is not AudioLDM's")
    mel = options.foreign_mel
    found = (c.get("model_in_dim", mel.n_mels), c.get("sampling_rate", mel.sample_rate))
    if found != (mel.n_mels, mel.sample_rate):
        raise CheckpointError(
            f"{folder}: vocoder for {c.get('model_in_dim')} mel bins at {c.get('sampling_rate')} "
            f"Hz; the mel settings are {mel.n_mels} bins at {mel.sample_rate} Hz"
        )
    config = VocoderConfig(
        upsample_rates=list(c["upsample_rates"]),
        upsample_kernel_sizes=list(c["upsample_kernel_sizes"]),
        upsample_initial_channel=c["upsample_initial_channel"],
        resblock_kernel_sizes=list(c["resblock_kernel_sizes"]),
        resblock_dilation_sizes=[list(d) for d in c["resblock_dilation_sizes"]],
    )
    return NetworkWeights(
        stage_config("vocoder", config, mel, source.path), prefixed(read_folder_weights(folder), "generator.")
    )


def read_t5_folder(source: Source, options: ReadOptions) -> NetworkWeights:
    """A T5 folder's encoder (a whole T5's decoder is left out); its tokenizer is the folder's own unless
    ``--tokenizer`` names another."""
    folder = source.folder
    own = str(folder) if any((folder / f).is_file() for f in TOKENIZER_FILES) else None
    config = t5_part_config(folder_config(folder, "T5"), options.tokenizer or own, options.text_max_length, source)
    return NetworkWeights(config, t5_encoder_state(read_folder_weights(folder)))
