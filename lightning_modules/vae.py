"""Mel VAE stage: L1 reconstruction + KL + hinge PatchGAN with an adaptive weight.

Two optimisers under manual optimisation (autoencoder, discriminator), both stepped every batch
as in the latent-diffusion recipe, so ``global_step`` advances by 2 per batch. Before
``disc_start`` autoencoder updates, the adversarial terms are zero. The adaptive weight is
||grad nll|| / ||grad g_loss|| at the decoder's last layer, clamped to [0, 1e4], times
``disc_weight``. Validation logs mel L1, LSD, PSNR and SSIM.

The latent ``scale_factor`` = 1 / std(z) is measured on the training latents (posterior
samples) as an exponential moving average of their variance (momentum 0.99, started from the
first batch); it is a buffer, so every checkpoint carries it (also those written mid-epoch) and
the LDM stage reads it from there. Validation logs the same quantity on its own set.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from audioldm.audio.mel import MelFrontEnd
from audioldm.losses.gan import hinge_d_loss, hinge_g_loss
from audioldm.models.patchgan import PatchDiscriminator
from audioldm.models.vae import build_autoencoder
from evaluation.reconstruction import clamp_mel, mel_reconstruction_metrics
from lightning_modules.stage_module import StageModule


class VaeModule(StageModule):
    """batch["log_mel"]: [B, 1, T, F] -> latent [B, 8, T/4, F/4] -> reconstruction [B, 1, T, F]."""

    stage = "vae"
    optimizers_per_batch = 2  # autoencoder and discriminator: trainer.max_steps counts both

    def __init__(self, config: DictConfig):
        super().__init__(config)
        m = self.model_config
        self.automatic_optimization = False
        self.vae = build_autoencoder(m)
        self.discriminator = PatchDiscriminator(1, m.disc_channels, m.disc_layers)
        self.val_metrics = mel_reconstruction_metrics("val/")
        self.register_buffer("scale_factor", torch.tensor(1.0))
        self.register_buffer("latent_var", torch.tensor(1.0))  # EMA of the training latents' variance
        self.register_buffer("ae_steps", torch.tensor(0, dtype=torch.long))  # autoencoder updates
        self._z_stats = torch.zeros(3, dtype=torch.float64)  # validation: sum, sum of squares, count

    def forward(self, log_mel: torch.Tensor, sample: bool = True):
        posterior = self.vae.encode(log_mel).latent_dist
        z = posterior.sample() if sample else posterior.mode()
        return self.vae.decode(z).sample, posterior, z

    @torch.no_grad()
    def update_scale_factor(self, z: torch.Tensor, momentum: float = 0.99) -> None:
        var = z.float().var()
        if int(self.ae_steps) == 0:
            self.latent_var.copy_(var)
        else:
            self.latent_var.mul_(momentum).add_((1 - momentum) * var)
        self.scale_factor.copy_(self.latent_var.clamp(min=1e-12).rsqrt())

    def adaptive_weight(self, nll: torch.Tensor, g_loss: torch.Tensor) -> torch.Tensor:
        last = self.vae.decoder.conv_out.weight
        nll_grad = torch.autograd.grad(nll, last, retain_graph=True)[0]
        g_grad = torch.autograd.grad(g_loss, last, retain_graph=True)[0]
        weight = nll_grad.norm() / (g_grad.norm() + 1e-4)
        return weight.clamp(0.0, 1e4).detach() * self.model_config.disc_weight

    def training_step(self, batch: dict, batch_idx: int) -> None:
        m = self.model_config
        opt_ae, opt_d = self.optimizers()
        x = batch["log_mel"]
        n = x.shape[0]
        gan_on = int(self.ae_steps) >= m.disc_start
        recon, posterior, z = self(x)
        self.update_scale_factor(z.detach())
        nll = (recon - x).abs().mean()
        kl = posterior.kl().sum() / x.numel()
        loss = nll + m.kl_weight * kl
        logs = {"train/l1": nll.detach(), "train/kl": kl.detach()}
        if gan_on:
            g_loss = hinge_g_loss(self.discriminator(recon))
            d_weight = self.adaptive_weight(nll, g_loss)
            loss = loss + d_weight * g_loss
            logs.update({"train/g_loss": g_loss.detach(), "train/d_weight": d_weight})
        opt_ae.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self.clip_manual(opt_ae)
        opt_ae.step()
        self.ae_steps += 1

        opt_d.zero_grad(set_to_none=True)
        d_loss = x.new_zeros(())
        if gan_on:  # before disc_start the discriminator is not run (its step, without gradients, still counts)
            d_loss = hinge_d_loss(self.discriminator(x), self.discriminator(recon.detach()))
            self.manual_backward(d_loss)
            self.clip_manual(opt_d)
        opt_d.step()
        for scheduler in self.lr_schedulers():
            scheduler.step()
        logs.update({"train/d_loss": d_loss.detach(), "lr/autoencoder": opt_ae.param_groups[0]["lr"]})
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=n)
        self.log_dict(logs, batch_size=n)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        x = batch["log_mel"]
        recon, posterior, _ = self(x, sample=False)
        z = posterior.sample()
        self._z_stats += torch.stack([z.sum(), z.pow(2).sum(), torch.tensor(z.numel())]).double().cpu()
        self.val_metrics.update(clamp_mel(recon), clamp_mel(x))
        kl = posterior.kl().sum() / x.numel()
        self.log("val/kl", kl, sync_dist=True, batch_size=x.shape[0])

    def on_validation_epoch_end(self) -> None:
        metrics = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log_dict(metrics, prog_bar=True)
        stats = self.all_gather(self._z_stats.to(self.device)).reshape(-1, 3).sum(0)
        self._z_stats.zero_()
        if stats[2] > 1:
            mean = stats[0] / stats[2]
            std = (stats[1] / stats[2] - mean**2).clamp(min=1e-12).sqrt()
            self.log("val/scale_factor", (1.0 / std).float())
        self.log("train_scale_factor", self.scale_factor)

    def preview(self, batch: dict) -> dict[str, torch.Tensor]:
        """Target and reconstructed mels, and Griffin-Lim renderings of both (no vocoder needed)."""
        x = batch["log_mel"][:4]
        recon = self(x, sample=False)[0]
        front = MelFrontEnd(self.mel_config).to(x.device)
        return {
            "mel/target": x,
            "mel/reconstruction": recon,
            "audio/target_griffinlim": front.griffin_lim(x, n_iter=16),
            "audio/reconstruction_griffinlim": front.griffin_lim(recon, n_iter=16),
        }

    def configure_optimizers(self):
        betas = tuple(self.model_config.betas)
        ae = self.make_optimizer(self.vae.parameters(), betas=betas)
        d = self.make_optimizer(self.discriminator.parameters(), betas=betas)
        return [ae["optimizer"], d["optimizer"]], [ae["lr_scheduler"], d["lr_scheduler"]]
