"""Original AudioLDM UNet (``audioldm.latent_diffusion.openaimodel.UNetModel``) -> our diffusers UNet.

Input: the keys under ``model.diffusion_model.`` of an AudioLDM ``.ckpt`` with that prefix removed.
``L`` levels, ``n`` res blocks per level, ``k`` counts input/output blocks; resnet sub-keys
are renamed as in the ResBlock rule. Key mapping, rule by rule (the rest of the key is kept):

- ``time_embed.0.* -> time_embedding.linear_1.*``, ``time_embed.2.* -> time_embedding.linear_2.*``
- ``film_emb.* -> class_embedding.*`` (the FiLM condition, concatenated to the timestep embedding)
- ``input_blocks.0.0.* -> conv_in.*``
- ``input_blocks.k.0.*`` with ``k = 1 + l(n+1) + i`` (i < n) ``-> down_blocks.l.resnets.i.*``
- ``input_blocks.k.1.* -> down_blocks.l.attentions.i.*`` (levels l >= 1; the transformer's own
  keys ``norm, proj_in, transformer_blocks.0.{norm1,attn1,norm2,attn2,norm3,ff}, proj_out`` match)
- ``input_blocks.k.0.op.*`` with ``k = (l+1)(n+1)`` (l < L-1) ``-> down_blocks.l.downsamplers.0.conv.*``
- ``middle_block.0.* -> mid_block.resnets.0.*``, ``middle_block.1.* -> mid_block.attentions.0.*``,
  ``middle_block.2.* -> mid_block.resnets.1.*``
- ``output_blocks.k.0.*`` with ``k = j(n+1) + i`` (i <= n) ``-> up_blocks.j.resnets.i.*``
  (up block j is level L-1-j: the deepest first)
- ``output_blocks.k.1.* -> up_blocks.j.attentions.i.*`` (j < L-1)
- ``output_blocks.k.2.conv.*`` with i = n (j < L-1) ``-> up_blocks.j.upsamplers.0.conv.*``
- ``out.0.* -> conv_norm_out.*``, ``out.2.* -> conv_out.*``
- ResBlock: ``in_layers.0 -> norm1``, ``in_layers.2 -> conv1``, ``emb_layers.1 -> time_emb_proj``,
  ``out_layers.0 -> norm2``, ``out_layers.3 -> conv2``, ``skip_connection -> conv_shortcut``

No tensor changes shape. Channels per attention head are not in the weights: AudioLDM uses 32
(S, M: model_channels 128 / 192) and 64 (L: 256). The EMA copy (``model_ema.*``) stores the
same parameters under dot-less names; ``unflatten_ema_keys`` restores them.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from audioldm.checkpoint import CheckpointError
from audioldm.formats.keymaps.mapping import expected_state, indices, listing, map_by_table
from audioldm.models.unet import UnetConfig, build_unet

WHERE = "original AudioLDM UNet"
EMA_BOOKKEEPING = ("num_updates", "decay")  # LitEma buffers that are not weights (skipped)
_RESBLOCK = (
    ("in_layers.0.", "norm1."),
    ("in_layers.2.", "conv1."),
    ("emb_layers.1.", "time_emb_proj."),
    ("out_layers.0.", "norm2."),
    ("out_layers.3.", "conv2."),
    ("skip_connection.", "conv_shortcut."),
)


def default_head_channels(model_channels: int) -> int:
    """AudioLDM's channels per attention head: 64 for L (model_channels 256), else 32 (S, M)."""
    return 64 if model_channels == 256 else 32


def _prefix_table(levels: int, n: int) -> dict[str, str]:
    """Original module prefix -> our prefix (both ending in '.') for ``levels`` levels of ``n`` res blocks."""
    table = {
        "time_embed.0.": "time_embedding.linear_1.",
        "time_embed.2.": "time_embedding.linear_2.",
        "film_emb.": "class_embedding.",
        "input_blocks.0.0.": "conv_in.",
        "out.0.": "conv_norm_out.",
        "out.2.": "conv_out.",
    }

    def resblock(orig: str, ours: str) -> None:
        table.update({orig + a: ours + b for a, b in _RESBLOCK})

    k = 1
    for level in range(levels):
        for i in range(n):
            resblock(f"input_blocks.{k}.0.", f"down_blocks.{level}.resnets.{i}.")
            if level:
                table[f"input_blocks.{k}.1."] = f"down_blocks.{level}.attentions.{i}."
            k += 1
        if level < levels - 1:
            table[f"input_blocks.{k}.0.op."] = f"down_blocks.{level}.downsamplers.0.conv."
            k += 1
    resblock("middle_block.0.", "mid_block.resnets.0.")
    table["middle_block.1."] = "mid_block.attentions.0."
    resblock("middle_block.2.", "mid_block.resnets.1.")
    k = 0
    for j in range(levels):
        level = levels - 1 - j
        for i in range(n + 1):
            resblock(f"output_blocks.{k}.0.", f"up_blocks.{j}.resnets.{i}.")
            if level:
                table[f"output_blocks.{k}.1."] = f"up_blocks.{j}.attentions.{i}."
                if i == n:
                    table[f"output_blocks.{k}.2.conv."] = f"up_blocks.{j}.upsamplers.0.conv."
            k += 1
    return table


def _infer(state: dict[str, torch.Tensor], head_channels: int | None) -> UnetConfig:
    required = [
        "input_blocks.0.0.weight",
        "time_embed.0.weight",
        "film_emb.weight",
        "out.2.weight",
        "input_blocks.1.0.emb_layers.1.weight",
    ]
    absent = [k for k in required if k not in state]
    if absent:
        hint = ""
        if any(k.startswith("model.diffusion_model.") for k in state):
            hint = "; strip the 'model.diffusion_model.' prefix first"
        elif "label_emb.weight" in state:
            hint = "; a class-conditional UNet (label_emb) is not AudioLDM's FiLM-conditioned one"
        raise CheckpointError(f"{WHERE}: not AudioLDM's UNetModel (missing {absent}{hint})")
    model_channels, latent_channels = state["input_blocks.0.0.weight"].shape[:2]
    time_dim = 4 * model_channels
    emb_in = state["input_blocks.1.0.emb_layers.1.weight"].shape[1]
    if emb_in == time_dim:
        raise CheckpointError(
            f"{WHERE}: the FiLM condition is added to the timestep embedding "
            f"(extra_film_use_concat=False); AudioLDM concatenates it"
        )
    emb_out = state["input_blocks.1.0.emb_layers.1.weight"].shape[0]
    if emb_out == 2 * state["input_blocks.1.0.in_layers.2.weight"].shape[0]:
        raise CheckpointError(f"{WHERE}: use_scale_shift_norm=True is not AudioLDM's form")
    for key, value in state.items():
        if ".transformer_blocks.1." in key:
            raise CheckpointError(f"{WHERE}: transformer depth > 1 ({key}); AudioLDM uses one layer")
        if key.endswith(".proj_in.weight") and value.ndim != 4:
            raise CheckpointError(f"{WHERE}: linear proj_in ({key}: {tuple(value.shape)}); AudioLDM uses a 1x1 conv")
        if key.endswith(".attn2.to_k.weight") and value.shape[1] != value.shape[0]:
            raise CheckpointError(
                f"{WHERE}: cross-attention to a {value.shape[1]}-d context ({key}); "
                f"AudioLDM's transformers attend to the latent only"
            )
    downsamplers = indices(state, r"input_blocks\.(\d+)\.0\.op\.weight")
    resblocks = indices(state, r"input_blocks\.(\d+)\.0\.in_layers\.2\.weight")
    levels = len(downsamplers) + 1
    n = len(resblocks) // levels
    mults = []
    for level in range(levels):
        conv = state.get(f"input_blocks.{1 + level * (n + 1)}.0.in_layers.2.weight")
        if n == 0 or conv is None or conv.shape[0] % model_channels:
            raise CheckpointError(
                f"{WHERE}: cannot read the levels ({len(resblocks)} res blocks, downsampling "
                f"at input blocks {downsamplers})"
            )
        mults.append(conv.shape[0] // model_channels)
    head_channels = head_channels or default_head_channels(model_channels)
    channels = [model_channels * m for m in mults]
    if any(c % head_channels for c in channels):
        raise CheckpointError(f"{WHERE}: channels {channels} are not divisible by head_channels={head_channels}")
    return UnetConfig(
        model_channels=model_channels,
        channel_mult=mults,
        layers_per_block=n,
        head_channels=head_channels,
        latent_channels=latent_channels,
        condition_dim=state["film_emb.weight"].shape[1],
    )


def unet_from_original(
    state: dict[str, torch.Tensor], head_channels: int | None = None
) -> tuple[UnetConfig, dict[str, torch.Tensor]]:
    """(config, state dict for ``build_unet(config)``) from an original UNetModel state dict.

    ``head_channels`` (channels per attention head) defaults to AudioLDM's: 64 when
    model_channels is 256 (L), else 32. E.g. AudioLDM-S: ``conv_in.weight`` [128, 8, 3, 3],
    ``class_embedding.weight`` [512, 512] (condition 512 -> 4 x 128), 690 tensors.
    Raises ``CheckpointError`` listing missing/unexpected original keys or wrong shapes.
    """
    config = _infer(state, head_channels)
    expected = expected_state(lambda: build_unet(config), WHERE, config)
    table = _prefix_table(len(config.channel_mult), config.layers_per_block)
    return config, map_by_table(state, expected, table, WHERE, config, "AudioLDM's form")


def unflatten_ema_keys(ema_state: dict[str, torch.Tensor], reference_keys: Iterable[str]) -> dict[str, torch.Tensor]:
    """The EMA weights under the raw UNet's dotted names (``reference_keys``).

    LitEma stores ``model.diffusion_model.input_blocks.0.0.weight`` as
    ``model_ema.diffusion_modelinput_blocks00weight``; keys may come with or without the
    ``model_ema.`` prefix (and without ``diffusion_model``). ``num_updates`` and ``decay`` are skipped.
    """
    reference_keys = list(reference_keys)
    by_flat: dict[str, str] = {}
    ambiguous = set()
    for key in reference_keys:
        for flat in ("diffusion_model" + key.replace(".", ""), key.replace(".", "")):
            if by_flat.setdefault(flat, key) != key:
                ambiguous.add(flat)
    out, unmatched = {}, []
    for name, value in ema_state.items():
        flat = name[len("model_ema.") :] if name.startswith("model_ema.") else name
        if flat in EMA_BOOKKEEPING:
            continue
        if flat in ambiguous:
            raise CheckpointError(f"{WHERE} EMA: {name} matches more than one UNet key")
        key = by_flat.get(flat)
        if key is None:
            unmatched.append(name)
        elif key in out:
            raise CheckpointError(f"{WHERE} EMA: two entries for {key}")
        else:
            out[key] = value
    missing = [k for k in reference_keys if k not in out]
    if missing or unmatched:
        raise CheckpointError(
            f"{WHERE} EMA: does not match the UNet (missing {listing(missing)}, unexpected {listing(unmatched)})"
        )
    return {k: out[k] for k in reference_keys}
