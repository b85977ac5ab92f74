"""Latent diffusion stage: epsilon- (or v-) prediction MSE on VAE latents, conditioned on the CLAP *audio*
embedding of the same clip (captions are not needed to train), or, per sample with probability
``text_condition_prob``, on the CLAP *text* embedding of one of its captions (the one the dataset
drew; clips without captions always use audio), as the official training code mixes them.

x_0 = VAE posterior sample x ``scale_factor``; t ~ U{0..999}; x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) e;
loss = ||e - UNet(x_t, t, c)||^2 (or ||v - UNet(x_t, t, c)||^2 with ``unet.prediction_type: v_prediction``,
v = sqrt(a_t) e - sqrt(1 - a_t) x_0), where c is replaced by the null condition (CLAP's embedding of
the empty caption) with probability ``condition_drop_prob`` so that classifier-free guidance
works at sampling time; with ``min_snr_gamma`` each sample's MSE is weighted by
min(SNR_t, gamma) / SNR_t (Min-SNR-gamma; validation reports the plain epsilon MSE). The batch holds
either audio (``log_mel`` + ``waveform``, encoded here by the frozen VAE and CLAP) or pre-encoded tensors (``posterior`` + ``clap_audio``, from
``python -m data.preencode``): both give the same loss for the same clips and noise.

The EMA of the UNet is updated after every optimiser step; validation (loss at fixed noise, and
the fixed prompts rendered by ``preview``) uses it, and it is saved in every checkpoint.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from omegaconf import DictConfig, OmegaConf

from audioldm.diffusion.schedule import make_scheduler, v_target
from audioldm.models.frozen_stages import fingerprint
from audioldm.models.latent_diffusion import LatentDiffusion, build_latent_diffusion, latent_diffusion_from_stages
from audioldm.pipeline.outputs import slug
from audioldm.pipeline.text_to_audio import SamplingOptions, TextToAudio
from data.latent_cache import LatentCacheError
from lightning_modules.base import StageModule


class LdmModule(StageModule):
    """Trains ``model.unet``; ``model.vae``, ``model.clap`` and ``model.vocoder`` stay frozen."""

    stage = "ldm"

    def __init__(self, config: DictConfig, model: LatentDiffusion | None = None):
        super().__init__(config)
        if model is None and config.get("init_from"):  # on resume too: it gives the networks their shapes
            from lightning_modules.init_from import init_ldm_model

            model = init_ldm_model(config)  # also sets config.model.unet to the source's shape
        self.model = model if model is not None else latent_diffusion_from_stages(self.model_config, self.mel_config)
        # the training schedule's table on the module's device (diffusers' add_noise copies its CPU table to
        # the GPU at every call)
        self.register_buffer("alphas_cumprod", make_scheduler("ddpm").alphas_cumprod.clone(), persistent=False)
        m = self.model_config  # read once: the config's conversion costs Python time at every step
        self.condition_drop_prob, self.compile_unet = m.condition_drop_prob, m.compile_unet
        self.text_condition_prob, self.min_snr_gamma = m.text_condition_prob, m.min_snr_gamma

    @classmethod
    def for_checkpoint(cls, config: DictConfig, checkpoint: dict[str, Any]) -> "LdmModule":
        """Rebuild the frozen stages from the configs the checkpoint carries (no other files needed)."""
        if "stage_configs" not in checkpoint:
            raise ValueError("ldm checkpoint has no 'stage_configs' entry (not written by this project's train.py)")
        model = build_latent_diffusion(OmegaConf.to_object(config.model), OmegaConf.to_object(config.audio),
                                       checkpoint["stage_configs"])
        return cls(config, model)

    def on_fit_start(self) -> None:
        """Pre-encoded latents must come from this run's VAE and CLAP (checked before any step)."""
        cache = getattr(getattr(self.trainer, "datamodule", None), "cache", None)
        if cache is not None:
            cache.check_meta({"vae_fingerprint": fingerprint(self.model.vae),
                              "clap_fingerprint": fingerprint(self.model.clap)})
            if self.text_condition_prob > 0 and not cache.has_text_embeddings:
                raise LatentCacheError(
                    f"{cache.where}: these pre-encoded latents have no CLAP text embeddings of the captions (written "
                    f"before data.preencode stored them), which model.text_condition_prob={self.text_condition_prob} "
                    f"needs: pre-encode again into a new data.latent_cache_dir (then data.shard_writer for shards), "
                    f"or set model.text_condition_prob=0")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["stage_configs"] = self.model.stage_configs
        checkpoint["samplers"] = list(self.model.samplers)  # lcm students: only the lcm sampler

    # -- training ---------------------------------------------------------------------------
    def latents_and_conditions(self, batch: dict, generator: torch.Generator | None = None,
                               text_prob: float | None = None):
        """(x_0 [B, C, T', F'], condition [B, D]) from audio or from pre-encoded tensors: the CLAP audio
        embedding, or with probability ``text_prob`` (default ``text_condition_prob``) per sample the
        CLAP text embedding of the batch's caption (``batch["caption"]``; "" = none: audio)."""
        if "posterior" in batch:
            posterior = DiagonalGaussianDistribution(batch["posterior"])
            condition = batch["clap_audio"]
        else:
            posterior = self.model.posterior(batch["log_mel"])
            condition = self.model.embed_audio(batch["waveform"])
        # float32 latents (and noise): under bf16 autocast the frozen VAE returns bf16
        x0 = self.model.to_latent(posterior, generator=generator).float()
        p = self.text_condition_prob if text_prob is None else text_prob
        if p > 0:  # no draw at 0: the paper recipe's random stream is unchanged
            text, has_text = self.text_conditions(batch)
            use_text = (torch.rand(x0.shape[0], device=x0.device, generator=generator) < p) & has_text
            condition = torch.where(use_text[:, None], text.to(condition), condition)
        return x0, condition.float()

    def text_conditions(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(CLAP text embedding of each item's caption [B, D], has a caption [B] bool): pre-encoded, or
        embedded here by the frozen CLAP."""
        if "posterior" in batch:
            if "clap_text" not in batch:
                raise LatentCacheError("the pre-encoded batch has no CLAP text embeddings (clap_text): pre-encode "
                                       "again with this version of data.preencode, or set model.text_condition_prob=0")
            return batch["clap_text"], batch["has_text"].to(self.device, torch.bool)
        captions = list(batch["caption"])
        has_text = torch.tensor([bool(c) for c in captions], device=self.device)
        return self.model.embed_text(captions), has_text

    def diffusion_loss(self, x0: torch.Tensor, condition: torch.Tensor, use_ema: bool = False,
                       drop_prob: float | None = None, generator: torch.Generator | None = None,
                       weighted: bool = True) -> torch.Tensor:
        """MSE between the UNet's output and its target (the noise, or v for a v-prediction UNet) at random t,
        with condition dropout; with ``min_snr_gamma`` each sample's MSE is weighted (``min_snr_weight``).
        ``weighted=False``: the plain epsilon MSE (validation), the same measure for every recipe."""
        b, device = x0.shape[0], x0.device
        p = self.condition_drop_prob if drop_prob is None else drop_prob
        drop = torch.rand(b, device=device, generator=generator) < p
        condition = torch.where(drop[:, None], self.model.null_condition.to(condition), condition)
        t = torch.randint(0, self.alphas_cumprod.shape[0], (b,), device=device, generator=generator)
        noise = torch.randn(x0.shape, device=device, dtype=x0.dtype, generator=generator)
        noisy = self.add_noise(x0, noise, t)
        compile = self.compile_unet and not use_ema
        if not weighted:  # the epsilon MSE, whatever the UNet outputs (comparable across recipes)
            return F.mse_loss(self.model.denoiser(use_ema, compile)(noisy, t, condition).float(), noise.float())
        out = self.model.network(use_ema, compile)(noisy, t, condition)
        target = noise if self.model.prediction_type == "epsilon" else v_target(x0, noise, t)
        if self.min_snr_gamma is None:
            return F.mse_loss(out.float(), target.float())
        per_sample = (out.float() - target.float()).pow(2).flatten(1).mean(1)
        return (per_sample * self.min_snr_weight(t)).mean()

    def min_snr_weight(self, t: torch.Tensor) -> torch.Tensor:
        """min(SNR_t, gamma) / SNR_t [B] for timesteps t [B], SNR_t = a_t / (1 - a_t); for a v-prediction
        UNet min(SNR_t, gamma) / (SNR_t + 1) (the same weight on the implied x_0 error)."""
        a = self.alphas_cumprod.float()[t]
        snr = a / (1 - a)
        return snr.clamp(max=self.min_snr_gamma) / (snr if self.model.prediction_type == "epsilon" else snr + 1)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """q(x_t | x_0): sqrt(a_t) x_0 + sqrt(1 - a_t) e, as diffusers' ``add_noise`` computes it."""
        a = self.alphas_cumprod.to(x0.dtype)[t].reshape(-1, *([1] * (x0.ndim - 1)))
        return a ** 0.5 * x0 + (1 - a) ** 0.5 * noise

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        x0, condition = self.latents_and_conditions(batch)
        loss = self.diffusion_loss(x0, condition)
        # not on the progress bar: Lightning converts progress-bar values to Python numbers after every step,
        # a host-device sync; the logger reads them only every log_every_n_steps
        self.log("train/loss", loss, batch_size=x0.shape[0])
        return loss

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        self.model.unet_ema.update(self.model.unet)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """EMA loss with noise, timesteps and posterior samples fixed by the batch index (comparable
        across validations), no condition dropout and no Min-SNR weights (comparable across recipes)."""
        generator = torch.Generator(device=self.device).manual_seed(batch_idx)
        x0, condition = self.latents_and_conditions(batch, generator, text_prob=0.0)
        loss = self.diffusion_loss(x0, condition, use_ema=True, drop_prob=0.0, generator=generator,
                                   weighted=False)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=x0.shape[0])
        if self.text_condition_prob > 0:  # the same noise with the caption's text embedding (where there is one)
            generator = torch.Generator(device=self.device).manual_seed(batch_idx)
            x0, condition = self.latents_and_conditions(batch, generator, text_prob=1.0)
            loss = self.diffusion_loss(x0, condition, use_ema=True, drop_prob=0.0, generator=generator,
                                   weighted=False)
            self.log("val/loss_text", loss, sync_dist=True, batch_size=x0.shape[0])

    @torch.no_grad()
    def preview(self, batch: dict) -> dict[str, torch.Tensor]:
        """The fixed validation prompts generated with the EMA UNet: one mel image and one clip each."""
        m = self.model_config
        options = SamplingOptions(steps=m.val_steps, sampler=m.val_sampler, guidance=m.val_guidance, seed=m.val_seed)
        result = TextToAudio(self.model, use_ema=True).text_to_audio(list(m.val_prompts), m.val_seconds, options)
        media: dict[str, torch.Tensor] = {}
        for i, prompt in enumerate(m.val_prompts):
            name = f"{i}_{slug(prompt)}"
            media[f"mel/generated/{name}"] = result.log_mel[i:i + 1]
            media[f"audio/generated/{name}"] = result.waveform[i:i + 1]
        return media

    def configure_optimizers(self):
        return self.make_optimizer(self.model.unet.parameters())

