"""LDM training throughput: samples/s and peak memory of one optimiser step, done as LdmModule does it
(``latents_and_conditions`` -> ``diffusion_loss`` (UNet forward + MSE) -> backward -> AdamW step ->
EMA update), for

  raw      the batch is audio (waveform + log-mel, as the DataLoader gives it): the frozen VAE encoder
           and the CLAP audio encoder run at every step, as the official recipe does;
  pre      the batch is pre-encoded (VAE posterior + CLAP audio embedding, ``python -m data.preencode``):
           the UNet step only;

each in fp32 and under bf16 autocast (Lightning's ``bf16-mixed``: the forward under autocast, fp32
weights and optimiser), at a few batch sizes. Random weights; the VAE and CLAP at their real sizes
(``VaeConfig()``, ``ClapConfig()``: HTSAT-tiny + RoBERTa-base), the UNet per ``--size``:

  tiny  the demo LDM's UNet (1.8M parameters), 2.56 s segments (latent [8, 64, 16]): runs on a CPU
  s     AudioLDM-S (``UnetConfig()``, 185.0M parameters), 10.24 s segments (latent [8, 256, 16]): for a GPU

Model FLOPs utilisation (MFU): FLOPs of one UNet forward at the batch's shape (counted with
``torch.utils.flop_counter.FlopCounterMode``, attention through the math kernel so that it is counted),
times 3 (forward + backward), over the measured step time and the device's peak (``--peak-tflops``;
defaults in PEAK_TFLOPS by GPU name). The encoders' FLOPs in raw mode are not counted (they are not
the model being trained), so raw rows show how much of the step the UNet gets.

    python bench/train_throughput.py                      # CPU: --size tiny, batches 1 2 4
    python bench/train_throughput.py --size s --batch-sizes 4 8 16 --device cuda
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from audioldm.assembly.latent_diffusion import assemble  # noqa: E402
from audioldm.assembly.parts import LoadedPart  # noqa: E402
from audioldm.audio.mel import MelConfig, normalize_waveform  # noqa: E402
from audioldm.config import load_config  # noqa: E402
from audioldm.models.clap import ClapConfig, ClapEmbedder  # noqa: E402
from audioldm.models.ema import EmaModel  # noqa: E402
from audioldm.models.unet import UnetConfig, build_unet  # noqa: E402
from audioldm.models.vae import VaeConfig, build_autoencoder  # noqa: E402
from audioldm.models.vocoder import GriffinLimVocoder  # noqa: E402
from bench.harness import ROOT, RowMonitor, make_parser, markdown_table, measure, setup, write_results  # noqa: E402
from lightning_modules.ldm import LdmModule  # noqa: E402

SIZES = {
    "tiny": {
        "unet": UnetConfig(model_channels=32, channel_mult=[1, 2, 2], layers_per_block=1, head_channels=16),
        "seconds": 2.56,
        "batch_sizes": [1, 2, 4],
        "warmup": 1,
        "repeats": 3,
    },
    "s": {"unet": UnetConfig(), "seconds": 10.24, "batch_sizes": [4, 8, 16], "warmup": 3, "repeats": 10},
}
# Dense peak TFLOP/s from NVIDIA's datasheets (the sparse figures are twice these). "fp32" is the
# non-tensor-core rate; note that PyTorch lets cuDNN run fp32 convolutions in TF32 by default
# (torch.backends.cudnn.allow_tf32, recorded in the JSON), so fp32 MFU against it can exceed 100%.
PEAK_TFLOPS = {
    "H100 PCIe": {"bf16": 756.0, "fp32": 51.2},
    "H100": {"bf16": 989.4, "fp32": 66.9},  # SXM (e.g. "NVIDIA H100 80GB HBM3")
    "H200": {"bf16": 989.4, "fp32": 66.9},
    "A100": {"bf16": 312.0, "fp32": 19.5},
}


def build_module(unet: UnetConfig, device: torch.device) -> LdmModule:
    """LdmModule over a hand-built LatentDiffusion: random UNet (+ EMA), real-size VAE and CLAP."""
    mel = MelConfig()
    net = build_unet(unet)
    parts = {
        "vae": LoadedPart(build_autoencoder(VaeConfig()), None),
        "clap": LoadedPart(ClapEmbedder(ClapConfig(), mel.sample_rate), None),
        "vocoder": LoadedPart(GriffinLimVocoder(mel), None),
    }
    model = assemble(net, parts, mel, EmaModel(net, 0.9999, True))
    config = load_config(
        ROOT / "configs" / "ldm_s.yaml",
        ["data.train_manifest=unused.jsonl", "model.vae_ckpt=null", "model.clap_ckpt=null"],
    )
    return LdmModule(config, model).to(device)


def make_batch(module: LdmModule, mode: str, batch: int, seconds: float, device: torch.device) -> dict:
    """What the DataLoader hands the step: audio (waveform + its log-mel) or pre-encoded tensors."""
    model, g = module.model, torch.Generator().manual_seed(0)
    samples = model.mel.samples_for_seconds(seconds)
    if mode == "raw":
        wave = normalize_waveform(torch.randn(batch, samples, generator=g)).to(device)
        return {"waveform": wave, "log_mel": model.log_mel(wave)}
    frames = model.log_mel(torch.zeros(1, samples, device=device)).shape[2]
    c, f = model.unet.config.in_channels, model.mel.n_mels // model.vae_factor
    posterior = torch.cat(
        [
            torch.randn(batch, c, frames // model.vae_factor, f, generator=g),
            torch.full((batch, c, frames // model.vae_factor, f), -4.0),
        ],
        dim=1,
    )
    clap_audio = F.normalize(torch.randn(batch, model.clap.config.projection_dim, generator=g), dim=-1)
    return {"posterior": posterior.to(device), "clap_audio": clap_audio.to(device)}


def unet_forward_flops(module: LdmModule, batch: dict) -> int:
    """FLOPs of one UNet forward at this batch's latent shape (counted at batch 1, times B)."""
    x0, condition = module.latents_and_conditions({k: v[:1] for k, v in batch.items()})
    t = torch.zeros(1, dtype=torch.long, device=x0.device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        module.model.unet(x0, t, encoder_hidden_states=None, class_labels=condition)
    return counter.get_total_flops() * next(iter(batch.values())).shape[0]


def train_step(
    module: LdmModule, optimizer: torch.optim.Optimizer, scheduler, batch: dict, bf16: bool, device: torch.device
) -> None:
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        x0, condition = module.latents_and_conditions(batch)
        loss = module.diffusion_loss(x0, condition)
    loss.backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    module.model.unet_ema.update(module.model.unet)


def peak_tflops(args, device: torch.device) -> dict[str, float] | None:
    if args.peak_tflops:
        return {k: float(v) for k, v in (item.split("=") for item in args.peak_tflops)}
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peaks in PEAK_TFLOPS.items():
        if all(word in name for word in key.split()):
            return peaks
    return None


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny", help="UNet and segment length (see above)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="default: per --size")
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=["raw", "pre"],
        default=["raw", "pre"],
        help="raw audio (encoders every step) and/or pre-encoded batches",
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=["fp32", "bf16"],
        default=["fp32", "bf16"],
        help="fp32, and/or the forward under bf16 autocast",
    )
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per row (default: per --size)")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps per row (default: per --size)")
    parser.add_argument(
        "--peak-tflops",
        nargs="+",
        metavar="PRECISION=TFLOPS",
        default=None,
        help="device peak for MFU, e.g. bf16=989.4 fp32=66.9 (default: PEAK_TFLOPS by GPU name)",
    )
    args = parser.parse_args(argv)
    device = setup(args, flush_denormal=True)
    size = SIZES[args.size]
    batch_sizes = args.batch_sizes or size["batch_sizes"]
    warmup = size["warmup"] if args.warmup is None else args.warmup
    repeats = size["repeats"] if args.repeats is None else args.repeats
    peaks = peak_tflops(args, device)

    torch.manual_seed(0)
    module = build_module(size["unet"], device)
    module.train()
    unet_params = sum(p.numel() for p in module.model.unet.parameters())
    optim = module.configure_optimizers()
    optimizer, scheduler = optim["optimizer"], optim["lr_scheduler"]["scheduler"]
    rows, method = [], None
    for b in batch_sizes:
        for mode in args.modes:
            batch = make_batch(module, mode, b, size["seconds"], device)
            flops = unet_forward_flops(module, batch)
            for precision in args.precisions:
                bf16 = precision == "bf16"
                with RowMonitor(device) as memory:
                    timing = measure(
                        lambda: train_step(module, optimizer, scheduler, batch, bf16, device), device, warmup, repeats
                    )
                method = memory.method
                seconds = timing["median"]
                tflops = 3 * flops / seconds / 1e12
                peak = peaks.get(precision) if peaks else None
                rows.append(
                    {
                        "batch": b,
                        "input": mode,
                        "precision": precision,
                        "step_ms": 1e3 * seconds,
                        "samples_per_s": b / seconds,
                        "peak_mem_mib": memory.mib,
                        "unet_fwd_gflops": flops / 1e9,
                        "model_tflops": tflops,
                        "mfu_pct": 100 * tflops / peak if peak else None,
                        "other_cpu": memory.other_cpu,
                        "times_s": timing["times"],
                    }
                )
                print(f"batch {b} {mode} {precision}: {1e3 * seconds:.1f} ms/step", flush=True)

    columns = [
        "batch",
        "input",
        "precision",
        "step_ms",
        "samples_per_s",
        "peak_mem_mib",
        "unet_fwd_gflops",
        "model_tflops",
        "mfu_pct",
        "other_cpu",
    ]
    print(
        f"\nLDM training step, --size {args.size}: UNet {unet_params / 1e6:.1f}M parameters, "
        f"{size['seconds']} s segments, device {device}; median of {repeats} steps after {warmup} warm-up"
    )
    print(markdown_table(rows, columns))
    print(
        f"peak memory: {method}; MFU peak TFLOP/s: {peaks or 'none given (pass --peak-tflops)'}; "
        f"other_cpu: cores busy with other processes"
    )
    checks = []
    for b in batch_sizes:
        row = {(r["input"], r["precision"]): r["samples_per_s"] for r in rows if r["batch"] == b}
        if ("raw", "fp32") in row and ("pre", "bf16") in row:
            ratio = row[("pre", "bf16")] / row[("raw", "fp32")]
            checks.append(
                {
                    "batch": b,
                    "raw_fp32_samples_per_s": row[("raw", "fp32")],
                    "pre_bf16_samples_per_s": row[("pre", "bf16")],
                    "speedup": ratio,
                    "target_3x_met": "yes" if ratio >= 3 else "no",
                }
            )
    if checks:
        print("\npre-encoded + bf16 vs raw audio + fp32 (target: >= 3x at equal batch)")
        print(markdown_table(checks, list(checks[0])))
    path = write_results(
        args,
        "train_throughput",
        device,
        {
            "size": args.size,
            "unet_params": unet_params,
            "segment_seconds": size["seconds"],
            "warmup": warmup,
            "repeats": repeats,
            "peak_tflops": peaks,
            "memory_method": method,
            "rows": rows,
            "target_check": checks,
        },
    )
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
