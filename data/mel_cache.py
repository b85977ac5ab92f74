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

from audioldm.audio.mel import MelConfig
from data.tensor_store import TensorStore


class MelCache(TensorStore):
    """Stores {"waveform": [N], "log_mel": [1, T, F]} per segment under ``root``."""

    def __init__(self, root: str | os.PathLike, mel: MelConfig, segment_samples: int):
        super().__init__(root)
        self._settings = json.dumps({"mel": asdict(mel), "segment": segment_samples}, sort_keys=True)

    def key(self, path: str) -> str:
        stat = os.stat(path)
        ident = f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|{self._settings}"
        return hashlib.sha1(ident.encode()).hexdigest()
