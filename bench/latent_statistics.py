"""Are an LDM's sampled latents in the distribution it was trained on, and how good is its x_0 at the noisiest
steps? The check that found why the epsilon-prediction demo LDM followed its prompts so weakly.

For the real clips captioned with one of the prompts (as ``bench/prompt_following.py`` picks them):
- ``real``: per latent channel, mean and std of x_0 = VAE posterior sample x scale_factor, its |max|, and the mean
  and max of the VAE's decoded log-mel;
- ``sampled g=W``: the same for latents sampled from the prompts' text embeddings (``--clips-per-prompt`` each) at
  each guidance, and ``std_ratio`` = mean over channels of sampled std / real std (1 = right spread);
- ``x0 t=T``: the MSE of the x_0 the UNet implies from x_T = sqrt(a_T) x_0 + sqrt(1 - a_T) e (conditioned on each
  clip's own CLAP audio embedding), beside ``mean_mse``, the MSE of predicting the real latents' mean. An x_0 MSE
  far above ``mean_mse`` at the noisy end means the sampler's first steps aim at latents that do not exist.

    python bench/latent_statistics.py --ldm runs/demo_ldm/version_3/checkpoints/last.ckpt --guidance 2.5 10
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402

from audioldm.audio.mel import MelConfig, MelFrontEnd  # noqa: E402
from bench.harness import ROOT, make_parser, markdown_table, setup, write_results  # noqa: E402
from bench.prompt_following import newest, per_prompt_subset, real_clips  # noqa: E402

NAME = "latent_statistics"
TIMESTEPS = (999, 900, 800, 600, 200)


def channel_stats(z: torch.Tensor) -> dict:
    """Per-channel mean and std of latents z [B, C, T', F'], and max |z|."""
    return {
        "mean": [round(v, 3) for v in z.mean((0, 2, 3)).tolist()],
        "std": [round(v, 3) for v in z.std((0, 2, 3)).tolist()],
        "abs_max": round(z.abs().max().item(), 3),
    }


@torch.no_grad()
def run(args) -> dict:
    from audioldm.diffusion.schedule import alphas_cumprod
    from audioldm.pipeline.text_to_audio import SamplingOptions, TextToAudio

    device = setup(args, flush_denormal=True)
    ldm = args.ldm or newest("demo_ldm")
    if not ldm:
        raise ValueError("no LDM: give --ldm (or run scripts/demo.sh)")
    pipe = TextToAudio.from_checkpoint(ldm, device)
    model = pipe.model
    mel = MelConfig()
    prompts = [p.strip() for p in Path(args.prompts).read_text(encoding="utf-8").splitlines() if p.strip()]
    samples = int(round(args.seconds * mel.sample_rate))
    clips = real_clips(args.manifest, prompts, samples)
    waves = torch.stack([c["wave"] for c in clips]).to(device)
    log_mel = MelFrontEnd(mel).to(device)(waves)
    gen = torch.Generator(device="cpu").manual_seed(args.seed)
    posterior = model.posterior(log_mel)
    x0 = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen).to(device)
    x0 = x0 * model.scale_factor
    decoded = model.decode(x0)
    real = channel_stats(x0)
    rows = [
        {"row": "real", **real, "mel_mean": round(decoded.mean().item(), 3), "mel_max": round(decoded.max().item(), 3)}
    ]

    subset = per_prompt_subset(clips, prompts, args.clips_per_prompt)
    texts = [c["prompt"] for c in subset]
    for w in args.guidance:
        captured: dict[str, torch.Tensor] = {}
        decode = model.decode

        def keep(latent: torch.Tensor) -> torch.Tensor:  # the sampled latents, on their way to the decoder
            captured["z"] = torch.cat([captured["z"], latent]) if "z" in captured else latent
            return decode(latent)

        model.decode = keep
        try:
            result = pipe.text_to_audio(
                texts,
                args.seconds,
                SamplingOptions(
                    steps=args.steps, sampler=args.sampler, guidance=w, seed=args.seed, batch_size=args.batch_size
                ),
            )
        finally:
            model.decode = decode
        z = captured["z"]
        stats = channel_stats(z)
        ratio = (torch.tensor(stats["std"]) / torch.tensor(real["std"]).clamp(min=1e-6)).mean().item()
        rows.append(
            {
                "row": f"sampled g={w:g}",
                **stats,
                "std_ratio": round(ratio, 3),
                "mel_mean": round(result.log_mel.mean().item(), 3),
                "mel_max": round(result.log_mel.max().item(), 3),
            }
        )

    condition = model.embed_audio(waves)
    denoiser = model.denoiser(use_ema=True)
    mean_mse = (x0 - x0.mean(0, keepdim=True)).pow(2).mean().item()
    a_all = alphas_cumprod(device)
    x0_rows = []
    for t in TIMESTEPS:
        a = a_all[t]
        noise = torch.randn(x0.shape, generator=gen).to(device)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        eps = denoiser(x_t, torch.full((x0.shape[0],), t, device=device), condition)
        x0_hat = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
        x0_rows.append(
            {
                "t": t,
                "x0_mse": round((x0_hat - x0).pow(2).mean().item(), 4),
                "mean_mse": round(mean_mse, 4),
                "x0_std": round(x0_hat.std().item(), 3),
                "real_std": round(x0.std().item(), 3),
            }
        )
    return {
        "device": device,
        "checkpoint": ldm,
        "prediction_type": model.prediction_type,
        "real_clips": len(clips),
        "rows": rows,
        "x0": x0_rows,
        "std_ratio": {r["row"]: r["std_ratio"] for r in rows if "std_ratio" in r},
    }


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--ldm", help="LDM checkpoint (default: the newest demo LDM)")
    parser.add_argument("--manifest", default=str(ROOT / "demo_data" / "manifest.jsonl"))
    parser.add_argument("--prompts", default=str(ROOT / "data" / "demo" / "prompts.txt"))
    parser.add_argument("--clips-per-prompt", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=2.56)
    parser.add_argument("--guidance", type=float, nargs="+", default=[2.5])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--sampler", default="dpmsolver++")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    device = result.pop("device")
    print(
        f"latent statistics of {result['checkpoint']} ({result['prediction_type']}; {result['real_clips']} real clips)"
    )
    print(markdown_table(result["rows"], ["row", "std", "abs_max", "std_ratio", "mel_mean", "mel_max"]))
    print(markdown_table(result["x0"], ["t", "x0_mse", "mean_mse", "x0_std", "real_std"]))
    command = " ".join(["python", "bench/latent_statistics.py", *(sys.argv[1:] if argv is None else argv)])
    print(f"wrote {write_results(args, NAME, device, result, command=command)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
