"""A consistency-distillation student (``stage: lcm``) put together from its teacher.

The teacher is any whole AudioLDM ``read_ldm`` reads (ours, an original AudioLDM .ckpt, a diffusers folder), its
EMA UNet when it has one. The student is the same UNet plus a guidance-scale embedding (diffusers'
``time_cond_proj_dim``, zero-initialised, so it starts as the teacher's conditional prediction); the target
network is the EMA of the student (decay ``ema_decay``, 0.95 as in LCM, no warm-up). The student's
``LatentDiffusion`` shares the teacher's frozen VAE, CLAP and vocoder.
"""

from __future__ import annotations

import dataclasses

from diffusers import UNet2DConditionModel

from audioldm.assembly.latent_diffusion import assemble, read_ldm
from audioldm.audio.mel import MelConfig
from audioldm.checkpoint import CheckpointError, load_weights
from audioldm.models.ema import EmaModel
from audioldm.models.latent_diffusion import LatentDiffusion
from audioldm.models.lcm import LcmConfig
from audioldm.models.unet import UnetConfig, build_unet


def student_unet(
    teacher: UNet2DConditionModel, teacher_config: UnetConfig, guidance_embed_dim: int
) -> tuple[UNet2DConditionModel, UnetConfig]:
    """(the student: the teacher's weights plus a zero guidance embedding, its UnetConfig)."""
    if teacher.config.time_cond_proj_dim:
        raise CheckpointError("the teacher is already a consistency-distilled (lcm) student; distil a plain LDM")
    config = dataclasses.replace(teacher_config, guidance_embed_dim=guidance_embed_dim)
    student = build_unet(config)
    missing, unexpected = student.load_state_dict(teacher.state_dict(), strict=False)
    if unexpected or set(missing) != {"time_embedding.cond_proj.weight"}:
        raise CheckpointError(
            f"the student does not match the teacher's UNet (missing {missing}, unexpected {unexpected})"
        )
    return student, config


def distillation_models(config: LcmConfig, mel: MelConfig) -> tuple[LatentDiffusion, UNet2DConditionModel, UnetConfig]:
    """(the student as a LatentDiffusion with its target EMA, the frozen teacher UNet, the student's
    UnetConfig) from ``teacher_ckpt``."""
    weights = read_ldm(
        config.teacher_ckpt,
        config.teacher_tokenizer,
        config.teacher_head_channels,
        clap=config.clap_ckpt,
        vocoder=config.vocoder_ckpt,
    )
    if dataclasses.asdict(weights.mel) != dataclasses.asdict(mel):
        raise CheckpointError(
            f"{config.teacher_ckpt}: the teacher's audio settings {dataclasses.asdict(weights.mel)} "
            f"differ from the config's audio section {dataclasses.asdict(mel)}"
        )
    teacher = build_unet(weights.unet_config)
    load_weights(teacher, weights.ema if weights.ema is not None else weights.unet, f"{config.teacher_ckpt} (teacher)")
    teacher.requires_grad_(False).eval()
    if config.lora is not None:  # LCM-LoRA: an adapter on a copy of the teacher, no guidance embedding, no EMA
        from audioldm.assembly.adapters import start_adapter

        if teacher.config.time_cond_proj_dim:
            raise CheckpointError("the teacher is already a consistency-distilled (lcm) student; distil a plain LDM")
        student = build_unet(weights.unet_config)
        student.load_state_dict(teacher.state_dict())
        model = assemble(student, weights.parts, mel)
        model.adapter_meta = {
            **start_adapter(model, config.lora, config.teacher_ckpt),
            "kind": "lcm",
            "guidance": [config.guidance_min, config.guidance_max],
        }
        model.consistency_adapter = True
        return model, teacher, weights.unet_config
    student, student_config = student_unet(teacher, weights.unet_config, config.guidance_embed_dim)
    model = assemble(student, weights.parts, mel, EmaModel(student, config.ema_decay, config.ema_warmup))
    return model, teacher, student_config
