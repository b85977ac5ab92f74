"""The networks of consistency distillation (``stage: lcm``): a frozen teacher LDM and its student.

The teacher is any whole AudioLDM ``audioldm.convert.ldm`` reads (ours, an original AudioLDM .ckpt, a
diffusers folder), its EMA UNet when it has one. The student is the same UNet plus a guidance-scale
embedding (diffusers' ``time_cond_proj_dim``, zero-initialised, so it starts as the teacher's
conditional prediction); the target network is the EMA of the student (decay ``ema_decay``, 0.95 as in
LCM, no warm-up). The student's ``LatentDiffusion`` shares the teacher's frozen VAE, CLAP and vocoder.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

import torch
from diffusers import UNet2DConditionModel
from omegaconf import MISSING

from audioldm.audio.mel import MelConfig
from audioldm.checkpoint import CheckpointError, load_weights
from audioldm.models.ema import EmaModel
from audioldm.models.latent_diffusion import LatentDiffusion, PreviewConfig
from audioldm.models.unet import UnetConfig, build_unet


@dataclass
class LcmConfig(PreviewConfig):
    """``model:`` section of an lcm config."""

    teacher_ckpt: str = MISSING  # a whole AudioLDM in any layout: ours, an original .ckpt, a diffusers folder
    teacher_tokenizer: Optional[str] = None  # RoBERTa tokenizer folder, for an original .ckpt's LAION-CLAP
    teacher_head_channels: Optional[int] = None  # attention head width of an original .ckpt (32 S, 64 L)
    clap_ckpt: Optional[str] = None  # a CLAP with an audio encoder replacing the teacher's (diffusers folders)
    vocoder_ckpt: Optional[str] = None  # replaces the teacher's vocoder (validation audio and the checkpoint)
    # the student's UNet; filled in from the teacher (plus guidance_embed_dim) when training starts
    unet: UnetConfig = field(default_factory=UnetConfig)
    guidance_embed_dim: int = 256  # size of the guidance-scale embedding (LCM: 256)
    guidance_min: float = 1.0  # guidance W drawn per sample from [guidance_min, guidance_max]
    guidance_max: float = 5.0
    solver_steps: int = 50  # the teacher's DDIM grid (N of 1000 timesteps); the lcm sampler uses the same
    loss: str = "huber"  # "huber" (pseudo-Huber, LCM's choice) or "l2"
    huber_c: float = 0.001
    ema_decay: float = 0.95  # the target network: EMA of the student
    ema_warmup: bool = False
    # per sample, the CLAP text embedding of one of the clip's captions instead of its audio embedding (as the
    # ldm stage's text_condition_prob)
    text_condition_prob: float = 0.0
    compile_unet: bool = False
    val_steps: int = 4  # the fixed prompts are previewed with the lcm sampler
    val_sampler: str = "lcm"


def student_unet(teacher: UNet2DConditionModel, teacher_config: UnetConfig,
                 guidance_embed_dim: int) -> tuple[UNet2DConditionModel, UnetConfig]:
    """(the student: the teacher's weights plus a zero guidance embedding, its UnetConfig)."""
    if teacher.config.time_cond_proj_dim:
        raise CheckpointError("the teacher is already a consistency-distilled (lcm) student; distil a plain LDM")
    config = dataclasses.replace(teacher_config, guidance_embed_dim=guidance_embed_dim)
    student = build_unet(config)
    missing, unexpected = student.load_state_dict(teacher.state_dict(), strict=False)
    if unexpected or set(missing) != {"time_embedding.cond_proj.weight"}:
        raise CheckpointError(f"the student does not match the teacher's UNet (missing {missing}, "
                              f"unexpected {unexpected})")
    return student, config


def distillation_models(config: LcmConfig, mel: MelConfig) -> tuple[LatentDiffusion, UNet2DConditionModel, UnetConfig]:
    """(the student as a LatentDiffusion with its target EMA, the frozen teacher UNet, the student's
    UnetConfig) from ``teacher_ckpt``."""
    from audioldm.convert.ldm import read_ldm

    weights = read_ldm(config.teacher_ckpt, config.teacher_tokenizer, config.teacher_head_channels,
                       clap=config.clap_ckpt, vocoder=config.vocoder_ckpt)
    if dataclasses.asdict(weights.mel) != dataclasses.asdict(mel):
        raise CheckpointError(f"{config.teacher_ckpt}: the teacher's audio settings {dataclasses.asdict(weights.mel)} "
                              f"differ from the config's audio section {dataclasses.asdict(mel)}")
    teacher = build_unet(weights.unet_config)
    load_weights(teacher, weights.ema if weights.ema is not None else weights.unet, f"{config.teacher_ckpt} (teacher)")
    teacher.requires_grad_(False).eval()
    student, student_config = student_unet(teacher, weights.unet_config, config.guidance_embed_dim)
    f = weights.frozen
    model = LatentDiffusion(student, f["vae"], f["clap"], f["vocoder"], mel, weights.stage_configs,
                            EmaModel(student, config.ema_decay, config.ema_warmup))
    model.scale_factor.copy_(weights.scale_factor)
    with torch.no_grad():
        model.set_null_condition()
    return model, teacher, student_config
