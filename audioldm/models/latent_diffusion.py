"""AudioLDM as one plain module: the UNet (and its EMA), the frozen VAE, CLAP and vocoder, the
latent ``scale_factor`` and the null condition used for classifier-free guidance.

Data flow: waveform [B, N] -> log-mel [B, 1, T, F] -> VAE posterior -> latent [B, C, T/4, F/4]
(times ``scale_factor``) -> UNet(noisy latent, t, condition [B, D]) -> VAE decoder -> log-mel ->
vocoder -> waveform. The condition (``condition``) is one of CONDITIONS:

- ``film_clap`` (AudioLDM): a CLAP embedding [B, 512], of the clip's audio in training, of the text when
  generating, entering the UNet through FiLM;
- ``crossattn_t5`` (audioldm_16k_crossattn_t5): the token states of a frozen Flan-T5 encoder (``text_encoder``),
  cross-attended by the UNet; text only, in training too;
- ``crossattn_clap_tokens``: the token states of the CLAP's own text tower, the same way.

Token conditions are packed [B, L, W + 1] (``audioldm.models.token_condition``). ``null_condition`` is the
condition of the empty caption "" (guidance's unconditional half, and the dropped condition in training).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
import torch.nn as nn
from diffusers import AutoencoderKL
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from omegaconf import MISSING

from audioldm.audio.mel import MelConfig, MelFrontEnd
from audioldm.constraints import INF, in_range, one_of
from audioldm.diffusion.guidance import Denoiser
from audioldm.models.clap import ClapEmbedder
from audioldm.models.ema import EmaModel
from audioldm.models.lora import LoraConfig
from audioldm.models.text_encoder import T5TextEncoder
from audioldm.models.token_condition import pack
from audioldm.models.unet import Unet, UnetConfig, cross_attends, network_output, predict_noise, prediction_type

CONDITIONS = ("film_clap", "crossattn_t5", "crossattn_clap_tokens")

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
    # what the UNet is conditioned on (see CONDITIONS above): film_clap is AudioLDM's; the crossattn_* ones
    # cross-attend to text tokens and so train on captions only (clips without one are skipped and counted;
    # the audio-embedding condition and text_condition_prob do not apply)
    condition: str = one_of("film_clap", *CONDITIONS)
    # crossattn_t5: a local folder holding a transformers T5 encoder (config.json + weights, e.g. saved from
    # google/flan-t5-large) and its tokenizer; frozen. Not needed with init_from a model that holds its T5.
    text_encoder_path: Optional[str] = None
    # crossattn_t5 with init_from a checkpoint that holds its T5 (audioldm_16k_crossattn_t5): its tokenizer folder
    text_tokenizer: Optional[str] = None
    text_max_length: int = in_range(128, 1, 512)  # crossattn_t5: captions are cut at this many tokens
    # Frozen parts, in any format convert.py reads (ours, original AudioLDM, LAION-CLAP, HiFi-GAN, diffusers);
    # vae_ckpt and clap_ckpt may be null when init_from names a whole AudioLDM (its parts are used).
    vae_ckpt: Optional[str] = MISSING  # the VAE (frozen)
    # the CLAP (frozen; its audio embedding is the film_clap condition). With crossattn_t5 it is optional (null:
    # none) and serves re-ranking candidates and the validation metrics only.
    clap_ckpt: Optional[str] = MISSING
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
    # a LoRA adapter (audioldm/models/lora.py) trained on the frozen UNet of init_from instead of the whole UNet;
    # the run writes the adapter alone (adapter/adapter.safetensors + .json) and keeps no EMA
    lora: Optional[LoraConfig] = None


class LatentDiffusion(nn.Module):
    """The networks of AudioLDM. ``stage_configs`` holds the VAE, CLAP and vocoder training configs and the
    text encoder's part config (plain dicts; vocoder None = Griffin-Lim) so a checkpoint can rebuild them.
    ``clap`` may be None only with ``crossattn_t5`` (then nothing re-ranks candidates)."""

    def __init__(
        self,
        unet: Unet,
        vae: AutoencoderKL,
        clap: ClapEmbedder | None,
        vocoder: nn.Module,
        mel: MelConfig,
        stage_configs: dict[str, Any],
        ema: EmaModel | None = None,
        text_encoder: T5TextEncoder | None = None,
    ):
        super().__init__()
        if vae.config.latent_channels != unet.config.in_channels:
            raise ValueError(
                f"the VAE's latent has {vae.config.latent_channels} channels, the UNet takes "
                f"{unet.config.in_channels} (set model.unet.latent_channels)"
            )
        self.condition = condition_of(unet, text_encoder)
        if self.condition != "crossattn_t5" and clap is None:
            raise ValueError(f"model.condition {self.condition} needs a CLAP (model.clap_ckpt)")
        if self.condition == "film_clap":
            dim = clap.config.projection_dim
            if dim != unet.config.projection_class_embeddings_input_dim:
                raise ValueError(
                    f"the CLAP embedding has {dim} dimensions, the UNet's condition takes "
                    f"{unet.config.projection_class_embeddings_input_dim} (set model.unet.condition_dim)"
                )
            null_shape = (dim,)
        else:
            tokens = text_encoder if self.condition == "crossattn_t5" else clap
            width, context = tokens.width, unet.config.cross_attention_dim[-1][-1]
            if width != context:
                raise ValueError(
                    f"the text encoder's token states are {width} wide, the UNet cross-attends to {context} "
                    f"(model.unet.context_dim)"
                )
            length = tokens.max_length if self.condition == "crossattn_t5" else clap.config.max_text_length
            null_shape = (length, width + 1)
        self.unet, self.unet_ema, self.vae, self.clap, self.vocoder = unet, ema, vae, clap, vocoder
        self.text_encoder = text_encoder
        self.mel = mel
        self.front_end = MelFrontEnd(mel)
        self.stage_configs = stage_configs
        self.register_buffer("scale_factor", torch.tensor(1.0))
        self.register_buffer("null_condition", torch.zeros(null_shape))
        self.adapter_meta: dict | None = None  # a LoRA run's adapter description (audioldm.assembly.adapters)
        # the UNet carries a consistency-distilled adapter (LCM-LoRA, stage lcm with model.lora): it samples with
        # the lcm sampler, its guidance built in (no guidance embedding: the scale it was distilled at)
        self.consistency_adapter = False
        for frozen in self.frozen_parts:
            frozen.requires_grad_(False).eval()

    @property
    def frozen_parts(self) -> list[nn.Module]:
        """The VAE, CLAP (when present), vocoder and text encoder (when present)."""
        return [m for m in (self.vae, self.clap, self.vocoder, self.text_encoder) if m is not None]

    @property
    def vae_factor(self) -> int:
        """Mel frames (and mel bins) per latent position: 4 for AudioLDM."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def train(self, mode: bool = True) -> "LatentDiffusion":
        super().train(mode)
        for frozen in self.frozen_parts:
            frozen.eval()  # frozen parts stay in eval mode (no dropout, fixed norms)
        return self

    @property
    def samplers(self) -> tuple[str, ...]:
        """The samplers this model works with: a consistency-distilled student (``stage: lcm``, its UNet
        has a guidance embedding, or an LCM-LoRA adapter) only ``lcm``; a plain AudioLDM the diffusion samplers."""
        from audioldm.diffusion.schedule import SAMPLERS

        consistency = self.unet.config.time_cond_proj_dim or self.consistency_adapter
        return ("lcm",) if consistency else tuple(s for s in SAMPLERS if s != "lcm")

    def denoiser(self, use_ema: bool = True, compile: bool = False, guidance: float | None = None) -> Denoiser:
        """epsilon(x_t [B, C, T', F'], t [B], condition [B, D]) with the EMA (or raw) UNet; ``compile``:
        through ``torch.compile`` (the first calls of each new shape compile, later ones are faster).
        ``guidance``: the scale told to a guidance-embedded (consistency-distilled) UNet."""
        net = self._net(use_ema, compile)
        if guidance is None or not self.unet.config.time_cond_proj_dim:  # LCM-LoRA: the guidance is built in
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
        """The unconditional condition: that of the empty caption."""
        self.null_condition.copy_(self.text_condition([""])[0])

    @torch.no_grad()
    def text_condition(self, texts: list[str]) -> torch.Tensor:
        """B captions -> their condition: the CLAP text embedding [B, D] (film_clap) or the packed token states
        [B, L, W + 1] of the T5 / the CLAP text tower (crossattn_*)."""
        return text_condition(self.condition, self.clap, self.text_encoder, texts)

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

    @property
    def conditions_on_audio(self) -> bool:
        """Whether a clip's CLAP audio embedding can stand for its condition (film_clap: the paper's training
        condition, and what audio variations use); token conditions come from text only."""
        return self.condition == "film_clap"

    @torch.no_grad()
    def embed_audio(self, waveform: torch.Tensor) -> torch.Tensor:
        """waveform [B, N] 16 kHz -> CLAP audio embedding [B, D] (film_clap's training condition; ranking)."""
        return self._clap().embed_audio(waveform)

    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """B captions -> CLAP text embedding [B, D] (film_clap's generation condition; ranking)."""
        return self._clap().embed_text(list(texts))

    def _clap(self) -> ClapEmbedder:
        if self.clap is None:
            raise ValueError(
                "this model has no CLAP (an audioldm_16k_crossattn_t5 checkpoint holds none): CLAP embeddings "
                "(re-ranking candidates, audio variations) need one"
            )
        return self.clap

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """latent [B, C, T', F'] -> log-mel [B, 1, T' * 4, F' * 4]."""
        return self.vae.decode(latent / self.scale_factor).sample

    @torch.no_grad()
    def vocode(self, log_mel: torch.Tensor) -> torch.Tensor:
        """log-mel [B, 1, T, F] -> waveform [B, T * hop]."""
        return self.vocoder(log_mel)


def condition_of(unet: Unet, text_encoder: nn.Module | None) -> str:
    """The condition a UNet (and text encoder) take: film_clap, crossattn_t5 or crossattn_clap_tokens."""
    if not cross_attends(unet):
        if text_encoder is not None:
            raise ValueError("a FiLM UNet (model.condition film_clap) takes no text encoder")
        return "film_clap"
    return "crossattn_t5" if text_encoder is not None else "crossattn_clap_tokens"


def text_condition(
    condition: str, clap: ClapEmbedder | None, text_encoder: T5TextEncoder | None, texts: list[str]
) -> torch.Tensor:
    """B captions -> their ``condition``: CLAP text embeddings [B, D] (film_clap) or packed token states
    [B, L, W + 1] of the T5 (crossattn_t5) or of the CLAP's text tower (crossattn_clap_tokens)."""
    if condition == "film_clap":
        return clap.embed_text(list(texts))
    if condition == "crossattn_t5":
        return pack(*text_encoder.token_states(list(texts)))
    return pack(*clap.token_states(list(texts)))
