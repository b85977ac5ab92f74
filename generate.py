"""Generate or edit audio with a trained LDM checkpoint.

    python generate.py --ckpt CKPT --text "a dog barks" --out DIR
    python generate.py --ckpt CKPT --prompts prompts.txt --out DIR            # one prompt a line
    python generate.py --ckpt CKPT --mode transfer --audio in.wav --text "jazz piano" --strength 0.5 --out DIR
    python generate.py --ckpt CKPT --mode inpaint --audio in.wav --text "a dog barks" --span 2.0-4.5 --out DIR
    python generate.py --ckpt CKPT --mode sr --audio in.wav --text "birdsong" --cutoff 4000 --out DIR
    python generate.py --ckpt CKPT --mode variation --audio in.wav [--text "with rain" --audio-weight 0.7] --out DIR
    python generate.py --ckpt CKPT --text "a dog barks" --negative "low quality, noisy" --out DIR   # any mode

Each output is written as ``DIR/NNN_<prompt>.wav`` (16 kHz) and ``.png`` (its log-mel); DIR also
gets ``generated.jsonl`` (a manifest of the outputs with their prompts as captions) and
``generate.json`` (the settings, and the CLAP score of each output when candidates were ranked).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time

from audioldm.pipeline.limits import ETA, GUIDANCE, MAX_SECONDS, check_duration, check_number, resolve_device
from audioldm.safe_output import atomic_file, check_output_folder, main_guard, removed_on_error
from audioldm.diffusion.names import SAMPLERS, default_steps

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here downloads, by design
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MODES = ("text", "transfer", "inpaint", "sr", "variation")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="an ldm checkpoint (ours), an original AudioLDM .ckpt or a diffusers "
                   "AudioLDM folder")
    p.add_argument("--out", required=True, help="output folder (created); checked before the model loads. A folder "
                   "that holds earlier generate.py outputs (generated.jsonl, generate.json, NNN_*.wav/png) is "
                   "refused unless --overwrite")
    p.add_argument("--overwrite", action="store_true", help="replace the earlier outputs in --out: the new clips "
                   "and index are written, then the earlier NNN_*.wav/png not rewritten are removed")
    p.add_argument("--mode", choices=MODES, default="text")
    p.add_argument("--text", action="append", default=[], help="a prompt (repeat for several); variation: "
                   "optional, its CLAP text embedding is mixed into the source's audio embedding")
    p.add_argument("--prompts", help="a text file with one prompt a line (text mode)")
    p.add_argument("--audio", help="the source clip (transfer, inpaint, sr, variation)")
    p.add_argument("--audio-weight", type=float, help="variation: condition = normalise(w * audio embedding + "
                   "(1 - w) * text embedding), w in [0, 1] (default 1 without --text, 0.5 with it)")
    p.add_argument("--negative", default="", help="negative prompt (any mode): its CLAP text embedding replaces "
                   "the null condition in guidance")
    p.add_argument("--strength", type=float, default=0.5, help="transfer: 0 keeps the source, 1 ignores it")
    p.add_argument("--span", action="append", default=[], help="inpaint: START-END seconds to regenerate (repeatable)")
    p.add_argument("--cutoff", type=float, help="sr: keep the band below this (Hz); default: the source's Nyquist")
    p.add_argument("--duration", type=float, default=10.0, help="text and variation modes: seconds per clip, "
                   "at most --max-duration")
    p.add_argument("--max-duration", type=float, default=MAX_SECONDS, help="longest clip (s) generated or read "
                   "(default %(default)g: the model learned 10.24 s clips and its self-attention's cost grows with the "
                   "square of the length)")
    p.add_argument("--steps", type=int, help="sampling steps (default: 200; 4 with --sampler lcm)")
    p.add_argument("--sampler", choices=SAMPLERS, default="ddim", help="lcm: 1-4 step sampling of a "
                   "consistency-distilled checkpoint (train.py with stage: lcm); ddim, dpmsolver++: any other")
    p.add_argument("--guidance", type=float, default=2.5, help=f"classifier-free guidance w, {GUIDANCE[0]:g} to "
                   f"{GUIDANCE[1]:g} (1: none, 0: unconditional)")
    p.add_argument("--eta", type=float, default=1.0, help="DDIM stochasticity, 0 (deterministic) to 1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=1, help="text mode: clips per prompt, variation: clips "
                   "(each its own seed)")
    p.add_argument("--candidates", type=int, default=1, help="draws per output, the best CLAP match is kept")
    p.add_argument("--batch-size", type=int, default=8, help="clips per sampling pass")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (auto: cuda if available)")
    p.add_argument("--no-ema", action="store_true", help="use the raw UNet weights instead of the EMA")
    p.add_argument("--compile", action="store_true", help="torch.compile the UNet (faster on a GPU after warm-up)")
    p.add_argument("--bf16", action="store_true", help="run the UNet under bf16 autocast (faster on recent GPUs)")
    p.add_argument("--vocoder", help="a vocoder (any layout) to use instead of the one in --ckpt")
    p.add_argument("--tokenizer", help="RoBERTa tokenizer folder (vocab.json, merges.txt) for LAION-CLAP text")
    p.add_argument("--head-channels", type=int, help="UNet attention head width of an original .ckpt "
                   "(default: 64 for model_channels 256, else 32)")
    args = p.parse_args(argv)
    args.steps = default_steps(args.sampler, args.steps)
    return args


class InputError(ValueError):
    """Bad command-line input; printed as one line."""


def read_prompts(args: argparse.Namespace) -> list[str]:
    texts = list(args.text)
    if args.prompts:
        if not os.path.isfile(args.prompts):
            raise InputError(f"--prompts: file not found: {args.prompts}")
        with open(args.prompts, encoding="utf-8") as f:
            texts += [line.strip() for line in f if line.strip()]
        if not texts:
            raise InputError(f"--prompts: {args.prompts} has no prompts")
    if args.mode == "variation" and args.prompts:
        raise InputError("--mode variation takes at most one --text, not --prompts")
    if not texts and args.mode != "variation":
        raise InputError("give a prompt with --text or --prompts")
    if any(not t.strip() for t in texts):
        raise InputError("a prompt is empty")
    if args.mode == "variation" and len(texts) > 1:
        raise InputError(f"--mode variation takes at most one --text, got {len(texts)}")
    if args.mode not in ("text", "variation") and len(texts) != 1:
        raise InputError(f"--mode {args.mode} takes exactly one --text, got {len(texts)}")
    return [t for t in texts for _ in range(max(1, args.repeat))] if args.mode == "text" else texts


def parse_span(text: str) -> tuple[float, float]:
    try:
        start, end = (float(x) for x in text.split("-", 1))
    except ValueError:
        raise InputError(f"--span {text!r} must look like START-END in seconds, e.g. 2.0-4.5") from None
    if not (math.isfinite(start) and math.isfinite(end)):
        raise InputError(f"--span {text!r}: START and END must be finite numbers of seconds")
    return start, end


def check_args(args: argparse.Namespace) -> None:
    if args.mode != "text" and not args.audio:
        raise InputError(f"--mode {args.mode} needs --audio")
    if args.mode == "text" and args.audio:
        raise InputError("--audio is for --mode transfer, inpaint, sr or variation")
    if args.audio_weight is not None:
        if args.mode != "variation":
            raise InputError("--audio-weight is for --mode variation")
        if not 0.0 <= args.audio_weight <= 1.0:
            raise InputError(f"--audio-weight must be in [0, 1], got {args.audio_weight}")
        if args.audio_weight < 1.0 and not args.text:
            raise InputError(f"--audio-weight {args.audio_weight} needs a --text to mix with")
    if args.mode == "inpaint" and not args.span:
        raise InputError("--mode inpaint needs at least one --span START-END")
    for span in args.span:
        parse_span(span)  # before the model loads
    if not 0.0 <= args.strength <= 1.0:
        raise InputError(f"--strength must be in [0, 1], got {args.strength}")
    for name in ("steps", "candidates", "batch_size", "repeat"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1")
    if not (math.isfinite(args.max_duration) and args.max_duration > 0):
        raise InputError(f"--max-duration must be a positive number of seconds, got {args.max_duration}")
    if args.mode in ("text", "variation"):
        check_duration(args.duration, args.max_duration)
    check_number("--guidance", args.guidance, *GUIDANCE)
    check_number("--eta", args.eta, *ETA)
    if args.cutoff is not None:
        if args.mode != "sr":
            raise InputError("--cutoff is for --mode sr")
        if not (math.isfinite(args.cutoff) and 0 < args.cutoff < 8000):
            raise InputError(f"--cutoff must be more than 0 and less than 8000 Hz (the Nyquist frequency of 16 kHz "
                             f"output), got {args.cutoff:g}")
    if not os.path.exists(args.ckpt):
        raise InputError(f"--ckpt: file not found: {args.ckpt}")
    args.device = resolve_device(args.device)
    check_out(args)


OUTPUT_NAME = re.compile(r"^\d{3}_.*\.(wav|png)$")
INDEX_FILES = ("generated.jsonl", "generate.json")


def earlier_outputs(folder: str) -> list[str]:
    """The files in ``folder`` that look like a generate.py run's outputs (its index and NNN_*.wav/png)."""
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if n in INDEX_FILES or OUTPUT_NAME.match(n))


def check_out(args: argparse.Namespace) -> None:
    """--out must be a folder we can write into, and not hold earlier outputs unless --overwrite."""
    check_output_folder(args.out, "--out ")
    earlier = earlier_outputs(args.out)
    if earlier and not args.overwrite:
        raise InputError(f"--out {args.out}: holds {len(earlier)} earlier generate.py output file(s) (e.g. "
                         f"{earlier[0]}); pass --overwrite to replace them, or choose another folder")


def run(args: argparse.Namespace) -> list[dict]:
    from tqdm import tqdm

    from audioldm.audio.io import audio_info, load_audio
    from audioldm.pipeline.outputs import save_clip, slug
    from audioldm.pipeline.text_to_audio import SamplingOptions, TextToAudio

    texts = read_prompts(args)
    check_args(args)
    earlier = earlier_outputs(args.out)
    source = load_audio(args.audio, 16000) if args.audio else None
    if source is not None:
        check_duration(source.numel() / 16000, args.max_duration, f"--audio {args.audio}: the source")
    print(f"generate: loading {args.ckpt} on {args.device} ...", flush=True)
    pipe = TextToAudio.from_checkpoint(args.ckpt, args.device, use_ema=not args.no_ema, vocoder_ckpt=args.vocoder,
                                       tokenizer=args.tokenizer, head_channels=args.head_channels,
                                       compile=args.compile, bf16=args.bf16)
    options = SamplingOptions(steps=args.steps, sampler=args.sampler, guidance=args.guidance, eta=args.eta,
                              seed=args.seed, n_candidates=args.candidates, batch_size=args.batch_size,
                              negative=args.negative)
    bars: list = []  # the progress bar starts with the first step, so input errors print alone
    n_clips = len(texts) if args.mode == "text" else max(1, args.repeat) if args.mode == "variation" else 1
    length = f"{args.duration:g} s each" if args.mode in ("text", "variation") else "the source's length"
    print(f"generate: {n_clips} clip(s) x {args.candidates} candidate(s), {length}, {args.steps} {args.sampler} "
          f"steps ...", flush=True)

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(desc=f"generating ({args.mode})", unit="step", total=total))
        bars[0].total = total
        bars[0].update(done - bars[0].n)

    try:
        if args.mode == "text":
            result = pipe.text_to_audio(texts, args.duration, options, progress)
        elif args.mode == "transfer":
            result = pipe.style_transfer(source, texts[0], args.strength, options, progress)
        elif args.mode == "variation":
            text = texts[0] if texts else None
            label = f"variation of {os.path.basename(args.audio)}" + (f": {text}" if text else "")
            result = pipe.variation(source, text, args.audio_weight, args.duration, max(1, args.repeat), options,
                                    progress, label)
        elif args.mode == "inpaint":
            result = pipe.inpaint(source, texts[0], [parse_span(s) for s in args.span], options, progress)
        else:
            cutoff = args.cutoff if args.cutoff is not None else source_nyquist(args.audio, audio_info)
            result = pipe.super_resolution(source, texts[0], cutoff, options, progress)
    finally:
        for bar in bars:
            bar.close()
    with removed_on_error(args.out):  # a full disk or a lost permission: one line naming the path
        os.makedirs(args.out, exist_ok=True)
    rows = []
    for i, text in enumerate(result.texts):
        stem = os.path.join(args.out, f"{i:03d}_{slug(text)}")
        wav, png = save_clip(result.waveform[i], result.log_mel[i], stem, text)
        score = None if result.clap_score is None else round(float(result.clap_score[i]), 4)
        rows.append({"id": os.path.basename(stem), "path": os.path.basename(wav), "image": os.path.basename(png),
                     "prompt": text, "seconds": result.waveform.shape[-1] / 16000, "clap_score": score})
    write_index(args, rows)
    written = {name for r in rows for name in (r["path"], r["image"])} | set(INDEX_FILES)
    for name in earlier:  # --overwrite: the earlier run's clips that were not rewritten go
        if name not in written:
            os.remove(os.path.join(args.out, name))
    return rows


def source_nyquist(path: str, audio_info) -> float:
    rate = audio_info(path).sample_rate
    if rate >= 16000:
        raise InputError(f"--mode sr: {path} is already at {rate} Hz; say which band to keep with --cutoff HZ")
    return rate / 2


def write_index(args: argparse.Namespace, rows: list[dict]) -> None:
    """generated.jsonl (our manifest format: the outputs with their prompts as captions) and
    generate.json (settings and per-output CLAP scores), each written whole or not at all."""
    with atomic_file(os.path.join(args.out, "generated.jsonl"), text=True) as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "path": r["path"], "captions": [r["prompt"]],
                                "duration": r["seconds"], "source": f"generated:{args.mode}"}) + "\n")
    with atomic_file(os.path.join(args.out, "generate.json"), text=True) as f:
        json.dump({"settings": vars(args), "outputs": rows}, f, indent=2)


@main_guard  # what a write error the checks above could not foresee: one line
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.time()
    from audioldm.audio.io import AudioReadError
    from audioldm.checkpoint import CheckpointError

    try:
        rows = run(args)
    except (InputError, AudioReadError, CheckpointError, ValueError) as e:  # OutputError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"generate: wrote {len(rows)} clip(s) to {args.out} in {time.time() - start:.1f} s")
    for r in rows:
        score = f"  (CLAP {r['clap_score']:+.3f})" if r["clap_score"] is not None else ""
        print(f"  {os.path.join(args.out, r['path'])}  {r['prompt']!r}{score}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
