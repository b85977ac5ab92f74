"""Generation latency of 10 s clips: one clip and a batch of 16, DDIM 200 steps vs DPM-Solver++ 20 steps,
classifier-free guidance batched (our sampler runs the conditional and unconditional halves in one
UNet call; diffusers does the same), with and without ``torch.compile`` of the UNet, side by side with
diffusers' own ``AudioLDMPipeline`` built from the very same modules and weights (as in
tests/test_pipeline_parity.py; it is given the CLAP text embeddings, so it needs no tokenizer).

A clip's time is the whole ``TextToAudio.text_to_audio`` call: CLAP text encoding, sampling, VAE
decode and vocoder, each timed (device synchronised) by wrapping the model's calls. Rows:

  ours           eager; one untimed warm-up call with 2 steps at the same shapes, then timed calls
  ours+compile   ``TextToAudio(model, compile=True)``: the first call (it compiles; Inductor's on-disk
                 cache starts empty unless --warm-compile-cache) reported apart, then timed calls
  ours+bf16      ``TextToAudio(model, bf16=True)`` (``--bf16``): the UNet under bf16 autocast

``lcm:N`` runs (e.g. ``--runs dpmsolver++:20 ddim:200 lcm:1 lcm:2 lcm:4``) time a consistency-distilled
student (``--lcm-ckpt``, written by ``stage: lcm``; with ``--random-size``, a random student of the same
size) with the lcm sampler: N UNet calls, guidance built in; ``lcm_speedup`` in the JSON is each lcm row's
time per clip against DPM-Solver++ 20 with guidance at the same batch and implementation (diffusers has no
lcm row: its AudioLDMPipeline cannot pass the guidance embedding).
  diffusers      AudioLDMPipeline, eager, same warm-up; ``vs_diffusers`` = diffusers' time / ours
                 without the text encoding (diffusers is handed the embeddings): > 1 means ours is faster

Timed calls: at least --repeats, more (up to 10) until the row has run --min-time seconds; the
median is reported, every call is in the JSON.

The model: ``--ckpt`` (any checkpoint ``audioldm.assembly.latent_diffusion.load_ldm`` reads; default: the demo LDM
if it is there) or ``--random-size tiny|s`` (random weights: the demo networks' sizes, or AudioLDM-S: UNet
185.0M, VAE, HTSAT-tiny + RoBERTa-base CLAP, HiFi-GAN 55.3M). ``--grid cpu`` (the default on a CPU)
leaves out DDIM 200 at batch 16 (minutes of CPU per call) and compiling for batch 16 (compiling again
for the new shape costs another minute or more); ``--grid full`` runs everything. ``other_cpu``: CPU
cores kept busy by other processes during the row (on a shared machine, a slowed row shows it).

    python bench/generation_latency.py                                   # CPU: the demo checkpoint
    python bench/generation_latency.py --random-size s --device cuda     # GPU: AudioLDM-S size
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402

import audioldm.pipeline.text_to_audio as t2a  # noqa: E402
from audioldm.assembly.latent_diffusion import assemble, parts_of  # noqa: E402
from audioldm.assembly.parts import LoadedPart  # noqa: E402
from audioldm.audio.mel import MelConfig  # noqa: E402
from audioldm.diffusion.schedule import make_scheduler  # noqa: E402
from audioldm.models.clap import ClapConfig, ClapEmbedder  # noqa: E402
from audioldm.models.latent_diffusion import LatentDiffusion  # noqa: E402
from audioldm.models.unet import UnetConfig, build_unet  # noqa: E402
from audioldm.models.vae import VaeConfig, build_autoencoder  # noqa: E402
from audioldm.models.vocoder import HifiGanVocoder, VocoderConfig, build_generator  # noqa: E402
from audioldm.pipeline.text_to_audio import SamplingOptions, TextToAudio  # noqa: E402
from bench.harness import ROOT, RowMonitor, make_parser, markdown_table, setup, timed, write_results  # noqa: E402

DEMO_CKPT = ROOT / "runs" / "demo_ldm" / "version_0" / "checkpoints" / "last.ckpt"
DEMO_LCM = ROOT / "runs" / "demo_lcm" / "version_0" / "checkpoints" / "last.ckpt"
PROMPTS = [
    "a dog barks",
    "rain falls on a roof",
    "a man speaks",
    "an engine idles",
    "a crowd cheers",
    "birds chirping and singing outdoors",
    "a tom drum is hit",
    "the roar of a jet engine",
]
RANDOM_SIZES = {
    "tiny": dict(  # the demo networks (configs/demo/*.yaml)
        unet=UnetConfig(model_channels=32, channel_mult=[1, 2, 2], layers_per_block=1, head_channels=16),
        vae=VaeConfig(block_out_channels=[16, 32, 32], layers_per_block=1, norm_num_groups=8),
        clap=ClapConfig(
            text_hidden_size=64,
            text_layers=2,
            text_heads=2,
            text_intermediate_size=128,
            audio_patch_embeds_hidden_size=16,
            audio_depths=[1, 1],
            audio_heads=[1, 2],
            audio_seconds=2.56,
        ),
        vocoder=VocoderConfig(upsample_initial_channel=32),
    ),
    "s": dict(unet=UnetConfig(), vae=VaeConfig(), clap=ClapConfig(), vocoder=VocoderConfig()),
}


def random_model(size: str) -> LatentDiffusion:
    c, mel = RANDOM_SIZES[size], MelConfig()
    vocoder = HifiGanVocoder(build_generator(c["vocoder"], mel.n_mels, mel.sample_rate))
    parts = {
        "vae": LoadedPart(build_autoencoder(c["vae"]), None),
        "clap": LoadedPart(ClapEmbedder(c["clap"], mel.sample_rate), None),
        "vocoder": LoadedPart(vocoder, None),
    }
    return assemble(build_unet(c["unet"]), parts, mel).eval()


def random_student(teacher: LatentDiffusion, size: str) -> LatentDiffusion:
    """A student of ``teacher`` (its UNet plus a 256-d guidance embedding) sharing its frozen parts."""
    from audioldm.assembly.student import student_unet

    unet, _ = student_unet(teacher.unet, RANDOM_SIZES[size]["unet"], 256)
    return assemble(unet, parts_of(teacher), teacher.mel).eval()


@contextlib.contextmanager
def split_timer(model: LatentDiffusion, device: torch.device):
    """Yields a dict that collects seconds spent in text encoding, sampling, decode and vocoder."""
    spent = {"text": 0.0, "sampling": 0.0, "decode": 0.0, "vocoder": 0.0}

    def wrap(fn, key):
        def timed_call(*args, **kwargs):
            out, seconds = timed(lambda: fn(*args, **kwargs), device)
            spent[key] += seconds
            return out

        return timed_call

    sample = t2a.sample
    model.embed_text, model.decode, model.vocode = (
        wrap(model.embed_text, "text"),
        wrap(model.decode, "decode"),
        wrap(model.vocode, "vocoder"),
    )
    t2a.sample = wrap(sample, "sampling")
    try:
        yield spent
    finally:
        t2a.sample = sample
        for name in ("embed_text", "decode", "vocode"):
            del model.__dict__[name]  # back to the methods


def run_ours(
    pipe: TextToAudio, texts: list[str], seconds: float, options: SamplingOptions, device: torch.device
) -> dict:
    with split_timer(pipe.model, device) as spent:
        _, total = timed(lambda: pipe.text_to_audio(texts, seconds, options), device)
    return {"total": total, **spent}


def diffusers_pipeline(model: LatentDiffusion, sampler: str):
    """diffusers' AudioLDMPipeline over our modules (tests/test_pipeline_parity.py)."""
    from diffusers import AudioLDMPipeline
    from transformers import ClapTextModelWithProjection

    clap = model.clap.model
    encoder = ClapTextModelWithProjection(clap.config.text_config).eval()
    encoder.load_state_dict(
        {k: v for k, v in clap.state_dict().items() if k.startswith(("text_model.", "text_projection."))}, strict=True
    )
    model.vae.register_to_config(scaling_factor=float(model.scale_factor))
    pipe = AudioLDMPipeline(
        vae=model.vae,
        text_encoder=encoder.to(model.scale_factor.device),
        tokenizer=None,
        unet=model.unet,
        scheduler=make_scheduler(sampler),
        vocoder=model.vocoder.generator,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_diffusers(
    pipe,
    model: LatentDiffusion,
    condition: torch.Tensor,
    seconds: float,
    options: SamplingOptions,
    device: torch.device,
) -> dict:
    generators = [torch.Generator().manual_seed(options.seed + i) for i in range(condition.shape[0])]

    def call():
        return pipe(
            audio_length_in_s=seconds,
            num_inference_steps=options.steps,
            guidance_scale=options.guidance,
            eta=options.eta,
            generator=generators,
            prompt_embeds=condition,
            negative_prompt_embeds=model.null_condition.expand_as(condition),
            output_type="pt",
        )

    return {"total": timed(call, device)[1]}


def summarise(calls: list[dict]) -> dict:
    return {key: median(c[key] for c in calls) for key in calls[0]}


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", default=None, help=f"an LDM checkpoint (default: {DEMO_CKPT.relative_to(ROOT)})")
    parser.add_argument("--random-size", choices=sorted(RANDOM_SIZES), default=None, help="random weights instead")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16], help="clips per call")
    parser.add_argument(
        "--runs",
        nargs="+",
        default=["dpmsolver++:20", "ddim:200"],
        metavar="SAMPLER:STEPS",
        help="samplers (ddim, dpmsolver++; lcm with --lcm-ckpt) and their steps",
    )
    parser.add_argument(
        "--lcm-ckpt",
        default=None,
        help=f"the consistency-distilled student for lcm runs (default: {DEMO_LCM.relative_to(ROOT)})",
    )
    parser.add_argument("--guidance", type=float, default=2.5, help="classifier-free guidance scale")
    parser.add_argument("--eta", type=float, default=1.0, help="DDIM stochasticity (AudioLDM: 1)")
    parser.add_argument(
        "--compile",
        choices=["off", "on", "both"],
        default="both",
        help="our pipeline eager, through torch.compile, or both",
    )
    parser.add_argument("--no-diffusers", action="store_true", help="skip diffusers' AudioLDMPipeline")
    parser.add_argument("--bf16", action="store_true", help="also time ours with the UNet under bf16 autocast")
    parser.add_argument(
        "--grid",
        choices=["cpu", "full"],
        default=None,
        help="cpu (default on a CPU): no DDIM-200 and no compile above batch 1; full: everything",
    )
    parser.add_argument("--repeats", type=int, default=None, help="least timed calls per row (default: 1 CPU, 3 GPU)")
    parser.add_argument(
        "--min-time",
        type=float,
        default=5.0,
        help="more timed calls (at most 10) until a row has taken this many seconds",
    )
    parser.add_argument(
        "--warm-compile-cache",
        action="store_true",
        help="keep Inductor's on-disk cache (default: a fresh one, so the first call compiles cold)",
    )
    args = parser.parse_args(argv)
    device = setup(args, flush_denormal=args.random_size is not None)
    if not args.warm_compile_cache:  # read when compiling: a fresh cache makes the first call a cold compile
        cache = tempfile.mkdtemp(prefix="bench_inductor_")
        os.environ["TORCHINDUCTOR_CACHE_DIR"], os.environ["TRITON_CACHE_DIR"] = cache, os.path.join(cache, "triton")
    grid = args.grid or ("full" if device.type == "cuda" else "cpu")
    repeats = args.repeats or (3 if device.type == "cuda" else 1)

    from audioldm.assembly.latent_diffusion import load_ldm

    if args.random_size:
        torch.manual_seed(0)
        model, source = random_model(args.random_size).to(device), f"random weights, size {args.random_size}"
    else:
        ckpt = args.ckpt or str(DEMO_CKPT)
        model, source = load_ldm(ckpt, device), ckpt
    params = {
        name: sum(p.numel() for p in getattr(model, name).parameters()) / 1e6
        for name in ("unet", "vae", "clap", "vocoder")
    }
    print(f"model: {source}; parameters (M): " + ", ".join(f"{k} {v:.1f}" for k, v in params.items()), flush=True)
    student = student_source = None
    if any(run.startswith("lcm:") for run in args.runs):
        if args.random_size:
            torch.manual_seed(1)
            student, student_source = random_student(model, args.random_size).to(device), f"random student, {source}"
        else:
            student_source = args.lcm_ckpt or str(DEMO_LCM)
            student = load_ldm(student_source, device)
        print(f"lcm student: {student_source}", flush=True)
    impls = {"off": ["ours"], "on": ["ours+compile"], "both": ["ours", "ours+compile"]}[args.compile]
    impls = impls + (["ours+bf16"] if args.bf16 else []) + ([] if args.no_diffusers else ["diffusers"])

    def make_pipes(m: LatentDiffusion) -> dict[str, TextToAudio]:
        return {
            "ours": TextToAudio(m),
            "ours+compile": TextToAudio(m, compile=True),
            "ours+bf16": TextToAudio(m, bf16=True),
        }

    pipes = make_pipes(model)
    student_pipes = make_pipes(student) if student is not None else {}

    rows = []
    for batch in args.batch_sizes:
        texts = [PROMPTS[i % len(PROMPTS)] for i in range(batch)]
        for run in args.runs:
            sampler, steps = run.split(":")
            if grid == "cpu" and sampler == "ddim" and batch > 1 and int(steps) > 50:
                print(f"skipped on --grid cpu: batch {batch} {run} (pass --grid full)", flush=True)
                continue
            options = SamplingOptions(
                steps=int(steps), sampler=sampler, guidance=args.guidance, eta=args.eta, batch_size=batch
            )
            warm = SamplingOptions(steps=2, sampler=sampler, guidance=args.guidance, eta=args.eta, batch_size=batch)
            done = []
            for impl in impls:
                if sampler == "lcm" and impl == "diffusers":
                    continue
                if grid == "cpu" and impl == "ours+compile" and batch > 1:
                    print(f"skipped on --grid cpu: batch {batch} {run} {impl} (pass --grid full)", flush=True)
                    continue
                first = None
                with RowMonitor(device) as memory:
                    if impl == "diffusers":
                        pipe = diffusers_pipeline(model, sampler)
                        with torch.no_grad():
                            condition = model.embed_text(texts)
                        call = lambda o: run_diffusers(pipe, model, condition, args.seconds, o, device)  # noqa: E731
                        call(warm)
                    else:
                        pipe = (student_pipes if sampler == "lcm" else pipes)[impl]
                        call = lambda o, p=pipe: run_ours(p, texts, args.seconds, o, device)  # noqa: E731
                        if impl != "ours+compile":
                            call(warm)
                        else:
                            first = call(options)["total"]
                    calls = [call(options)]
                    while len(calls) < 10 and (len(calls) < repeats or sum(c["total"] for c in calls) < args.min_time):
                        calls.append(call(options))
                t = summarise(calls)
                row = {
                    "batch": batch,
                    "sampler": sampler,
                    "steps": int(steps),
                    "impl": impl,
                    "calls_timed": len(calls),
                    "first_call_s": first,
                    "total_s": t["total"],
                    "text_s": t.get("text"),
                    "sampling_s": t.get("sampling"),
                    "decode_s": t.get("decode"),
                    "vocoder_s": t.get("vocoder"),
                    "s_per_clip": t["total"] / batch,
                    "x_realtime": args.seconds * batch / t["total"],
                    "peak_mem_mib": memory.mib,
                    "other_cpu": memory.other_cpu,
                    "calls": calls,
                }
                done.append(row)
                print(
                    f"batch {batch} {run} {impl}: {t['total']:.2f} s"
                    + (f" (first call {first:.1f} s)" if first is not None else ""),
                    flush=True,
                )
            theirs = next((r for r in done if r["impl"] == "diffusers"), None)
            for r in done:
                if theirs and r is not theirs:
                    r["vs_diffusers"] = theirs["total_s"] / (r["total_s"] - r["text_s"])
            rows += done

    for r in rows:  # the student against the teacher's DPM-Solver++ 20 (same batch and implementation)
        base = next(
            (
                b
                for b in rows
                if b["sampler"] == "dpmsolver++"
                and b["steps"] == 20
                and b["batch"] == r["batch"]
                and b["impl"] == r["impl"]
            ),
            None,
        )
        if r["sampler"] == "lcm" and base:
            r["lcm_speedup"] = base["s_per_clip"] / r["s_per_clip"]
    columns = [
        "batch",
        "sampler",
        "steps",
        "impl",
        "calls_timed",
        "first_call_s",
        "total_s",
        "text_s",
        "sampling_s",
        "decode_s",
        "vocoder_s",
        "s_per_clip",
        "x_realtime",
        "vs_diffusers",
        "lcm_speedup",
        "peak_mem_mib",
        "other_cpu",
    ]
    print(
        f"\n{args.seconds:g} s clips, guidance {args.guidance} (batched), DDIM eta {args.eta}; model {source}; "
        f"device {device}; median of calls_timed calls (>= {repeats}, until {args.min_time:g} s)"
    )
    print(markdown_table(rows, columns))
    target = next(
        (
            r
            for r in rows
            if r["batch"] == 1 and r["sampler"] == "dpmsolver++" and r["steps"] == 20 and r["impl"] == "ours"
        ),
        None,
    )
    if target and args.seconds == 10.0:
        verdict = "met" if target["total_s"] < 10.0 else "NOT met"
        print(
            f"\ntarget 'the demo pipeline generates a 10 s clip in under 10 s' (DPM-Solver++ 20, guidance, decode "
            f"+ vocoder included), model {source}: {target['total_s']:.2f} s -> {verdict}"
        )
    path = write_results(
        args,
        "generation_latency",
        device,
        {
            "model": source,
            "lcm_student": student_source,
            "params_m": params,
            "grid": grid,
            "repeats": repeats,
            "rows": rows,
            "target_10s_clip_under_10s": None
            if not target
            else {"seconds": target["total_s"], "met": target["total_s"] < 10.0},
        },
    )
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
