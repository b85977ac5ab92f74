"""Evaluation throughput: clips/s through each embedding backbone of ``evaluate.py`` (VGGish for FAD,
PANNs CNN14 16 kHz for FD/KL/IS, CLAP for the CLAP FD and score), on 10 s clips.

Rows per backbone:

  per clip   one clip per call, as ``evaluation.scorer.score`` calls it (``vggish.embed(wave)``,
             ``cnn14(wave[None])``, ``clap.embed_audio(wave)``)
  batched    --batch-size clips per call (VGGish: the clips' 0.96 s examples stacked into one batch)

plus ``load_eval_audio``: reading a 44.1 kHz wav the way the scorer does (channel 0, mean removed,
resampled to 16 kHz), on generated files in the page cache.

Weights: the official files in ``--weights-dir`` (``vggish-10086976.pth``, ``Cnn14_16k_mAP=0.438.pth``) if
given, else random weights written in those official layouts to a temporary folder (as
tests/conftest.py ``official_weights_dir`` does) and loaded through the same loaders. CLAP:
``--clap-ckpt`` (any CLAP source ``ClapBackbone.from_checkpoint`` reads), else a random one at
LAION-CLAP's size (HTSAT-tiny + RoBERTa-base, ``ClapConfig()``). The speed does not depend on the weights.

    python bench/eval_throughput.py                 # 16 clips of 10 s, batches of 8
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

from audioldm.audio.mel import MelConfig  # noqa: E402
from bench.harness import RowMonitor, make_parser, measure, report, setup  # noqa: E402
from evaluation.backbones.clap import ClapBackbone  # noqa: E402
from evaluation.backbones.panns import PANN_FILE, build_cnn14, load_cnn14  # noqa: E402
from evaluation.backbones.vggish import VGGISH_FILE, load_vggish, waveform_to_examples  # noqa: E402
from evaluation.clip_sets import load_eval_audio  # noqa: E402


def write_random_weights(folder: Path) -> None:
    """VGGish and CNN14 files with random weights in the official names and key layouts."""
    import torchvggish

    torch.manual_seed(0)
    torch.save(torchvggish.torchvggish._vgg(postprocess=False).state_dict(), folder / VGGISH_FILE)
    torch.save({"model": build_cnn14().state_dict(), "iteration": 0}, folder / PANN_FILE)


def clap_backbone(args, device: torch.device) -> ClapBackbone:
    if args.clap_ckpt:
        return ClapBackbone.from_checkpoint(args.clap_ckpt, device)
    from audioldm.models.clap import ClapConfig, ClapEmbedder

    torch.manual_seed(0)
    return ClapBackbone(ClapEmbedder(ClapConfig(), MelConfig().sample_rate).to(device), "random, ClapConfig()")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--weights-dir", default=None, help="official VGGish / PANNs files (default: random weights)")
    parser.add_argument("--clap-ckpt", default=None, help="a CLAP checkpoint (default: random, LAION-CLAP size)")
    parser.add_argument(
        "--backbones",
        nargs="+",
        choices=["vggish", "cnn14", "clap"],
        default=["vggish", "cnn14", "clap"],
        help="which backbones",
    )
    parser.add_argument("--clips", type=int, default=16, help="clips per timed pass")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (AudioCaps: 10)")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per call in the batched rows")
    parser.add_argument("--repeats", type=int, default=1, help="timed passes per row (after one warm-up pass)")
    args = parser.parse_args(argv)
    device = setup(args, flush_denormal=args.weights_dir is None)

    g = torch.Generator().manual_seed(0)
    waves = (0.1 * torch.randn(args.clips, int(args.seconds * 16000), generator=g)).to(device)
    batches = list(waves.split(args.batch_size))
    rows = []

    def add(backbone: str, mode: str, fn, clips: int) -> None:
        with RowMonitor(device) as monitor:
            timing = measure(fn, device, warmup=1, repeats=args.repeats)
        rows.append(
            {
                "backbone": backbone,
                "mode": mode,
                "clips": clips,
                "seconds": timing["median"],
                "clips_per_s": clips / timing["median"],
                "ms_per_clip": 1e3 * timing["median"] / clips,
                "peak_mem_mib": monitor.mib,
                "other_cpu": monitor.other_cpu,
                "times_s": timing["times"],
            }
        )
        print(f"{backbone} {mode}: {clips / timing['median']:.1f} clips/s", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        folder = Path(tmp)
        if args.weights_dir is None:
            write_random_weights(folder)
        weights = args.weights_dir or folder
        files = []
        for i in range(args.clips):  # what the scorer reads: 44.1 kHz wav files
            files.append(folder / f"clip{i:03d}.wav")
            noise = np.random.default_rng(i).normal(0, 0.1, int(args.seconds * 44100)).astype(np.float32)
            sf.write(str(files[-1]), noise, 44100, subtype="PCM_16")
        add("load_eval_audio", "per clip", lambda: [load_eval_audio(str(f)) for f in files], len(files))
        with torch.no_grad():
            if "vggish" in args.backbones:
                vggish = load_vggish(weights, device)
                add("VGGish", "per clip", lambda: [vggish.embed(w) for w in waves], args.clips)
                add(
                    "VGGish",
                    f"batched {args.batch_size}",
                    lambda: [vggish(torch.cat([waveform_to_examples(w) for w in b]).to(device)) for b in batches],
                    args.clips,
                )
            if "cnn14" in args.backbones:
                cnn14 = load_cnn14(weights, device)
                add("PANNs CNN14", "per clip", lambda: [cnn14(w[None]) for w in waves], args.clips)
                add("PANNs CNN14", f"batched {args.batch_size}", lambda: [cnn14(b) for b in batches], args.clips)
            if "clap" in args.backbones:
                clap = clap_backbone(args, device)
                add("CLAP", "per clip", lambda: [clap.embed_audio(w) for w in waves], args.clips)
                add("CLAP", f"batched {args.batch_size}", lambda: [clap.embed_audio(b) for b in batches], args.clips)

    columns = ["backbone", "mode", "clips", "seconds", "clips_per_s", "ms_per_clip", "peak_mem_mib", "other_cpu"]
    title = (
        f"{args.seconds:g} s clips, device {device}, weights {args.weights_dir or 'random (official layouts)'}, "
        f"CLAP {args.clap_ckpt or 'random ClapConfig()'}; median of {args.repeats} pass(es) after 1 warm-up"
    )
    return report(args, "eval_throughput", device, title, rows, columns)


if __name__ == "__main__":
    raise SystemExit(main())
