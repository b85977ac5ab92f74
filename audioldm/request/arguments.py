"""The command-line flags generate.py and evaluate.py share, declared once: the sampling settings
(``sampling.Sampling``) and how the checkpoint is loaded and run."""

from __future__ import annotations

import argparse
import codecs
import dataclasses
import os

from audioldm.diffusion.names import SAMPLERS
from audioldm.request.limits import CANDIDATES, GUIDANCE, LORA_SCALE, SEED, STEPS, RequestError, check_number
from audioldm.request.sampling import Sampling

Parser = argparse.ArgumentParser | argparse._ArgumentGroup


def add_sampling_arguments(parser: Parser, negative: bool = True) -> None:
    """The sampling flags of generate.py and evaluate.py (one declaration: the same names, defaults and help)."""
    d = Sampling()
    if negative:
        parser.add_argument(
            "--negative",
            default=d.negative,
            help="negative prompt (any mode): its CLAP text embedding replaces the null condition in guidance",
        )
    parser.add_argument(
        "--steps", type=int, help=f"sampling steps, {STEPS[0]} to {STEPS[1]} (default: 200; 4 with --sampler lcm)"
    )
    parser.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default=d.sampler,
        help="lcm: 1-4 step sampling of a "
        "consistency-distilled checkpoint (train.py with stage: lcm); ddim, dpmsolver++: any other",
    )
    parser.add_argument(
        "--guidance",
        type=float,
        default=d.guidance,
        help=f"classifier-free guidance w, {GUIDANCE[0]:g} to {GUIDANCE[1]:g} (1: none, 0: unconditional)",
    )
    parser.add_argument("--eta", type=float, default=d.eta, help="DDIM stochasticity, 0 (deterministic) to 1")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"{SEED[0]} to {SEED[1]}; clip i uses seed + i")
    parser.add_argument(
        "--candidates",
        type=int,
        default=d.candidates,
        help=f"draws per output ({CANDIDATES[0]} to {CANDIDATES[1]}), the best CLAP match is kept",
    )
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="clips per sampling pass")


def add_model_arguments(p: Parser, speed: bool = True) -> None:
    """How the checkpoint is loaded and run (generate.py; evaluate.py takes the same, without ``speed``)."""
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (auto: cuda if available)")
    p.add_argument("--no-ema", action="store_true", help="use the raw UNet weights instead of the EMA")
    if speed:
        p.add_argument("--compile", action="store_true", help="torch.compile the UNet (faster on a GPU after warm-up)")
        p.add_argument("--bf16", action="store_true", help="run the UNet under bf16 autocast (faster on recent GPUs)")
    p.add_argument("--vocoder", help="a vocoder (any format) to use instead of the one in --ckpt")
    p.add_argument(
        "--tokenizer",
        help="RoBERTa tokenizer folder (vocab.json, merges.txt) for LAION-CLAP text, or the T5 tokenizer folder of an "
        "audioldm_16k_crossattn_t5 checkpoint (e.g. google/flan-t5-large's, saved locally)",
    )
    p.add_argument(
        "--head-channels",
        type=int,
        help="UNet attention head width of an original .ckpt (default: 64 for model_channels 256, else 32)",
    )
    p.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="ADAPTER[:SCALE]",
        help=f"a LoRA adapter (.safetensors from a model.lora run) on the checkpoint's UNet, at SCALE "
        f"({LORA_SCALE[0]:g} to {LORA_SCALE[1]:g}, default 1; 0 gives the base exactly); repeat to stack adapters",
    )
    p.add_argument("--fuse-lora", action="store_true", help="merge the adapters into the UNet (faster sampling)")
    p.add_argument(
        "--force-lora", action="store_true", help="apply adapters trained on another base (refused otherwise)"
    )


def sampling_from_args(args: argparse.Namespace) -> Sampling:
    """The ``Sampling`` of parsed ``add_sampling_arguments`` flags (not yet validated): each field is the flag's
    destination of the same name (evaluate.py has no ``--negative``)."""
    return Sampling(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Sampling) if hasattr(args, f.name)})


def check_model_files(args: argparse.Namespace) -> None:
    """``--ckpt``, ``--vocoder``, ``--tokenizer`` and ``--lora`` name what exists: checked before any model loads (a
    ``--tokenizer`` is refused even where the checkpoint brings its own, so a typo is not silently ignored)."""
    if not os.path.exists(args.ckpt):
        raise RequestError(f"--ckpt: file not found: {args.ckpt}")
    adapters_from_args(args)
    vocoder, tokenizer = getattr(args, "vocoder", None), getattr(args, "tokenizer", None)
    if vocoder and not os.path.exists(vocoder):
        raise RequestError(f"--vocoder: file not found: {vocoder}")
    if tokenizer and not os.path.isdir(tokenizer):
        what = "is a file, not a folder" if os.path.exists(tokenizer) else "folder not found"
        raise RequestError(f"--tokenizer: {what}: {tokenizer}")


def read_prompt_file(path: str) -> list[str]:
    """The non-blank lines of a ``--prompts`` file, stripped: UTF-8, with or without a byte-order mark (which is
    not part of the first prompt). Another encoding is refused naming the file and the line."""
    if not os.path.isfile(path):
        raise RequestError(f"--prompts: file not found: {path}")
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    prompts = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            hint = "it looks like UTF-16" if utf16 else "not UTF-8"
            raise RequestError(
                f"--prompts {path}: line {number} cannot be read as UTF-8 (byte {raw[e.start]:#04x} at "
                f"column {e.start + 1}: {hint}); save the file as UTF-8"
            ) from None
        if line.strip():
            prompts.append(line.strip())
    return prompts


def adapters_from_args(args: argparse.Namespace) -> list[tuple[str, float]]:
    """The ``--lora ADAPTER[:SCALE]`` flags as (path, scale), each checked: the file exists, the scale is in range."""
    from audioldm.assembly.adapters import parse_adapter

    adapters = []
    for text in getattr(args, "lora", None) or []:
        try:
            path, scale = parse_adapter(text)
        except ValueError as e:
            raise RequestError(str(e)) from None
        if not os.path.isfile(path):
            raise RequestError(f"--lora: file not found: {path}")
        check_number("--lora scale", scale, *LORA_SCALE)
        adapters.append((path, scale))
    if getattr(args, "fuse_lora", False) and not adapters:
        raise RequestError("--fuse-lora needs at least one --lora adapter")
    return adapters
