"""Original crossattn-T5 UNet (AudioLDM 2 code, ``audioldm_16k_crossattn_t5``) -> our cross-attention UNet
(diffusers ``AudioLDM2UNet2DConditionModel``, ``UnetConfig.context_dim`` set).

Input: the keys under ``model.diffusion_model.`` of that ``.ckpt`` with the prefix removed. The layout is the
FiLM UNet's (``original_unet.py``: same numbering of input/output blocks, same ResBlock rule) with three
differences: no ``film_emb`` (the timestep embedding alone enters the res blocks), and every attention res block
holds TWO spatial transformers, ``.1`` a self-attention-only one (``extra_sa_layer``: its ``attn2`` attends to
the latent again, ``to_k`` [inner, inner]) and ``.2`` the one cross-attending to the T5 tokens (``attn2.to_k``
[inner, context_dim]); so the upsampler of an up level moves from ``.2`` to ``.3``. diffusers' AudioLDM 2 blocks
keep both transformers of res block i in one list, ``attentions[2i]`` (self-only) and ``attentions[2i + 1]``
(cross). With ``L`` levels, ``n`` res blocks per level, ``k`` counting input/output blocks:

- ``time_embed.0.* -> time_embedding.linear_1.*``, ``time_embed.2.* -> time_embedding.linear_2.*``
- ``input_blocks.0.0.* -> conv_in.*``; ``out.0.* -> conv_norm_out.*``, ``out.2.* -> conv_out.*``
- ``input_blocks.k.0.*`` with ``k = 1 + l(n+1) + i`` (i < n) ``-> down_blocks.l.resnets.i.*``
- ``input_blocks.k.1.* -> down_blocks.l.attentions.(2i).*``, ``input_blocks.k.2.* -> ...attentions.(2i+1).*``
  (levels l >= 1; the transformer's own keys match)
- ``input_blocks.k.0.op.*`` with ``k = (l+1)(n+1)`` (l < L-1) ``-> down_blocks.l.downsamplers.0.conv.*``
- ``middle_block.0.* -> mid_block.resnets.0.*``, ``middle_block.1.* -> mid_block.attentions.0.*`` (self-only),
  ``middle_block.2.* -> mid_block.attentions.1.*`` (cross), ``middle_block.3.* -> mid_block.resnets.1.*``
- ``output_blocks.k.0.*`` with ``k = j(n+1) + i`` (i <= n) ``-> up_blocks.j.resnets.i.*`` (up block j is
  level L-1-j)
- ``output_blocks.k.1.* -> up_blocks.j.attentions.(2i).*``, ``output_blocks.k.2.* -> ...attentions.(2i+1).*``
  (j < L-1)
- ``output_blocks.k.3.conv.*`` with i = n (j < L-1) ``-> up_blocks.j.upsamplers.0.conv.*``

No tensor changes shape. Channels per attention head are not in the weights: the official config uses 32
(model_channels 128, Flan-T5-large context 1024). The EMA copy (``model_ema.*``) uses LitEma's dot-less names
(``original_unet.unflatten_ema_keys``).
"""

from __future__ import annotations

import re

import torch

from audioldm.checkpoint import CheckpointError
from audioldm.formats.keymaps.mapping import expected_state, indices, map_by_table
from audioldm.formats.keymaps.original_unet import _RESBLOCK
from audioldm.models.unet import UnetConfig, build_unet

WHERE = "original crossattn-T5 UNet"
DEFAULT_HEAD_CHANNELS = 32  # audioldm_16k_crossattn_t5's num_head_channels
_CROSS_TO_K = re.compile(
    r"(input_blocks\.\d+|middle_block|output_blocks\.\d+)\.2\.transformer_blocks\.0\.attn2\.to_k\.weight"
)
_THIRD_TRANSFORMER = re.compile(r"(input_blocks\.\d+\.3|middle_block\.4|output_blocks\.\d+\.3)\.transformer_blocks\.")


def _prefix_table(levels: int, n: int) -> dict[str, str]:
    """Original module prefix -> our prefix (both ending in '.') for ``levels`` levels of ``n`` res blocks."""
    table = {
        "time_embed.0.": "time_embedding.linear_1.",
        "time_embed.2.": "time_embedding.linear_2.",
        "input_blocks.0.0.": "conv_in.",
        "out.0.": "conv_norm_out.",
        "out.2.": "conv_out.",
    }

    def resblock(orig: str, ours: str) -> None:
        table.update({orig + a: ours + b for a, b in _RESBLOCK})

    def transformers(orig: str, ours: str, i: int) -> None:  # .1 self-only -> 2i, .2 cross -> 2i + 1
        table[f"{orig}.1."] = f"{ours}.attentions.{2 * i}."
        table[f"{orig}.2."] = f"{ours}.attentions.{2 * i + 1}."

    k = 1
    for level in range(levels):
        for i in range(n):
            resblock(f"input_blocks.{k}.0.", f"down_blocks.{level}.resnets.{i}.")
            if level:
                transformers(f"input_blocks.{k}", f"down_blocks.{level}", i)
            k += 1
        if level < levels - 1:
            table[f"input_blocks.{k}.0.op."] = f"down_blocks.{level}.downsamplers.0.conv."
            k += 1
    resblock("middle_block.0.", "mid_block.resnets.0.")
    transformers("middle_block", "mid_block", 0)
    resblock("middle_block.3.", "mid_block.resnets.1.")
    k = 0
    for j in range(levels):
        level = levels - 1 - j
        for i in range(n + 1):
            resblock(f"output_blocks.{k}.0.", f"up_blocks.{j}.resnets.{i}.")
            if level:
                transformers(f"output_blocks.{k}", f"up_blocks.{j}", i)
                if i == n:
                    table[f"output_blocks.{k}.3.conv."] = f"up_blocks.{j}.upsamplers.0.conv."
            k += 1
    return table


def _infer(state: dict[str, torch.Tensor], head_channels: int | None) -> UnetConfig:
    required = ["input_blocks.0.0.weight", "time_embed.0.weight", "time_embed.2.weight", "out.2.weight"]
    required.append("input_blocks.1.0.emb_layers.1.weight")
    absent = [k for k in required if k not in state]
    if absent:
        hint = "; strip the 'model.diffusion_model.' prefix first" if any(k.startswith("model.") for k in state) else ""
        raise CheckpointError(f"{WHERE}: not the AudioLDM 2 UNetModel (missing {absent}{hint})")
    if "film_emb.weight" in state:
        raise CheckpointError(f"{WHERE}: a FiLM-conditioned UNet (film_emb); that is an AudioLDM 1 .ckpt")
    if "label_emb.weight" in state:
        raise CheckpointError(f"{WHERE}: a class-conditional UNet (label_emb) is not the crossattn-T5 one")
    model_channels, latent_channels = state["input_blocks.0.0.weight"].shape[:2]
    emb = state["input_blocks.1.0.emb_layers.1.weight"]
    if emb.shape[1] != state["time_embed.2.weight"].shape[0]:
        raise CheckpointError(f"{WHERE}: the res blocks take a {emb.shape[1]}-d embedding, not the timestep's alone")
    if emb.shape[0] == 2 * state["input_blocks.1.0.in_layers.2.weight"].shape[0]:
        raise CheckpointError(f"{WHERE}: use_scale_shift_norm=True is not the official form")
    context_dims = set()
    for key, value in state.items():
        if ".transformer_blocks.1." in key:
            raise CheckpointError(f"{WHERE}: transformer depth > 1 ({key}); the official UNet uses one layer")
        if key.endswith(".proj_in.weight") and value.ndim != 4:
            raise CheckpointError(f"{WHERE}: linear proj_in ({key}: {tuple(value.shape)}); the official uses 1x1 convs")
        if _THIRD_TRANSFORMER.match(key):
            raise CheckpointError(
                f"{WHERE}: more than one cross-attention condition ({key}: AudioLDM 2's GPT-2/CLAP form); "
                f"only crossattn_t5's single T5 condition is supported"
            )
        if _CROSS_TO_K.fullmatch(key):
            context_dims.add(value.shape[1])
    if not context_dims:
        raise CheckpointError(
            f"{WHERE}: no cross-attending transformers (.2.transformer_blocks.0.attn2); without the extra "
            f"self-attention layer, or an AudioLDM 1 UNet"
        )
    if len(context_dims) > 1:
        raise CheckpointError(f"{WHERE}: the transformers attend to contexts of widths {sorted(context_dims)}")
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
    head_channels = head_channels or DEFAULT_HEAD_CHANNELS
    channels = [model_channels * m for m in mults]
    if any(c % head_channels for c in channels):
        raise CheckpointError(f"{WHERE}: channels {channels} are not divisible by head_channels={head_channels}")
    return UnetConfig(
        model_channels=model_channels,
        channel_mult=mults,
        layers_per_block=n,
        head_channels=head_channels,
        latent_channels=latent_channels,
        context_dim=context_dims.pop(),
    )


def crossattn_unet_from_original(
    state: dict[str, torch.Tensor], head_channels: int | None = None
) -> tuple[UnetConfig, dict[str, torch.Tensor]]:
    """(config, state dict for ``build_unet(config)``) from an original crossattn-T5 UNetModel state dict.

    ``head_channels`` (channels per attention head) defaults to the official 32. E.g. audioldm_16k_crossattn_t5:
    model_channels 128, channel_mult [1, 2, 3, 5], context_dim 1024. Raises ``CheckpointError`` listing
    missing/unexpected original keys or wrong shapes.
    """
    config = _infer(state, head_channels)
    expected = expected_state(lambda: build_unet(config), WHERE, config)
    table = _prefix_table(len(config.channel_mult), config.layers_per_block)
    return config, map_by_table(state, expected, table, WHERE, config, "the crossattn-T5 form")
