"""What does a log-mel need to sound like its prompt again? The mel's pseudo-inverse magnitude with several
phases, no networks: it separates what the magnitude carries from what the phase adds, and sets the ceiling a
vocoder (learned or not) can reach from the 64-bin mel. The check that chose the demo's mel-anchored vocoder.

Rows, for the real clips of ``bench/prompt_following.py`` (``--clips-per-prompt`` per prompt, judged the same way):
  real                     the clips themselves
  pinv + random phase      the mel's pseudo-inverse magnitude, a uniformly random phase in every bin
  pinv + zero phase        the same magnitude, phase 0 (every frame an impulse: a 100 Hz buzz)
  pinv + griffin-lim N     fast Griffin-Lim (momentum 0.99, from phase 0) for each N of ``--griffin-lim``
  pinv + integrated phase  the same magnitude with the phase its own instantaneous frequency implies, summed over
                           time (audioldm/audio/phase_prior.py), then ``--griffin-lim`` projections from that phase
  pinv + true phase        the magnitude with the real clip's own phase (what a perfect phase predictor gives)
  true magnitude + random  the real STFT magnitude (not from the mel) with a random phase
Each row: top-1, CLAP score, FD(CLAP) against the class-weighted real clips, and the mel L1 of the result
against the input mel (how consistent the spectrum is).

    python bench/mel_inversion.py --clap runs/demo_clap/version_0/checkpoints/last.ckpt
"""

from __future__ import annotations

import datetime
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402

from audioldm.audio.mel import MelConfig, MelFrontEnd  # noqa: E402
from bench.harness import ROOT, device_label, make_parser, markdown_table, setup, write_results  # noqa: E402

NAME = "mel_inversion"


@torch.no_grad()
def run(args) -> dict:
    from audioldm.assembly.parts import load_part
    from audioldm.audio.phase_prior import fast_griffin_lim, integrated_phase
    from audioldm.losses.spectrum import centred_stft
    from bench.prompt_following import Judge, mean_cov, newest, per_prompt_subset, real_clips, split_floor

    device = setup(args, flush_denormal=True)
    mel = MelConfig()
    clap_path = args.clap or newest("demo_clap")
    if not clap_path:
        raise ValueError("no judge CLAP: give --clap (or run scripts/demo.sh)")
    prompts = [p.strip() for p in Path(args.prompts).read_text(encoding="utf-8").splitlines() if p.strip()]
    samples = int(round(args.seconds * mel.sample_rate))
    clips = real_clips(args.manifest, prompts, samples)
    judge = Judge(load_part(clap_path, "clap", mel).network.to(device), prompts)
    reference, labels = judge.embed(torch.stack([c["wave"] for c in clips]).to(device)), [c["prompt"] for c in clips]
    judge.reference = mean_cov(reference, labels)
    subset = per_prompt_subset(clips, prompts, args.clips_per_prompt)
    waves, own = torch.stack([c["wave"] for c in subset]).to(device), [c["prompt"] for c in subset]
    front_end = MelFrontEnd(mel).to(device)
    log_mel = front_end(waves)
    magnitude = front_end.log_mel_to_magnitude(log_mel)  # [B, F, T]
    frames, shift = magnitude.shape[-1], mel.hop_length // 2
    window = torch.hann_window(mel.n_fft, device=device)

    def inverse(spec: torch.Tensor) -> torch.Tensor:  # frame t centred on t * hop + hop / 2, as our mel's
        wave = torch.istft(
            spec, mel.n_fft, mel.hop_length, mel.n_fft, window, center=True, length=frames * mel.hop_length - shift
        )
        return torch.nn.functional.pad(wave, (shift, 0))

    generator = torch.Generator(device=device).manual_seed(args.seed)

    def random_phase() -> torch.Tensor:
        return 2 * math.pi * torch.rand(magnitude.shape, generator=generator, device=device)

    true = centred_stft(waves, mel.n_fft, mel.hop_length, frames)
    makers = [
        ("real", lambda: waves),
        ("pinv + random phase", lambda: inverse(torch.polar(magnitude, random_phase()))),
        ("pinv + zero phase", lambda: inverse(torch.polar(magnitude, torch.zeros_like(magnitude)))),
    ]
    makers += [
        (f"pinv + griffin-lim {n}", lambda n=n: front_end.griffin_lim(log_mel, n_iter=n)) for n in args.griffin_lim
    ]
    prior = integrated_phase(magnitude.clamp(min=1e-5).log(), mel.hop_length, mel.n_fft)

    def from_prior(n: int) -> torch.Tensor:
        spec = fast_griffin_lim(
            torch.polar(magnitude, prior), n, mel.n_fft, mel.hop_length, window, frames * mel.hop_length - shift
        )
        return inverse(spec)

    makers += [("pinv + integrated phase", lambda: from_prior(0))]
    makers += [(f"pinv + integrated phase + griffin-lim {n}", lambda n=n: from_prior(n)) for n in args.griffin_lim]
    makers += [
        ("pinv + true phase", lambda: inverse(torch.polar(magnitude, true.angle()))),
        ("true magnitude + random", lambda: inverse(torch.polar(true.abs(), random_phase()))),
    ]
    rows = []
    for name, make in makers:
        out = make()[:, :samples]
        row = judge.score(name, out, own)
        row["mel_l1"] = float((front_end(out) - log_mel).abs().mean())
        rows.append(row)
        print(f"  {name}: top1 {row['top1']:.0%}, FD(CLAP) {row['fd_clap']:.3g}", flush=True)
    return {
        "device": device,
        "rows": rows,
        "prompts": prompts,
        "clap": clap_path,
        "fd_clap_real_split": split_floor(reference, labels),
        "chance": 1 / len(prompts),
    }


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--clap", help="the judge CLAP (default: the newest demo CLAP)")
    parser.add_argument("--manifest", default=str(ROOT / "demo_data" / "manifest.jsonl"))
    parser.add_argument("--prompts", default=str(ROOT / "data" / "demo" / "prompts.txt"))
    parser.add_argument("--clips-per-prompt", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.56)
    parser.add_argument("--griffin-lim", type=int, nargs="+", default=[8, 32], help="iteration counts")
    parser.add_argument("--seed", type=int, default=0, help="of the random phases")
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    device = result.pop("device")
    print(f"\nmel inversion ({len(result['prompts'])} prompts, chance {result['chance']:.1%}; judge: {result['clap']})")
    print(markdown_table(result["rows"], ["row", "clips", "top1", "clap_score", "fd_clap", "mel_l1"]))
    print(f"FD(CLAP) floor, two halves of the real clips: {result['fd_clap_real_split']:.4g}")
    if args.out is None:
        args.out = str(ROOT / "bench" / "results" / f"{NAME}-{device_label(device)}-{datetime.date.today()}.json")
    command = " ".join(["python", "bench/mel_inversion.py", *(sys.argv[1:] if argv is None else argv)])
    print(f"\nwrote {write_results(args, NAME, device, result, command=command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
