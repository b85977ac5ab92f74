"""The command-line flags generate.py and evaluate.py share, declared once: the sampling settings
(``sampling.Sampling``) and how the checkpoint is loaded and run."""

from __future__ import annotations

import argparse
import dataclasses

from audioldm.diffusion.names import SAMPLERS
from audioldm.request.limits import CANDIDATES, GUIDANCE, SEED, STEPS
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
    p.add_argument("--tokenizer", help="RoBERTa tokenizer folder (vocab.json, merges.txt) for LAION-CLAP text")
    p.add_argument(
        "--head-channels",
        type=int,
        help="UNet attention head width of an original .ckpt (default: 64 for model_channels 256, else 32)",
    )


def sampling_from_args(args: argparse.Namespace) -> Sampling:
    """The ``Sampling`` of parsed ``add_sampling_arguments`` flags (not yet validated): each field is the flag's
    destination of the same name (evaluate.py has no ``--negative``)."""
    return Sampling(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Sampling) if hasattr(args, f.name)})
