"""A folder of small tensor files keyed by a hex digest: ``root/<key[:2]>/<key>.pt``.

Writes go to a temporary file and are renamed into place, so a crash never leaves a half-written
entry; an unreadable entry reads as missing.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch


class TensorStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
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
        file = self._file(key)
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".{os.getpid()}.tmp")
        torch.save({k: v.contiguous() for k, v in item.items()}, tmp)
        os.replace(tmp, file)
