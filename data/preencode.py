"""Pre-encode an ldm config's clips once, so LDM training skips the frozen VAE and CLAP:

    python -m data.preencode --config configs/ldm_s.yaml [key=value ...] [--max-segments 4]

For every clip of ``data.train_manifest`` (and ``data.val_manifest``) it stores the VAE posterior
and the CLAP audio embedding of up to ``--max-segments`` consecutive segments of
``data.segment_seconds``, and the CLAP text embedding of each of its captions (for
``model.text_condition_prob``), in ``data.latent_cache_dir`` (see ``data/latent_cache.py``). With
``model.condition: crossattn_*`` it stores each caption's token states instead of its CLAP text embedding
(clips without a caption are left out and counted: that model trains on captions only). Training
with that folder set reads them instead of audio; segment 0 is what raw-audio validation reads,
so a clip no longer than the segment trains identically either way. Clips already encoded are
skipped (the command resumes), unreadable ones are counted and left out.

On several GPUs or machines, each process encodes every ``world``-th clip into the same folder:

    torchrun --nproc_per_node 8 -m data.preencode --config configs/ldm_s.yaml ...   # RANK/WORLD_SIZE from torchrun
    python -m data.preencode --config ... --rank 3 --world 16                         # or by hand, e.g. SLURM
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import asdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here downloads, by design
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from audioldm.audio.io import AudioReadError, audio_info  # noqa: E402
from audioldm.audio.mel import MelConfig, MelFrontEnd  # noqa: E402
from audioldm.safe_output import main_guard  # noqa: E402
from data.latent_cache import LatentCache  # noqa: E402
from data.manifest import ManifestEntry, read_manifest  # noqa: E402
from data.segment import read_tiles  # noqa: E402

log = logging.getLogger("preencode")


class TileDataset(Dataset):
    """Per entry: {"id", "captions", "tiles": [K, N]} or {"id", "error": str} for an unreadable file."""

    def __init__(self, entries: list[ManifestEntry], mel: MelConfig, segment_samples: int, max_tiles: int):
        self.entries, self.mel, self.segment_samples, self.max_tiles = entries, mel, segment_samples, max_tiles

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> dict:
        entry = self.entries[i]
        try:
            tiles = read_tiles(
                entry.path, audio_info(entry.path), self.mel.sample_rate, self.segment_samples, self.max_tiles
            )
        except AudioReadError as e:
            return {"id": entry.id, "error": str(e)}
        return {"id": entry.id, "captions": list(entry.captions), "tiles": tiles}


def cache_meta(
    config,
    vae: torch.nn.Module,
    clap: torch.nn.Module | None,
    text_encoder: torch.nn.Module | None = None,
    version: int | None = None,
) -> dict:
    """What a cache must agree on with the run that reads it (a cross-attention model: also its text encoder);
    ``version``: of the weight fingerprints (an existing cache's, when adding to it; default the current one)."""
    from audioldm.checkpoint import FINGERPRINT_VERSION, fingerprint

    version = version or FINGERPRINT_VERSION
    mel = config_mel(config)
    meta = {
        "segment_samples": mel.samples_for_seconds(config.data.segment_seconds),
        "mel": asdict(mel),
        "vae_fingerprint": fingerprint(vae, version),
    }
    if version > 1:  # caches from before the key are version 1
        meta["fingerprint_version"] = version
    if clap is not None:
        meta["clap_fingerprint"] = fingerprint(clap, version)
    condition = config.model.condition
    if condition == "film_clap":
        meta["text_embeddings"] = True
    else:
        encoder = text_encoder if condition == "crossattn_t5" else clap
        meta["text_encoder"] = {"condition": condition, "fingerprint": fingerprint(encoder, version)}
    return meta


def config_mel(config) -> MelConfig:
    from omegaconf import OmegaConf

    return OmegaConf.to_object(config.audio)


@torch.no_grad()
def preencode(
    config,
    max_segments: int = 1,
    batch_size: int = 16,
    device: str = "cpu",
    num_workers: int | None = None,
    progress: bool = True,
    rank: int = 0,
    world: int = 1,
) -> dict[str, int]:
    """Encode the config's clips (every ``world``-th from ``rank``) into ``data.latent_cache_dir``; returns
    counts {"encoded", "already", "unreadable", "segments"} for this part."""
    if not 0 <= rank < world:
        raise ValueError(f"--rank {rank} must be in [0, --world {world})")
    from tqdm import tqdm

    from audioldm.assembly.parts import load_part, part_source

    if not config.data.latent_cache_dir:
        raise ValueError("data.latent_cache_dir is not set: say where the pre-encoded latents go")
    from audioldm.models.latent_diffusion import text_condition
    from audioldm.models.token_condition import unpack

    mel = config_mel(config)
    m = config.model
    vae = load_part(part_source(config, "vae"), "vae", mel).network.to(device)
    clap, text_encoder = None, None
    if m.condition != "crossattn_t5":  # the T5 model's training data does not depend on a CLAP
        clap = load_part(part_source(config, "clap"), "clap", mel, m.clap_tokenizer).network.to(device)
    if m.condition == "crossattn_t5":
        source = m.text_encoder_path or part_source(config, "text_encoder")
        text_encoder = load_part(source, "text_encoder", mel, None, False, m.text_max_length).network.to(device)
    front_end = MelFrontEnd(mel).to(device)
    cache = LatentCache(config.data.latent_cache_dir)
    existing = cache.read_meta()
    version = int(existing.get("fingerprint_version", 1)) if existing is not None else None
    meta = cache_meta(config, vae, clap, text_encoder, version)
    if existing is not None:
        cache.check_meta(meta)
    cache.write_meta(meta)

    entries = read_manifest(config.data.train_manifest)
    if config.data.val_manifest:
        known = {e.id for e in entries}
        entries += [e for e in read_manifest(config.data.val_manifest) if e.id not in known]
    entries = entries[rank::world]
    counts = {"encoded": 0, "already": 0, "unreadable": 0, "segments": 0, "uncaptioned": 0}
    if m.condition != "film_clap":  # token conditions come from captions only
        captioned = [e for e in entries if any(c.strip() for c in e.captions)]
        counts["uncaptioned"] = len(entries) - len(captioned)
        if counts["uncaptioned"]:
            log.warning(
                "%d clips without a caption left out (%s trains on captions)", counts["uncaptioned"], m.condition
            )

        entries = captioned
    todo = [e for e in entries if not cache.has(cache.key(e.id))]
    counts["already"] = len(entries) - len(todo)
    if not todo:
        return counts
    workers = config.data.num_workers if num_workers is None else num_workers
    loader = DataLoader(
        TileDataset(todo, mel, meta["segment_samples"], max_segments),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=list,
    )
    for batch in tqdm(loader, desc="pre-encoding", unit="batch", disable=not progress):
        good = [item for item in batch if "tiles" in item]
        for item in batch:
            if "error" in item:
                counts["unreadable"] += 1
                log.warning("skipping unreadable clip %s", item["error"])
        if not good:
            continue
        waves = torch.cat([item["tiles"] for item in good]).to(device)  # [sum K, N]
        posterior = vae.encode(front_end(waves)).latent_dist.parameters  # [sum K, 2C, T', F']
        clap_audio = clap.embed_audio(waves).cpu() if clap is not None and not clap.config.text_only else None
        captions = [c for item in good for c in item["captions"]]
        # film_clap: CLAP text embeddings [sum M, D]; crossattn_*: packed token states [sum M, L, W + 1]
        texts = text_condition(m.condition, clap, text_encoder, captions).cpu() if captions else None
        start, first = 0, 0
        for item in good:
            k, n = item["tiles"].shape[0], len(item["captions"])
            tensors = {"posterior": posterior[start : start + k].cpu()}
            if clap_audio is not None:
                tensors["clap_audio"] = clap_audio[start : start + k]
            rows = texts[first : first + n] if texts is not None else None
            if m.condition == "film_clap":
                tensors["clap_text"] = rows if rows is not None else torch.zeros(0, clap_audio.shape[1])  # [M, D]
            else:  # stored up to the clip's longest caption; the datasets pad to text_length
                used = max(1, int(unpack(rows)[1].sum(1).max())) if rows is not None else 1
                tensors["text_tokens"] = (rows[:, :used] if rows is not None else torch.zeros(0, 1, 1)).clone()
                tensors["text_length"] = torch.tensor(texts.shape[1] if texts is not None else 1)
            cache.save(cache.key(item["id"]), tensors)
            start, first = start + k, first + n
            counts["encoded"] += 1
            counts["segments"] += k
    return counts


@main_guard  # a full disk or a denied permission while writing the cache: one line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the ldm config that will train on the latents")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, as for train.py")
    parser.add_argument(
        "--max-segments",
        type=int,
        default=1,
        help="consecutive segments stored per clip (training draws one per epoch); default 1",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="clips per encoder batch")
    parser.add_argument(
        "--rank",
        type=int,
        default=int(os.environ.get("RANK", 0)),
        help="this process's part (default: $RANK, as torchrun sets it)",
    )
    parser.add_argument(
        "--world", type=int, default=int(os.environ.get("WORLD_SIZE", 1)), help="number of parts (default: $WORLD_SIZE)"
    )
    local = int(os.environ.get("LOCAL_RANK", 0))
    parser.add_argument("--device", default=f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    args = parser.parse_intermixed_args(argv)  # key=value overrides may come before or after --config
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    from audioldm.checkpoint import CheckpointError
    from audioldm.config import ConfigError, load_config
    from data.latent_cache import LatentCacheError
    from data.manifest import ManifestError

    start = time.time()
    try:
        config = load_config(args.config, args.overrides)
        if config.stage != "ldm":
            raise ConfigError(f"{args.config}: is a '{config.stage}' config; pre-encoding is for stage 'ldm'")
        counts = preencode(config, args.max_segments, args.batch_size, args.device, rank=args.rank, world=args.world)
    except (ConfigError, CheckpointError, LatentCacheError, ManifestError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not counts["encoded"] and not counts["already"]:
        print(
            f"error: {config.data.train_manifest}: nothing encoded ({counts['unreadable']} unreadable clips)",
            file=sys.stderr,
        )
        return 2
    part = f" (part {args.rank + 1} of {args.world})" if args.world > 1 else ""
    print(
        f"preencode{part}: {counts['encoded']} clips encoded ({counts['segments']} segments), {counts['already']} "
        f"already cached, {counts['unreadable']} unreadable"
        + (f", {counts['uncaptioned']} without a caption left out" if counts["uncaptioned"] else "")
        + f", in {time.time() - start:.0f} s -> "
        f"{config.data.latent_cache_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
