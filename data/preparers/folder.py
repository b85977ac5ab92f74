"""A plain folder of audio files (searched recursively) with captions beside them or in a CSV.

Captions come from either or both of:

* sidecar text files: ``dogs/bark1.wav`` + ``dogs/bark1.txt``, one caption per non-empty line;
* a CSV with a ``file_name`` (or ``path``) column and a ``caption`` column, several rows per
  file allowed::

      file_name,caption
      dogs/bark1.wav,A dog barks twice
      bark1.wav,A small dog barking

  A name is a path relative to the folder, a bare file name found in any subfolder, or an
  absolute path; its extension may differ from the file's (``x.wav`` finds ``x.flac``). A name
  whose file exists as written captions that file alone; otherwise it captions every file of its
  stem (``clip`` or ``clip.wav`` captions both ``clip.mp3`` and ``clip.ogg``), as a sidecar
  ``clip.txt`` does.

Every audio file (.wav .flac .mp3 .ogg) in the folder becomes an entry: id
``{source}_{relative path without extension}`` (with the extension when files of one stem share a
folder: ``clip.mp3`` and ``clip.ogg`` are two entries), source = ``source`` or the folder's name
(lower-case, non-alphanumerics as ``_``), split only when given. Files without a caption
keep an empty caption list, or are left out (and counted as skipped) with
``skip_uncaptioned``. CSV rows naming a file that is not there are reported as missing.
"""

from __future__ import annotations

import argparse
import os
import re
from collections import Counter
from pathlib import Path

from data.preparers.manifest_builder import (
    AUDIO_EXTENSIONS,
    AudioIndex,
    BuildOptions,
    ClipRecord,
    MetadataError,
    PathLike,
    PrepareError,
    PrepareReport,
    add_split_argument,
    build_manifest,
    read_csv,
)

NAME = "folder"
HELP = "a folder of audio files with sidecar .txt captions and/or a file_name,caption CSV"
NAME_COLUMNS = ("file_name", "path")


def default_source(folder: PathLike) -> str:
    """The folder's name as a source name: lower-case, runs of other characters as ``_``."""
    return re.sub(r"[^0-9a-z]+", "_", Path(folder).name.lower()).strip("_") or "folder"


def sidecar_captions(audio_path: str) -> list[str]:
    """Non-empty lines of the ``.txt`` file with the audio file's stem, if there is one."""
    text_path = os.path.splitext(audio_path)[0] + ".txt"
    if not os.path.isfile(text_path):
        return []
    with open(text_path, encoding="utf-8", errors="replace") as f:
        return [line.strip() for line in f if line.strip()]


def clip_key(name: str) -> str:
    """A file's id part: its path relative to the folder, ``/``-separated, audio extension dropped."""
    name = os.path.basename(name) if os.path.isabs(name) else Path(name.replace("\\", "/")).as_posix()
    root, ext = os.path.splitext(name)
    return root if ext.lower() in AUDIO_EXTENSIONS else name


def csv_captions(csv_path: PathLike, index: AudioIndex) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Captions of the CSV by found file path, and by name for rows whose file is absent."""
    rows = read_csv(csv_path, ("caption",))
    columns = list(rows[0]) if rows else []
    name_column = next((c for c in NAME_COLUMNS if c in columns), None)
    if rows and name_column is None:
        raise MetadataError(f"{csv_path}: missing column 'file_name' (or 'path') (found: {', '.join(columns)})")
    found: dict[str, list[str]] = {}
    absent: dict[str, list[str]] = {}
    for row in rows:
        name = row[name_column]
        paths = index.find_all(name) if name else []
        for path in paths:  # a name without its extension captions every file of that stem
            found.setdefault(path, []).append(row["caption"])
        if not paths:
            absent.setdefault(name, []).append(row["caption"])
    return found, absent


def prepare_folder(
    audio_dir: PathLike,
    out: PathLike,
    captions_csv: PathLike | None = None,
    source: str | None = None,
    split: str | None = None,
    skip_uncaptioned: bool = False,
    options: BuildOptions = BuildOptions(),
) -> PrepareReport:
    """Write the manifest of every audio file under ``audio_dir`` with its captions."""
    index = AudioIndex(audio_dir)
    if not index.root.is_dir():
        raise PrepareError(f"{audio_dir}: audio folder not found")
    source = source or default_source(index.root)
    from_csv, absent = csv_captions(captions_csv, index) if captions_csv else ({}, {})
    records: list[ClipRecord] = []
    skipped = 0
    paths = index.paths()
    stems = Counter(clip_key(index.relative(path)) for path in paths)
    for path in paths:
        rel = index.relative(path)
        key = clip_key(rel) if stems[clip_key(rel)] == 1 else rel  # clip.mp3 + clip.ogg: both, ids with extension
        captions = sidecar_captions(path) + from_csv.get(path, [])
        if skip_uncaptioned and not captions:
            skipped += 1
            continue
        records.append(
            ClipRecord(id=f"{source}_{key}", names=[rel], captions=captions, split=split, source=source, path=path)
        )
    for name, captions in absent.items():
        records.append(
            ClipRecord(
                id=f"{source}_{clip_key(name)}",
                names=[name],
                captions=captions,
                split=split,
                source=source,
                searched=str(index.root),
            )
        )
    return build_manifest(records, out, options, skipped=skipped)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audio-dir", required=True, help="folder of audio files (searched recursively)")
    parser.add_argument("--captions-csv", help="CSV with file_name (or path) and caption columns")
    parser.add_argument("--source", help="source name and id prefix (default: the folder's name)")
    add_split_argument(parser)
    parser.add_argument("--skip-uncaptioned", action="store_true", help="leave out files without any caption")


def run(args: argparse.Namespace, out: PathLike, options: BuildOptions) -> PrepareReport:
    return prepare_folder(
        args.audio_dir, out, args.captions_csv, args.source, args.split, args.skip_uncaptioned, options
    )
