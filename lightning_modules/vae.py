"""Mel VAE stage: reconstruction (L1) + KL on log-mels; logs losses and reconstructions.

Loss normalisation: mean absolute error over all mel elements plus ``kl_weight`` times the KL
divergence summed over latent elements divided by the number of mel elements, so the balance of
the two terms equals that of the summed convention used by the LDM code base.
"""
from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from audioldm.models.vae import build_autoencoder
from lightning_modules.base import StageModule


class VaeModule(StageModule):
    """batch["log_mel"]: [B, 1, T, F] -> latent [B, 8, T/4, F/4] -> reconstruction [B, 1, T, F]."""

    stage = "vae"

    def __init__(self, config: DictConfig):
        super().__init__(config)
        self.vae = build_autoencoder(OmegaConf.to_object(config.model))

    def forward(self, log_mel: torch.Tensor, sample: bool = True):
        posterior = self.vae.encode(log_mel).latent_dist
        z = posterior.sample() if sample else posterior.mode()
        return self.vae.decode(z).sample, posterior

    def _losses(self, log_mel: torch.Tensor, sample: bool) -> dict[str, torch.Tensor]:
        recon, posterior = self(log_mel, sample=sample)
        l1 = (recon - log_mel).abs().mean()
        kl = posterior.kl().sum() / log_mel.numel()
        return {"loss": l1 + self.config.model.kl_weight * kl, "l1": l1, "kl": kl, "recon": recon}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self._losses(batch["log_mel"], sample=True)
        n = batch["log_mel"].shape[0]
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=n)
        self.log_dict({"train/l1": out["l1"], "train/kl": out["kl"]}, batch_size=n)
        return out["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        out = self._losses(batch["log_mel"], sample=False)
        n = batch["log_mel"].shape[0]
        self.log("val/mel_l1", out["l1"], prog_bar=True, sync_dist=True, batch_size=n)
        self.log_dict({"val/loss": out["loss"], "val/kl": out["kl"]}, sync_dist=True, batch_size=n)

    def configure_optimizers(self):
        return self.make_optimizer(self.vae.parameters())
