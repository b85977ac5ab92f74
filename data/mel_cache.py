"""Optional on-disk cache of decoded segments and their log-mels.

Only deterministic segments are cached (a clip no longer than the segment, or any clip when
cropping is not random): a random crop of a longer clip differs every epoch. The key hashes the
file's path, size and modification time with the mel settings and segment length, so an edited
file or a changed setting never reads a stale entry.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch

from audioldm.audio.mel import MelConfig


class MelCache:
    """Stores {"waveform": [N], "log_mel": [1, T, F]} per segment under ``root``."""

    def __init__(self, root: str | os.PathLike, mel: MelConfig, segment_samples: int):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._settings = json.dumps({"mel": asdict(mel), "segment": segment_samples}, sort_keys=True)

    def key(self, path: str) -> str:
        stat = os.stat(path)
        ident = f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|{self._settings}"
        return hashlib.sha1(ident.encode()).hexdigest()

    def _file(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pt"

    def load(self, key: str) -> dict[str, torch.Tensor] | None:
        file = self._file(key)
        if not file.is_file():
            return None
        try:
            return torch.load(file, map_location="cpu", weights_only=True)
        except Exception:  # a half-written or corrupt cache entry is simply recomputed
            return None

    def save(self, key: str, item: dict[str, torch.Tensor]) -> None:
        file = self._file(key)
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".{os.getpid()}.tmp")
        torch.save({k: v.contiguous() for k, v in item.items()}, tmp)
        os.replace(tmp, file)
