"""AudioLDM as one plain module: the UNet (and its EMA), the frozen VAE, CLAP and vocoder, the
latent ``scale_factor`` and the null condition used for classifier-free guidance.

Data flow: waveform [B, N] -> log-mel [B, 1, T, F] -> VAE posterior -> latent [B, C, T/4, F/4]
(times ``scale_factor``) -> UNet(noisy latent, t, condition [B, D]) -> VAE decoder -> log-mel ->
vocoder -> waveform. The condition is a CLAP embedding: of the clip's audio in training, of the
text when generating; ``null_condition`` is CLAP's embedding of the empty caption.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
import torch.nn as nn
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from omegaconf import MISSING

from audioldm.audio.mel import MelConfig, MelFrontEnd
from audioldm.constraints import INF, in_range
from audioldm.diffusion.guidance import Denoiser
from audioldm.models.clap import ClapEmbedder
from audioldm.models.ema import EmaModel
from audioldm.models.unet import UnetConfig, network_output, predict_noise, prediction_type

DEFAULT_PROMPTS = ["a dog barks", "rain falls on a roof", "a man speaks", "an engine idles"]


@dataclass
class PreviewConfig:
    """Validation of a generating stage: fixed prompts generated with the EMA UNet, logged as mel images and audio."""

    val_prompts: list[str] = field(default_factory=lambda: list(DEFAULT_PROMPTS))
    val_seconds: float = 10.0
    val_steps: int = 50
    val_sampler: str = "ddim"
    val_guidance: float = 2.5
    val_seed: int = 0


@dataclass
class LdmConfig(PreviewConfig):
    """``model:`` section of an ldm config."""

    unet: UnetConfig = field(default_factory=UnetConfig)
    # Frozen parts, in any format convert.py reads (ours, original AudioLDM, LAION-CLAP, HiFi-GAN, diffusers);
    # vae_ckpt and clap_ckpt may be null when init_from names a whole AudioLDM (its parts are used).
    vae_ckpt: Optional[str] = MISSING  # the VAE (frozen)
    clap_ckpt: Optional[str] = MISSING  # the CLAP (frozen; its audio embedding is the condition)
    clap_tokenizer: Optional[str] = None  # RoBERTa tokenizer folder, for LAION-CLAP weights
    vocoder_ckpt: Optional[str] = None  # a vocoder for validation audio; None: Griffin-Lim
    condition_drop_prob: float = in_range(0.1, 0.0, 1.0)  # condition -> null condition, for classifier-free guidance
    # per sample, the CLAP *text* embedding of one of the clip's captions instead of its audio embedding, with
    # this probability (0: AudioLDM's paper recipe, audio only; clips without captions always use audio)
    text_condition_prob: float = in_range(0.0, 0.0, 1.0)
    # per-sample loss weight min(SNR_t, gamma) / SNR_t (Min-SNR-gamma, Hang et al. 2023: the nearly clean
    # timesteps stop dominating the gradient, so the coarse structure the condition decides is learnt sooner);
    # None: the plain MSE of AudioLDM
    min_snr_gamma: Optional[float] = in_range(None, 1e-3, INF)
    ema_decay: float = in_range(0.9999, 0.0, 1.0)
    ema_warmup: bool = True  # decay = min(ema_decay, (1 + n) / (10 + n)) after n updates
    # evaluation metrics at each validation: the captions of the first N validation clips are
    # generated and scored against them (FD + CLAP score; 0 = off). A folder holding
    # vggish-10086976.pth makes the FD a VGGish FAD; otherwise it is computed on CLAP embeddings.
    val_eval_clips: int = 0
    val_eval_vggish: Optional[str] = None
    compile_unet: bool = False  # train through torch.compile(unet) (GPU; compiling costs minutes at start)


class LatentDiffusion(nn.Module):
    """The networks of AudioLDM. ``stage_configs`` holds the VAE, CLAP and vocoder training
    configs (plain dicts; vocoder None = Griffin-Lim) so a checkpoint can rebuild them."""

    def __init__(
        self,
        unet: UNet2DConditionModel,
        vae: AutoencoderKL,
        clap: ClapEmbedder,
        vocoder: nn.Module,
        mel: MelConfig,
        stage_configs: dict[str, Any],
        ema: EmaModel | None = None,
    ):
        super().__init__()
        if vae.config.latent_channels != unet.config.in_channels:
            raise ValueError(
                f"the VAE's latent has {vae.config.latent_channels} channels, the UNet takes "
                f"{unet.config.in_channels} (set model.unet.latent_channels)"
            )
        dim = clap.config.projection_dim
        if dim != unet.config.projection_class_embeddings_input_dim:
            raise ValueError(
                f"the CLAP embedding has {dim} dimensions, the UNet's condition takes "
                f"{unet.config.projection_class_embeddings_input_dim} (set model.unet.condition_dim)"
            )
        self.unet, self.unet_ema, self.vae, self.clap, self.vocoder = unet, ema, vae, clap, vocoder
        self.mel = mel
        self.front_end = MelFrontEnd(mel)
        self.stage_configs = stage_configs
        self.register_buffer("scale_factor", torch.tensor(1.0))
        self.register_buffer("null_condition", torch.zeros(dim))
        for frozen in (vae, clap, vocoder):
            frozen.requires_grad_(False).eval()

    @property
    def vae_factor(self) -> int:
        """Mel frames (and mel bins) per latent position: 4 for AudioLDM."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def train(self, mode: bool = True) -> "LatentDiffusion":
        super().train(mode)
        for frozen in (self.vae, self.clap, self.vocoder):
            frozen.eval()  # frozen parts stay in eval mode (no dropout, fixed norms)
        return self

    @property
    def samplers(self) -> tuple[str, ...]:
        """The samplers this model works with: a consistency-distilled student (``stage: lcm``, its UNet
        has a guidance embedding) only ``lcm``; a plain AudioLDM the diffusion samplers."""
        from audioldm.diffusion.schedule import SAMPLERS

        return ("lcm",) if self.unet.config.time_cond_proj_dim else tuple(s for s in SAMPLERS if s != "lcm")

    def denoiser(self, use_ema: bool = True, compile: bool = False, guidance: float | None = None) -> Denoiser:
        """epsilon(x_t [B, C, T', F'], t [B], condition [B, D]) with the EMA (or raw) UNet; ``compile``:
        through ``torch.compile`` (the first calls of each new shape compile, later ones are faster).
        ``guidance``: the scale told to a guidance-embedded (consistency-distilled) UNet."""
        net = self._net(use_ema, compile)
        if guidance is None:
            return lambda x, t, c: predict_noise(net, x, t, c)
        w = torch.tensor([float(guidance)], device=self.scale_factor.device)
        return lambda x, t, c: predict_noise(net, x, t, c, w)

    def network(self, use_ema: bool = True, compile: bool = False) -> Denoiser:
        """The UNet's own output (x_t [B, C, T', F'], t [B], condition [B, D]) -> epsilon or v, as
        ``prediction_type`` says: what training compares with its target."""
        net = self._net(use_ema, compile)
        return lambda x, t, c: network_output(net, x, t, c)

    @property
    def prediction_type(self) -> str:
        """ "epsilon" (AudioLDM) or "v_prediction": what the UNet outputs (``denoiser`` always gives epsilon)."""
        return prediction_type(self.unet)

    def _net(self, use_ema: bool, compile: bool) -> nn.Module:
        net = self.unet_ema.module if use_ema and self.unet_ema is not None else self.unet
        return self._compiled(net) if compile else net

    def _compiled(self, net: nn.Module) -> nn.Module:
        """One compiled wrapper per UNet, kept (outside the module tree) so that it compiles once."""
        cache = self.__dict__.setdefault("_compiled_nets", {})
        if id(net) not in cache:
            cache[id(net)] = torch.compile(net)
        return cache[id(net)]

    @torch.no_grad()
    def set_null_condition(self) -> None:
        """The unconditional embedding: CLAP's embedding of the empty caption."""
        self.null_condition.copy_(self.clap.embed_text([""])[0])

    @torch.no_grad()
    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """waveform [B, N] (normalised) -> log-mel [B, 1, T, F]."""
        return self.front_end(waveform)

    @torch.no_grad()
    def posterior(self, log_mel: torch.Tensor) -> DiagonalGaussianDistribution:
        """log-mel [B, 1, T, F] -> the VAE posterior over latents [B, C, T/4, F/4]."""
        return self.vae.encode(log_mel).latent_dist

    def to_latent(
        self, posterior: DiagonalGaussianDistribution, sample: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A posterior sample (or its mode) times ``scale_factor``: the diffusion's x_0."""
        z = posterior.sample(generator) if sample else posterior.mode()
        return z * self.scale_factor

    @torch.no_grad()
    def embed_audio(self, waveform: torch.Tensor) -> torch.Tensor:
        """waveform [B, N] 16 kHz -> CLAP audio embedding [B, D] (the training condition)."""
        return self.clap.embed_audio(waveform)

    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """B captions -> CLAP text embedding [B, D] (the generation condition)."""
        return self.clap.embed_text(list(texts))

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """latent [B, C, T', F'] -> log-mel [B, 1, T' * 4, F' * 4]."""
        return self.vae.decode(latent / self.scale_factor).sample

    @torch.no_grad()
    def vocode(self, log_mel: torch.Tensor) -> torch.Tensor:
        """log-mel [B, 1, T, F] -> waveform [B, T * hop]."""
        return self.vocoder(log_mel)
