"""Generate or edit audio with a trained LDM checkpoint.

    python generate.py --ckpt CKPT --text "a dog barks" --out DIR
    python generate.py --ckpt CKPT --prompts prompts.txt --out DIR            # one prompt a line
    python generate.py --ckpt CKPT --mode transfer --audio in.wav --text "jazz piano" --strength 0.5 --out DIR
    python generate.py --ckpt CKPT --mode inpaint --audio in.wav --text "a dog barks" --span 2.0-4.5 --out DIR
    python generate.py --ckpt CKPT --mode sr --audio in.wav --text "birdsong" --cutoff 4000 --out DIR
    python generate.py --ckpt CKPT --mode variation --audio in.wav [--text "with rain" --audio-weight 0.7] --out DIR
    python generate.py --ckpt CKPT --text "a dog barks" --negative "low quality, noisy" --out DIR   # any mode

Each output is written as ``DIR/NNN_<prompt>.wav`` (16 kHz) and ``.png`` (its log-mel) as soon as its sampling
pass ends; DIR also gets ``generated.jsonl`` (a manifest of the outputs with their prompts as captions) and
``generate.json`` (the settings, and the CLAP score of each output when candidates were ranked). An interrupted
run (Ctrl-C, a crash) keeps what it wrote, and the same command continues it (audioldm/request/clip_folder.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from audioldm.request.arguments import adapters_from_args, add_model_arguments, add_sampling_arguments
from audioldm.request.limits import MAX_SECONDS, RequestError
from audioldm.safe_output import main_guard

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here downloads, by design
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MODES = ("text", "transfer", "inpaint", "sr", "variation")
SHOWN = 50  # clips listed at the end


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--ckpt",
        required=True,
        help="an ldm checkpoint (ours), an original AudioLDM .ckpt or a diffusers AudioLDM folder",
    )
    p.add_argument(
        "--out",
        required=True,
        help="output folder (created); checked before the model loads. A folder "
        "that holds earlier generate.py outputs (generated.jsonl, generate.json, NNN_*.wav/png) is "
        "refused unless --overwrite",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the earlier outputs in --out: the new clips "
        "and index are written, then the earlier NNN_*.wav/png not rewritten are removed",
    )
    p.add_argument("--mode", choices=MODES, default="text")
    p.add_argument(
        "--text",
        action="append",
        default=[],
        help="a prompt (repeat for several); variation: "
        "optional, its CLAP text embedding is mixed into the source's audio embedding",
    )
    p.add_argument("--prompts", help="a text file with one prompt a line (text mode)")
    p.add_argument("--audio", help="the source clip (transfer, inpaint, sr, variation)")
    p.add_argument(
        "--audio-weight",
        type=float,
        help="variation: condition = normalise(w * audio embedding + "
        "(1 - w) * text embedding), w in [0, 1] (default 1 without --text, 0.5 with it)",
    )
    p.add_argument("--strength", type=float, default=0.5, help="transfer: 0 keeps the source, 1 ignores it")
    p.add_argument("--span", action="append", default=[], help="inpaint: START-END seconds to regenerate (repeatable)")
    p.add_argument("--cutoff", type=float, help="sr: keep the band below this (Hz); default: the source's Nyquist")
    p.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="text and variation modes: seconds per clip, at most --max-duration",
    )
    p.add_argument(
        "--max-duration",
        type=float,
        default=MAX_SECONDS,
        help="longest clip (s) generated or read "
        "(default %(default)g: the model learned 10.24 s clips and its self-attention's cost grows with the "
        "square of the length)",
    )
    p.add_argument(
        "--repeat", type=int, default=1, help="text mode: clips per prompt, variation: clips (each its own seed)"
    )
    add_sampling_arguments(p)
    add_model_arguments(p)
    return p.parse_args(argv)


def read_prompts(args: argparse.Namespace) -> list[str]:
    """The --text prompts and the lines of --prompts, checked against the mode's count."""
    texts = list(args.text)
    if args.prompts:
        from audioldm.request.arguments import read_prompt_file

        texts += read_prompt_file(args.prompts)
        if not texts:
            raise RequestError(f"--prompts: {args.prompts} has no prompts")
    if args.mode == "variation" and args.prompts:
        raise RequestError("--mode variation takes at most one --text, not --prompts")
    if args.mode == "variation" and len(texts) > 1:
        raise RequestError(f"--mode variation takes at most one --text, got {len(texts)}")
    if args.mode not in ("text", "variation") and len(texts) > 1:
        raise RequestError(f"--mode {args.mode} takes exactly one --text, got {len(texts)}")
    return texts


def request_from_args(args: argparse.Namespace):
    """The request the flags describe (validated later, against the same limits as the app's and evaluate.py's)."""
    from audioldm.request.arguments import sampling_from_args
    from audioldm.request.modes import (
        InpaintRequest,
        SuperResolutionRequest,
        TextRequest,
        TransferRequest,
        VariationRequest,
    )

    texts, sampling = read_prompts(args), sampling_from_args(args)
    if args.mode == "text" and args.audio:
        raise RequestError("--audio is for --mode transfer, inpaint, sr or variation")
    if args.audio_weight is not None and args.mode != "variation":
        raise RequestError("--audio-weight is for --mode variation")
    if args.cutoff is not None and args.mode != "sr":
        raise RequestError("--cutoff is for --mode sr")
    if args.mode == "text":
        return TextRequest(sampling, prompts=texts, duration=args.duration, repeat=args.repeat)
    source = {"audio": args.audio, "text": texts[0] if texts else None}
    if args.mode == "variation":
        return VariationRequest(
            sampling, **source, audio_weight=args.audio_weight, duration=args.duration, repeat=args.repeat
        )
    if args.mode == "transfer":
        return TransferRequest(sampling, **source, strength=args.strength)
    if args.mode == "inpaint":
        return InpaintRequest(sampling, **source, spans=list(args.span))
    return SuperResolutionRequest(sampling, **source, cutoff=args.cutoff)


def run(args: argparse.Namespace) -> int:
    """Validate, load, generate into --out as the clips are made; the exit status (0, or 130 when interrupted)."""
    from tqdm import tqdm

    from audioldm.pipeline.text_to_audio import TextToAudio
    from audioldm.request.arguments import check_model_files
    from audioldm.request.clip_folder import ClipFolder
    from audioldm.request.limits import Limits, resolve_device
    from audioldm.request.modes import SourceRequest

    start = time.time()
    limits = Limits(args.max_duration)
    request = request_from_args(args)
    request.validate(limits)
    check_model_files(args)
    args.device = resolve_device(args.device)
    args.steps = request.sampling.steps
    folder = ClipFolder(args.out, request.command(args.ckpt, args.out), args.mode, vars(args), args.overwrite)
    if isinstance(request, SourceRequest):
        request.load(limits)
    total, pipe = request.count(), None
    if len(folder.done) < total:  # a complete earlier run of this command needs no model
        print(f"generate: loading {args.ckpt} on {args.device} ...", flush=True)
        pipe = TextToAudio.from_checkpoint(
            args.ckpt,
            args.device,
            use_ema=not args.no_ema,
            vocoder_ckpt=args.vocoder,
            tokenizer=args.tokenizer,
            head_channels=args.head_channels,
            compile=args.compile,
            bf16=args.bf16,
            adapters=adapters_from_args(args),
            fuse_adapters=args.fuse_lora,
            force_adapters=args.force_lora,
        )
    bars: list = []  # the progress bar starts with the first step, so input errors print alone
    length = f"{args.duration:g} s each" if args.mode in ("text", "variation") else "the source's length"
    print(
        f"generate: {total} clip(s) x {args.candidates} candidate(s), {length}, {args.steps} {args.sampler} steps ...",
        flush=True,
    )
    if folder.done:
        print(
            f"generate: continuing in {args.out}: {len(folder.done)} of {total} clip(s) are there already", flush=True
        )

    def progress(done: int, steps: int) -> None:
        if not bars:
            bars.append(tqdm(desc=f"generating ({args.mode})", unit="step", total=steps))
        bars[0].total = steps
        bars[0].update(done - bars[0].n)

    try:
        for indices, result in request.stream(pipe, progress, skip=folder.done):
            folder.add(indices, result)
    except KeyboardInterrupt:
        for bar in bars:  # the bar's last line before the message
            bar.close()
        made = len(folder.done) + len(folder.new)
        print(
            f"generate: interrupted; {made} of {total} clip(s) are in {args.out} (the same command continues "
            f"from there)",
            file=sys.stderr,
        )
        return 130
    finally:
        for bar in bars:
            bar.close()
    folder.finish()
    new = [folder.new[i] for i in sorted(folder.new)]
    print(
        f"generate: wrote {len(new)} clip(s) to {args.out} in {time.time() - start:.1f} s"
        + (f" ({len(folder.done)} were there already)" if folder.done else "")
    )
    for r in new[:SHOWN]:
        score = f"  (CLAP {r['clap_score']:+.3f})" if r["clap_score"] is not None else ""
        print(f"  {os.path.join(args.out, r['path'])}  {r['prompt']!r}{score}")
    if len(new) > SHOWN:
        print(f"  ... and {len(new) - SHOWN} more (all in {os.path.join(args.out, 'generated.jsonl')})")
    return 0


@main_guard  # what a write error the checks above could not foresee: one line
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from audioldm.audio.io import AudioReadError
    from audioldm.checkpoint import CheckpointError

    try:
        return run(args)
    except (AudioReadError, CheckpointError, ValueError) as e:  # RequestError, OutputError: ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
