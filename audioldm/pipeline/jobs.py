"""One request of the web app (``app.py``), without any web framework: check the inputs, run the
pipeline, write each clip as ``NNN_<label>.wav`` (16 kHz) and ``.png`` (its log-mel) into the request's
own folder, and describe the settings used, with the ``generate.py`` command that makes the same clips
(seeds included: clip i of a request draws from seed + i, as in the CLI).

Bad input raises ``RequestError`` with one short line for the page.
"""
from __future__ import annotations

import itertools
import os
import re
import shlex
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch

from audioldm.audio.io import AudioReadError, load_audio
from audioldm.pipeline.limits import ETA, GUIDANCE, check_duration, check_number
from audioldm.pipeline.outputs import save_clip, slug
from audioldm.pipeline.text_to_audio import Generated, Progress, SamplingOptions, TextToAudio

SAMPLERS = ("dpmsolver++", "ddim", "lcm")  # lcm: consistency-distilled checkpoints only
MAX_CLIPS = 4  # clips per text-to-audio or variation request


class RequestError(ValueError):
    """Bad input in a request: its message is shown in the page as it is."""


@dataclass
class Sampling:
    """The sampling settings every tab shares."""
    negative: str = ""
    steps: int = 25
    sampler: str = "dpmsolver++"
    guidance: float = 2.5
    eta: float = 1.0
    seed: int = 0
    candidates: int = 1

    def options(self) -> SamplingOptions:
        if self.sampler not in SAMPLERS:
            raise RequestError(f"unknown sampler {self.sampler!r} (choose {' or '.join(SAMPLERS)})")
        return SamplingOptions(steps=_whole("steps", self.steps, 1, 1000), sampler=self.sampler,
                               guidance=_number("guidance", self.guidance, 1.0, GUIDANCE[1]),  # the CLI takes 0-1 too
                               eta=_number("eta", self.eta, *ETA), seed=_whole("seed", self.seed, 0, 2 ** 31),
                               n_candidates=_whole("candidates", self.candidates, 1, 16),
                               negative=self.negative or "")

    def flags(self) -> list[str]:
        """The generate.py flags that give the same sampling."""
        flags = ["--steps", str(int(self.steps)), "--sampler", self.sampler, "--guidance", f"{self.guidance:g}",
                 "--eta", f"{self.eta:g}", "--seed", str(int(self.seed)), "--candidates", str(int(self.candidates))]
        return flags + (["--negative", self.negative] if self.negative.strip() else [])


def default_sampling(pipe: TextToAudio, ckpt: str | None = None) -> Sampling:
    """Starting settings for this checkpoint: the guidance its run previewed with (``model.val_guidance`` of
    our checkpoints), else AudioLDM's 2.5; a consistency-distilled student samples with lcm
    in 4 steps, any other model with DPM-Solver++ 25."""
    guidance = _saved_guidance(ckpt) or Sampling.guidance
    if "lcm" in pipe.model.samplers:
        return Sampling(sampler="lcm", steps=4, guidance=guidance)
    return Sampling(guidance=guidance)


def _saved_guidance(ckpt: str | None) -> float | None:
    """``config.model.val_guidance`` of one of our checkpoint files (memory-mapped, not read whole), else None."""
    if not ckpt or not os.path.isfile(ckpt):
        return None
    try:
        raw = torch.load(ckpt, map_location="cpu", mmap=True, weights_only=False)
        value = raw["config"]["model"].get("val_guidance")
        return float(value) if value else None
    except Exception:  # an original .ckpt or another layout: it records no guidance  # noqa: BLE001
        return None


@dataclass
class JobResult:
    wavs: list[str]  # one per clip
    images: list[str]  # the clips' mel PNGs
    settings: dict


def parse_spans(text: str) -> list[tuple[float, float]]:
    """"2-4.5, 6-7" -> [(2.0, 4.5), (6.0, 7.0)] (spans in seconds, separated by commas, semicolons or spaces)."""
    spans = []
    for part in re.split(r"[,;\s]+", (text or "").strip()):
        if not part:
            continue
        try:
            start, end = (float(x) for x in part.split("-", 1))
        except ValueError:
            raise RequestError(f"span {part!r} must look like START-END in seconds, e.g. 2.0-4.5") from None
        spans.append((start, end))
    if not spans:
        raise RequestError("give at least one time span to regenerate, e.g. 2.0-4.5")
    return spans


class Jobs:
    """The app's requests over one pipeline; one request runs at a time (the pipeline is not thread-safe).
    ``ckpt`` is how the reproducing command names the checkpoint."""

    def __init__(self, pipe: TextToAudio, out_dir: str, max_seconds: float = 30.0, ckpt: str = "CKPT"):
        self.pipe, self.out_dir, self.max_seconds, self.ckpt = pipe, out_dir, max_seconds, ckpt
        self._lock = threading.Lock()
        self._count = itertools.count()

    # -- the five modes ----------------------------------------------------------------------------
    def text(self, prompt: str, duration: float, clips: int, sampling: Sampling,
             progress: Progress | None = None) -> JobResult:
        prompt = _prompt(prompt)
        self._check_duration(duration)
        clips = _clips(clips)
        flags = ["--text", prompt, "--duration", f"{duration:g}", "--repeat", str(clips)]
        return self._run("text", lambda o: self.pipe.text_to_audio([prompt] * clips, duration, o, progress),
                         sampling, flags, {"prompt": prompt, "duration": duration})

    def variation(self, audio: str | None, text: str, audio_weight: float, duration: float, clips: int,
                  sampling: Sampling, progress: Progress | None = None) -> JobResult:
        source, name = self._source(audio)
        text = (text or "").strip() or None
        self._check_duration(duration)
        clips = _clips(clips)
        weight = 1.0 if text is None else _number("audio weight", audio_weight, 0.0, 1.0)
        label = f"variation of {name}" + (f": {text}" if text else "")
        flags = ["--mode", "variation", "--audio", name, "--duration", f"{duration:g}", "--repeat", str(clips)]
        flags += ["--text", text, "--audio-weight", f"{weight:g}"] if text else []
        def generate(o: SamplingOptions) -> Generated:
            return self.pipe.variation(source, text, weight, duration, clips, o, progress, label)

        return self._run("variation", generate, sampling, flags, {"source": name, "text": text, "audio_weight": weight,
                                           "duration": duration})

    def transfer(self, audio: str | None, text: str, strength: float, sampling: Sampling,
                 progress: Progress | None = None) -> JobResult:
        source, name = self._source(audio)
        text = _prompt(text)
        strength = _number("strength", strength, 0.0, 1.0)
        flags = ["--mode", "transfer", "--audio", name, "--text", text, "--strength", f"{strength:g}"]
        return self._run("transfer", lambda o: self.pipe.style_transfer(source, text, strength, o, progress),
                         sampling, flags, {"source": name, "text": text, "strength": strength})

    def inpaint(self, audio: str | None, text: str, spans: str, sampling: Sampling,
                progress: Progress | None = None) -> JobResult:
        source, name = self._source(audio)
        text = _prompt(text)
        parsed = parse_spans(spans)
        flags = ["--mode", "inpaint", "--audio", name, "--text", text]
        flags += [f for s, e in parsed for f in ("--span", f"{s:g}-{e:g}")]
        return self._run("inpaint", lambda o: self.pipe.inpaint(source, text, parsed, o, progress),
                         sampling, flags, {"source": name, "text": text, "spans": parsed})

    def super_resolution(self, audio: str | None, text: str, cutoff: float, sampling: Sampling,
                         progress: Progress | None = None) -> JobResult:
        source, name = self._source(audio)
        text = _prompt(text)
        cutoff = _number("cutoff", cutoff, 1.0, self.pipe.mel.sample_rate / 2)
        flags = ["--mode", "sr", "--audio", name, "--text", text, "--cutoff", f"{cutoff:g}"]
        return self._run("sr", lambda o: self.pipe.super_resolution(source, text, float(cutoff), o, progress),
                         sampling, flags, {"source": name, "text": text, "cutoff_hz": cutoff})

    # -- shared steps ------------------------------------------------------------------------------
    def _check_duration(self, duration: float | None) -> None:
        try:
            check_duration(duration, self.max_seconds, "duration", "the app's --max-duration")
        except ValueError as e:
            raise RequestError(str(e)) from None

    def _source(self, path: str | None) -> tuple[torch.Tensor, str]:
        """An uploaded clip -> (waveform [N] 16 kHz, its file name)."""
        if not path:
            raise RequestError("upload a source clip first")
        name = os.path.basename(path)
        try:
            wave = load_audio(path, self.pipe.mel.sample_rate)
        except AudioReadError as e:
            raise RequestError(f"cannot read the upload {name}: {e.reason}") from None
        seconds = wave.numel() / self.pipe.mel.sample_rate
        if seconds > self.max_seconds:
            raise RequestError(f"the source {name} is {seconds:.1f} s long; this app takes at most "
                               f"{self.max_seconds:g} s")
        return wave, name

    def _run(self, mode: str, generate: Callable[[SamplingOptions], Generated], sampling: Sampling,
             flags: list[str], settings: dict) -> JobResult:
        options = sampling.options()
        start = time.time()
        with self._lock:
            try:
                result = generate(options)
            except (ValueError, AudioReadError) as e:
                raise RequestError(str(e)) from None
        folder = os.path.join(self.out_dir, f"{next(self._count):05d}_{mode}")
        os.makedirs(folder, exist_ok=True)
        wavs, images, clips = [], [], []
        for i, label in enumerate(result.texts):
            stem = os.path.join(folder, f"{i:03d}_{slug(label)}")
            wav, png = save_clip(result.waveform[i], result.log_mel[i], stem, label, self.pipe.mel.sample_rate)
            wavs.append(wav)
            images.append(png)
            score = None if result.clap_score is None else round(float(result.clap_score[i]), 4)
            clips.append({"file": os.path.basename(wav), "seed": options.seed + i, "clap_score": score,
                          "seconds": result.waveform.shape[-1] / self.pipe.mel.sample_rate})
        command = ["python", "generate.py", "--ckpt", self.ckpt, *flags, *sampling.flags(), "--out", "out/"]
        return JobResult(wavs, images, {"mode": mode, **settings, **asdict(sampling), "clips": clips,
                                        "wall_seconds": round(time.time() - start, 2),
                                        "command": shlex.join(command)})


def _prompt(text: str | None) -> str:
    if not text or not text.strip():
        raise RequestError("type a prompt first")
    return text.strip()


def _clips(clips: float | None) -> int:
    return _whole("number of clips", clips, 1, MAX_CLIPS)


def _number(name: str, value: float | None, low: float, high: float) -> float:
    try:
        return check_number(name, value, low, high)
    except ValueError as e:
        raise RequestError(str(e)) from None


def _whole(name: str, value: float | None, low: int, high: int) -> int:
    if _number(name, value, low, high) != int(value):
        raise RequestError(f"{name} must be a whole number, got {value}")
    return int(value)
