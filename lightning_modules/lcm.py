"""Consistency-distillation stage (``stage: lcm``): turns a trained LDM into a 1-4 step generator with
classifier-free guidance built in (latent consistency distillation; the loss is
``audioldm.diffusion.consistency.consistency_loss``).

Per batch: the latents and conditions exactly as the ldm stage draws them (audio, pre-encoded latents or
shards, ``text_condition_prob``), a guidance scale W ~ U[guidance_min, guidance_max] per sample, the
teacher's guided DDIM step over the ``solver_steps`` grid, and the consistency loss between the student
and the target network (the student's EMA, updated after every optimiser step). The teacher is frozen and
kept outside the module tree: checkpoints hold the student, its target and the frozen parts (the same
layout as an ldm checkpoint, so ``generate.py``, ``evaluate.py`` and the notebook load them), and a resumed
run reads the teacher again from ``model.teacher_ckpt``. Validation: the loss at fixed draws and the fixed
prompts sampled with the lcm sampler from the target network.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from audioldm.assembly.student import distillation_models
from audioldm.diffusion.consistency import consistency_loss
from audioldm.models.latent_diffusion import LatentDiffusion
from audioldm.models.unet import predict_noise
from lightning_modules.latent_stage import LatentStage


class LcmModule(LatentStage):
    """Trains the student ``model.unet``; the target is ``model.unet_ema``; VAE, CLAP, vocoder and teacher frozen."""

    stage = "lcm"

    def __init__(self, config: DictConfig, model: LatentDiffusion | None = None):
        teacher = None
        if model is None:
            model, teacher, unet_config = distillation_models(
                OmegaConf.to_object(config.model), OmegaConf.to_object(config.audio)
            )
            config.model.unet = OmegaConf.structured(unet_config)  # checkpoints record the student's shape
        super().__init__(config, model)
        self.__dict__["teacher"] = teacher  # not a submodule: never saved, never trained
        m = self.model_config
        self.guidance_range = (m.guidance_min, m.guidance_max)
        self.solver_steps, self.loss_kind, self.huber_c = m.solver_steps, m.loss, m.huber_c

    def distillation_loss(
        self, x0: torch.Tensor, condition: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The consistency loss of latents x0 [B, C, T', F'] under conditions [B, D] (fresh draws, or
        the ``generator``'s)."""
        if self.teacher is None:
            raise RuntimeError("this lcm module was loaded for inference (no teacher); train it through train.py")
        if next(self.teacher.parameters()).device != x0.device:
            self.teacher.to(x0.device)
        low, high = self.guidance_range
        guidance = low + (high - low) * torch.rand(x0.shape[0], device=x0.device, generator=generator)
        student = self.model.unet
        if self.compile_unet:
            student = self.model._compiled(student)
        if self.model.unet_ema is None:  # LCM-LoRA: no guidance embedding (built in), the student is its own target
            unet = self.model.unet
            student_fn = lambda x, t, c, w: predict_noise(student, x, t, c)  # noqa: E731
            target_fn = lambda x, t, c, w: predict_noise(unet, x, t, c)  # noqa: E731
        else:
            target = self.model.unet_ema.module
            student_fn = lambda x, t, c, w: predict_noise(student, x, t, c, w)  # noqa: E731
            target_fn = lambda x, t, c, w: predict_noise(target, x, t, c, w)  # noqa: E731
        return consistency_loss(
            student_fn,
            target_fn,
            lambda x, t, c: predict_noise(self.teacher, x, t, c),
            x0,
            condition,
            self.model.null_condition,
            guidance,
            self.alphas_cumprod,
            self.solver_steps,
            self.loss_kind,
            self.huber_c,
            generator,
        )

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        x0, condition = self.latents_and_conditions(batch)
        loss = self.distillation_loss(x0, condition)
        self.log("train/loss", loss, batch_size=x0.shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """The loss with every draw fixed by the batch index (comparable across validations), audio conditions."""
        generator = torch.Generator(device=self.device).manual_seed(batch_idx)
        x0, condition = self.latents_and_conditions(batch, generator, text_prob=0.0)
        loss = self.distillation_loss(x0, condition, generator)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=x0.shape[0])
