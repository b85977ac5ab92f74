"""Loading an official ``audioldm_16k_crossattn_t5`` checkpoint at its REAL size, and its parity with the original
code: the S-size crossattn UNet (model_channels 128, channel_mult [1, 2, 3, 5], 2 res blocks, head channels 32,
attention at [8, 4, 2], extra self-attention layers, context_dim 1024) and a Flan-T5-large-shaped encoder (d_model
1024, 24 layers, 16 heads, d_kv 64, d_ff 2816, gated-gelu, vocab 32128), random weights, built by the ORIGINAL code
(PyPI audioldm2 0.1.0 in .refs/audioldm2-0.1.0). No released weights are needed (none can be downloaded here).

Steps (all float32 on the CPU):
  1. tests/t5_fixtures.write_tiny_t5 writes the T5-large-shaped folder (random weights, the small word tokenizer).
  2. tests/reference/original_audioldm2_probe.py runs in a subprocess at the real size (its wall time is recorded):
     the original FlanT5HiddenState encodes the captions, the original UNetModel runs on x ``--x-shape`` (default
     [1, 8, 256, 16], the real 10.24 s latent) with the text and the null condition.
  3. The probe's ``checkpoint_state`` (the official LatentDiffusion key layout) is saved as a .ckpt
     (``torch.save({"state_dict": ...})``, as the original training code saves one); its size is recorded.
  4. A fresh subprocess (so its peak RSS is the load's own) times ``registry.open_source`` + ``read_network``
     (unet, text_encoder) + building our networks + ``load_state_dict(strict=True)``, and records its peak RSS
     (VmHWM, after the imports, the load and the forwards; ``ru_maxrss`` beside it, which on Linux a spawned
     process inherits from its parent, checked: a parent holding 1.5 GiB gives a bare child ru_maxrss 1.5 GiB,
     VmHWM 13 MiB) and the parameter counts.
  5. The same subprocess runs our networks on the probe's inputs: max abs diff of the UNet output against the
     original's (text and null condition, divided by max(1, max |original|), as tests/test_crossattn_parity.py
     does) and of the T5 states where the mask is 1 (captions and the null caption; unscaled, as that test does).

Timings are one run each (no warm-up: a load is a one-off), on whatever else the machine is doing: ``other_cpu``
is the cores other processes kept busy meanwhile. ``--threads`` also sets OMP_NUM_THREADS for both subprocesses:
on a 2-core machine with a training running beside it, 2 threads made a tiny UNet forward 30-100x slower than 1
(the OpenMP threads wait on each other), so use ``--threads 1`` there. ``--tiny`` runs the tests' tiny sizes
(seconds) to check the script itself.

    python bench/crossattn_t5_real_size.py --threads 1
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402

from bench.harness import (  # noqa: E402
    ROOT,
    _cpu_ticks,
    device_label,
    make_parser,
    markdown_table,
    max_rss_mib,
    own_peak_rss_mib,
    write_results,
)

NAME = "crossattn_t5_real_size"
PROBE = ROOT / "tests" / "reference" / "original_audioldm2_probe.py"
REFERENCE = ROOT / ".refs" / "audioldm2-0.1.0"
MAX_LENGTH = 128  # FlanT5HiddenState's and our T5's caption length in tokens
# flan-t5-large's encoder: d_kv = d_model / heads = 64
REAL_T5 = {"d_model": 1024, "layers": 24, "heads": 16, "d_ff": 2816, "vocab_size": 32128}
TINY_T5 = {"d_model": 32, "layers": 2, "heads": 2, "d_ff": None, "vocab_size": None}
T5_KEYS = ("d_model", "num_layers", "num_heads", "d_kv", "d_ff", "vocab_size", "feed_forward_proj")


def cpu_kind() -> dict[str, str]:
    """/proc/cpuinfo's first ``model name``, ``cpu family``, ``model`` and ``stepping``."""
    kind: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model", "stepping") and key not in kind:
                    kind[key] = value.strip()
                if not line.strip() and kind:
                    break
    except OSError:
        pass
    return kind


class Others:
    """``with Others() as o: ...``, then ``o.cpu``: cores other processes kept busy during the block (this process's
    subprocesses, once reaped, count as its own), and ``o.seconds``."""

    def __enter__(self) -> "Others":
        self._ticks, self._start = _cpu_ticks(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        busy, own = (b - a for a, b in zip(self._ticks, _cpu_ticks()))
        self.seconds = time.perf_counter() - self._start
        self.cpu = max(0.0, (busy - own) / os.sysconf("SC_CLK_TCK") / self.seconds)


# -- step 4 and 5: the fresh subprocess ---------------------------------------------------------------------------
def child(ckpt: str, t5_folder: str, reference: str, out_json: str, head_channels: int) -> None:
    """Load ``ckpt`` as the CLI does, record time and peak RSS, then compare with the original's outputs."""
    from audioldm.formats import registry
    from audioldm.formats.source import ReadOptions
    from audioldm.models.text_encoder import T5TextEncoder
    from audioldm.models.token_condition import pack
    from audioldm.models.unet import build_unet, network_output

    torch.set_flush_denormal(True)
    result: dict = {"torch_threads": torch.get_num_threads()}
    result.update(peak_after_imports_mib=own_peak_rss_mib(), ru_maxrss_after_imports_mib=max_rss_mib())
    times = {}
    start = time.perf_counter()
    source = registry.open_source(ckpt)
    times["open_source"] = time.perf_counter() - start
    mark = time.perf_counter()
    unet_weights = registry.read_network(source, "unet", ReadOptions(head_channels=head_channels))
    t5_weights = registry.read_network(source, "text_encoder", ReadOptions(tokenizer=t5_folder))
    times["read_network"] = time.perf_counter() - mark
    mark = time.perf_counter()
    unet = build_unet(unet_weights.config)
    times["build_unet"] = time.perf_counter() - mark
    encoder = T5TextEncoder(t5_weights.config)
    times["build"] = time.perf_counter() - mark
    times["build_t5"] = times["build"] - times["build_unet"]
    mark = time.perf_counter()
    unet.load_state_dict(unet_weights.state, strict=True)
    encoder.load_state_dict(t5_weights.state, strict=True)
    unet.eval()
    encoder.eval()
    times["load_state_dict"] = time.perf_counter() - mark
    times["total"] = time.perf_counter() - start
    result.update(
        format=source.name,
        load_seconds=times,
        peak_after_load_mib=own_peak_rss_mib(),
        ru_maxrss_after_load_mib=max_rss_mib(),
        unet_params=sum(p.numel() for p in unet.parameters()),
        t5_params=sum(p.numel() for p in encoder.parameters()),
        unet_config={k: str(v) for k, v in vars(unet_weights.config).items()},
        t5_hf_config={k: t5_weights.config["hf_config"].get(k) for k in T5_KEYS},
    )
    del source, unet_weights, t5_weights
    gc.collect()

    r = torch.load(reference, weights_only=True)

    def scaled(ours: torch.Tensor, theirs: torch.Tensor) -> float:
        return float((ours - theirs).abs().max() / max(1.0, float(theirs.abs().max())))

    batch = r["x"].shape[0]
    states, mask = r["states"][:batch], r["mask"][:batch]
    null_states, null_mask = r["null_states"][:batch], r["null_mask"][:batch]
    with torch.no_grad():
        mark = time.perf_counter()
        out = network_output(unet, r["x"], r["t"], pack(states, mask, MAX_LENGTH))
        result["unet_forward_seconds"] = time.perf_counter() - mark
        mark = time.perf_counter()
        out_null = network_output(unet, r["x"], r["t"], pack(null_states, null_mask, MAX_LENGTH))
        result["unet_forward_null_seconds"] = time.perf_counter() - mark
        mark = time.perf_counter()
        ours_states, ours_mask = encoder.token_states(r["captions"])
        result["t5_forward_seconds"] = time.perf_counter() - mark
        ours_null, ours_null_mask = encoder.token_states([""] * r["null_states"].shape[0])
    length = r["mask"].shape[1]
    real = r["mask"][..., None]
    result["parity"] = {
        "unet_text": scaled(out, r["out"]),
        "unet_null": scaled(out_null, r["out_null"]),
        # unscaled, as the tiny test compares the T5 states (their scale is t5_states_max_abs)
        "t5_captions": float(((ours_states[:, :length] - r["states"]) * real).abs().max()),
        "t5_null": float((ours_null[:, :1] - r["null_states"]).abs().max()),
        "t5_masks_equal": bool(
            torch.equal(ours_mask[:, :length].float(), r["mask"])
            and not ours_mask[:, length:].any()
            and torch.equal(ours_null_mask[:, :1].float(), r["null_mask"])
        ),
        "out_std": float(r["out"].std()),
        "out_text_vs_null": float((r["out"] - r["out_null"]).abs().max()),
        "t5_states_max_abs": float((r["states"] * real).abs().max()),
    }
    result.update(peak_after_forward_mib=own_peak_rss_mib(), ru_maxrss_after_forward_mib=max_rss_mib())
    Path(out_json).write_text(json.dumps(result, indent=2))


# -- steps 1 to 3 and the report ----------------------------------------------------------------------------------
def _subprocess(command: list[str], cwd: Path, timeout: float, threads: int | None) -> tuple[float, float]:
    """Run ``command`` (offline, the repository off PYTHONPATH, ``OMP_NUM_THREADS=threads`` when given: the probe
    takes min(2, torch's threads)); (wall seconds, other processes' cores)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    with Others() as others:
        proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return others.seconds, others.cpu


def _numel(state: dict[str, torch.Tensor]) -> int:
    """Elements of a state dict; T5EncoderModel ties encoder.embed_tokens to shared (one parameter, two keys)."""
    tied = "encoder.embed_tokens.weight" if "shared.weight" in state else None
    return sum(v.numel() for k, v in state.items() if k != tied)


def run(args, work: Path) -> dict:
    from tests.t5_fixtures import write_tiny_t5

    if not (REFERENCE / "audioldm2" / "latent_diffusion" / "modules" / "diffusionmodules" / "openaimodel.py").is_file():
        raise FileNotFoundError(f"the original AudioLDM 2 code is missing at {REFERENCE}: run `bash scripts/test.sh`")
    shapes = TINY_T5 if args.tiny else REAL_T5
    model_channels, head_channels = (32, 8) if args.tiny else (args.model_channels, args.head_channels)
    x_shape = [2, 8, 16, 16] if args.tiny else args.x_shape
    result: dict = {"t5_shape": shapes, "model_channels": model_channels, "head_channels": head_channels}
    result["x_shape"] = x_shape

    print(f"1. writing the T5 folder {shapes} ...", flush=True)
    mark = time.perf_counter()
    folder = write_tiny_t5(work / "t5", **shapes)
    result["t5_folder_seconds"] = time.perf_counter() - mark
    result["t5_folder_bytes"] = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    gc.collect()

    print(f"2. the original code at width {model_channels}, x {x_shape} ...", flush=True)
    probe_out = work / "reference.pt"
    command = [sys.executable, str(PROBE), str(folder), str(probe_out)]
    command += ["--model-channels", str(model_channels), "--head-channels", str(head_channels)]
    command += ["--x-shape", *map(str, x_shape)]
    seconds, others = _subprocess(command, work, args.timeout, args.threads)
    result["probe"] = {"seconds": seconds, "other_cpu": others, "bytes": probe_out.stat().st_size}

    print("3. saving the .ckpt ...", flush=True)
    ref = torch.load(probe_out, weights_only=True)
    assert ref["files"] and all(f.startswith(str(REFERENCE)) for f in ref["files"])  # the original code ran
    ckpt = work / "audioldm_16k_crossattn_t5-random.ckpt"
    mark = time.perf_counter()
    torch.save({"state_dict": ref["checkpoint_state"], "epoch": 0, "global_step": 0}, ckpt)
    result["ckpt_save_seconds"] = time.perf_counter() - mark
    result["ckpt_bytes"] = ckpt.stat().st_size
    result["original_unet_params"] = _numel(ref["unet"]["state"])
    result["original_t5_params"] = _numel(ref["t5"]["state"])
    result["original_unet_kwargs"] = {k: str(v) for k, v in ref["unet"]["kwargs"].items()}
    result["original_heads"] = ref["unet"]["heads"]
    small = {k: ref["unet"][k] for k in ("x", "t", "out", "out_null")}
    small.update({k: ref["t5"][k] for k in ("captions", "states", "mask", "null_states", "null_mask")})
    torch.save(small, work / "outputs.pt")
    del ref, small
    gc.collect()
    probe_out.unlink()  # the .ckpt holds the same weights

    print("4./5. loading it in a fresh process, parity ...", flush=True)
    child_json = work / "child.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(ckpt), str(folder)]
    command += [str(work / "outputs.pt"), str(child_json), "--head-channels", str(head_channels)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    seconds, others = _subprocess(command, ROOT, args.timeout, args.threads)
    result["load"] = json.loads(child_json.read_text())
    result["load"]["process_seconds"] = seconds
    result["load"]["other_cpu"] = others
    return result


def rows_of(result: dict) -> list[dict]:
    load, parity = result["load"], result["load"]["parity"]
    gib = 2**30
    rows = [
        {
            "what": "CPU",
            "value": f"{result['cpu']['model name']} (family {result['cpu']['cpu family']}, "
            f"model {result['cpu']['model']}, stepping {result['cpu'].get('stepping')}), {os.cpu_count()} cores",
        },
        {"what": "input x", "value": "x".join(map(str, result["x_shape"]))},
        {"what": "original code (probe: T5 + UNet + 2 forwards), s", "value": result["probe"]["seconds"]},
        {"what": "  other processes' cores meanwhile", "value": result["probe"]["other_cpu"]},
        {"what": ".ckpt size, GiB", "value": result["ckpt_bytes"] / gib},
        {
            "what": "UNet parameters (ours / original)",
            "value": f"{load['unet_params']:,} / {result['original_unet_params']:,}",
        },
        {
            "what": "T5 encoder parameters (ours / original)",
            "value": f"{load['t5_params']:,} / {result['original_t5_params']:,}",
        },
    ]
    for key in ("open_source", "read_network", "build", "build_unet", "build_t5", "load_state_dict", "total"):
        rows.append({"what": f"load: {key}, s", "value": load["load_seconds"][key]})
    rows += [
        {"what": "  other processes' cores meanwhile (whole subprocess)", "value": load["other_cpu"]},
        {"what": "peak RSS (VmHWM) after imports, MiB", "value": load["peak_after_imports_mib"]},
        {"what": "peak RSS (VmHWM) after the load, MiB", "value": load["peak_after_load_mib"]},
        {"what": "peak RSS (VmHWM) after the forwards, MiB", "value": load["peak_after_forward_mib"]},
        {
            "what": "ru_maxrss after imports / load, MiB (from the parent's peak)",
            "value": f"{load['ru_maxrss_after_imports_mib']:.0f} / {load['ru_maxrss_after_load_mib']:.0f}",
        },
        {"what": "our UNet forward (text, first call), s", "value": load["unet_forward_seconds"]},
        {"what": "our UNet forward (null, second call), s", "value": load["unet_forward_null_seconds"]},
        {"what": "our T5 forward (4 captions), s", "value": load["t5_forward_seconds"]},
        {"what": "UNet diff vs original, text (scaled)", "value": f"{parity['unet_text']:.2e}"},
        {"what": "UNet diff vs original, null (scaled)", "value": f"{parity['unet_null']:.2e}"},
        {"what": "T5 max abs diff vs original, captions, mask 1", "value": f"{parity['t5_captions']:.2e}"},
        {"what": "T5 max abs diff vs original, null caption", "value": f"{parity['t5_null']:.2e}"},
        {"what": "T5 masks equal", "value": parity["t5_masks_equal"]},
        {"what": "  (T5 states' max abs)", "value": parity["t5_states_max_abs"]},
    ]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument(
        "--x-shape",
        type=int,
        nargs=4,
        default=[1, 8, 256, 16],
        metavar=("B", "C", "T", "F"),
        help="the UNet input (B at most 4; [1, 8, 256, 16] is the real 10.24 s latent)",
    )
    parser.add_argument("--model-channels", type=int, default=128, help="UNet width (official: 128)")
    parser.add_argument("--head-channels", type=int, default=32, help="UNet head channels (official: 32)")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny sizes, to check the script")
    parser.add_argument(
        "--work",
        default=None,
        help="folder for the T5, the probe output and the .ckpt (default: a temporary one, removed after)",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds, for each subprocess")
    parser.add_argument("--child", nargs=4, metavar=("CKPT", "T5", "OUTPUTS", "JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        child(*args.child, head_channels=args.head_channels)
        return 0
    device = torch.device("cpu")
    try:
        if args.work:
            Path(args.work).mkdir(parents=True, exist_ok=True)
            result = run(args, Path(args.work))
        else:
            with tempfile.TemporaryDirectory(prefix="crossattn_t5_real_") as work:
                result = run(args, Path(work))
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result["cpu"] = cpu_kind()
    result["loadavg_at_start_of_report"] = os.getloadavg()
    title = "official audioldm_16k_crossattn_t5 layout" + (" (TINY sizes)" if args.tiny else ", real size")
    rows = rows_of(result)
    print(f"\n{title}")
    print(markdown_table(rows, ["what", "value"]))
    if args.out is None:
        suffix = "-tiny" if args.tiny else ""
        name = f"{NAME}-{device_label(device)}{suffix}-{datetime.date.today()}.json"
        args.out = str(ROOT / "bench" / "results" / name)
    command = " ".join(["python", "bench/crossattn_t5_real_size.py", *(sys.argv[1:] if argv is None else argv)])
    print(f"\nwrote {write_results(args, NAME, device, {**result, 'rows': rows}, command=command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
