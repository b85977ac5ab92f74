"""Convert weights between formats (nothing is downloaded; see audioldm/formats/ for the formats and key rules).

    python convert.py audioldm-s-full.ckpt runs/audioldm-s-full.ckpt --tokenizer roberta-base/
    python convert.py cvssp-audioldm-s-full-v2/ runs/audioldm-s-full-v2.ckpt
    python convert.py runs/ldm/version_0/checkpoints/last.ckpt exported/ --to diffusers
    python convert.py 630k-audioset-best.pt runs/laion-clap.ckpt --tokenizer roberta-base/
    python convert.py hifigan-16k-64bins.ckpt runs/hifigan.ckpt
    python convert.py audioldm_16k_crossattn_t5.pth runs/audioldm_crossattn_t5.ckpt --tokenizer flan-t5-large/

Reads ours, original AudioLDM .ckpt, diffusers AudioLDM folders, LAION-CLAP .pt, transformers CLAP
folders, HiFi-GAN and AudioLDM VAE checkpoints. ``--to ours`` writes this project's checkpoint (an
ldm checkpoint for a whole AudioLDM, else a stage checkpoint usable as model.*_ckpt or init_from);
``--to diffusers`` writes a whole AudioLDM as a diffusers AudioLDMPipeline folder.
"""

from __future__ import annotations

import argparse
import os
import sys

from audioldm.safe_output import check_output, main_guard

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here downloads, by design
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="a checkpoint file or a diffusers/transformers folder")
    p.add_argument("out", help="the checkpoint file (--to ours) or folder (--to diffusers) to write")
    p.add_argument("--to", choices=("ours", "diffusers"), default="ours")
    p.add_argument(
        "--stage",
        choices=("ldm", "vae", "clap", "vocoder"),
        help="the part to convert (default: the whole model the source holds)",
    )
    p.add_argument(
        "--tokenizer",
        help="RoBERTa tokenizer folder (vocab.json, merges.txt) for LAION-CLAP weights, or the T5 tokenizer folder "
        "of an audioldm_16k_crossattn_t5 checkpoint; --to ours copies it beside the checkpoint (x.ckpt -> "
        "x.tokenizer/ or x.t5_tokenizer/)",
    )
    p.add_argument(
        "--head-channels",
        type=int,
        help="UNet attention head width of an original .ckpt (default: 64 for model_channels 256, else 32)",
    )
    p.add_argument("--no-ema", action="store_true", help="--to diffusers: write the raw UNet weights, not the EMA")
    p.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="ADAPTER[:SCALE]",
        help="merge LoRA adapters (at their scales) into the UNet: a whole model with one UNet weight set (the EMA's "
        "unless --no-ema) and the adapters fused; repeat to stack",
    )
    p.add_argument("--force-lora", action="store_true", help="merge adapters trained on another base (else refused)")
    return p.parse_args(argv)


def convert(args: argparse.Namespace) -> str:
    """Do the conversion; returns a one-line summary."""
    from audioldm.assembly.latent_diffusion import read_ldm, to_latent_diffusion
    from audioldm.assembly.parts import load_part
    from audioldm.formats import diffusers, ours
    from audioldm.formats.registry import holds_whole_model, open_source

    if os.path.exists(args.out):
        raise ValueError(f"{args.out}: already exists; choose a new output path")
    check_output(args.out)  # the folder it goes into must be one we can write into (not a file)
    source = open_source(args.source)
    held = source.format.parts(source)
    stage = args.stage or ("ldm" if holds_whole_model(source) else held[0])
    if args.to == "diffusers" and stage != "ldm":
        raise ValueError("--to diffusers writes a whole AudioLDM (stage ldm)")
    if args.to == "ours" and stage in ("ldm", "clap") and ours.tokenizer_folder(args.out).exists():
        raise ValueError(
            f"{ours.tokenizer_folder(args.out)}: already exists (a converted checkpoint keeps its CLAP "
            f"tokenizer there); choose a new output path"
        )
    if args.lora and stage != "ldm":
        raise ValueError("--lora merges adapters into a whole AudioLDM (stage ldm)")
    if stage == "ldm":
        weights = read_ldm(source, args.tokenizer, args.head_channels)
        if args.lora:
            return merge_adapters(args, source, weights)
        unet_params = sum(v.numel() for v in weights.unet.values())
        ema = "raw + EMA UNet weights" if weights.ema is not None else "one UNet weight set"
        if args.to == "diffusers":
            diffusers.write(to_latent_diffusion(weights, use_ema=not args.no_ema), args.out)
        else:
            ours.write_ldm(to_latent_diffusion(weights, with_ema=True), weights.unet_config, args.out, weights.path)
        return (
            f"{source.format.NAME} -> {args.to}: whole AudioLDM, UNet {unet_params / 1e6:.1f}M parameters ({ema}), "
            f"scale_factor {float(weights.scale_factor):.4f}: {args.out}"
        )
    part = load_part(source, stage, None, args.tokenizer)
    ours.write_part(stage, part.network, part.config, args.out, part.scale_factor)
    params = sum(p.numel() for p in part.network.parameters())
    return f"{source.format.NAME} -> ours: {stage}, {params / 1e6:.1f}M parameters: {args.out}"


def merge_adapters(args: argparse.Namespace, source, weights) -> str:
    """``weights`` with the ``--lora`` adapters fused into its UNet, written as one of our ldm checkpoints."""
    from audioldm.assembly.adapters import attach_adapters
    from audioldm.assembly.latent_diffusion import to_latent_diffusion
    from audioldm.formats import diffusers, ours
    from audioldm.request.arguments import adapters_from_args

    adapters = adapters_from_args(args)
    model = to_latent_diffusion(weights, use_ema=not args.no_ema)
    attach_adapters(model, adapters, fused=True, force=args.force_lora)
    if args.to == "diffusers":
        diffusers.write(model, args.out)
    else:
        ours.write_ldm(model, weights.unet_config, args.out, weights.path)
    names = ", ".join(f"{path} x {scale:g}" for path, scale in adapters)
    return f"{source.format.NAME} + {names} -> {args.to}: whole AudioLDM, adapters merged into the UNet: {args.out}"


@main_guard  # a full disk or a denied permission (e.g. a diffusers folder): one line, exit 2
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from audioldm.checkpoint import CheckpointError
    from audioldm.models.clap_tokenizer import TokenizerError

    try:
        print(convert(args))
    except (CheckpointError, TokenizerError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
