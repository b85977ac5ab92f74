"""A folder of small tensor files keyed by a hex digest: ``root/<key[:2]>/<key>.pt``.

Writes go to a temporary file and are renamed into place, so a crash never leaves a half-written
entry; a failed write (full disk, no permission) removes it and raises ``OutputError`` naming the entry;
an unreadable entry reads as missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from audioldm.safe_output import atomic_file, removed_on_error


class TensorStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        with removed_on_error(self.root):
            self.root.mkdir(parents=True, exist_ok=True)

    def _file(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pt"

    def has(self, key: str) -> bool:
        return self._file(key).is_file()

    def load(self, key: str) -> dict[str, torch.Tensor] | None:
        file = self._file(key)
        if not file.is_file():
            return None
        try:
            return torch.load(file, map_location="cpu", weights_only=True)
        except Exception:  # a corrupt entry counts as missing
            return None

    def save(self, key: str, item: dict[str, torch.Tensor]) -> None:
        with atomic_file(self._file(key), f".{os.getpid()}.tmp") as f:
            torch.save({k: v.contiguous() for k, v in item.items()}, f)
