"""Text-to-audio generation and zero-shot editing with a trained ``LatentDiffusion``.

texts -> CLAP text embeddings -> guided sampling (DDIM or DPM-Solver++, the unconditional half
in the same batch) -> VAE decoder -> log-mel -> vocoder -> 16 kHz waveform. ``n_candidates`` per
prompt are drawn and the one whose audio CLAP finds closest to the text is kept.

Negative prompt (``SamplingOptions.negative``): its CLAP text embedding replaces the null condition
(the empty caption's embedding) in classifier-free guidance, e_neg + w * (e_c - e_neg), as diffusers'
``AudioLDMPipeline`` does with ``negative_prompt``; "" keeps the null condition itself, so the output is
exactly that without one. It applies to every call, and does nothing at guidance 1.

Variation (``variation``): the condition is the CLAP *audio* embedding of a source clip (AudioLDM's
training condition), optionally mixed with a text embedding: normalise(w * a + (1 - w) * t), where a and
t are the L2-normalised CLAP audio embedding of the source (mean removed, peak 0.5, as in training) and
text embedding of ``text``, and w the audio weight in [0, 1].

Seeds: output i, candidate k draws all its noise from its own generator seeded
``seed + i + 1_000_003 * k``, so a prompt's audio does not depend on the batch it is in, and
candidate 0 equals the single-candidate output.

Lengths: ``seconds`` becomes ceil(seconds * sr / hop) mel frames, rounded up to a multiple of the
VAE's downsampling (4); the waveform is cut back to ``seconds``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torchaudio.functional as AF
from diffusers.utils.torch_utils import randn_tensor

from audioldm.audio.mel import normalize_waveform
from audioldm.diffusion.guidance import Denoiser
from audioldm.diffusion.sampler import sample
from audioldm.models.latent_diffusion import LatentDiffusion
from audioldm.pipeline.masks import band_mask, time_mask


@dataclass
class SamplingOptions:
    steps: int = 200
    sampler: str = "ddim"  # or "dpmsolver++"; "lcm" for a consistency-distilled checkpoint (1-4 steps)
    guidance: float = 2.5  # e_u + guidance * (e_c - e_u); 1 = no guidance
    eta: float = 1.0  # DDIM stochasticity (AudioLDM: 1.0; 0 = deterministic ODE)
    seed: int = 0
    n_candidates: int = 1  # drawn per output, re-ranked by CLAP text-audio similarity
    batch_size: int = 8  # outputs (candidates included) per sampling pass
    negative: str = ""  # negative prompt: its CLAP text embedding replaces the null condition in guidance


@dataclass
class Generated:
    waveform: torch.Tensor  # [B, N] 16 kHz
    log_mel: torch.Tensor  # [B, 1, T, F]
    texts: list[str]
    latent: torch.Tensor  # [B, C, T', F'] the sampled latent (times scale_factor)
    clap_score: torch.Tensor | None = None  # [B] cosine(text, audio), when candidates were ranked


Progress = Callable[[int, int], None]  # (sampling steps done, steps in the whole call)


def bf16_denoiser(denoiser: Denoiser) -> Denoiser:
    """``denoiser`` run under bf16 autocast, its prediction returned as float32."""

    def run(x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return denoiser(x, t, c).float()

    return run


class TextToAudio:
    """The generation pipeline over a ``LatentDiffusion`` (its EMA UNet unless ``use_ema=False``).
    ``compile``: the UNet through ``torch.compile``; ``bf16``: the UNet under bf16 autocast (the sampler's
    arithmetic, the VAE decoder and the vocoder stay float32)."""

    def __init__(self, model: LatentDiffusion, use_ema: bool = True, compile: bool = False, bf16: bool = False):
        self.model = model.eval()
        self.use_ema, self.compile, self.bf16 = use_ema, compile, bf16
        self.denoiser = self._denoiser(None) if "lcm" not in model.samplers else None
        self.mel = model.mel

    def _denoiser(self, guidance: float | None) -> Denoiser:
        """The UNet as a denoiser (``guidance``: the scale a consistency-distilled student is told)."""
        denoiser = self.model.denoiser(self.use_ema, self.compile, guidance)
        return bf16_denoiser(denoiser) if self.bf16 else denoiser

    def check_options(self, options: SamplingOptions) -> None:
        """Refuse, with one line, a sampler this checkpoint cannot use (and what lcm cannot do)."""
        supported = self.model.samplers
        if options.sampler not in supported:
            if options.sampler == "lcm":
                raise ValueError(
                    "the lcm sampler needs a consistency-distilled checkpoint (train.py with stage: lcm, "
                    "e.g. configs/lcm_s.yaml); this one is a plain AudioLDM: use ddim or dpmsolver++"
                )
            raise ValueError(
                f"this is a consistency-distilled (lcm) checkpoint: its UNet predicts for the lcm "
                f"sampler only; use sampler lcm (1-4 steps, what it was distilled for), not {options.sampler}"
            )
        if options.sampler == "lcm" and options.negative.strip():
            raise ValueError(
                "negative prompts need the unconditional prediction, which the lcm student does not "
                "make (its guidance is built in): use a ddim or dpmsolver++ checkpoint for them"
            )
        if options.n_candidates > 1 and self.model.clap is None:
            raise ValueError(
                f"--candidates {options.n_candidates} needs a CLAP to rank them, and this model has none "
                f"(an audioldm_16k_crossattn_t5 checkpoint holds none): use --candidates 1"
            )

    @classmethod
    def from_checkpoint(
        cls,
        path: str,
        device: str | torch.device = "cpu",
        use_ema: bool = True,
        vocoder_ckpt: str | None = None,
        tokenizer: str | None = None,
        head_channels: int | None = None,
        compile: bool = False,
        bf16: bool = False,
        adapters: list[tuple[str, float]] | None = None,
        fuse_adapters: bool = False,
        force_adapters: bool = False,
    ) -> "TextToAudio":
        """Load ours, an original AudioLDM .ckpt or a diffusers folder (``audioldm.assembly.load_ldm``), with LoRA
        ``adapters`` ((path, scale) each) on its UNet."""
        from audioldm.assembly.latent_diffusion import load_ldm

        model = load_ldm(
            path, device, use_ema, tokenizer, head_channels, vocoder_ckpt, adapters, fuse_adapters, force_adapters
        )
        return cls(model, use_ema, compile, bf16)

    @property
    def device(self) -> torch.device:
        return self.model.scale_factor.device

    def frames_for(self, seconds: float) -> tuple[int, int]:
        """(mel frames, samples) for ``seconds`` of audio (frames a multiple of the VAE factor)."""
        if not seconds > 0:
            raise ValueError(f"duration must be positive, got {seconds}")
        samples = int(round(seconds * self.mel.sample_rate))
        factor = self.model.vae_factor
        frames = math.ceil(math.ceil(samples / self.mel.hop_length) / factor) * factor
        return frames, samples

    # -- public calls ---------------------------------------------------------------------------
    def text_to_audio(
        self,
        texts: list[str],
        seconds: float = 10.0,
        options: SamplingOptions | None = None,
        progress: Progress | None = None,
        seeds: list[int] | None = None,
    ) -> Generated:
        """B prompts -> B clips of ``seconds``. ``seeds`` (one per prompt) replaces seed + i."""
        options = options or SamplingOptions()
        _check_texts(texts)
        if seeds is not None and len(seeds) != len(texts):
            raise ValueError(f"{len(seeds)} seeds for {len(texts)} prompts")
        frames, samples = self.frames_for(seconds)
        return self._generate(list(texts), frames, samples, options, progress, seeds=seeds)

    def from_embeddings(
        self,
        embeddings: torch.Tensor,
        seconds: float = 10.0,
        options: SamplingOptions | None = None,
        progress: Progress | None = None,
        seeds: list[int] | None = None,
        labels: list[str] | None = None,
    ) -> Generated:
        """B CLAP embeddings [B, D] (e.g. of audio clips: AudioLDM's training condition) -> B clips; candidates
        are ranked against the embedding itself. ``labels`` name the outputs (default "embedding i")."""
        options = options or SamplingOptions()
        self._check_audio_condition("generating from CLAP embeddings")
        dim = self.model.null_condition.shape[0]
        if embeddings.ndim != 2 or embeddings.shape[1] != dim or embeddings.shape[0] == 0:
            raise ValueError(f"embeddings must be [B, {dim}], got {list(embeddings.shape)}")
        labels = labels or [f"embedding {i}" for i in range(embeddings.shape[0])]
        if seeds is not None and len(seeds) != len(labels):
            raise ValueError(f"{len(seeds)} seeds for {len(labels)} embeddings")
        frames, samples = self.frames_for(seconds)
        return self._generate(
            labels,
            frames,
            samples,
            options,
            progress,
            seeds=seeds,
            conditions=embeddings.to(self.device, torch.float32),
        )

    def variation(
        self,
        audio: torch.Tensor,
        text: str | None = None,
        audio_weight: float | None = None,
        seconds: float = 10.0,
        n_outputs: int = 1,
        options: SamplingOptions | None = None,
        progress: Progress | None = None,
        label: str | None = None,
    ) -> Generated:
        """``n_outputs`` new clips of ``seconds`` conditioned on the source waveform [N] 16 kHz (see
        ``variation_condition``); output i draws from seed + i, and candidates are ranked against the
        source's CLAP audio embedding (also when a text is mixed in). ``label`` names the outputs."""
        if n_outputs < 1:
            raise ValueError(f"the number of variations must be at least 1, got {n_outputs}")
        options = options or SamplingOptions()
        condition = self.variation_condition(audio, text, audio_weight)  # [1, D]
        source = condition if text is None else self.variation_condition(audio)  # candidates ranked against it
        label = label or ("variation" if text is None else f"variation: {text}")
        frames, samples = self.frames_for(seconds)
        return self._generate(
            [label] * n_outputs,
            frames,
            samples,
            options,
            progress,
            conditions=condition.expand(n_outputs, -1),
            rank_against=source.expand(n_outputs, -1),
        )

    @torch.no_grad()
    def variation_condition(
        self, audio: torch.Tensor, text: str | None = None, audio_weight: float | None = None
    ) -> torch.Tensor:
        """The variation condition [1, D]: the source's CLAP audio embedding a (waveform [N] 16 kHz, mean
        removed and peak-normalised to 0.5 as in training), or with ``text``, normalise(w * a + (1 - w) * t)
        with t its CLAP text embedding and w = ``audio_weight`` (default 1 without text, 0.5 with it)."""
        wave = audio.float().reshape(-1).to(self.device)
        if wave.numel() < self.mel.n_fft:
            raise ValueError(f"source audio is too short ({wave.numel()} samples; at least {self.mel.n_fft})")
        self._check_audio_condition("an audio variation")
        weight = (1.0 if text is None else 0.5) if audio_weight is None else float(audio_weight)
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"audio weight must be in [0, 1], got {weight:g}")
        if text is None and weight != 1.0:
            raise ValueError(f"audio weight {weight:g} needs a text to mix with")
        source = self.model.embed_audio(normalize_waveform(wave)[None])  # [1, D]
        if text is None:
            return source
        _check_texts([text])
        mixed = weight * source + (1.0 - weight) * self.model.embed_text([text])
        norm = mixed.norm(dim=-1, keepdim=True)
        if float(norm) < 1e-6:
            raise ValueError("the audio and text embeddings cancel out at this weight; choose another")
        return mixed / norm

    def style_transfer(
        self,
        audio: torch.Tensor,
        text: str,
        strength: float,
        options: SamplingOptions | None = None,
        progress: Progress | None = None,
    ) -> Generated:
        """Source waveform [N] 16 kHz + target text: noise the source latent to ``strength`` (0-1) of
        the schedule, denoise with the text. Strength 0 returns the VAE reconstruction."""
        options = options or SamplingOptions()
        _check_texts([text])
        source, frames, samples = self._encode_source(audio)
        return self._generate([text], frames, samples, options, progress, init=source, strength=strength)

    def inpaint(
        self,
        audio: torch.Tensor,
        text: str,
        spans: list[tuple[float, float]],
        options: SamplingOptions | None = None,
        progress: Progress | None = None,
    ) -> Generated:
        """Regenerate the time ``spans`` (seconds) of the source [N] from ``text``; keep the rest."""
        options = options or SamplingOptions()
        _check_texts([text])
        source, frames, samples = self._encode_source(audio)
        mask = time_mask(source.shape[2], self.model.vae_factor, self.mel, spans, samples / self.mel.sample_rate)
        return self._generate([text], frames, samples, options, progress, observed=source, mask=mask)

    def super_resolution(
        self,
        audio: torch.Tensor,
        text: str,
        cutoff_hz: float,
        options: SamplingOptions | None = None,
        progress: Progress | None = None,
    ) -> Generated:
        """Keep the source's band below ``cutoff_hz`` (it is low-passed there first) and regenerate
        the band above it from ``text``."""
        options = options or SamplingOptions()
        _check_texts([text])
        rate = self.mel.sample_rate
        if not 0 < cutoff_hz < rate / 2:
            raise ValueError(f"cutoff must be between 0 and {rate // 2} Hz, got {cutoff_hz:g}")
        low_rate = int(2 * cutoff_hz)
        low = AF.resample(AF.resample(audio.float().reshape(-1), rate, low_rate), low_rate, rate)[: audio.numel()]
        source, frames, samples = self._encode_source(low)
        mask = band_mask(source.shape[3], self.model.vae_factor, self.mel, cutoff_hz)
        return self._generate([text], frames, samples, options, progress, observed=source, mask=mask)

    # -- internals ---------------------------------------------------------------------------------
    def _check_audio_condition(self, what: str) -> None:
        if not self.model.conditions_on_audio:
            raise ValueError(
                f"{what} conditions on a CLAP audio embedding, which only a film_clap model takes; this model "
                f"is conditioned on text tokens ({self.model.condition})"
            )

    @torch.no_grad()
    def _encode_source(self, audio: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """waveform [N] -> (latent [1, C, T', F'] (posterior mode x scale), frames, samples)."""
        wave = audio.float().reshape(-1).to(self.device)
        if wave.numel() < self.mel.n_fft:
            raise ValueError(f"source audio is too short ({wave.numel()} samples; at least {self.mel.n_fft})")
        frames, samples = self.frames_for(wave.numel() / self.mel.sample_rate)
        wave = torch.nn.functional.pad(normalize_waveform(wave), (0, frames * self.mel.hop_length - wave.numel()))
        posterior = self.model.posterior(self.model.log_mel(wave[None]))
        return self.model.to_latent(posterior, sample=False), frames, samples

    @torch.no_grad()
    def _generate(
        self,
        texts: list[str],
        frames: int,
        samples: int,
        options: SamplingOptions,
        progress: Progress | None,
        init: torch.Tensor | None = None,
        strength: float = 1.0,
        observed: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        seeds: list[int] | None = None,
        conditions: torch.Tensor | None = None,
        rank_against: torch.Tensor | None = None,
    ) -> Generated:
        """``conditions`` [len(texts), D] replaces the CLAP text embeddings of ``texts`` (then only labels);
        candidates are ranked against ``rank_against`` [len(texts), D] (default: the conditions)."""
        self.check_options(options)
        denoiser = self._denoiser(options.guidance) if options.sampler == "lcm" else self.denoiser
        n = max(1, options.n_candidates)
        seeds = seeds or [options.seed + i for i in range(len(texts))]
        items = [(i, k) for k in range(n) for i in range(len(texts))]  # candidate-major: k=0 first
        negative = options.negative.strip()
        null = self.model.text_condition([negative])[0] if negative else self.model.null_condition  # one condition
        channels = self.model.unet.config.in_channels
        shape = (1, channels, frames // self.model.vae_factor, self.mel.n_mels // self.model.vae_factor)
        waves, mels, latents = [], [], []
        size = max(1, options.batch_size)
        n_chunks = math.ceil(len(items) / size)
        for c, start in enumerate(range(0, len(items), size)):
            chunk = items[start : start + size]
            generators = [torch.Generator().manual_seed(seeds[i] + 1_000_003 * k) for i, k in chunk]
            noise = randn_tensor((len(chunk),) + shape[1:], generator=generators, device=self.device)
            condition = (
                self.model.text_condition([texts[i] for i, _ in chunk])
                if conditions is None
                else conditions[[i for i, _ in chunk]]
            )
            extra = {}
            if init is not None:
                extra = {"init": init.expand(len(chunk), -1, -1, -1), "strength": strength}
            if observed is not None:
                extra = {"observed": observed.expand(len(chunk), -1, -1, -1), "mask": mask.to(self.device)}
            latent = sample(
                denoiser,
                noise,
                condition,
                null,
                steps=options.steps,
                guidance=options.guidance,
                sampler=options.sampler,
                eta=options.eta,
                generator=generators,
                callback=(lambda i, n, c=c: progress(c * n + i, n_chunks * n)) if progress else None,
                **extra,
            )
            log_mel = self.model.decode(latent)
            latents.append(latent)
            mels.append(log_mel)
            waves.append(self.model.vocode(log_mel)[:, :samples])
        result = Generated(torch.cat(waves), torch.cat(mels), list(texts), torch.cat(latents))
        target = conditions if rank_against is None else rank_against
        return result if n == 1 else self._best_candidates(result, n, target)

    def _best_candidates(self, result: Generated, n: int, target: torch.Tensor | None = None) -> Generated:
        """Keep, per prompt, the candidate with the highest CLAP cosine similarity to its text (or to
        ``target`` [b, D], the embeddings it was generated from)."""
        b = len(result.texts)
        audio = self.model.embed_audio(normalize_waveform(result.waveform))  # [n * b, D], candidate-major
        text = self.model.embed_text(result.texts) if target is None else target  # [b, D]
        scores = (audio.reshape(n, b, -1) * text[None]).sum(-1)  # [n, b]
        best = scores.argmax(dim=0)  # [b]
        pick = best * b + torch.arange(b, device=best.device)
        return Generated(
            result.waveform[pick], result.log_mel[pick], result.texts, result.latent[pick], scores.max(dim=0).values
        )


def _check_texts(texts: list[str]) -> None:
    if not texts:
        raise ValueError("no prompt was given")
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("a prompt is empty")
