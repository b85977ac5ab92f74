"""The web app's requests (``app.py``), without any web framework: build the mode's request from the page's
values, validate and run it (one at a time: the pipeline is not thread-safe), write each clip as
``NNN_<label>.wav`` (16 kHz) and ``.png`` (its log-mel) into the request's own folder, and describe the settings
used, with the ``generate.py`` command that makes the same clips.

Bad input raises ``RequestError`` with one short line for the page (the same line generate.py prints).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass

from audioldm.audio.io import AudioReadError
from audioldm.formats.ours import saved_guidance
from audioldm.pipeline.outputs import save_clip, slug
from audioldm.pipeline.text_to_audio import Progress, TextToAudio
from audioldm.request.limits import LORA_SCALE, Limits, RequestError, check_number
from audioldm.request.modes import (
    InpaintRequest,
    Request,
    SourceRequest,
    SuperResolutionRequest,
    TextRequest,
    TransferRequest,
    VariationRequest,
    describe,
)
from audioldm.request.sampling import Sampling

MAX_CLIPS = 4  # clips per text-to-audio or variation request (the page's result slots)


def default_sampling(pipe: TextToAudio, ckpt: str | None = None) -> Sampling:
    """Starting settings for this checkpoint: the guidance its run previewed with (``model.val_guidance`` of
    our checkpoints), else AudioLDM's 2.5; a consistency-distilled student samples with lcm
    in 4 steps, any other model with DPM-Solver++ 25."""
    guidance = saved_guidance(ckpt) or Sampling.guidance
    if "lcm" in pipe.model.samplers:
        return Sampling(sampler="lcm", steps=4, guidance=guidance)
    return Sampling(sampler="dpmsolver++", steps=25, guidance=guidance)


@dataclass
class JobResult:
    wavs: list[str]  # one per clip
    images: list[str]  # the clips' mel PNGs
    settings: dict


class Jobs:
    """The app's requests over one pipeline. ``ckpt`` is how the reproducing command names the checkpoint."""

    def __init__(
        self,
        pipe: TextToAudio,
        out_dir: str,
        max_seconds: float = 30.0,
        ckpt: str = "CKPT",
        adapters: list[tuple[str, float]] | None = None,
    ):
        """``adapters``: the LoRA adapters attached (not fused) to ``pipe``'s UNet, (path, scale) each, in the order
        they were attached; ``set_adapter_scales`` changes their scales between requests."""
        self.pipe, self.out_dir, self.ckpt = pipe, out_dir, ckpt
        self.limits = Limits(max_seconds, max_clips=MAX_CLIPS)
        self.adapters = [(path, float(scale)) for path, scale in adapters or []]
        self._lock = threading.Lock()
        self._count = itertools.count()

    def set_adapter_scales(self, scales: list[float]) -> list[float]:
        """Each adapter's scale for the requests that follow (0: that adapter off)."""
        from audioldm.models.lora import set_scales

        if len(scales) != len(self.adapters):
            raise RequestError(f"{len(scales)} adapter scales for {len(self.adapters)} adapters")
        checked = [check_number("--lora scale", s, *LORA_SCALE) for s in scales]
        with self._lock:
            set_scales(self.pipe.model.unet, {f"adapter{i}": s for i, s in enumerate(checked)})
            self.adapters = [(path, s) for (path, _), s in zip(self.adapters, checked)]
        return checked

    def adapter_flags(self) -> list[str]:
        """The ``--lora PATH:SCALE`` flags that load the adapters at their current scales."""
        return [flag for path, scale in self.adapters for flag in ("--lora", f"{path}:{scale:g}")]

    # -- the five modes ----------------------------------------------------------------------------
    def text(
        self, prompt: str, duration: float, clips: int, sampling: Sampling, progress: Progress | None = None
    ) -> JobResult:
        return self.run(TextRequest(sampling, prompts=[prompt], duration=duration, repeat=clips), progress)

    def variation(
        self,
        audio: str | None,
        text: str,
        audio_weight: float,
        duration: float,
        clips: int,
        sampling: Sampling,
        progress: Progress | None = None,
    ) -> JobResult:
        weight = audio_weight if (text or "").strip() else None  # without a text the slider does not apply
        return self.run(
            VariationRequest(sampling, audio=audio, text=text, audio_weight=weight, duration=duration, repeat=clips),
            progress,
        )

    def transfer(
        self, audio: str | None, text: str, strength: float, sampling: Sampling, progress: Progress | None = None
    ) -> JobResult:
        return self.run(TransferRequest(sampling, audio=audio, text=text, strength=strength), progress)

    def inpaint(
        self, audio: str | None, text: str, spans: str, sampling: Sampling, progress: Progress | None = None
    ) -> JobResult:
        return self.run(InpaintRequest(sampling, audio=audio, text=text, spans=[spans or ""]), progress)

    def super_resolution(
        self, audio: str | None, text: str, cutoff: float, sampling: Sampling, progress: Progress | None = None
    ) -> JobResult:
        return self.run(SuperResolutionRequest(sampling, audio=audio, text=text, cutoff=cutoff), progress)

    # -- shared steps ------------------------------------------------------------------------------
    def run(self, request: Request, progress: Progress | None = None) -> JobResult:
        """Validate, load the source (if any), generate, and write the clips into a new folder."""
        request.validate(self.limits)
        if isinstance(request, SourceRequest):
            request.load(self.limits, self.pipe.mel.sample_rate)
        start = time.time()
        with self._lock:
            try:
                result = request.run(self.pipe, progress)
            except (ValueError, AudioReadError) as e:
                raise RequestError(str(e)) from None
        folder = os.path.join(self.out_dir, f"{next(self._count):05d}_{request.mode}")
        os.makedirs(folder, exist_ok=True)
        wavs, images, clips = [], [], []
        for i, label in enumerate(result.texts):
            stem = os.path.join(folder, f"{i:03d}_{slug(label)}")
            wav, png = save_clip(result.waveform[i], result.log_mel[i], stem, label, self.pipe.mel.sample_rate)
            wavs.append(wav)
            images.append(png)
            score = None if result.clap_score is None else round(float(result.clap_score[i]), 4)
            clips.append(
                {
                    "file": os.path.basename(wav),
                    "seed": request.sampling.seed + i,
                    "clap_score": score,
                    "seconds": result.waveform.shape[-1] / self.pipe.mel.sample_rate,
                }
            )
        return JobResult(
            wavs,
            images,
            {
                **describe(request),
                "clips": clips,
                "wall_seconds": round(time.time() - start, 2),
                "command": request.command(self.ckpt, model_flags=self.adapter_flags()),
            },
        )
