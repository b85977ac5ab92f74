"""An original AudioLDM crossattn-T5 ``.ckpt`` (``audioldm_16k_crossattn_t5`` of the AudioLDM 2 release, PyPI
audioldm2 0.1.0): a latent diffusion whose UNet cross-attends to Flan-T5 token states, without CLAP.

Recognised by ``model.diffusion_model.*`` and ``cond_stage_models.0.model.encoder.*`` keys (kind ``ldm``).
Where each network is:

- UNet ``model.diffusion_model.*``, its EMA ``model_ema.*`` (LitEma's dot-less names;
  ``keymaps/original_crossattn_unet.py``). The attention head width is not in the weights: ``head_channels``,
  else the official 32;
- VAE ``first_stage_model.*`` less ``vocoder.*`` and ``scale_factor``, HiFi-GAN ``first_stage_model.vocoder.*``:
  as in an AudioLDM 1 ``.ckpt`` (read by ``original.py``);
- T5 encoder ``cond_stage_models.0.model.*`` (FlanT5HiddenState's ``T5EncoderModel``, names unchanged): its
  ``T5Config`` is read off the tensor shapes; the tokenizer is not in the file (``--tokenizer``).
"""

from __future__ import annotations

from transformers import T5Config, T5EncoderModel

from audioldm.checkpoint import CheckpointError, sub_state_dict
from audioldm.formats import original
from audioldm.formats.keymaps.mapping import expected_state, indices, map_keys
from audioldm.formats.keymaps.original_unet import EMA_BOOKKEEPING, unflatten_ema_keys
from audioldm.formats.source import NetworkWeights, ReadOptions, Source, holds_no, t5_encoder_state, t5_part_config

NAME = "original-crossattn-t5"
DESCRIPTION = "an original AudioLDM crossattn-T5 .ckpt (audioldm_16k_crossattn_t5)"
UNET_PREFIX = "model.diffusion_model."
T5_PREFIX = "cond_stage_models.0.model."
T5_WHERE = "original crossattn-T5 text encoder"


def detect(source: Source) -> str | None:
    keys = list(source.state)
    if any(k.startswith(UNET_PREFIX) for k in keys) and any(k.startswith(T5_PREFIX + "encoder.") for k in keys):
        return "ldm"
    return None


def parts(source: Source) -> tuple[str, ...]:
    return ("unet", "vae", "vocoder", "text_encoder")


def read(source: Source, part: str, options: ReadOptions) -> NetworkWeights:
    if part not in parts(source):
        raise holds_no(source, part)
    readers = {"unet": _unet, "vae": original._vae, "vocoder": original._vocoder, "text_encoder": _text_encoder}
    return readers[part](source, options)


def _unet(source: Source, options: ReadOptions) -> NetworkWeights:
    from audioldm.formats.keymaps.original_crossattn_unet import crossattn_unet_from_original

    raw = sub_state_dict(source.state, UNET_PREFIX)
    config, unet = crossattn_unet_from_original(raw, options.head_channels)
    ema_flat = {k: v for k, v in sub_state_dict(source.state, "model_ema.").items() if k not in EMA_BOOKKEEPING}
    ema = None
    if ema_flat:
        ema = crossattn_unet_from_original(unflatten_ema_keys(ema_flat, raw.keys()), options.head_channels)[1]
    return NetworkWeights(config, unet, ema=ema, mel=options.foreign_mel)


def t5_config_from_state(state: dict) -> dict:
    """The ``T5Config`` (as a dict) of a ``T5EncoderModel`` state dict, read off its shapes; the rest are
    ``T5Config``'s defaults (as flan-t5's: layer norm eps 1e-6, relative max distance 128)."""
    attention = "encoder.block.0.layer.0.SelfAttention."
    ff = "encoder.block.0.layer.1.DenseReluDense."
    required = ["shared.weight", attention + "q.weight", attention + "relative_attention_bias.weight"]
    absent = [k for k in required if k not in state]
    if absent:
        raise CheckpointError(f"{T5_WHERE}: not a T5 encoder (missing {absent})")
    gated = ff + "wi_0.weight" in state and ff + "wi_1.weight" in state
    wi = state.get(ff + ("wi_0.weight" if gated else "wi.weight"))
    if wi is None:
        raise CheckpointError(f"{T5_WHERE}: no feed-forward input weight ({ff}wi_0 / wi) in block 0")
    buckets, heads = state[attention + "relative_attention_bias.weight"].shape
    inner, d_model = state[attention + "q.weight"].shape
    if inner % heads:
        raise CheckpointError(f"{T5_WHERE}: attention width {inner} is not a multiple of its {heads} heads")
    fields = {
        "vocab_size": state["shared.weight"].shape[0],
        "d_model": d_model,
        "d_kv": inner // heads,
        "d_ff": wi.shape[0],
        "num_layers": len(indices(state, r"encoder\.block\.(\d+)\.layer\.0\.SelfAttention\.q\.weight")),
        "num_heads": heads,
        "relative_attention_num_buckets": buckets,
        "feed_forward_proj": "gated-gelu" if gated else "relu",  # T5Config: gated-gelu -> gelu_new, as flan-t5
    }
    return T5Config(**{k: int(v) if not isinstance(v, str) else v for k, v in fields.items()}).to_diff_dict()


def _text_encoder(source: Source, options: ReadOptions) -> NetworkWeights:
    raw = sub_state_dict(source.state, T5_PREFIX)
    hf_config = t5_config_from_state(raw)
    config = t5_part_config(hf_config, options.tokenizer, options.text_max_length, source)
    state = t5_encoder_state(raw)
    encoder = {k.removeprefix("model."): v for k, v in state.items()}
    expected = expected_state(lambda: T5EncoderModel(T5Config(**hf_config)), T5_WHERE, hf_config)
    shape = {k: hf_config[k] for k in ("d_model", "num_layers", "num_heads", "d_ff", "vocab_size")}
    map_keys(encoder, expected, lambda k: k, lambda k: k, T5_WHERE, f"T5 config {shape}", "a T5 encoder's form")
    return NetworkWeights(config, state)
