"""LoRA adapters against a full fine-tune (issue 27): trainable parameters, adapter file size, training step time and
peak memory at demo size and at AudioLDM-S size, and the demo's new-sound rows (``bench/lora_new_sound.sh``).

    python bench/lora.py [--sizes demo s] [--steps 3] [--batch 2] [--device cuda] [--demo-clips 18]
                         [--demo-dir bench/results --demo-date 2026-12-07]

The adapter is each size's shipped recipe (``configs/demo/ldm_lora.yaml``, ``configs/ldm_s_lora.yaml``).

Each (size, recipe) trains ``--steps`` timed AdamW steps (after one warm-up) of the UNet alone on random latents of
the size's segment, in its own process, so the peak resident memory (VmHWM) is that run's. The adapter file is
``audioldm.formats.adapter_files.write_adapter``'s; the full checkpoint is the UNet's float32 state dict (a whole
ldm checkpoint also holds the EMA copy and the frozen parts, so the fraction against it is smaller still).
Writes ``bench/results/<name>-lora-<device>-<date>.json`` with ``adapter_fraction_s`` and ``trainable_fraction_s``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZES = {  # UNet shape and training latent [C, T', F'] (demo: configs/demo/ldm.yaml, 2.56 s; S: ldm_s.yaml, 10.24 s)
    "demo": (
        {"model_channels": 32, "channel_mult": [1, 2, 2], "layers_per_block": 1, "head_channels": 16},
        [8, 64, 16],
    ),
    "s": ({}, [8, 256, 16]),
}
SHIPPED = {"demo": "configs/demo/ldm_lora.yaml", "s": "configs/ldm_s_lora.yaml"}  # each size's adapter recipe


def shipped_lora(size: str):
    """The ``model.lora`` of the size's shipped config (rank, alpha, targets), as a LoraConfig."""
    from omegaconf import OmegaConf

    from audioldm.models.lora import LoraConfig

    section = OmegaConf.to_container(OmegaConf.load(REPO / SHIPPED[size]).model.lora)
    return LoraConfig(**section)


def run_one(size: str, recipe: str, steps: int, batch: int, device: str = "cpu") -> dict:
    """In this process: build, (adapt,) and time training steps; sizes of the adapter and the full state."""
    import torch
    from safetensors.torch import save_file

    from audioldm.models.lora import adapter_state, add_lora, trainable_parameters
    from audioldm.models.unet import UnetConfig, build_unet, predict_noise
    from bench.harness import own_peak_rss_mib

    torch.manual_seed(0)
    shape, latent = SIZES[size]
    unet = build_unet(UnetConfig(**shape))
    total = sum(p.numel() for p in unet.parameters())
    result = {"size": size, "recipe": recipe, "unet_params": total, "batch": batch, "latent": latent}
    with tempfile.TemporaryDirectory() as tmp:
        full = os.path.join(tmp, "unet.pt")
        torch.save(unet.state_dict(), full)
        result["full_bytes"] = os.path.getsize(full)
        if recipe == "lora":
            lora = shipped_lora(size)
            add_lora(unet, lora, "default")
            adapter = os.path.join(tmp, "adapter.safetensors")
            save_file(adapter_state(unet, "default"), adapter)
            result["adapter_bytes"] = os.path.getsize(adapter)
            result["rank"], result["targets"] = lora.rank, list(lora.targets)
    result["trainable_params"] = trainable_parameters(unet)
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    unet.to(device)
    x = torch.randn(batch, *latent, device=device)
    t = torch.randint(0, 1000, (batch,), device=device)
    c = torch.randn(batch, 512, device=device)
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        loss = (predict_noise(unet, x, t, c) - x).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i:  # the first step allocates the optimiser state: a warm-up
            if device != "cpu":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
    result["step_seconds"] = sum(times) / len(times)
    result["peak_rss_mib"] = own_peak_rss_mib()
    result["device"] = device
    if device != "cpu":  # the GPU's peak: the memory figure that matters there
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def cpu_info() -> dict[str, str]:
    """The CPU's model name, family and model number (the kinds of machine differ 2x in speed)."""
    info = {}
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "cpu family", "model") and key not in info:
                info[key] = value.strip()
    return info


# bench/lora_new_sound.sh's SUFFIX -> a word of the held-out class's prompt
HELD_OUT = {"": "tabla", "_airplane": "jet engine", "_birdsong": "birds"}


def demo_rows(folder: Path, date: str, suffix: str = "", clips: int = 6) -> dict:
    """The new-sound rows of bench/lora_new_sound.sh and bench/lora_variant.sh: per model (base, full, and each LoRA
    recipe), the held-out prompt's top-1 and the other prompts' mean top-1 (from bench/prompt_following.py's JSONs
    scored at ``clips`` clips per prompt); per LoRA recipe, its share of the full fine-tune's gain and its change on
    the others in points (the two targets)."""
    tag = "" if clips == 6 else f"-{clips}clips"
    prefix, ending = f"prompt_following-cpu-lora{suffix}-", f"{tag}-{date}.json"
    rows = {}
    for path in sorted(folder.glob(prefix + "*" + ending)):
        name = path.name[len(prefix) : -len(ending)]
        if not tag and name.endswith("clips"):
            continue  # scored at another number of clips
        data = json.loads(path.read_text())
        row = next(r for r in data["rows"] if r["row"].startswith("ldm text"))
        per_prompt = row["per_prompt"]
        held = next(p for p in per_prompt if HELD_OUT[suffix] in p)
        others = [v for p, v in per_prompt.items() if p != held]
        rows[name] = {
            "held_out_prompt": held,
            "held_out_top1": per_prompt[held],
            "others_top1": sum(others) / len(others),
            "top1": row["top1"],
            "fd_clap": row["fd_clap"],
            "clips_per_prompt": clips,
        }
    if {"base", "full"} <= set(rows):
        base, full = rows["base"], rows["full"]
        gain_full = full["held_out_top1"] - base["held_out_top1"]
        for name, row in rows.items():
            if name not in ("base", "full"):
                gain = row["held_out_top1"] - base["held_out_top1"]
                row["share_of_full_gain"] = gain / gain_full if gain_full > 0 else None  # none: nothing to share
                row["others_change_points"] = 100 * (row["others_top1"] - base["others_top1"])
        full["others_change_points"] = 100 * (full["others_top1"] - base["others_top1"])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["demo", "s"], choices=list(SIZES))
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (the GPU rows: BENCHMARKS.md's GPU script)")
    p.add_argument("--demo-dir", default=str(REPO / "bench" / "results"))
    p.add_argument("--demo-date", default=time.strftime("%Y-%m-%d"))
    p.add_argument("--demo-clips", type=int, default=6, help="the new-sound rows scored at this many clips a prompt")
    p.add_argument("--name", default="bench")
    p.add_argument("--out")
    p.add_argument("--rows-from", help="take the size rows from an earlier results JSON (only gather the demo rows)")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(run_one(args.child[0], args.child[1], args.steps, args.batch, args.device)))
        return 0
    results = json.loads(Path(args.rows_from).read_text())["rows"] if args.rows_from else []
    for size in [] if args.rows_from else args.sizes:
        for recipe in ("full", "lora"):
            command = [sys.executable, __file__, "--child", size, recipe, "--steps", str(args.steps)]
            command += ["--batch", str(args.batch), "--threads", str(args.threads), "--device", args.device]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            r = results[-1]
            print(
                f"{size} {recipe}: trainable {r['trainable_params']:,} of {r['unet_params']:,}, "
                f"step {r['step_seconds']:.2f} s, peak {r.get('peak_gpu_mib', r['peak_rss_mib']):.0f} MiB"
                + (f", adapter {r['adapter_bytes'] / 2**20:.2f} MiB" if "adapter_bytes" in r else ""),
                flush=True,
            )
    by = {(r["size"], r["recipe"]): r for r in results}
    summary: dict = {"benchmark": "lora", "command": " ".join(["python", "bench/lora.py", *(argv or sys.argv[1:])])}
    if ("s", "lora") in by:
        s = by[("s", "lora")]
        summary["adapter_fraction_s"] = s["adapter_bytes"] / s["full_bytes"]
        summary["trainable_fraction_s"] = s["trainable_params"] / s["unet_params"]
    summary["rows"] = results
    summary["demo"] = {
        HELD_OUT[k]: demo_rows(Path(args.demo_dir), args.demo_date, k, args.demo_clips) for k in HELD_OUT
    }
    cpu = cpu_info()
    summary["machine"] = {
        "cpu": cpu.get("model name", ""),
        "family": cpu.get("cpu family", ""),
        "model": cpu.get("model", ""),
        "cores": os.cpu_count(),
        "date": time.ctime(),
    }
    kind = args.device.split(":")[0]
    out = Path(args.out or REPO / "bench" / "results" / f"{args.name}-lora-{kind}-{time.strftime('%Y-%m-%d')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    if "adapter_fraction_s" in summary:
        print(
            f"AudioLDM-S: adapter {100 * summary['adapter_fraction_s']:.2f}% of the UNet checkpoint, "
            f"trainable {100 * summary['trainable_fraction_s']:.2f}% of the UNet (targets: under 2% each)"
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
