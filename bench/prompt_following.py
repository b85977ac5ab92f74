"""Prompt following along the whole chain: where is it lost? Real clips, their log-mel through
Griffin-Lim, the VAE, the vocoder and both, then the LDM sampled from the CLAP *audio* embeddings of
those clips (its training condition) and from the prompts' *text* embeddings (what a user does).

Every row is a set of clips with a known prompt. A judge CLAP (``--clap``, default the newest demo
CLAP) embeds each clip and ranks the K prompts by cosine similarity; a row reports how often the
clip's own prompt ranks first (``top1``; chance 1/K), its mean rank, per-prompt top-1, the CLAP
score (mean cosine to the own prompt) and FD in the judge's embedding space against *all* real clips
of the prompts' classes. Rows hold the same number of clips per prompt, so the reference is weighted to
match: each class counts equally, whatever its number of clips (weighted mean and covariance). The
floor for that FD is the FD between two halves of those real clips (alternate clips of each class,
each half class-weighted the same way), printed as ``fd_clap_real_split``.

Rows (``--clips-per-prompt`` real clips per prompt, the first by id, ``--seconds`` from the start):

  real                the clips themselves
  mel > griffin-lim   their log-mel inverted by Griffin-Lim (32 iterations; no networks)
  mel > vae > gl      log-mel -> VAE (posterior mode) -> decoded log-mel -> Griffin-Lim
  mel > vocoder       log-mel -> the vocoder
  mel > vae > vocoder the whole decoding chain (``top1_chain``)
  ldm audio g=W       the LDM sampled with the LDM CLAP's audio embedding of each real clip
  ldm text g=W        the LDM sampled with each prompt's text embedding, one seed per clip (``top1``)
  ... > gl            with ``--ldm-griffin-lim``: those rows' mels through Griffin-Lim, not the vocoder
                      (the LDM's own prompt following, without the vocoder's losses)
  lcm audio/text g=W  the same with a consistency-distilled student (``--student``, ``stage: lcm``), its
                      lcm sampler and ``--student-steps`` (``top1_student``, ``fd_clap_student``)

The VAE and vocoder are the LDM checkpoint's own (``--ldm``, default the newest demo LDM), or
``--vae`` / ``--vocoder`` (any format ``audioldm.formats`` reads); ``--ldm none`` runs the chain rows
only. ``--generated DIR`` scores the clips generate.py wrote there (its generated.jsonl gives each
clip's prompt) as the ``ldm text`` row instead of sampling them again (the demo scores its own clips).
``--guidance`` takes several values (the first is the headline). ``--save DIR`` writes each row's
wavs (DIR/<row>/, with a generated.jsonl that evaluate.py and evaluation.prompt_ranking read).
``--vocoder-projections N`` decodes every row with an iSTFT vocoder's N Griffin-Lim projections (its
``model.istft_inference_phase_iters``) instead of the checkpoint's.

    python bench/prompt_following.py                                     # the demo's checkpoints
    python bench/prompt_following.py --guidance 1 2.5 5 10 --ldm-rows text
    python bench/prompt_following.py --ldm none --vocoder runs/demo_vocoder/version_3/checkpoints/last.ckpt
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402

from audioldm.audio.mel import MelConfig, MelFrontEnd, normalize_waveform  # noqa: E402
from bench.harness import ROOT, device_label, make_parser, markdown_table, setup, write_results  # noqa: E402

NAME = "prompt_following"


def newest(run: str) -> str | None:
    """runs/<run>/version_<highest>/checkpoints/last.ckpt, if there is one."""
    versions = sorted((ROOT / "runs" / run).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    for version in reversed(versions):
        path = version / "checkpoints" / "last.ckpt"
        if path.is_file():
            return str(path)
    return None


def real_clips(manifest: str, prompts: list[str], samples: int) -> list[dict]:
    """Every clip captioned with one of ``prompts`` (its first such caption is its prompt), sorted by id:
    {"id", "prompt", "wave" [samples] (from the start, normalised, zero-padded)}."""
    from audioldm.audio.io import audio_info
    from data.manifest import read_manifest
    from data.segment import read_segment

    clips = []
    for entry in sorted(read_manifest(manifest), key=lambda e: e.id):
        prompt = next((c for c in entry.captions if c in prompts), None)
        if prompt is None:
            continue
        wave, _ = read_segment(entry.path, audio_info(entry.path), 16000, samples, None)
        clips.append({"id": entry.id, "prompt": prompt, "wave": wave})
    missing = [p for p in prompts if not any(c["prompt"] == p for c in clips)]
    if missing:
        raise ValueError(f"{manifest}: no clip is captioned {missing[0]!r} (every prompt needs real clips)")
    return clips


def per_prompt_subset(clips: list[dict], prompts: list[str], n: int) -> list[dict]:
    """The first ``n`` clips of each prompt, prompt-major."""
    return [c for p in prompts for c in [c for c in clips if c["prompt"] == p][:n]]


class Judge:
    """Scores sets of clips with one CLAP: prompt ranking, CLAP score, FD against the reference set."""

    def __init__(self, clap, prompts: list[str]):
        self.clap, self.prompts = clap, prompts
        self.text = clap.embed_text(prompts).double()  # [K, D]
        self.reference: tuple[torch.Tensor, torch.Tensor] | None = None  # class-weighted (mean, covariance)

    def embed(self, waves: torch.Tensor) -> torch.Tensor:
        """waves [B, N] -> [B, D] (each clip normalised first, as the files are read)."""
        return torch.cat([self.clap.embed_audio(normalize_waveform(w)[None]) for w in waves]).double()

    def score(self, name: str, waves: torch.Tensor, prompts: list[str]) -> dict:
        from evaluation.frechet import frechet_distance
        from evaluation.prompt_ranking import prompt_ranking

        audio = self.embed(waves)
        target = torch.tensor([self.prompts.index(p) for p in prompts])
        ranking = prompt_ranking(audio, self.text, target)
        first = (audio @ self.text.T).argmax(dim=1) == target
        per: dict[str, list[bool]] = defaultdict(list)
        for p, ok in zip(prompts, first.tolist()):
            per[p].append(ok)
        mu, sigma = mean_cov(audio, prompts)
        return {
            "row": name,
            "clips": len(prompts),
            "top1": ranking["top1"],
            "mean_rank": ranking["mean_rank"],
            "clap_score": float((audio * self.text[target]).sum(dim=1).mean()),
            "fd_clap": frechet_distance(mu, sigma, *self.reference),
            "per_prompt": {p: sum(per[p]) / len(per[p]) for p in self.prompts if per[p]},
        }


def mean_cov(x: torch.Tensor, labels: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean [D] and covariance [D, D] of x [N, D] with every label weighing the same (each sample
    1 / its label's count; the covariance with the unbiased weighted normalisation 1 / (1 - sum w^2))."""
    x = x.double()
    counts: dict[str, int] = defaultdict(int)
    for label in labels:
        counts[label] += 1
    w = torch.tensor([1.0 / counts[label] for label in labels], dtype=torch.float64)
    w = w / w.sum()
    mu = (w[:, None] * x).sum(dim=0)
    centred = x - mu
    sigma = (w[:, None] * centred).T @ centred / (1 - (w**2).sum())
    return mu, sigma


def split_floor(reference: torch.Tensor, labels: list[str]) -> float:
    """FD between two halves of the real clips: alternate clips of each class go to each half."""
    from evaluation.frechet import frechet_distance

    seen: dict[str, int] = defaultdict(int)
    halves: list[list[int]] = [[], []]
    for i, label in enumerate(labels):
        halves[seen[label] % 2].append(i)
        seen[label] += 1
    a, b = (mean_cov(reference[h], [labels[i] for i in h]) for h in halves)
    return frechet_distance(*a, *b)


def generated_clips(folder: str, prompts: list[str], samples: int) -> tuple[torch.Tensor, list[str]]:
    """The clips of ``folder/generated.jsonl`` whose prompt is one of ``prompts``: (waves [B, samples], prompts)."""
    from audioldm.audio.io import load_audio
    from data.manifest import read_manifest

    entries = [e for e in read_manifest(str(Path(folder) / "generated.jsonl")) if e.captions[0] in prompts]
    if not entries:
        raise ValueError(f"{folder}/generated.jsonl: no clip was generated from one of the prompts")
    waves = [
        torch.nn.functional.pad(w := load_audio(e.path, 16000)[:samples], (0, samples - w.numel())) for e in entries
    ]
    return torch.stack(waves), [e.captions[0] for e in entries]


def save_row(folder: Path, name: str, waves: torch.Tensor, prompts: list[str]) -> None:
    import soundfile as sf

    from audioldm.pipeline.outputs import slug

    out = folder / slug(name)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (wave, prompt) in enumerate(zip(waves, prompts)):
        path = out / f"{i:03d}_{slug(prompt)}.wav"
        sf.write(path, wave.float().cpu().numpy(), 16000, subtype="PCM_16")
        lines.append(json.dumps({"id": path.stem, "path": path.name, "captions": [prompt], "split": None}))
    (out / "generated.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


@torch.no_grad()
def run(args) -> dict:
    from audioldm.assembly.adapters import parse_adapter
    from audioldm.assembly.parts import load_part
    from audioldm.models.vocoder import GriffinLimVocoder
    from audioldm.pipeline.text_to_audio import SamplingOptions, TextToAudio

    device = setup(args, flush_denormal=True)
    mel = MelConfig()
    prompts = [p.strip() for p in Path(args.prompts).read_text(encoding="utf-8").splitlines() if p.strip()]
    samples = int(round(args.seconds * mel.sample_rate))
    clap_path = args.clap or newest("demo_clap")
    ldm_path = None if args.ldm == "none" else (args.ldm or newest("demo_ldm"))
    if not clap_path:
        raise SystemExit("error: no judge CLAP: give --clap (or run scripts/demo.sh)")
    judge_clap = load_part(clap_path, "clap", mel).network.to(device)
    ldm_adapters = [parse_adapter(a) for a in args.ldm_lora]
    student_adapters = [parse_adapter(a) for a in args.student_lora]
    force = args.force_lora
    pipe = (
        TextToAudio.from_checkpoint(ldm_path, device, adapters=ldm_adapters, force_adapters=force) if ldm_path else None
    )
    student = (
        TextToAudio.from_checkpoint(args.student, device, adapters=student_adapters, force_adapters=force)
        if args.student
        else None
    )
    vae = load_part(args.vae, "vae", mel).network.to(device) if args.vae else (pipe.model.vae if pipe else None)
    vocoder = (
        load_part(args.vocoder, "vocoder", mel).network.to(device)
        if args.vocoder
        else (pipe.model.vocoder if pipe else None)
    )
    if args.vocoder_projections is not None:  # an iSTFT vocoder's Griffin-Lim count when generating (eval mode)
        for network in (vocoder, pipe and pipe.model.vocoder, student and student.model.vocoder):
            if hasattr(network, "inference_phase_iters"):
                network.inference_phase_iters = args.vocoder_projections
    tag = ""
    if args.ldm_griffin_lim:  # the generated mels through Griffin-Lim: the LDM without the vocoder's losses
        tag = " > gl"
        for generator in (pipe, student):  # after the chain rows' vocoder is taken
            if generator is not None:
                generator.model.vocoder = GriffinLimVocoder(mel).to(device)

    clips = real_clips(args.manifest, prompts, samples)
    waves_all = torch.stack([c["wave"] for c in clips]).to(device)
    judge = Judge(judge_clap, prompts)
    reference, labels = judge.embed(waves_all), [c["prompt"] for c in clips]
    judge.reference = mean_cov(reference, labels)
    floor = split_floor(reference, labels)
    subset = per_prompt_subset(clips, prompts, args.clips_per_prompt)
    waves = torch.stack([c["wave"] for c in subset]).to(device)
    own = [c["prompt"] for c in subset]
    front_end = MelFrontEnd(mel).to(device)
    log_mel = front_end(waves)  # [B, 1, T, F]
    rows, timings = [], {}

    def add(name: str, make) -> None:
        start = time.perf_counter()
        out, labels = make()
        timings[name] = time.perf_counter() - start
        rows.append(judge.score(name, out[:, :samples], labels))
        if args.save:
            save_row(Path(args.save), name, out[:, :samples], labels)
        print(f"  {name}: top1 {rows[-1]['top1']:.0%} ({timings[name]:.0f} s)", flush=True)

    griffin_lim = GriffinLimVocoder(mel).to(device)
    decoded = vae.decode(vae.encode(log_mel).latent_dist.mode()).sample if vae is not None else None
    add("real", lambda: (waves, own))
    add("mel > griffin-lim", lambda: (griffin_lim(log_mel), own))
    if decoded is not None:
        add("mel > vae > gl", lambda: (griffin_lim(decoded), own))
    if vocoder is not None:
        add("mel > vocoder", lambda: (vocoder(log_mel), own))
        if decoded is not None:
            add("mel > vae > vocoder", lambda: (vocoder(decoded), own))
    texts = [p for p in prompts for _ in range(args.clips_per_prompt)]
    text_seeds = [args.seed + i for i in range(len(texts))]
    seeds = [args.seed + i for i in range(len(subset))]
    for name, model, sampler, steps, text_row in (
        ("ldm", pipe, args.sampler, args.steps, not args.generated),
        ("lcm", student, "lcm", args.student_steps, True),
    ):
        if model is None:
            continue
        for g in args.guidance:
            options = SamplingOptions(
                steps=steps, sampler=sampler, guidance=g, seed=args.seed, batch_size=args.batch_size
            )
            if "audio" in args.ldm_rows:
                condition = model.model.embed_audio(waves)
                add(
                    f"{name} audio g={g:g}{tag}",
                    lambda m=model, c=condition, o=options: (
                        m.from_embeddings(c, args.seconds, o, seeds=seeds).waveform,
                        own,
                    ),
                )
            if "text" in args.ldm_rows and text_row:
                add(
                    f"{name} text g={g:g}{tag}",
                    lambda m=model, o=options: (
                        m.text_to_audio(texts, args.seconds, o, seeds=text_seeds).waveform,
                        texts,
                    ),
                )
    if args.generated:
        add(f"ldm text ({Path(args.generated).name})", lambda: generated_clips(args.generated, prompts, samples))
    by_name = {r["row"]: r for r in rows}
    text_rows = [r for r in rows if r["row"].startswith("ldm text")]
    headline = text_rows[0] if text_rows else None
    student_row = next((r for r in rows if r["row"].startswith("lcm text")), None)
    return {
        "device": device,
        "rows": rows,
        "timings_s": timings,
        "prompts": prompts,
        "checkpoints": {
            "clap": clap_path,
            "ldm": ldm_path,
            "vae": args.vae,
            "vocoder": args.vocoder,
            "student": args.student,
        },
        "top1_student": student_row["top1"] if student_row else None,
        "fd_clap_student": student_row["fd_clap"] if student_row else None,
        "reference_clips": len(clips),
        "top1": headline["top1"] if headline else None,
        "fd_clap": headline["fd_clap"] if headline else None,
        "top1_real": by_name["real"]["top1"],
        "top1_chain": by_name.get("mel > vae > vocoder", {}).get("top1"),
        "fd_clap_real_split": floor,
        "chance": 1 / len(prompts),
    }


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--ldm", help="LDM checkpoint (default: the newest demo LDM); 'none': chain rows only")
    parser.add_argument("--clap", help="the judge CLAP (default: the newest demo CLAP)")
    parser.add_argument("--vae", help="a VAE to use instead of the LDM's")
    parser.add_argument("--vocoder", help="a vocoder to use instead of the LDM's")
    parser.add_argument(
        "--manifest",
        default=str(ROOT / "demo_data" / "manifest.jsonl"),
        help="real clips: those captioned with one of the prompts",
    )
    parser.add_argument("--prompts", default=str(ROOT / "data" / "demo" / "prompts.txt"))
    parser.add_argument("--clips-per-prompt", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.56)
    parser.add_argument("--guidance", type=float, nargs="+", default=[2.5])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--sampler", default="dpmsolver++")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--student", help="a consistency-distilled student (stage lcm) for the lcm rows")
    parser.add_argument(
        "--ldm-lora", action="append", default=[], help="a LoRA adapter PATH[:SCALE] on the --ldm (repeatable)"
    )
    parser.add_argument(
        "--student-lora",
        action="append",
        default=[],
        help="a LoRA adapter PATH[:SCALE] on the --student (repeatable): an LCM-LoRA on its teacher makes the student",
    )
    parser.add_argument("--force-lora", action="store_true", help="apply adapters trained on another base")
    parser.add_argument(
        "--ldm-griffin-lim",
        action="store_true",
        help="decode the LDM (and student) rows' mels with Griffin-Lim instead of their vocoder",
    )
    parser.add_argument(
        "--vocoder-projections",
        type=int,
        default=None,
        help="iSTFT vocoders (every row's): Griffin-Lim projections when generating "
        "(model.istft_inference_phase_iters; default: the checkpoint's)",
    )
    parser.add_argument("--student-steps", type=int, default=4, help="lcm sampler steps of the student")
    parser.add_argument("--ldm-rows", nargs="+", default=["audio", "text"], choices=["audio", "text"])
    parser.add_argument("--save", help="write each row's clips under this folder")
    parser.add_argument("--generated", help="score this generate.py folder as the 'ldm text' row (no sampling)")
    parser.add_argument("--label", default=None, help="a name for this run in the JSON (e.g. the recipe)")
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    device = result.pop("device")
    print(
        f"\nprompt following ({len(result['prompts'])} prompts, chance {result['chance']:.1%}; judge: "
        f"{result['checkpoints']['clap']}; {result['reference_clips']} real clips of these classes)"
    )
    print(markdown_table(result["rows"], ["row", "clips", "top1", "mean_rank", "clap_score", "fd_clap"]))
    print(f"FD(CLAP) floor, two halves of the real clips: {result['fd_clap_real_split']:.4g}")
    print("\nper prompt (top-1):")
    per_rows = [{"prompt": p, **{r["row"]: r["per_prompt"].get(p) for r in result["rows"]}} for p in result["prompts"]]
    print(markdown_table(per_rows, ["prompt"] + [r["row"] for r in result["rows"]]))
    if args.out is None:
        args.out = str(ROOT / "bench" / "results" / f"{NAME}-{device_label(device)}-{datetime.date.today()}.json")
    command = " ".join(["python", "bench/prompt_following.py", *(sys.argv[1:] if argv is None else argv)])
    path = write_results(args, NAME, device, {"label": args.label, **result}, command=command)
    print(f"\nwrote {path}")

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    if result["top1"] is not None:
        print(
            f"headline: own prompt ranked first for {pct(result['top1'])} of the LDM's clips from text (real clips "
            f"{pct(result['top1_real'])}, real mels through VAE + vocoder {pct(result['top1_chain'])}; chance "
            f"{pct(result['chance'])}), FD(CLAP) {result['fd_clap']:.3g} vs {result['fd_clap_real_split']:.3g} "
            f"between two halves of the real clips"
        )
    if result["top1_student"] is not None:
        print(
            f"headline: the lcm student ({args.student_steps} steps): own prompt first for "
            f"{pct(result['top1_student'])}, FD(CLAP) {result['fd_clap_student']:.3g}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
