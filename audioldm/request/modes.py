"""One request type per generation mode: text, variation, style transfer, inpainting, super-resolution.

Each validates itself against ``Limits`` (before any model loads), runs on a ``TextToAudio`` pipeline, and writes
itself out as the generate.py flags that make the same clips (clip i of a request draws from seed + i). generate.py,
app.py and evaluate.py build these from their own inputs and nothing else checks a value, so every bound and
message is the same in all three.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shlex
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch

from audioldm.audio.mel import MelConfig
from audioldm.request.limits import Limits, RequestError, check_duration, check_number, check_whole
from audioldm.request.sampling import Sampling

NYQUIST = 8000.0  # of the 16 kHz output


def parse_spans(items: list[str] | str) -> list[tuple[float, float]]:
    """["2-4.5", "6-7"] or "2-4.5, 6-7" -> [(2.0, 4.5), (6.0, 7.0)] (seconds; commas, semicolons or spaces apart)."""
    spans = []
    for item in [items] if isinstance(items, str) else items:
        for part in re.split(r"[,;\s]+", (item or "").strip()):
            if not part:
                continue
            try:
                start, end = (float(x) for x in part.split("-", 1))
            except ValueError:
                raise RequestError(f"--span {part!r} must look like START-END in seconds, e.g. 2.0-4.5") from None
            if not (math.isfinite(start) and math.isfinite(end)):
                raise RequestError(f"--span {part!r}: START and END must be finite numbers of seconds")
            if not start < end:
                raise RequestError(f"--span {part!r}: START must be before END")
            spans.append((start, end))
    if not spans:
        raise RequestError("--mode inpaint needs at least one --span START-END (seconds to regenerate, e.g. 2.0-4.5)")
    return spans


def check_prompt(text: str | None) -> str:
    if not isinstance(text, str) or not text.strip():
        raise RequestError("a prompt is empty: type the text to generate from (--text)")
    return text.strip()


@dataclass
class Request:
    """What every mode has: its sampling settings. Subclasses add their own inputs."""

    sampling: Sampling = field(default_factory=Sampling)
    mode: ClassVar[str] = ""

    def validate(self, limits: Limits) -> None:
        """Check every input against ``limits``; ``RequestError`` names the first bad one."""
        self.sampling = self.sampling.validate()

    def run(self, pipe, progress=None):
        """The clips (``Generated``) made by the pipeline ``pipe``."""
        raise NotImplementedError

    def count(self) -> int:
        """How many clips the request makes."""
        return 1

    def stream(self, pipe, progress=None, skip: Collection[int] = ()) -> Iterator[tuple[list[int], Any]]:
        """The clips as they are made, a sampling pass at a time: (clip indices, their ``Generated``); the
        clips in ``skip`` (made by an earlier, interrupted run: clip i always draws from seed + i) are left
        out. Only one pass's clips are in memory at a time."""
        if 0 not in skip:
            yield [0], self.run(pipe, progress)

    def _passes(self, skip: Collection[int]) -> list[list[int]]:
        """The clips still to make, in runs of consecutive indices of at most one sampling pass each (a pass
        holds ``batch_size`` clips, candidates included)."""
        size = max(1, self.sampling.batch_size // self.sampling.candidates)
        passes: list[list[int]] = []
        for i in (i for i in range(self.count()) if i not in skip):
            if passes and passes[-1][-1] == i - 1 and len(passes[-1]) < size:
                passes[-1].append(i)
            else:
                passes.append([i])
        return passes

    def flags(self) -> list[str]:
        """The mode's own generate.py flags."""
        raise NotImplementedError

    def settings(self) -> dict:
        """The mode's inputs, as the app reports them."""
        raise NotImplementedError

    def command(self, ckpt: str, out: str = "out/", model_flags: list[str] | None = None) -> str:
        """The generate.py command that makes the same clips (``model_flags``: how the model is loaded, e.g.
        its ``--lora`` adapters)."""
        return shlex.join(
            [
                "python",
                "generate.py",
                "--ckpt",
                ckpt,
                *(model_flags or []),
                *self.flags(),
                *self.sampling.flags(),
                "--out",
                out,
            ]
        )


@dataclass
class TextRequest(Request):
    """``repeat`` clips of each prompt; ``seeds`` (one per clip) replace seed + i."""

    prompts: list[str] = field(default_factory=list)
    duration: float = 10.0
    repeat: int = 1
    seeds: list[int] | None = None
    mode: ClassVar[str] = "text"

    def validate(self, limits: Limits) -> None:
        super().validate(limits)
        if not self.prompts:
            raise RequestError("give a prompt with --text or --prompts")
        self.prompts = [check_prompt(p) for p in self.prompts]
        self.duration = check_duration(self.duration, limits.max_seconds)
        self.repeat = check_whole("--repeat", self.repeat, 1, limits.max_clips)
        if self.seeds is not None and len(self.seeds) != len(self.clips()):
            raise RequestError(f"{len(self.seeds)} seeds for {len(self.clips())} clips")

    def clips(self) -> list[str]:
        return [p for p in self.prompts for _ in range(self.repeat)]

    def count(self) -> int:
        return len(self.prompts) * self.repeat

    def run(self, pipe, progress=None):
        return pipe.text_to_audio(self.clips(), self.duration, self.sampling.options(), progress, seeds=self.seeds)

    def stream(self, pipe, progress=None, skip: Collection[int] = ()):
        clips, options = self.clips(), self.sampling.options()
        seeds = self.seeds or [options.seed + i for i in range(len(clips))]
        passes = self._passes(skip)
        for n, indices in enumerate(passes):
            yield (
                indices,
                pipe.text_to_audio(
                    [clips[i] for i in indices],
                    self.duration,
                    options,
                    _shifted(progress, n, len(passes)),
                    seeds=[seeds[i] for i in indices],
                ),
            )

    def flags(self) -> list[str]:
        return [f for p in self.prompts for f in ("--text", p)] + [
            "--duration",
            f"{self.duration:g}",
            "--repeat",
            str(self.repeat),
        ]

    def settings(self) -> dict:
        return {"prompt": self.prompts[0] if len(self.prompts) == 1 else self.prompts, "duration": self.duration}


@dataclass
class SourceRequest(Request):
    """A mode that edits a source clip (``audio``: its path; ``name``: how labels and commands call it, by default
    the file's name)."""

    audio: str | None = None
    text: str | None = None
    name: str | None = None
    wave: torch.Tensor | None = field(default=None, repr=False, compare=False)  # the source, once ``load``ed
    text_required: ClassVar[bool] = True

    def validate(self, limits: Limits) -> None:
        super().validate(limits)
        if not self.audio:
            raise RequestError(f"--mode {self.mode} needs a source clip (--audio)")
        self.name = self.name or os.path.basename(self.audio)
        self.text = check_prompt(self.text) if self.text_required else (self.text or "").strip() or None

    def load(self, limits: Limits, sample_rate: int = 16000) -> torch.Tensor:
        """The source as a waveform [N] at ``sample_rate``, at most ``limits.max_seconds`` long."""
        from audioldm.audio.io import AudioReadError, load_audio

        try:
            wave = load_audio(self.audio, sample_rate)
        except AudioReadError as e:
            raise RequestError(f"--audio {self.audio}: cannot read it ({e.reason})") from None
        check_duration(wave.numel() / sample_rate, limits.max_seconds, f"--audio {self.audio}: the source")
        shortest = MelConfig().n_fft  # one STFT frame of the mel front-end
        if wave.numel() < shortest:
            raise RequestError(
                f"--audio {self.audio}: the source is too short ({wave.numel()} samples at "
                f"{sample_rate} Hz; at least {shortest})"
            )
        self.wave = wave
        return wave

    def source_flags(self) -> list[str]:
        return ["--mode", self.mode, "--audio", self.name] + (["--text", self.text] if self.text else [])

    def settings(self) -> dict:
        return {"source": self.name, "text": self.text}


@dataclass
class VariationRequest(SourceRequest):
    """New clips conditioned on the source's CLAP audio embedding, optionally mixed with ``text``'s."""

    audio_weight: float | None = None
    duration: float = 10.0
    repeat: int = 1
    mode: ClassVar[str] = "variation"
    text_required: ClassVar[bool] = False

    def validate(self, limits: Limits) -> None:
        super().validate(limits)
        if self.audio_weight is not None:
            self.audio_weight = check_number("--audio-weight", self.audio_weight, 0.0, 1.0)
            if self.audio_weight < 1.0 and not self.text:
                raise RequestError(f"--audio-weight {self.audio_weight:g} needs a --text to mix with")
        self.duration = check_duration(self.duration, limits.max_seconds)
        self.repeat = check_whole("--repeat", self.repeat, 1, limits.max_clips)

    def label(self) -> str:
        return f"variation of {self.name}" + (f": {self.text}" if self.text else "")

    def run(self, pipe, progress=None):
        return pipe.variation(
            self.wave,
            self.text,
            self.audio_weight,
            self.duration,
            self.repeat,
            self.sampling.options(),
            progress,
            self.label(),
        )

    def count(self) -> int:
        return self.repeat

    def stream(self, pipe, progress=None, skip: Collection[int] = ()):
        options, passes = self.sampling.options(), self._passes(skip)
        for n, indices in enumerate(passes):  # output j of a call draws from its seed + j: a pass starts at its first
            shifted = dataclasses.replace(options, seed=options.seed + indices[0])
            yield (
                indices,
                pipe.variation(
                    self.wave,
                    self.text,
                    self.audio_weight,
                    self.duration,
                    len(indices),
                    shifted,
                    _shifted(progress, n, len(passes)),
                    self.label(),
                ),
            )

    def flags(self) -> list[str]:
        weight = ["--audio-weight", f"{self.audio_weight:g}"] if self.audio_weight is not None else []
        return self.source_flags() + weight + ["--duration", f"{self.duration:g}", "--repeat", str(self.repeat)]

    def settings(self) -> dict:
        return {**super().settings(), "audio_weight": self.audio_weight, "duration": self.duration}


@dataclass
class TransferRequest(SourceRequest):
    """The source noised to ``strength`` of the schedule, then denoised towards ``text``."""

    strength: float = 0.5
    mode: ClassVar[str] = "transfer"

    def validate(self, limits: Limits) -> None:
        super().validate(limits)
        self.strength = check_number("--strength", self.strength, 0.0, 1.0)

    def run(self, pipe, progress=None):
        return pipe.style_transfer(self.wave, self.text, self.strength, self.sampling.options(), progress)

    def flags(self) -> list[str]:
        return self.source_flags() + ["--strength", f"{self.strength:g}"]

    def settings(self) -> dict:
        return {**super().settings(), "strength": self.strength}


@dataclass
class InpaintRequest(SourceRequest):
    """The source's time ``spans`` (START-END strings, or (start, end) seconds) regenerated from ``text``."""

    spans: list = field(default_factory=list)
    mode: ClassVar[str] = "inpaint"

    def validate(self, limits: Limits) -> None:
        super().validate(limits)
        self.spans = parse_spans([f"{s[0]}-{s[1]}" if isinstance(s, tuple) else s for s in self.spans])

    def load(self, limits: Limits, sample_rate: int = 16000) -> torch.Tensor:
        wave = super().load(limits, sample_rate)
        seconds = wave.numel() / sample_rate
        for start, end in self.spans:
            if not 0.0 <= start < end <= seconds + 1e-6:
                raise RequestError(f"--span {start:g}-{end:g} s is outside the clip (0-{seconds:g} s) or empty")
        return wave

    def run(self, pipe, progress=None):
        return pipe.inpaint(self.wave, self.text, self.spans, self.sampling.options(), progress)

    def flags(self) -> list[str]:
        return self.source_flags() + [f for s, e in self.spans for f in ("--span", f"{s:g}-{e:g}")]

    def settings(self) -> dict:
        return {**super().settings(), "spans": self.spans}


@dataclass
class SuperResolutionRequest(SourceRequest):
    """The source's band below ``cutoff`` Hz kept, the band above regenerated from ``text``; ``cutoff`` None: the
    source file's Nyquist frequency (it must be below 16 kHz then)."""

    cutoff: float | None = None
    mode: ClassVar[str] = "sr"

    def validate(self, limits: Limits) -> None:
        super().validate(limits)
        if self.cutoff is not None and not (
            isinstance(self.cutoff, (int, float)) and math.isfinite(self.cutoff) and 0 < self.cutoff < NYQUIST
        ):
            raise RequestError(
                f"--cutoff must be more than 0 and less than {NYQUIST:g} Hz (the Nyquist frequency "
                f"of 16 kHz output), got {self.cutoff:g}"
            )

    def load(self, limits: Limits, sample_rate: int = 16000) -> torch.Tensor:
        wave = super().load(limits, sample_rate)
        if self.cutoff is None:
            from audioldm.audio.io import audio_info

            rate = audio_info(self.audio).sample_rate
            if rate >= sample_rate:
                raise RequestError(
                    f"--mode sr: {self.name} is already at {rate} Hz; say which band to keep with --cutoff HZ"
                )
            self.cutoff = rate / 2
        return wave

    def run(self, pipe, progress=None):
        return pipe.super_resolution(self.wave, self.text, float(self.cutoff), self.sampling.options(), progress)

    def flags(self) -> list[str]:
        return self.source_flags() + (["--cutoff", f"{self.cutoff:g}"] if self.cutoff is not None else [])

    def settings(self) -> dict:
        return {**super().settings(), "cutoff_hz": self.cutoff}


def _shifted(progress, n: int, passes: int):
    """A pass's progress callback reporting into the whole request's: pass n of ``passes``."""
    if progress is None:
        return None
    return lambda done, total: progress(n * total + done, passes * total)


MODES = {r.mode: r for r in (TextRequest, VariationRequest, TransferRequest, InpaintRequest, SuperResolutionRequest)}


def describe(request: Request) -> dict:
    """The request's settings and its sampling, as the app shows them."""
    return {"mode": request.mode, **request.settings(), **asdict(request.sampling)}
