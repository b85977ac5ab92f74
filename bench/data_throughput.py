"""Data loading throughput: clips/s through decode + resample + log-mel, i.e. ``data.dataset.AudioClipDataset``
(what every stage trains on) behind a ``DataLoader`` with ``collate_clips``, for N workers.

Sources (each a manifest read with ``data.manifest.read_manifest``):

  demo   demo_data/manifest.jsonl (442 clips of 5-10 s, all 16 kHz mono wav: no resampling), if built
  tones  generated here: --tones clips of --tone-seconds, 16 / 22.05 / 44.1 / 48 kHz in turn, mono and
         stereo in turn, PCM-16 wav (or --tone-format flac), in a temporary folder

Every file is read once before timing (so the page cache holds it: this measures decoding, not the
disk). Per row: the time to the first batch (worker start-up included), and clips/s over the whole
pass and over the batches after the first (steady state). The dataset runs on the CPU whatever the
device (training moves batches to the GPU); ``--device`` only labels the result.

    python bench/data_throughput.py                  # segments of 10.24 s, workers 0 1 2
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from audioldm.audio.mel import MelConfig  # noqa: E402
from bench.harness import ROOT, RowMonitor, make_parser, report, setup  # noqa: E402
from data.dataset import AudioClipDataset, ClipOptions, collate_clips  # noqa: E402
from data.manifest import read_manifest  # noqa: E402
from data.shard_dataset import ShardDataset, ShardIndex  # noqa: E402
from data.shard_writer import write_shards  # noqa: E402

DEMO_MANIFEST = ROOT / "demo_data" / "manifest.jsonl"
RATES = (16000, 22050, 44100, 48000)


def write_tones(folder: Path, n: int, seconds: float, fmt: str) -> Path:
    """``n`` tone files (rates and channel counts in turn) and their manifest; returns the manifest."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        rate, channels = RATES[i % len(RATES)], 1 + (i // len(RATES)) % 2
        t = np.arange(int(seconds * rate)) / rate
        mono = 0.3 * np.sin(2 * np.pi * (200 + 37 * i) * t) + 0.01 * rng.standard_normal(t.size)
        path = folder / f"tone{i:03d}.{fmt}"
        sf.write(str(path), np.stack([mono] * channels, axis=1).astype(np.float32), rate, subtype="PCM_16")
        lines.append(json.dumps({"id": f"tone{i:03d}", "path": path.name, "captions": [f"a {200 + 37 * i} Hz tone"]}))
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def shard_dataset(entries: list, folder: Path, mel: MelConfig, args) -> ShardDataset:
    """``entries`` written as webdataset shards (100 clips each), streamed in file order (no shuffle buffer)."""
    manifest = folder.parent / f"{folder.name}.jsonl"
    manifest.write_text(
        "".join(json.dumps({"id": e.id, "path": e.path, "captions": e.captions}) + "\n" for e in entries)
    )
    write_shards(str(manifest), str(folder), max_count=100, progress=False)
    return ShardDataset(
        ShardIndex(folder),
        mel,
        mel.samples_for_seconds(args.segment_seconds),
        shuffle_buffer=1,
        random_crop=False,
        batch_size=args.batch_size,
    )


def run(dataset: AudioClipDataset, workers: int, batch_size: int, device: torch.device) -> dict:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate_clips)
    clips, first = 0, None
    with RowMonitor(device) as monitor:
        start = time.perf_counter()
        for batch in loader:
            clips += batch["waveform"].shape[0]
            if first is None:
                first, first_clips = time.perf_counter() - start, clips
        total = time.perf_counter() - start
    steady = (clips - first_clips) / (total - first) if clips > first_clips else None
    return {
        "workers": workers,
        "clips": clips,
        "first_batch_s": first,
        "total_s": total,
        "clips_per_s": clips / total,
        "steady_clips_per_s": steady,
        "peak_mem_mib": monitor.mib,
        "other_cpu": monitor.other_cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--sources", nargs="+", choices=["demo", "tones"], default=["demo", "tones"], help="see above")
    parser.add_argument("--manifest", default=str(DEMO_MANIFEST), help="the 'demo' source: any manifest")
    parser.add_argument("--tones", type=int, default=96, help="generated clips for the 'tones' source")
    parser.add_argument("--tone-seconds", type=float, default=10.0, help="length of each generated clip")
    parser.add_argument("--tone-format", choices=["wav", "flac"], default="wav", help="generated files' format")
    parser.add_argument("--segment-seconds", type=float, default=10.24, help="training segment (ldm_s: 10.24)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="DataLoader num_workers to try")
    parser.add_argument("--batch-size", type=int, default=8, help="DataLoader batch size")
    parser.add_argument("--max-clips", type=int, default=None, help="use only the first N clips of a source")
    parser.add_argument(
        "--shards",
        action="store_true",
        help="also stream each source as webdataset shards (written to a temp folder first)",
    )
    args = parser.parse_args(argv)
    device = setup(args)
    mel = MelConfig()

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_tones_") as tmp:
        sources = {}
        if "demo" in args.sources:
            if Path(args.manifest).is_file():
                sources["demo"] = Path(args.manifest)
            else:
                print(f"no {args.manifest} (build it with python -m data.demo.build --out demo_data): skipped")
        if "tones" in args.sources:
            sources["tones"] = write_tones(Path(tmp), args.tones, args.tone_seconds, args.tone_format)
        for name, manifest in sources.items():
            entries = read_manifest(manifest)[: args.max_clips]
            for entry in entries:  # into the page cache
                Path(entry.path).read_bytes()
            datasets = {name: AudioClipDataset(entries, mel, ClipOptions(segment_seconds=args.segment_seconds))}
            if args.shards:
                datasets[f"{name} (shards)"] = shard_dataset(entries, Path(tmp) / f"{name}_shards", mel, args)
            for label, dataset in datasets.items():
                for workers in args.workers:
                    row = {"source": label, **run(dataset, workers, args.batch_size, device)}
                    rows.append(row)
                    print(f"{label}, {workers} workers: {row['clips_per_s']:.1f} clips/s", flush=True)

    columns = [
        "source",
        "workers",
        "clips",
        "first_batch_s",
        "total_s",
        "clips_per_s",
        "steady_clips_per_s",
        "peak_mem_mib",
        "other_cpu",
    ]
    title = (
        f"AudioClipDataset + DataLoader (batch {args.batch_size}), {args.segment_seconds} s segments, "
        f"{torch.get_num_threads()} torch threads in the main process, {len(rows)} passes"
    )
    return report(args, "data_throughput", device, title, rows, columns)


if __name__ == "__main__":
    raise SystemExit(main())
