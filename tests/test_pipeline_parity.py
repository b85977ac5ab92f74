"""Parity of our text-to-audio pipeline with diffusers' own ``AudioLDMPipeline``: on one tiny random
checkpoint, diffusers' pipeline is built from the very same UNet, VAE (scaling factor = our
``scale_factor``), HiFi-GAN and scheduler, fed our CLAP text embeddings and the same seeded
generators; its decoded log-mels and waveforms must equal ``TextToAudio.text_to_audio``'s to float
tolerance for DDIM (eta 0 and 1) and DPM-Solver++. A ``ClapTextModelWithProjection`` holding our
CLAP text tower's weights must also reproduce our text embeddings. Together this shows that our
sampling loop, guidance, latent scaling, decoding, vocoding and per-sample seeding are AudioLDM's as
diffusers' reference pipeline implements it, so a difference in our samples is the weights' doing."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import ClapTextModelWithProjection

from audioldm.assembly.latent_diffusion import load_ldm
from audioldm.diffusion.schedule import make_scheduler
from audioldm.models.latent_diffusion import LatentDiffusion
from audioldm.pipeline.text_to_audio import SamplingOptions, TextToAudio

try:
    from diffusers import AudioLDMPipeline
except ImportError:  # later diffusers releases may drop the deprecated pipeline
    AudioLDMPipeline = None

pytestmark = pytest.mark.skipif(
    AudioLDMPipeline is None, reason="this diffusers version no longer ships the deprecated AudioLDMPipeline"
)

PROMPTS = ["a dog barks", "rain falls on a tin roof"]
SECONDS = 0.64  # 64 mel frames on both sides: diffusers int(0.64 / 0.01), ours ceil(10240 / 160)
STEPS, GUIDANCE, SEED = 5, 2.5, 7


@pytest.fixture(scope="module")
def model(tiny_ldm_checkpoint: Path) -> LatentDiffusion:
    return load_ldm(tiny_ldm_checkpoint)


def clap_text_encoder(model: LatentDiffusion) -> ClapTextModelWithProjection:
    """diffusers' text-encoder class with our ClapModel's text tower and text projection."""
    clap = model.clap.model
    encoder = ClapTextModelWithProjection(clap.config.text_config).eval()
    state = {k: v for k, v in clap.state_dict().items() if k.startswith(("text_model.", "text_projection."))}
    encoder.load_state_dict(state, strict=True)  # raises unless the key names match one to one
    return encoder


def diffusers_pipeline(model: LatentDiffusion, sampler: str) -> AudioLDMPipeline:
    model.vae.register_to_config(scaling_factor=float(model.scale_factor))
    # tokenizer=None: no RoBERTa tokenizer can be loaded offline, and with prompt_embeds and
    # negative_prompt_embeds both given the pipeline never tokenizes. register_modules accepts None
    # (as for optional components), and a call to it, were one ever made, would fail loudly.
    # the scheduler is told what the UNet outputs (the demo recipe's fixture is a v-prediction UNet)
    scheduler = make_scheduler(sampler)
    scheduler = type(scheduler).from_config(scheduler.config, prediction_type=model.prediction_type)
    pipe = AudioLDMPipeline(
        vae=model.vae,
        text_encoder=clap_text_encoder(model),
        tokenizer=None,
        unet=model.unet,
        scheduler=scheduler,
        vocoder=model.vocoder.generator,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def read_as(model: LatentDiffusion, kind: str) -> LatentDiffusion:
    """A copy of ``model`` whose UNet (and EMA) output is read as ``kind`` (epsilon or v_prediction)."""
    copied = copy.deepcopy(model)
    for unet in (copied.unet, getattr(copied.unet_ema, "module", None)):
        if unet is not None:
            unet.register_to_config(prediction_type=kind)
    return copied


@torch.no_grad()
def test_text_encoder_matches_our_clap_text_embedding(model: LatentDiffusion) -> None:
    encoder = clap_text_encoder(model)
    ids, mask = model.clap.tokenizer(PROMPTS + [""])
    theirs = F.normalize(encoder(ids, attention_mask=mask).text_embeds, dim=-1)  # as the pipeline does
    torch.testing.assert_close(theirs[:-1], model.clap.embed_text(PROMPTS), rtol=0, atol=1e-5)
    torch.testing.assert_close(theirs[-1], model.null_condition, rtol=0, atol=1e-5)  # the pipeline's default negative


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("sampler,eta", [("ddim", 0.0), ("ddim", 1.0), ("dpmsolver++", 0.0)])
@torch.no_grad()
def test_waveforms_match_diffusers_audioldm_pipeline(
    model: LatentDiffusion, sampler: str, eta: float, kind: str
) -> None:
    model = read_as(model, kind)  # AudioLDM's epsilon UNet, and the demo recipe's v-prediction one
    ours = TextToAudio(model).text_to_audio(
        PROMPTS, SECONDS, SamplingOptions(steps=STEPS, sampler=sampler, guidance=GUIDANCE, eta=eta, seed=SEED)
    )
    pipe = diffusers_pipeline(model, sampler)
    latents: list[torch.Tensor] = []  # the pipeline's latent after each step (its callback)
    condition = model.embed_text(PROMPTS)
    theirs = pipe(
        audio_length_in_s=SECONDS,
        num_inference_steps=STEPS,
        guidance_scale=GUIDANCE,
        eta=eta,
        generator=[torch.Generator().manual_seed(SEED + i) for i in range(len(PROMPTS))],
        prompt_embeds=condition,
        negative_prompt_embeds=model.null_condition.expand_as(condition),
        output_type="pt",
        callback=lambda step, t, latent: latents.append(latent),
    ).audios
    assert len(latents) == STEPS
    # the log-mel (order 1) is compared absolutely; the waveform relative to its peak, since a random
    # tiny HiFi-GAN (weights ~ N(0, 0.01)) outputs a signal of about 1e-10
    torch.testing.assert_close(ours.log_mel, pipe.decode_latents(latents[-1]), rtol=0, atol=1e-5)
    assert ours.waveform.shape == theirs.shape == (len(PROMPTS), int(SECONDS * 16000))
    peak = theirs.abs().max()
    assert peak > 0
    torch.testing.assert_close(ours.waveform / peak, theirs / peak, rtol=0, atol=1e-5)


@pytest.mark.slow
@torch.no_grad()
def test_the_prediction_type_changes_the_samples(model: LatentDiffusion) -> None:
    """The same weights read as epsilon and as v give other samples, so the v-prediction case above really tests
    the conversion from v (predict_noise) against diffusers' scheduler told v_prediction."""
    options = SamplingOptions(steps=STEPS, sampler="dpmsolver++", guidance=GUIDANCE, seed=SEED)
    v, epsilon = (
        TextToAudio(read_as(model, kind)).text_to_audio(PROMPTS, SECONDS, options).log_mel
        for kind in ("v_prediction", "epsilon")
    )
    assert (v - epsilon).abs().max() > 1e-3
