"""Original AudioLDM VAE (``audioldm.variational_autoencoder.autoencoder.AutoencoderKL``) -> diffusers.

Input: the keys under ``first_stage_model.`` of an AudioLDM ``.ckpt`` with that prefix removed
and ``vocoder.*`` dropped (the vocoder converts with ``original_hifigan``). ``L`` levels, ``n``
res blocks per encoder level (n + 1 per decoder level). Key mapping, rule by rule:

- ``quant_conv.*``, ``post_quant_conv.*``, ``{encoder,decoder}.conv_in.*``, ``.conv_out.*``: same names
- ``{encoder,decoder}.norm_out.* -> {encoder,decoder}.conv_norm_out.*``
- ``encoder.down.l.block.i.* -> encoder.down_blocks.l.resnets.i.*``
- ``encoder.down.l.downsample.conv.* -> encoder.down_blocks.l.downsamplers.0.conv.*`` (l < L-1;
  both pad (0, 1, 0, 1) before a stride-2 3x3 conv)
- ``decoder.up.l.block.i.* -> decoder.up_blocks.(L-1-l).resnets.i.*`` (the original indexes
  up blocks by level, 0 = full resolution; diffusers runs them deepest first)
- ``decoder.up.l.upsample.conv.* -> decoder.up_blocks.(L-1-l).upsamplers.0.conv.*`` (l > 0)
- ``{encoder,decoder}.mid.block_1.* -> .mid_block.resnets.0.*``, ``mid.block_2.* -> mid_block.resnets.1.*``
- ``{encoder,decoder}.mid.attn_1.{norm,q,k,v,proj_out}.* ->
  .mid_block.attentions.0.{group_norm,to_q,to_k,to_v,to_out.0}.*``; the original projections are
  1x1 convs, weight [C, C, 1, 1] -> Linear weight [C, C]
- ResnetBlock: ``norm1, conv1, norm2, conv2`` keep their names, ``nin_shortcut -> conv_shortcut``

AudioLDM's VAE: ch 128, ch_mult [1, 2, 4], 2 res blocks, no attention outside the middle,
z_channels = embed_dim = 8, GroupNorm with 32 groups.
"""

from __future__ import annotations

import re

import torch

from audioldm.checkpoint import CheckpointError
from audioldm.formats.keymaps.mapping import expected_state, indices, map_by_table
from audioldm.models.vae import VaeConfig, build_autoencoder

WHERE = "original AudioLDM VAE"
_RESNET = (
    ("norm1.", "norm1."),
    ("conv1.", "conv1."),
    ("norm2.", "norm2."),
    ("conv2.", "conv2."),
    ("nin_shortcut.", "conv_shortcut."),
)
_ATTENTION = (("norm.", "group_norm."), ("q.", "to_q."), ("k.", "to_k."), ("v.", "to_v."), ("proj_out.", "to_out.0."))


def _prefix_table(levels: int, n: int) -> dict[str, str]:
    """Original module prefix -> our prefix (both ending in '.')."""
    table = {"quant_conv.": "quant_conv.", "post_quant_conv.": "post_quant_conv."}
    for part in ("encoder", "decoder"):
        table.update(
            {
                f"{part}.conv_in.": f"{part}.conv_in.",
                f"{part}.conv_out.": f"{part}.conv_out.",
                f"{part}.norm_out.": f"{part}.conv_norm_out.",
            }
        )
        for orig, ours in (
            (f"{part}.mid.block_1.", f"{part}.mid_block.resnets.0."),
            (f"{part}.mid.block_2.", f"{part}.mid_block.resnets.1."),
        ):
            table.update({orig + a: ours + b for a, b in _RESNET})
        table.update({f"{part}.mid.attn_1.{a}": f"{part}.mid_block.attentions.0.{b}" for a, b in _ATTENTION})
    for level in range(levels):
        for i in range(n):
            table.update(
                {
                    f"encoder.down.{level}.block.{i}.{a}": f"encoder.down_blocks.{level}.resnets.{i}.{b}"
                    for a, b in _RESNET
                }
            )
        if level < levels - 1:
            table[f"encoder.down.{level}.downsample.conv."] = f"encoder.down_blocks.{level}.downsamplers.0.conv."
        j = levels - 1 - level
        for i in range(n + 1):
            table.update(
                {f"decoder.up.{level}.block.{i}.{a}": f"decoder.up_blocks.{j}.resnets.{i}.{b}" for a, b in _RESNET}
            )
        if level:
            table[f"decoder.up.{level}.upsample.conv."] = f"decoder.up_blocks.{j}.upsamplers.0.conv."
    return table


def _infer(state: dict[str, torch.Tensor]) -> VaeConfig:
    required = [
        "encoder.conv_in.weight",
        "encoder.down.0.block.0.conv1.weight",
        "decoder.conv_in.weight",
        "quant_conv.weight",
        "post_quant_conv.weight",
    ]
    absent = [k for k in required if k not in state]
    if absent:
        hint = (
            "; strip the 'first_stage_model.' prefix first"
            if any(k.startswith("first_stage_model.") for k in state)
            else ""
        )
        raise CheckpointError(f"{WHERE}: not AudioLDM's AutoencoderKL (missing {absent}{hint})")
    levels = len(indices(state, r"encoder\.down\.(\d+)\.block\.0\.conv1\.weight"))
    n = len(indices(state, r"encoder\.down\.0\.block\.(\d+)\.conv1\.weight"))
    channels = []
    for level in range(levels):
        conv = state.get(f"encoder.down.{level}.block.0.conv1.weight")
        if conv is None:
            raise CheckpointError(f"{WHERE}: encoder level {level} is missing (encoder.down.{level}.*)")
        channels.append(conv.shape[0])
    embed_dim, z_channels = state["post_quant_conv.weight"].shape[1], state["decoder.conv_in.weight"].shape[1]
    if embed_dim != z_channels:
        raise CheckpointError(
            f"{WHERE}: embed_dim {embed_dim} != z_channels {z_channels}; diffusers' AutoencoderKL needs them equal"
        )
    for key, value in state.items():
        if re.fullmatch(
            r"(encoder\.down\.\d+\.downsample|decoder\.up\.\d+\.upsample)\.conv\.weight", key
        ) and value.shape[-2:] != (3, 3):
            raise CheckpointError(
                f"{WHERE}: {key} is a {tuple(value.shape[-2:])} conv (time stride 4, "
                f"downsample_time_stride4_levels); only 2x2 resampling is supported"
            )
    return VaeConfig(block_out_channels=channels, layers_per_block=n, latent_channels=embed_dim, norm_num_groups=32)


def vae_from_original(state: dict[str, torch.Tensor]) -> tuple[VaeConfig, dict[str, torch.Tensor]]:
    """(config, state dict for ``build_autoencoder(config)``) from an original AutoencoderKL state dict.

    E.g. AudioLDM's: ``encoder.conv_in.weight`` [128, 1, 3, 3] -> block_out_channels [128, 256, 512],
    ``post_quant_conv.weight`` [8, 8, 1, 1] -> latent_channels 8. Raises ``CheckpointError``
    listing missing/unexpected original keys or wrong shapes.
    """
    config = _infer(state)
    expected = expected_state(lambda: build_autoencoder(config), WHERE, config)
    table = _prefix_table(len(config.block_out_channels), config.layers_per_block)

    def conv_to_linear(key: str, ours: str, value: torch.Tensor) -> torch.Tensor:
        if ".mid_block.attentions.0.to_" in ours and ours.endswith(".weight") and value.ndim == 4:
            if value.shape[2:] != (1, 1):
                raise CheckpointError(f"{WHERE}: {key} {tuple(value.shape)} is not a 1x1 conv")
            return value[:, :, 0, 0]
        return value

    def hint(unexpected: list[str]) -> str:
        vocoder = any(k.startswith("vocoder.") for k in unexpected)
        return " (drop vocoder.*: it converts with original_hifigan)" if vocoder else ""

    converted = map_by_table(state, expected, table, WHERE, config, "AudioLDM's form", conv_to_linear, hint)
    return config, converted
