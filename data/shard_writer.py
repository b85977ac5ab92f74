"""Write a manifest's clips as webdataset tar shards, for AudioSet-scale training without one file
per sample (``data/shard_dataset.py`` streams them):

    python -m data.shard_writer --manifest manifests/audioset.jsonl --out shards/audioset
    python -m data.shard_writer --manifest manifests/audioset.jsonl --latents latents/audioset --out shards/latents

Each sample is ``<key>.json`` (id, captions, labels) plus either ``<key>.flac`` (the clip decoded,
resampled to 16 kHz mono, stored losslessly as 16-bit FLAC) or, with ``--latents`` (a cache written by
``python -m data.preencode``), ``<key>.pth`` (the clip's VAE posterior parameters and CLAP audio
embeddings). ``shards.json`` lists the shards with their sample counts, the kind, the sample rate and,
for latents, the cache's meta (mel settings, segment length, VAE/CLAP fingerprints) so a run can refuse
latents made by other networks. Unreadable clips are skipped and counted. Shards are written by
webdataset's ``ShardWriter`` into a temporary folder (``<out>.partial``) that is renamed when complete;
a failed write (full disk, no permission) removes it and stops with one line naming ``--out`` and the cause.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shutil
import sys
import tarfile
from pathlib import Path

import soundfile as sf
import torch

from audioldm.safe_output import check_output_folder, main_guard, removed_on_error

log = logging.getLogger(__name__)
INDEX = "shards.json"


def encode_flac(wave: torch.Tensor, sample_rate: int) -> bytes:
    """waveform [N] float -> 16-bit FLAC bytes (clipped to [-1, 1])."""
    buffer = io.BytesIO()
    sf.write(buffer, wave.clamp(-1, 1).numpy(), sample_rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def tensor_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.contiguous() for k, v in tensors.items()}, buffer)
    return buffer.getvalue()


def samples_in(tar_path: Path) -> int:
    """Number of samples (distinct keys) in one tar shard, from its member headers."""
    with tarfile.open(tar_path) as tar:
        return len({name.split(".", 1)[0] for name in tar.getnames()})


def write_shards(
    manifest: str,
    out: str,
    latents: str | None = None,
    sample_rate: int = 16000,
    max_count: int = 1000,
    max_size: float = 1e9,
    progress: bool = True,
) -> dict[str, int]:
    """Write the shards and ``shards.json``; returns {"written", "unreadable", "shards"}."""
    from data.latent_cache import LatentCache, LatentCacheError
    from data.manifest import read_manifest

    if os.path.exists(out):
        raise ValueError(f"{out}: already exists; choose a new output folder")
    check_output_folder(out)
    entries = read_manifest(manifest)
    cache = LatentCache(latents) if latents else None
    meta = cache.read_meta() if cache else None
    if cache and meta is None:
        raise LatentCacheError(f"{latents}: no pre-encoded latents (meta.json missing); run python -m data.preencode")
    tmp = Path(f"{out}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    with removed_on_error(out, tmp):
        return _write(entries, cache, meta, manifest, out, tmp, sample_rate, max_count, max_size, progress)


def _write(
    entries: list,
    cache,
    meta: dict | None,
    manifest: str,
    out: str,
    tmp: Path,
    sample_rate: int,
    max_count: int,
    max_size: float,
    progress: bool,
) -> dict[str, int]:
    import webdataset as wds
    from tqdm import tqdm

    from audioldm.audio.io import AudioReadError, load_audio

    tmp.mkdir(parents=True)
    written, unreadable = 0, 0
    writer = wds.ShardWriter(str(tmp / "shard-%06d.tar"), maxcount=max_count, maxsize=max_size, verbose=0)
    try:
        for entry in tqdm(entries, desc="writing shards", unit="clip", disable=not progress):
            sample = {
                "__key__": f"{written:09d}",
                "json": json.dumps({"id": entry.id, "captions": entry.captions, "labels": entry.labels}),
            }
            if cache:
                tensors = cache.load(cache.key(entry.id))
                if tensors is None:
                    unreadable += 1
                    continue
                sample["pth"] = tensor_bytes(tensors)
            else:
                try:
                    sample["flac"] = encode_flac(load_audio(entry.path, sample_rate), sample_rate)
                except AudioReadError as e:
                    log.warning("skipping unreadable clip %s", e)
                    unreadable += 1
                    continue
            writer.write(sample)
            written += 1
    finally:
        writer.close()
    if not written:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"{manifest}: nothing to shard ({len(entries)} entries, {unreadable} unreadable)")
    shards = [{"name": p.name, "samples": samples_in(p)} for p in sorted(tmp.glob("shard-*.tar"))]
    index = {
        "kind": "latents" if cache else "audio",
        "sample_rate": sample_rate,
        "samples": written,
        "shards": [s for s in shards if s["samples"]],
        "latent_meta": meta,
        "manifest": os.path.abspath(manifest),
    }
    (tmp / INDEX).write_text(json.dumps(index, indent=2), encoding="utf-8")
    os.replace(tmp, out)
    return {"written": written, "unreadable": unreadable, "shards": len(index["shards"])}


@main_guard
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True, help="the clips (and captions) to shard")
    p.add_argument("--out", required=True, help="the shard folder to create")
    p.add_argument("--latents", help="a latent cache from python -m data.preencode: shard latents, not audio")
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--max-count", type=int, default=1000, help="samples per shard at most")
    p.add_argument("--max-size", type=float, default=1e9, help="bytes per shard at most")
    args = p.parse_args(argv)
    from data.latent_cache import LatentCacheError
    from data.manifest import ManifestError

    try:
        counts = write_shards(args.manifest, args.out, args.latents, args.sample_rate, args.max_count, args.max_size)
    except (ValueError, ManifestError, LatentCacheError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"{counts['written']} clips in {counts['shards']} shards ({counts['unreadable']} unreadable, skipped): "
        f"{args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
