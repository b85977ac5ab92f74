"""HiFi-GAN vocoder stage: random short segments, mel L1 (+ multi-resolution STFT) + feature matching + LSGAN.

Two AdamW optimisers (generator, discriminators) under manual optimisation, each with an
ExponentialLR decay stepped once per epoch (at the first batch of the next one), as in HiFi-GAN. Generator loss =
``mel_weight`` x L1(log-mel of the generated waveform, target log-mel) + ``stft_weight`` x multi-resolution
STFT loss (spectral convergence + log magnitude; 0 in HiFi-GAN's recipe) + ``feature_weight`` x
feature matching + ``adversarial_weight`` x LSGAN, over the multi-period and multi-scale
discriminators. For the first ``disc_start`` batches only the reconstruction terms train the generator and
the discriminators are not run (their optimiser still steps, without gradients, so ``global_step`` keeps
counting 2 per batch). Validation: ``val/mel_l1`` on whole validation segments.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from audioldm.audio.mel import MelFrontEnd
from audioldm.losses.gan import feature_matching_loss, lsgan_d_loss, lsgan_g_loss
from audioldm.losses.spectrum import amplitude_loss, centred_stft, phase_losses
from audioldm.losses.stft import MultiResolutionStftLoss
from audioldm.models.hifigan_discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from audioldm.models.vocoder import build_vocoder
from lightning_modules.stage_module import StageModule


class VocoderModule(StageModule):
    """batch["log_mel"] [B, 1, T, 64] -> waveform [B, T * 160], compared with batch["waveform"]."""

    stage = "vocoder"

    def __init__(self, config: DictConfig):
        super().__init__(config)
        m, mel = self.model_config, self.mel_config
        self.automatic_optimization = False
        self.vocoder = build_vocoder(m, mel)
        self.mpd = MultiPeriodDiscriminator(tuple(m.mpd_periods), m.disc_width)
        self.msd = MultiScaleDiscriminator(m.disc_width)
        self.front_end = MelFrontEnd(mel)
        self.stft_loss = MultiResolutionStftLoss(m.stft_resolutions)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self.vocoder(log_mel)

    def _discriminate(self, wave: torch.Tensor):
        """wave [B, N] -> (logits list, feature-map lists) of all sub-discriminators."""
        p_logits, p_feats = self.mpd(wave.unsqueeze(1))
        s_logits, s_feats = self.msd(wave.unsqueeze(1))
        return p_logits + s_logits, p_feats + s_feats

    def training_step(self, batch: dict, batch_idx: int) -> None:
        m = self.model_config
        opt_g, opt_d = self.optimizers()
        if batch_idx == 0 and self.current_epoch > 0:  # per-epoch decay, at the start of the next epoch
            for scheduler in self.lr_schedulers():  # (so a checkpoint from an epoch's last batch
                scheduler.step()  # resumes without missing or repeating it)
        real, log_mel = batch["waveform"], batch["log_mel"]
        spectrum_losses = m.amplitude_weight > 0 or m.phase_weight > 0
        if spectrum_losses:  # the iSTFT generator's own spectrum, before any phase projection
            fake, (log_magnitude, phase) = self.vocoder.synthesize(log_mel)
        else:
            fake = self(log_mel)
        gan_on = self.global_step // 2 >= m.disc_start  # batches done (2 optimiser steps each)

        opt_d.zero_grad(set_to_none=True)
        zero = real.new_zeros(())
        d_loss = fm = adv = zero
        if gan_on:
            real_logits, _ = self._discriminate(real)
            fake_logits, _ = self._discriminate(fake.detach())
            d_loss = lsgan_d_loss(real_logits, fake_logits)
            self.manual_backward(d_loss)
            self.clip_manual(opt_d)
        opt_d.step()  # without gradients before disc_start: nothing changes, the step still counts

        mel_l1 = (self.front_end(fake) - log_mel).abs().mean()
        g_loss = m.mel_weight * mel_l1
        convergence = magnitude = amplitude = ip = gd = iaf = zero
        if m.stft_weight > 0:
            convergence, magnitude = self.stft_loss(fake, real)
            g_loss = g_loss + m.stft_weight * (convergence + magnitude)
        if spectrum_losses:
            target = centred_stft(real.float(), self.vocoder.n_fft, self.vocoder.hop, log_magnitude.shape[-1])
            amplitude = amplitude_loss(log_magnitude, target, self.mel_config.log_floor)
            ip, gd, iaf = phase_losses(phase, target.angle())
            g_loss = g_loss + m.amplitude_weight * amplitude + m.phase_weight * (ip + gd + iaf)
        if gan_on:
            real_logits, real_feats = self._discriminate(real)
            fake_logits, fake_feats = self._discriminate(fake)
            fm = feature_matching_loss(real_feats, fake_feats)
            adv = lsgan_g_loss(fake_logits)
            g_loss = g_loss + m.feature_weight * fm + m.adversarial_weight * adv
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        self.clip_manual(opt_g)
        opt_g.step()

        n = real.shape[0]
        self.log("train/g_loss", g_loss.detach(), prog_bar=True, batch_size=n)
        logs = {
            "train/mel_l1": mel_l1.detach(),
            "train/feature_matching": fm.detach(),
            "train/adversarial": adv.detach(),
            "train/d_loss": d_loss.detach(),
            "lr/generator": opt_g.param_groups[0]["lr"],
            "lr/discriminator": opt_d.param_groups[0]["lr"],
        }
        if m.stft_weight > 0:
            logs.update({"train/stft_convergence": convergence.detach(), "train/stft_magnitude": magnitude.detach()})
        if spectrum_losses:
            logs.update(
                {
                    "train/amplitude": amplitude.detach(),
                    "train/phase_ip": ip.detach(),
                    "train/phase_gd": gd.detach(),
                    "train/phase_iaf": iaf.detach(),
                }
            )
        self.log_dict(logs, batch_size=n)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        fake = self(batch["log_mel"])
        mel_l1 = (self.front_end(fake) - batch["log_mel"]).abs().mean()
        self.log("val/mel_l1", mel_l1, prog_bar=True, sync_dist=True, batch_size=fake.shape[0])

    def preview(self, batch: dict) -> dict[str, torch.Tensor]:
        log_mel = batch["log_mel"][:4]
        fake = self(log_mel)
        return {
            "mel/target": log_mel,
            "mel/generated": self.front_end(fake),
            "audio/target": batch["waveform"][:4],
            "audio/generated": fake,
        }

    def configure_optimizers(self):
        m, o = self.model_config, self.config.optim
        betas = tuple(m.betas)
        opt_g = torch.optim.AdamW(self.vocoder.parameters(), lr=o.lr, betas=betas, weight_decay=o.weight_decay)
        opt_d = torch.optim.AdamW(
            list(self.mpd.parameters()) + list(self.msd.parameters()), lr=o.lr, betas=betas, weight_decay=o.weight_decay
        )
        schedulers = [torch.optim.lr_scheduler.ExponentialLR(opt, gamma=m.lr_decay) for opt in (opt_g, opt_d)]
        return [opt_g, opt_d], schedulers
