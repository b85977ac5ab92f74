"""How the latent stages (ldm, lcm) turn a batch into diffusion's x_0 and its condition, used by composition.

x_0 is a VAE posterior sample times ``scale_factor``. The condition is the clip's CLAP *audio* embedding, or,
per sample with probability ``text_condition_prob``, the CLAP *text* embedding of one of its captions (the one
the dataset drew; clips without captions always use audio), as the official training code mixes them. The batch
holds either audio (``log_mel`` + ``waveform``, encoded here by the frozen VAE and CLAP) or pre-encoded tensors
(``posterior`` + ``clap_audio`` (+ ``clap_text``, ``has_text``), from ``python -m data.preencode``): both give the
same x_0 and conditions for the same clips and draws.

A cross-attention model (``model.condition: crossattn_*``) conditions on text only: every item's condition is the
token states of its caption (the batch's ``caption``, or the pre-encoded ``text_tokens``); the data module keeps
only clips with a caption for it (the others are left out and counted).
"""

from __future__ import annotations

import torch
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

from audioldm.checkpoint import fingerprint
from audioldm.models.latent_diffusion import LatentDiffusion
from data.latent_cache import LatentCacheError


class LatentConditioning:
    """x_0 and conditions of batches for ``model`` (a plain object: the model stays its stage's submodule)."""

    def __init__(self, model: LatentDiffusion, text_condition_prob: float):
        self.model, self.text_condition_prob = model, text_condition_prob

    def latents_and_conditions(
        self, batch: dict, generator: torch.Generator | None = None, text_prob: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_0 [B, C, T', F'], condition [B, D]) from audio or from pre-encoded tensors: the CLAP audio
        embedding, or with probability ``text_prob`` (default ``text_condition_prob``) per sample the
        CLAP text embedding of the batch's caption (``batch["caption"]``; "" = none: audio). A cross-attention
        model: the caption's token states [B, L, W + 1], always."""
        if "posterior" in batch:
            posterior = DiagonalGaussianDistribution(batch["posterior"])
        else:
            posterior = self.model.posterior(batch["log_mel"])
        # float32 latents (and noise): under bf16 autocast the frozen VAE returns bf16
        x0 = self.model.to_latent(posterior, generator=generator).float()
        if not self.model.conditions_on_audio:
            text, has_text = self.text_conditions(batch)
            if not bool(has_text.all()):
                missing = [i for i, c in zip(batch["id"], has_text.tolist()) if not c]
                raise ValueError(
                    f"clips without a caption reached a {self.model.condition} model, which conditions on text "
                    f"only: {missing[:3]} (the data module leaves them out; a pre-encoded cache needs captions)"
                )
            return x0, text.float()
        condition = batch["clap_audio"] if "posterior" in batch else self.model.embed_audio(batch["waveform"])
        p = self.text_condition_prob if text_prob is None else text_prob
        if p > 0:  # no draw at 0: the paper recipe's random stream is unchanged
            text, has_text = self.text_conditions(batch)
            use_text = (torch.rand(x0.shape[0], device=x0.device, generator=generator) < p) & has_text
            condition = torch.where(use_text[:, None], text.to(condition), condition)
        return x0, condition.float()

    def text_conditions(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(the text condition of each item's caption: CLAP text embedding [B, D] or token states
        [B, L, W + 1], has a caption [B] bool): pre-encoded, or computed here by the frozen encoder."""
        device = self.model.scale_factor.device
        if "posterior" in batch:
            key = "clap_text" if self.model.conditions_on_audio else "text_tokens"
            if key not in batch:
                raise LatentCacheError(
                    f"the pre-encoded batch has no text conditions of the captions ({key}): pre-encode again with "
                    f"this version of data.preencode and this config"
                    + (", or set model.text_condition_prob=0" if key == "clap_text" else "")
                )
            return batch[key], batch["has_text"].to(device, torch.bool)
        captions = list(batch["caption"])
        has_text = torch.tensor([bool(c) for c in captions], device=device)
        return self.model.text_condition(captions), has_text

    def check_cache(self, cache) -> None:
        """Pre-encoded latents must come from this model's VAE and CLAP (and text encoder, whose token states a
        cross-attention model trains on), and hold text embeddings when the condition mixes them in (checked
        before any step)."""
        version = int((cache.read_meta() or {}).get("fingerprint_version", 1))  # older caches: version 1
        expected = {"vae_fingerprint": fingerprint(self.model.vae, version)}
        if self.model.conditions_on_audio:
            expected["clap_fingerprint"] = fingerprint(self.model.clap, version)
        else:
            expected["text_encoder"] = text_encoder_meta(self.model, version)
        cache.check_meta(expected)
        if self.text_condition_prob > 0 and not cache.has_text_embeddings:
            raise LatentCacheError(
                f"{cache.where}: these pre-encoded latents have no CLAP text embeddings of the captions (written "
                f"before data.preencode stored them), which model.text_condition_prob={self.text_condition_prob} "
                f"needs: pre-encode again into a new data.latent_cache_dir (then data.shard_writer for shards), "
                f"or set model.text_condition_prob=0"
            )


def text_encoder_meta(model: LatentDiffusion, version: int) -> dict:
    """What a cache of token states records of the encoder that made them: the condition and its weights."""
    encoder = model.text_encoder if model.condition == "crossattn_t5" else model.clap
    return {"condition": model.condition, "fingerprint": fingerprint(encoder, version)}
