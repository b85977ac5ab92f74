"""The latent-diffusion UNet: diffusers ``UNet2DConditionModel`` in AudioLDM's form.

AudioLDM-S: model_channels 128 with multipliers [1, 2, 3, 5] -> block_out_channels
(128, 256, 384, 640), 2 res blocks per level, attention at downsampling 2, 4, 8 (levels 2-4)
with 32 channels per head and one transformer layer. AudioLDM-L: 256 channels, 64 per head.
The condition (a 512-d CLAP embedding) is projected to the timestep-embedding size and
concatenated with it (FiLM-style, ``class_embed_type="simple_projection"``,
``class_embeddings_concat=True``); no text sequence is passed, so the attention layers attend
to the latent itself. Input/output: latent [B, 8, T/4, 16].

With ``context_dim`` set (the cross-attention conditions, ``model.condition: crossattn_*``) the UNet is
the official crossattn-T5 shape instead: no FiLM, and each attention level holds one self-attention-only
spatial transformer followed by one that cross-attends to the text tokens (the original ``extra_sa_layer``).
diffusers' ``AudioLDM2UNet2DConditionModel`` expresses that with per-block ``cross_attention_dim`` lists
([None, context_dim]: None is self-attention only); the plain ``UNet2DConditionModel`` has one transformer per
res block and cannot. The condition is then a packed token tensor (``audioldm.models.token_condition``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from diffusers import UNet2DConditionModel
from diffusers.pipelines.audioldm2.modeling_audioldm2 import AudioLDM2UNet2DConditionModel

from audioldm.constraints import one_of
from audioldm.diffusion.consistency import guidance_embedding
from audioldm.diffusion.schedule import PREDICTION_TYPES, epsilon_from_v
from audioldm.models.token_condition import unpack

Unet = UNet2DConditionModel | AudioLDM2UNet2DConditionModel


@dataclass
class UnetConfig:
    model_channels: int = 128
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 3, 5])
    layers_per_block: int = 2
    head_channels: int = 32
    latent_channels: int = 8
    condition_dim: int = 512
    # std of the condition projection's initial weights (None: diffusers' default, ~0.026 for 512-d).
    # A unit-norm CLAP embedding then enters ~20x weaker than the timestep; 1.0 starts them level,
    # which makes short runs learn the condition much sooner. Only the initialisation changes.
    condition_init_std: Optional[float] = None
    # heads per level, overriding head_channels (diffusers folders may set head counts directly)
    attention_heads: Optional[list[int]] = None
    # how the timestep + condition embedding enters each res block: "default" adds it to the features
    # (AudioLDM, official weights); "scale_shift" applies it as FiLM, h * (1 + scale) + shift
    resnet_time_scale_shift: str = one_of("default", "default", "scale_shift")
    # consistency-distilled students (stage lcm): the size of the guidance-scale embedding added to the
    # timestep embedding (diffusers' time_cond_proj_dim); None: a plain AudioLDM UNet
    guidance_embed_dim: Optional[int] = None
    # what the network outputs: "epsilon" (AudioLDM, official weights) or "v_prediction" (v = sqrt(a_t) e -
    # sqrt(1 - a_t) x_0, Salimans & Ho 2022: the x_0 it implies stays bounded at the noisiest steps, where an
    # epsilon error is multiplied by sqrt((1 - a_t) / a_t), up to 84 on AudioLDM's schedule). predict_noise
    # turns either into epsilon, so samplers, guidance and distillation see one parameterisation.
    prediction_type: str = one_of("epsilon", *PREDICTION_TYPES)
    # width of the text-token states the UNet cross-attends to (1024 for Flan-T5-large); None: the FiLM UNet.
    # Set from the text encoder by the assembly for model.condition crossattn_* (not by hand).
    context_dim: Optional[int] = None


def build_unet(config: UnetConfig) -> Unet:
    """AudioLDM-S with the defaults (185.0M parameters); AudioLDM-L with 256 / 64 (739.1M); with
    ``context_dim`` the cross-attention UNet of audioldm_16k_crossattn_t5."""
    channels = tuple(config.model_channels * m for m in config.channel_mult)
    if config.prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type={config.prediction_type!r} must be one of {', '.join(PREDICTION_TYPES)}")
    if not config.attention_heads and any(c % config.head_channels for c in channels):
        raise ValueError(f"every level's channels {channels} must be divisible by head_channels={config.head_channels}")
    levels = len(channels)
    heads = list(config.attention_heads) if config.attention_heads else [c // config.head_channels for c in channels]
    if len(heads) != levels:
        raise ValueError(f"attention_heads={heads} must give one head count per level ({levels} levels)")
    shape = dict(
        in_channels=config.latent_channels,
        out_channels=config.latent_channels,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (levels - 1) + ("UpBlock2D",),
        block_out_channels=channels,
        layers_per_block=config.layers_per_block,
        attention_head_dim=heads,  # diffusers reads this as the number of heads
        norm_num_groups=min(32, config.model_channels),
        resnet_time_scale_shift=config.resnet_time_scale_shift,
        time_cond_proj_dim=config.guidance_embed_dim,
    )
    if config.context_dim is not None:  # per block: a self-attention-only transformer, then a cross-attending one
        unet = AudioLDM2UNet2DConditionModel(**shape, cross_attention_dim=[[None, config.context_dim]] * levels)
    else:
        unet = UNet2DConditionModel(
            **shape,
            cross_attention_dim=channels,
            class_embed_type="simple_projection",
            projection_class_embeddings_input_dim=config.condition_dim,
            class_embeddings_concat=True,
        )
    if config.guidance_embed_dim is not None:  # a student starts as its teacher: the embedding adds nothing yet
        torch.nn.init.zeros_(unet.time_embedding.cond_proj.weight)
    unet.register_to_config(prediction_type=config.prediction_type)  # read by predict_noise (and saved with it)
    if config.condition_init_std is not None and config.context_dim is None:
        torch.nn.init.normal_(unet.class_embedding.weight, std=config.condition_init_std)
        torch.nn.init.zeros_(unet.class_embedding.bias)
    return unet


def predict_noise(
    unet: Unet,
    latent: torch.Tensor,
    t: torch.Tensor,
    condition: torch.Tensor,
    guidance: torch.Tensor | None = None,
) -> torch.Tensor:
    """epsilon prediction: latent [B, 8, T', F'], timesteps [B], condition [B, 512] (a cross-attention UNet: packed
    tokens [B, L, W + 1]) -> [B, 8, T', F'];
    a guidance-embedded UNet (``guidance_embed_dim``) also takes the guidance scale W [B]. A v-prediction
    UNet's output is turned into epsilon = sqrt(a_t) v + sqrt(1 - a_t) x_t."""
    out = network_output(unet, latent, t, condition, guidance)
    if prediction_type(unet) == "epsilon":
        return out
    return epsilon_from_v(out, latent, t)


def prediction_type(unet: Unet) -> str:
    """ "epsilon" or "v_prediction" (UNets built before the option, and converted official ones: epsilon)."""
    return getattr(unet.config, "prediction_type", "epsilon")


def cross_attends(unet: Unet) -> bool:
    """Whether ``unet`` takes text tokens through cross-attention (else one condition vector, FiLM)."""
    return isinstance(unet, AudioLDM2UNet2DConditionModel)


def network_output(
    unet: Unet,
    latent: torch.Tensor,
    t: torch.Tensor,
    condition: torch.Tensor,
    guidance: torch.Tensor | None = None,
) -> torch.Tensor:
    """The UNet's own output [B, 8, T', F'] (epsilon or v, as its ``prediction_type`` says)."""
    dim = unet.config.time_cond_proj_dim
    if (dim is None) != (guidance is None):
        raise ValueError(
            "a guidance scale is given to a UNet without a guidance embedding"
            if dim is None
            else "this consistency-distilled UNet needs the guidance scale (sample it with sampler 'lcm')"
        )
    embedding = None
    if dim is not None:
        embedding = guidance_embedding(guidance.expand(latent.shape[0]), dim).to(latent.device, latent.dtype)
    if cross_attends(unet):
        states, mask = unpack(condition)
        return unet(
            latent, t, encoder_hidden_states=states, encoder_attention_mask=mask, timestep_cond=embedding
        ).sample
    return unet(latent, t, encoder_hidden_states=None, class_labels=condition, timestep_cond=embedding).sample
