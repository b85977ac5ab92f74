"""What the latent stages (``ldm``, ``lcm``) share: ``model``, a ``LatentDiffusion`` whose UNet trains while its
VAE, CLAP and vocoder stay frozen; its conditioning (``conditioning.py``, by composition); the EMA update after
every optimiser step; checkpoints that carry the frozen parts' configs (so one file rebuilds every network); and
the preview of the fixed validation prompts, generated with the EMA UNet.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from audioldm.assembly.latent_diffusion import build_latent_diffusion
from audioldm.config.loader import config_to_dict
from audioldm.diffusion.schedule import make_scheduler
from audioldm.models.latent_diffusion import LatentDiffusion
from audioldm.pipeline.outputs import slug
from audioldm.pipeline.text_to_audio import SamplingOptions, TextToAudio
from lightning_modules.conditioning import LatentConditioning
from lightning_modules.stage_module import StageModule


class LatentStage(StageModule):
    """Trains ``model.unet`` (and updates ``model.unet_ema``); the frozen parts stay in eval mode."""

    def __init__(self, config: DictConfig, model: LatentDiffusion):
        super().__init__(config)
        self.model = model
        m = self.model_config  # read once: the config's conversion costs Python time at every step
        self.conditioning = LatentConditioning(model, m.text_condition_prob)
        self.text_condition_prob, self.compile_unet = m.text_condition_prob, m.compile_unet
        # the training schedule's table on the module's device (diffusers' add_noise copies its CPU table to
        # the GPU at every call)
        self.register_buffer("alphas_cumprod", make_scheduler("ddpm").alphas_cumprod.clone(), persistent=False)

    @classmethod
    def for_checkpoint(cls, config: DictConfig, checkpoint: dict[str, Any]) -> "LatentStage":
        """Rebuild the frozen parts from the configs the checkpoint carries (no other files needed)."""
        if "stage_configs" not in checkpoint:
            raise ValueError(
                f"{config.stage} checkpoint has no 'stage_configs' entry (not written by this project's train.py)"
            )
        model = build_latent_diffusion(
            OmegaConf.to_object(config.model), OmegaConf.to_object(config.audio), checkpoint["stage_configs"]
        )
        return cls(config, model)

    def latents_and_conditions(
        self, batch: dict, generator: torch.Generator | None = None, text_prob: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_0 [B, C, T', F'], condition [B, D]) of a batch (``LatentConditioning.latents_and_conditions``)."""
        return self.conditioning.latents_and_conditions(batch, generator, text_prob)

    def on_fit_start(self) -> None:
        """Pre-encoded latents must come from this run's VAE and CLAP (checked before any step)."""
        cache = getattr(getattr(self.trainer, "datamodule", None), "cache", None)
        if cache is not None:
            self.conditioning.check_cache(cache)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["stage_configs"] = self.model.stage_configs
        checkpoint["samplers"] = list(self.model.samplers)  # lcm students: only the lcm sampler
        if self.model.adapter_meta is not None:  # a LoRA run: the adapter (and optimiser) only, and its files
            keys = adapter_keys(self)
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keys}
            checkpoint["adapter"] = self.model.adapter_meta
            self.write_adapter()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A LoRA run's checkpoint holds its adapter only: the frozen base comes from the module as built."""
        if checkpoint.get("adapter"):
            checkpoint["state_dict"] = {**self.state_dict(), **checkpoint["state_dict"]}
        super().on_load_checkpoint(checkpoint)

    def write_adapter(self) -> None:
        """``<run>/adapter/adapter.safetensors`` + ``.json``: the adapter alone, with its base's fingerprint."""
        from audioldm.assembly.adapters import TRAINED
        from audioldm.formats.adapter_files import write_adapter
        from audioldm.models.lora import adapter_state

        if self.trainer is None or self.trainer.global_rank != 0 or not self.trainer.log_dir:
            return
        meta = {**self.model.adapter_meta, "step": self.global_step, "config": config_to_dict(self.config)}
        path = os.path.join(self.trainer.log_dir, "adapter", "adapter.safetensors")
        write_adapter(path, adapter_state(self.model.unet, TRAINED), meta)

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.model.unet_ema is not None:  # a LoRA run keeps none
            self.model.unet_ema.update(self.model.unet)

    @torch.no_grad()
    def preview(self, batch: dict) -> dict[str, torch.Tensor]:
        """The fixed validation prompts generated with the EMA UNet: one mel image and one clip each."""
        m = self.model_config
        options = SamplingOptions(steps=m.val_steps, sampler=m.val_sampler, guidance=m.val_guidance, seed=m.val_seed)
        result = TextToAudio(self.model, use_ema=True).text_to_audio(list(m.val_prompts), m.val_seconds, options)
        media: dict[str, torch.Tensor] = {}
        for i, prompt in enumerate(m.val_prompts):
            name = f"{i}_{slug(prompt)}"
            media[f"mel/generated/{name}"] = result.log_mel[i : i + 1]
            media[f"audio/generated/{name}"] = result.waveform[i : i + 1]
        return media

    def configure_optimizers(self):
        # the whole UNet, or a LoRA run's adapter alone (the frozen base has no gradients)
        return self.make_optimizer([p for p in self.model.unet.parameters() if p.requires_grad])


def adapter_keys(module: StageModule) -> set[str]:
    """The state-dict names of a LoRA run's trained weights (those with gradients)."""
    return {name for name, p in module.named_parameters() if p.requires_grad}
