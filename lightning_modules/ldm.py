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
either audio (``log_mel`` + ``waveform``, encoded here by the frozen VAE and CLAP) or pre-encoded tensors
(``posterior`` + ``clap_audio``, from
``python -m data.preencode``): both give the same loss for the same clips and noise.

The EMA of the UNet is updated after every optimiser step; validation (loss at fixed noise, and
the fixed prompts rendered by ``preview``) uses it, and it is saved in every checkpoint.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from audioldm.assembly.latent_diffusion import ldm_for_training
from audioldm.diffusion.schedule import v_target
from audioldm.models.latent_diffusion import LatentDiffusion
from audioldm.models.token_condition import per_sample
from lightning_modules.latent_stage import LatentStage

log = logging.getLogger(__name__)


class LdmModule(LatentStage):
    """Trains ``model.unet``; ``model.vae``, ``model.clap`` and ``model.vocoder`` stay frozen."""

    stage = "ldm"

    def __init__(self, config: DictConfig, model: LatentDiffusion | None = None):
        if model is None:  # on resume too: init_from gives the networks their shapes
            model, unet_config = ldm_for_training(config)
            adopt_unet_shape(config, unet_config)
        super().__init__(config, model)
        m = self.model_config
        self.condition_drop_prob, self.min_snr_gamma = m.condition_drop_prob, m.min_snr_gamma

    def diffusion_loss(
        self,
        x0: torch.Tensor,
        condition: torch.Tensor,
        use_ema: bool = False,
        drop_prob: float | None = None,
        generator: torch.Generator | None = None,
        weighted: bool = True,
    ) -> torch.Tensor:
        """MSE between the UNet's output and its target (the noise, or v for a v-prediction UNet) at random t,
        with condition dropout; with ``min_snr_gamma`` each sample's MSE is weighted (``min_snr_weight``).
        ``weighted=False``: the plain epsilon MSE (validation), the same measure for every recipe."""
        b, device = x0.shape[0], x0.device
        p = self.condition_drop_prob if drop_prob is None else drop_prob
        drop = torch.rand(b, device=device, generator=generator) < p
        condition = torch.where(per_sample(drop, condition), self.model.null_condition.to(condition), condition)
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
        each = (out.float() - target.float()).pow(2).flatten(1).mean(1)
        return (each * self.min_snr_weight(t)).mean()

    def min_snr_weight(self, t: torch.Tensor) -> torch.Tensor:
        """min(SNR_t, gamma) / SNR_t [B] for timesteps t [B], SNR_t = a_t / (1 - a_t); for a v-prediction
        UNet min(SNR_t, gamma) / (SNR_t + 1) (the same weight on the implied x_0 error)."""
        a = self.alphas_cumprod.float()[t]
        snr = a / (1 - a)
        return snr.clamp(max=self.min_snr_gamma) / (snr if self.model.prediction_type == "epsilon" else snr + 1)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """q(x_t | x_0): sqrt(a_t) x_0 + sqrt(1 - a_t) e, as diffusers' ``add_noise`` computes it."""
        a = self.alphas_cumprod.to(x0.dtype)[t].reshape(-1, *([1] * (x0.ndim - 1)))
        return a**0.5 * x0 + (1 - a) ** 0.5 * noise

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        x0, condition = self.latents_and_conditions(batch)
        loss = self.diffusion_loss(x0, condition)
        # not on the progress bar: Lightning converts progress-bar values to Python numbers after every step,
        # a host-device sync; the logger reads them only every log_every_n_steps
        self.log("train/loss", loss, batch_size=x0.shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """EMA loss with noise, timesteps and posterior samples fixed by the batch index (comparable
        across validations), no condition dropout and no Min-SNR weights (comparable across recipes)."""
        generator = torch.Generator(device=self.device).manual_seed(batch_idx)
        x0, condition = self.latents_and_conditions(batch, generator, text_prob=0.0)
        loss = self.diffusion_loss(x0, condition, use_ema=True, drop_prob=0.0, generator=generator, weighted=False)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=x0.shape[0])
        if self.text_condition_prob > 0:  # the same noise with the caption's text embedding (where there is one)
            generator = torch.Generator(device=self.device).manual_seed(batch_idx)
            x0, condition = self.latents_and_conditions(batch, generator, text_prob=1.0)
            loss = self.diffusion_loss(x0, condition, use_ema=True, drop_prob=0.0, generator=generator, weighted=False)
            self.log("val/loss_text", loss, sync_dist=True, batch_size=x0.shape[0])


def adopt_unet_shape(config: DictConfig, unet_config) -> None:
    """``config.model.unet`` := the shape of the UNet the run starts from (init_from's, or with a crossattn_*
    condition the text encoder's width as ``context_dim``), said when it differs."""
    new_unet = OmegaConf.structured(unet_config)
    old = OmegaConf.to_container(config.model.unet)
    if OmegaConf.to_container(new_unet) != old:
        if config.get("init_from"):
            log.warning(
                "init_from %s: model.unet set to the source's shape %s",
                config.init_from,
                OmegaConf.to_container(new_unet),
            )
        elif {**old, "context_dim": unet_config.context_dim} != OmegaConf.to_container(new_unet):
            log.warning("model.unet set to %s", OmegaConf.to_container(new_unet))
    config.model.unet = new_unet
