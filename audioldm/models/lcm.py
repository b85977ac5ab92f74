"""The config of consistency distillation (``stage: lcm``): a frozen teacher LDM and its student, a
``LatentDiffusion`` whose UNet has a guidance-scale embedding (``audioldm/assembly/student.py`` builds them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING

from audioldm.constraints import INF, in_range, one_of
from audioldm.models.latent_diffusion import PreviewConfig
from audioldm.models.lora import LoraConfig
from audioldm.models.unet import UnetConfig


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
    guidance_embed_dim: int = in_range(256, 2, INF)  # size of the guidance-scale embedding (LCM: 256)
    guidance_min: float = in_range(
        1.0, 1.0, INF, at_most="guidance_max"
    )  # guidance W drawn per sample from [guidance_min, guidance_max]
    guidance_max: float = in_range(5.0, 1.0, INF)
    solver_steps: int = in_range(
        50, 1, 1000
    )  # the teacher's DDIM grid (N of 1000 timesteps); the lcm sampler uses the same
    loss: str = one_of("huber", "huber", "l2")  # "huber" (pseudo-Huber, LCM's choice) or "l2"
    huber_c: float = in_range(0.001, 0.0, INF, "()")
    ema_decay: float = in_range(0.95, 0.0, 1.0)  # the target network: EMA of the student
    ema_warmup: bool = False
    # per sample, the CLAP text embedding of one of the clip's captions instead of its audio embedding (as the
    # ldm stage's text_condition_prob)
    text_condition_prob: float = in_range(0.0, 0.0, 1.0)
    compile_unet: bool = False
    # LCM-LoRA: distil into a LoRA adapter on the teacher's frozen UNet instead of a whole student. No guidance
    # embedding (an adapter cannot add one): the guidance is built in, so set guidance_min = guidance_max; the
    # target network is the student itself (no EMA). The adapter turns the teacher into a few-step generator.
    lora: Optional[LoraConfig] = None
    val_steps: int = 4  # the fixed prompts are previewed with the lcm sampler
    val_sampler: str = "lcm"
