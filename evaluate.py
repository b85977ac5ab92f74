"""Score generated audio against reference audio: FAD, FD, KL, IS (as audioldm_eval) and CLAP score.

    # score folders you have (files pair by name; folder A may hold generate.py's generated.jsonl)
    python evaluate.py --generated A --reference B --weights-dir weights --out eval/
    # generate for a test manifest's captions with an LDM checkpoint, then score (resumes)
    python evaluate.py --ckpt CKPT --manifest audiocaps.jsonl --preset audiocaps --out eval/ --steps 200
    # offline, with this project's CLAP as the backbone (not comparable with papers)
    python evaluate.py --generated A --reference B --backbone clap --clap-ckpt runs/demo_clap/.../last.ckpt

``--weights-dir`` holds the official backbone files (never downloaded): ``vggish-10086976.pth`` and
``Cnn14_16k_mAP=0.438.pth``. Results: ``OUT/metrics.json``, ``OUT/metrics.md`` and TensorBoard
scalars under ``OUT/tb``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from audioldm.request.arguments import adapters_from_args, add_model_arguments, add_sampling_arguments
from audioldm.request.limits import MAX_SECONDS, Limits

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here downloads, by design
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--generated", help="a folder of generated clips")
    what.add_argument(
        "--ckpt",
        help="an ldm checkpoint, original AudioLDM .ckpt or diffusers folder: generate for the "
        "manifest's captions first",
    )
    p.add_argument("--reference", nargs="+", help="folder(s) of reference clips (paired with generated ones by name)")
    p.add_argument("--manifest", help="reference clips and their captions as a manifest (pair by id)")
    p.add_argument("--preset", choices=("audiocaps",), help="a named protocol built from --manifest")
    p.add_argument("--captions", help="a manifest giving the generated clips' captions by id (for the CLAP score)")
    p.add_argument(
        "--backbone",
        choices=("paper", "clap"),
        default="paper",
        help="paper: VGGish FAD + PANNs FD/KL/IS (needs --weights-dir); clap: FD on CLAP embeddings",
    )
    p.add_argument("--weights-dir", default="weights", help="folder with the official backbone weight files")
    p.add_argument(
        "--clap-ckpt",
        help="a CLAP for the CLAP score / clap backbone: a clap or ldm checkpoint, a "
        "LAION-CLAP .pt, an original AudioLDM .ckpt or a transformers CLAP folder",
    )
    p.add_argument(
        "--out",
        default="eval_out",
        help="where results (and, with --ckpt, generated clips) go; a folder "
        "holding earlier results (metrics.json, metrics.md, tb/) is refused unless --overwrite",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the earlier results in --out (once the new ones are computed: a failed run keeps them)",
    )
    p.add_argument("--limit", type=int, help="only the first N reference clips (a quick look; at least 1)")
    g = p.add_argument_group("generation (with --ckpt), as generate.py")
    g.add_argument("--duration", type=float, help="seconds per clip (default: the preset's, else 10)")
    g.add_argument("--max-duration", type=float, default=MAX_SECONDS, help="longest clip (s) generated")
    add_sampling_arguments(g, negative=False)
    add_model_arguments(g, speed=False)
    return p.parse_args(argv)


def reference_clips(args: argparse.Namespace) -> tuple[list, float | None, list[str]]:
    from evaluation.clip_sets import clips_from_folder
    from evaluation.protocol import protocol_clips

    if bool(args.reference) == bool(args.manifest):
        raise ValueError("give the reference clips with exactly one of --reference DIR or --manifest FILE")
    if args.preset and not args.manifest:
        raise ValueError("--preset builds its clip list from --manifest")
    if args.manifest:
        clips, seconds, notes = protocol_clips(args.manifest, args.preset)
    else:
        clips, seconds, notes = clips_from_folder(*args.reference), None, []
    return clips[: args.limit] if args.limit else clips, seconds, notes


def generate_missing(args: argparse.Namespace, reference: list, seconds: float, model) -> str:
    """Write ``OUT/generated/<key>.wav`` for every reference clip's caption that has none yet;
    clip i (in reference order) uses seed + i, so a resumed run writes what one run would."""
    import json

    from tqdm import tqdm

    from audioldm.audio.io import save_audio
    from audioldm.pipeline.text_to_audio import TextToAudio
    from audioldm.request.arguments import sampling_from_args
    from audioldm.request.modes import TextRequest
    from audioldm.safe_output import atomic_file

    folder = os.path.join(args.out, "generated")
    os.makedirs(folder, exist_ok=True)
    uncaptioned = [c.key for c in reference if not c.caption]
    if uncaptioned:
        raise ValueError(f"{len(uncaptioned)} reference clips have no caption to generate from (e.g. {uncaptioned[0]})")
    request = TextRequest(
        sampling_from_args(args),
        prompts=[c.caption for c in reference],
        duration=seconds,
        seeds=[args.seed + i for i in range(len(reference))],
    )
    request.validate(Limits(args.max_duration))
    made = {i for i, c in enumerate(reference) if os.path.isfile(os.path.join(folder, f"{c.key}.wav"))}
    if len(made) < len(reference):
        pipe = TextToAudio(model, use_ema=not args.no_ema)
        with tqdm(total=len(reference) - len(made), desc="generating", unit="clip") as bar:
            for indices, result in request.stream(pipe, skip=made):  # generate.py's path: written pass by pass
                for wave, i in zip(result.waveform, indices):
                    save_audio(os.path.join(folder, f"{reference[i].key}.wav"), wave, 16000)
                bar.update(len(indices))
    with atomic_file(os.path.join(folder, "generated.jsonl"), text=True) as f:
        for c in reference:
            f.write(json.dumps({"id": c.key, "path": f"{c.key}.wav", "captions": [c.caption or ""]}) + "\n")
    return folder


def check_out(args: argparse.Namespace) -> None:
    """--out must be a folder to write into, without earlier results unless --overwrite (checked before any work)."""
    from audioldm.safe_output import check_output_folder
    from evaluation.report import RESULT_FILES

    check_output_folder(args.out, "--out ")
    earlier = [name for name in RESULT_FILES if os.path.exists(os.path.join(args.out, name))]
    if earlier and not args.overwrite:
        raise ValueError(
            f"--out {args.out}: holds earlier results ({', '.join(earlier)}); pass --overwrite to replace "
            f"them, or choose another folder"
        )


def check_generation(args: argparse.Namespace) -> None:
    """The request's bounds (generate.py's): every clip one TextRequest of these settings, before loading."""
    from audioldm.request.arguments import sampling_from_args
    from audioldm.request.modes import TextRequest

    request = TextRequest(sampling_from_args(args), prompts=["a caption"], duration=args.duration or 10.0)
    request.validate(Limits(args.max_duration))
    args.steps = request.sampling.steps


def run(args: argparse.Namespace) -> str:
    from audioldm.request.limits import resolve_device
    from evaluation.backbones.clap import ClapBackbone
    from evaluation.clip_sets import clips_from_folder, clips_from_manifest
    from evaluation.report import markdown_table, write_results
    from evaluation.scorer import Backbones, score

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1 (the first N reference clips), got {args.limit}")
    check_out(args)
    if args.generated:
        from evaluation.clip_sets import check_folder

        check_folder(args.generated)
    if args.ckpt:  # the generation settings, checked as generate.py and the app check them, before any loading
        from audioldm.request.arguments import check_model_files

        check_model_files(args)
        check_generation(args)
    device = resolve_device(args.device)
    reference, seconds, notes = reference_clips(args)
    model = None
    if args.ckpt:  # loaded once: it generates, and its CLAP scores unless --clap-ckpt names another
        from audioldm.assembly.latent_diffusion import load_ldm

        model = load_ldm(
            args.ckpt,
            device,
            not args.no_ema,
            args.tokenizer,
            args.head_channels,
            args.vocoder,
            adapters_from_args(args),
            args.fuse_lora,
            args.force_lora,
        )
    if args.clap_ckpt:
        clap = ClapBackbone.from_checkpoint(args.clap_ckpt, device, args.tokenizer)
    else:
        clap = ClapBackbone(model.clap, f"{args.ckpt} (its CLAP)") if model is not None else None
    backbones = Backbones.load(args.backbone, args.weights_dir, clap, device)  # before any long work
    if args.ckpt:
        folder = generate_missing(args, reference, args.duration or seconds or 10.0, model)
    else:
        folder = args.generated
    generated = clips_from_folder(folder)
    if args.captions:
        captions = {c.key: c.caption for c in clips_from_manifest(args.captions)}
        for clip in generated:
            clip.caption = captions.get(clip.key, clip.caption)
    results = score(generated, reference, backbones, device)
    if args.backbone == "clap":
        notes.append(f"FD (CLAP) uses this project's CLAP ({clap.source}): compare runs with it, not with papers")
    if clap is not None and "CLAP_score" in results:
        notes.append(
            f"CLAP score from {clap.source}" + (" (the LDM's own CLAP: optimistic)" if not args.clap_ckpt else "")
        )
    notes += [f"{name} not computed: {why}" for name, why in results["skipped_metrics"].items()]
    if results["generated_only"] or results["reference_only"]:
        notes.append(
            f"{results['generated_only']} generated and {results['reference_only']} reference clips have "
            f"no partner of the same name"
            + (f" (KL uses the {results['pairs']} pairs)" if args.backbone == "paper" else "")
        )
    headline = "FD" if args.backbone == "paper" else "FD_clap"
    if headline in results["skipped_metrics"]:  # the requested score is missing: not a success, nothing replaced
        print(markdown_table(results) + "".join(f"\n\n{note}" for note in notes) + "\n", end="")
        raise NoResultError(
            f"{headline} not computed: {results['skipped_metrics'][headline]} "
            f"({results['clips_generated']} generated and {results['clips_reference']} reference "
            f"clips readable; {results['unreadable_generated']} generated and "
            f"{results['unreadable_reference']} reference clips unreadable; earlier results in {args.out} are kept)"
        )
    return write_results(results, args.out, notes)


class NoResultError(RuntimeError):
    """The requested metric could not be computed (too few readable clips)."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.time()
    from audioldm.audio.io import AudioReadError
    from audioldm.checkpoint import CheckpointError
    from data.manifest import ManifestError
    from evaluation.backbones import BackboneError

    try:
        table = run(args)
    except (
        BackboneError,
        CheckpointError,
        ManifestError,
        AudioReadError,
        FileNotFoundError,
        ValueError,
        NoResultError,
    ) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table, end="")
    print(f"evaluate: results in {args.out}/metrics.json, metrics.md and {args.out}/tb ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
