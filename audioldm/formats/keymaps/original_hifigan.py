"""Original HiFi-GAN ``Generator`` (``audioldm.hifigan.models``) -> transformers ``SpeechT5HifiGan``.

Input: the generator's state dict: ``first_stage_model.vocoder.*`` of an AudioLDM ``.ckpt``
(prefix removed; plain weights, saved after ``remove_weight_norm``), or a standalone HiFi-GAN
checkpoint's ``{"generator": state}`` (weight norm kept). Key mapping, rule by rule:

- weight norm first: ``X.weight_g`` [C0, 1, 1] + ``X.weight_v`` [C0, C1, k] -> ``X.weight = g * v / ||v||``,
  the norm over every dim but 0 (``torch.nn.utils.weight_norm``'s default dim=0: Conv1d [out, in, k];
  for ConvTranspose1d dim 0 is the INPUT channel: [in, out, k]). The newer parametrisation's
  ``X.parametrizations.weight.original0`` (g) / ``original1`` (v) fold the same way.
- ``conv_pre.* -> conv_pre.*``, ``conv_post.* -> conv_post.*``
- ``ups.i.* -> upsampler.i.*``
- ``resblocks.j.convs1.m.*``, ``resblocks.j.convs2.m.*``: same names (j = level * kernels + kernel)
- ``mean`` = zeros(n_mels), ``scale`` = ones(n_mels) are added (SpeechT5HifiGan buffers, unused
  with ``normalize_before=False``)

The strides and dilations are not in the weights. Upsample kernels come from the shapes; the rates
default to AudioLDM's [5, 4, 2, 2, 2] only for AudioLDM's kernels [16, 16, 8, 4, 4] (HiFi-GAN's
``kernel = 2 * rate`` rule does not hold there: 16 -> 5), and must be given otherwise.
Residual dilations default to [1, 3, 5] per kernel (resblock type 1).
"""

from __future__ import annotations

import re

import torch

from audioldm.checkpoint import CheckpointError
from audioldm.formats.keymaps.mapping import expected_state, indices, map_keys
from audioldm.models.vocoder import VocoderConfig, build_generator

WHERE = "original HiFi-GAN"
AUDIOLDM_KERNELS = [16, 16, 8, 4, 4]
AUDIOLDM_RATES = [5, 4, 2, 2, 2]
_WEIGHT_NORM = (
    (".weight_g", ".weight_v"),
    (".parametrizations.weight.original0", ".parametrizations.weight.original1"),
)


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``g * v / ||v||``: v [C0, C1, k]; g [C0, 1, 1] (norm over dims 1, 2) or, generally, g of v's
    rank with one non-1 dim d (norm over every dim but d); a 0-d g takes the norm over everything."""
    if g.ndim == 0:
        return v * (g / v.norm())
    kept = [d for d in range(v.ndim) if g.shape[d] != 1] if g.ndim == v.ndim else None
    if kept is None or len(kept) > 1 or any(g.shape[d] != v.shape[d] for d in kept or []):
        raise CheckpointError(
            f"{WHERE}: weight-norm magnitude {tuple(g.shape)} does not fit direction {tuple(v.shape)}"
        )
    dim = kept[0] if kept else 0
    others = [d for d in range(v.ndim) if d != dim]
    return v * (g / v.pow(2).sum(dim=others, keepdim=True).sqrt())


def fold_weight_norms(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with every (g, v) pair folded into ``.weight`` (other entries unchanged)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for g_suffix, v_suffix in _WEIGHT_NORM:
            if key.endswith(g_suffix) or key.endswith(v_suffix):
                base = key[: -len(g_suffix if key.endswith(g_suffix) else v_suffix)]
                if base + g_suffix not in state or base + v_suffix not in state:
                    raise CheckpointError(f"{WHERE}: {key} without its weight-norm partner")
                if base + ".weight" in state:
                    raise CheckpointError(f"{WHERE}: {base} has both a plain and a weight-norm weight")
                if key.endswith(g_suffix):
                    out[base + ".weight"] = fold_weight_norm(value, state[base + v_suffix])
                break
        else:
            out[key] = value
    return out


def _infer(
    state: dict[str, torch.Tensor], upsample_rates: list[int] | None, resblock_dilation_sizes: list[list[int]] | None
) -> VocoderConfig:
    absent = [
        k
        for k in ("conv_pre.weight", "ups.0.weight", "resblocks.0.convs1.0.weight", "conv_post.weight")
        if k not in state
    ]
    if absent:
        hint = ""
        if any(k.startswith(("first_stage_model.vocoder.", "vocoder.")) for k in state):
            hint = "; strip the 'first_stage_model.vocoder.' prefix first"
        raise CheckpointError(f"{WHERE}: not a HiFi-GAN Generator (missing {absent}{hint})")
    ups = indices(state, r"ups\.(\d+)\.weight")
    kernels = [state[f"ups.{i}.weight"].shape[2] for i in ups]
    if upsample_rates is None:
        if kernels != AUDIOLDM_KERNELS:
            raise CheckpointError(
                f"{WHERE}: upsample kernels {kernels} are not AudioLDM's {AUDIOLDM_KERNELS} and "
                f"the strides are not stored in the weights: pass upsample_rates (one per layer)"
            )
        upsample_rates = AUDIOLDM_RATES
    if len(upsample_rates) != len(ups):
        raise CheckpointError(f"{WHERE}: {len(ups)} upsampling layers but upsample_rates={list(upsample_rates)}")
    per_level = len(indices(state, r"resblocks\.(\d+)\.convs1\.0\.weight")) // len(ups)
    res_kernels = [
        state[f"resblocks.{j}.convs1.0.weight"].shape[2]
        for j in range(per_level)
        if f"resblocks.{j}.convs1.0.weight" in state
    ]
    convs = len(indices(state, r"resblocks\.0\.convs1\.(\d+)\.weight"))
    if resblock_dilation_sizes is None:
        if convs != 3:
            raise CheckpointError(f"{WHERE}: residual blocks with {convs} dilated convs: pass resblock_dilation_sizes")
        resblock_dilation_sizes = [[1, 3, 5]] * len(res_kernels)
    if len(resblock_dilation_sizes) != len(res_kernels) or any(len(d) != convs for d in resblock_dilation_sizes):
        raise CheckpointError(
            f"{WHERE}: resblock_dilation_sizes={resblock_dilation_sizes} do not fit "
            f"{len(res_kernels)} kernels of {convs} convs each"
        )
    return VocoderConfig(
        upsample_rates=list(upsample_rates),
        upsample_kernel_sizes=kernels,
        upsample_initial_channel=state["conv_pre.weight"].shape[0],
        resblock_kernel_sizes=res_kernels,
        resblock_dilation_sizes=[list(d) for d in resblock_dilation_sizes],
    )


def vocoder_from_original(
    state: dict[str, torch.Tensor],
    upsample_rates: list[int] | None = None,
    resblock_dilation_sizes: list[list[int]] | None = None,
) -> tuple[VocoderConfig, dict[str, torch.Tensor]]:
    """(config, state dict for ``build_generator(config, n_mels)``) from an original Generator state dict.

    ``n_mels`` is ``conv_pre.weight.shape[1]`` (AudioLDM: conv_pre [1024, 64, 7], ups.0 [1024, 512, 16]).
    With or without weight norm; ``{"generator": state}`` is unwrapped. Raises ``CheckpointError``
    listing missing/unexpected original keys or wrong shapes, or asking for the rates it cannot read.
    """
    if isinstance(state.get("generator"), dict):
        state = state["generator"]
    state = fold_weight_norms(state)
    config = _infer(state, upsample_rates, resblock_dilation_sizes)
    n_mels = state["conv_pre.weight"].shape[1]
    expected = expected_state(lambda: build_generator(config, n_mels), WHERE, config)
    expected = {k: v for k, v in expected.items() if k not in ("mean", "scale")}  # set below, not in the source
    converted = map_keys(
        state,
        expected,
        lambda k: re.sub(r"^ups\.", "upsampler.", k),
        lambda k: re.sub(r"^upsampler\.", "ups.", k),
        WHERE,
        config,
        "the Generator's form",
    )
    converted["mean"] = torch.zeros(n_mels)
    converted["scale"] = torch.ones(n_mels)
    return config, converted
