"""The one manifest format every dataset is described in: JSON Lines, one clip per line.

Each line is an object with these fields::

    {"id": "audiocaps_7fmOlUlwoNg_20", "path": "/data/audiocaps/train/7fmOlUlwoNg_20.wav",
     "captions": ["A man speaks as a car drives by"], "duration": 10.0,
     "labels": ["Speech", "Vehicle"], "split": "train", "source": "audiocaps"}

``path`` is absolute, or relative to the manifest file's folder. ``duration`` is in seconds
(``null`` when unknown). ``split`` is one of ``train``, ``val``, ``test`` or ``null``
(the DataModule then makes a deterministic split).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from audioldm.audio.io import not_a_file

SPLITS = ("train", "val", "test")


class ManifestError(ValueError):
    """A manifest line that cannot be used; the message names the file and line."""


@dataclass
class ManifestEntry:
    """One clip: where its audio is, what it sounds like, and where it came from."""

    id: str
    path: str
    captions: list[str] = field(default_factory=list)
    duration: float | None = None
    labels: list[str] = field(default_factory=list)
    split: str | None = None
    source: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def _entry_from_dict(obj: dict, where: str, base_dir: Path) -> ManifestEntry:
    if not isinstance(obj, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    unknown = set(obj) - set(ManifestEntry.__dataclass_fields__)
    if unknown:
        raise ManifestError(f"{where}: unknown field(s) {sorted(unknown)}")
    for key in ("id", "path"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            raise ManifestError(f"{where}: field '{key}' must be a non-empty string")
    captions = obj.get("captions", [])
    if isinstance(captions, str):
        captions = [captions]
    if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
        raise ManifestError(f"{where}: field 'captions' must be a list of strings")
    labels = obj.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(c, str) for c in labels):
        raise ManifestError(f"{where}: field 'labels' must be a list of strings")
    split = obj.get("split")
    if split is not None and split not in SPLITS:
        raise ManifestError(f"{where}: field 'split' must be one of {SPLITS} or null, got {split!r}")
    duration = obj.get("duration")
    if duration is not None and not isinstance(duration, (int, float)):
        raise ManifestError(f"{where}: field 'duration' must be a number or null")
    path = obj["path"]
    if not os.path.isabs(path):
        path = str(base_dir / path)
    return ManifestEntry(
        id=obj["id"],
        path=path,
        captions=list(captions),
        duration=None if duration is None else float(duration),
        labels=list(labels),
        split=split,
        source=str(obj.get("source", "")),
    )


def read_manifest(path: str | os.PathLike) -> list[ManifestEntry]:
    """Read a JSONL manifest. Relative audio paths resolve against the manifest's folder.

    Raises ``ManifestError`` naming the file and line for a malformed line or duplicate id.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(
            f"{path}: {not_a_file(path, 'manifest file')}" if os.path.lexists(path) else f"manifest not found: {path}"
        )
    entries: list[ManifestEntry] = []
    seen: set[str] = set()
    base_dir = path.resolve().parent
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{where}: not valid JSON ({e.msg})") from None
            entry = _entry_from_dict(obj, where, base_dir)
            if entry.id in seen:
                raise ManifestError(f"{where}: duplicate id {entry.id!r}")
            seen.add(entry.id)
            entries.append(entry)
    return entries


def looks_like_manifest(path: str | os.PathLike) -> bool:
    """Whether ``path``'s first line is a manifest entry (so a command may replace it as its own output)."""
    try:
        with Path(path).open(encoding="utf-8") as f:
            first = f.readline()
        obj = json.loads(first)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(obj, dict) and {"id", "path"} <= set(obj)


def write_manifest(entries: Iterable[ManifestEntry], path: str | os.PathLike) -> int:
    """Write entries as JSONL atomically (temporary file, then rename). Returns the count."""
    from audioldm.safe_output import atomic_file  # a failed write: one line, no .tmp left

    n = 0
    with atomic_file(path, ".tmp", text=True) as f:
        for entry in entries:
            f.write(entry.to_json() + "\n")
            n += 1
    return n
