"""WavCaps-style JSON (FreeSound, BBC Sound Effects, SoundBible, AudioSet_SL) to a manifest.

Input format (https://huggingface.co/datasets/cvssp/WavCaps, ``json_files/*/*.json``)::

    {"num_captions_per_audio": 1,
     "data": [{"id": "180913", "file_name": "UK Mello.wav", "caption": "...",
               "duration": 3.2, "tags": ["..."], "author": "...", ...}, ...]}

Keys differ per source: all have ``id``, ``caption`` and ``duration``; FreeSound adds
``file_name``, ``tags``, ``href``; BBC adds ``description`` and ``category``; SoundBible
adds ``title``, ``href``; AudioSet_SL ids end in ``.wav`` (``"Y7fmOlUlwoNg.wav"``) although
the released audio is FLAC. Optional ``audio`` holds the authors' own path. A bare list of
items (older SoundBible file) is read too, and files with ``num_captions_per_audio`` > 1
(the WavCaps repo's Clotho/AudioCaps JSON) give ``caption_1`` .. ``caption_N``.

Entries: source ``wavcaps_{subset}`` (``fsd*`` -> freesound, ``bbc*`` -> bbc, ``sb*`` ->
soundbible, ``as*`` -> audioset_sl, from the JSON's name; else ``wavcaps``) unless
``source`` is given; id ``{source}_{id}`` (audio extension dropped); captions; labels from
``tags`` and ``category``; split only when given. Files are looked for as ``{id}``, then
``file_name``, then the base name of ``audio``, each with any audio extension.
"""

from __future__ import annotations

import argparse
from typing import Any, Sequence

from data.preparers.manifest_builder import (
    BuildOptions,
    ClipRecord,
    MetadataError,
    PathLike,
    PrepareReport,
    add_audio_dirs_argument,
    add_split_argument,
    build_manifest,
    check_columns,
    file_stem,
    index_pairs,
    locate,
    parse_labels,
    parse_seconds,
    read_json,
    split_from_filename,
)

NAME = "wavcaps"
HELP = 'WavCaps-style JSON ({"data": [{"id", "caption", "duration", ...}]})'
SUBSET_WORDS = {
    "fsd": "freesound",
    "freesound": "freesound",
    "bbc": "bbc",
    "sb": "soundbible",
    "soundbible": "soundbible",
    "as": "audioset_sl",
    "audioset": "audioset_sl",
}


def source_name(json_path: PathLike) -> str:
    """``wavcaps_{subset}`` from the JSON's file name, or ``wavcaps`` when it names none."""
    subset = split_from_filename(json_path, SUBSET_WORDS)
    return f"wavcaps_{subset}" if subset else "wavcaps"


def read_items(json_path: PathLike) -> tuple[list[dict[str, Any]], int]:
    """The item dicts of a WavCaps JSON and its ``num_captions_per_audio`` (1 by default)."""
    obj = read_json(json_path)
    if isinstance(obj, dict):
        if "data" not in obj:
            raise MetadataError(f"{json_path}: missing key 'data' (found: {', '.join(obj) or 'none'})")
        items, per_audio = obj["data"], obj.get("num_captions_per_audio", 1)
    else:
        items, per_audio = obj, 1
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise MetadataError(f"{json_path}: 'data' must be a list of objects")
    return items, int(per_audio)


def item_captions(json_path: PathLike, position: int, item: dict[str, Any], per_audio: int) -> list[str]:
    """``caption`` (a string or list), or ``caption_1`` .. ``caption_N``."""
    if "caption" in item:
        value = item["caption"]
        return [str(c) for c in value] if isinstance(value, list) else [str(value)]
    keys = [f"caption_{i}" for i in range(1, max(per_audio, 1) + 1)]
    check_columns(f"{json_path}: item {position}", list(item), keys if per_audio > 1 else ["caption"], "key")
    return [str(item[k]) for k in keys]


def item_record(
    json_path: PathLike, position: int, item: dict[str, Any], per_audio: int, source: str, split: str | None
) -> ClipRecord:
    """The record of one JSON item."""
    check_columns(f"{json_path}: item {position}", list(item), ["id"], "key")
    stem = file_stem(str(item["id"]))
    names = [stem] + [file_stem(str(item[k])) for k in ("file_name", "audio") if item.get(k)]
    labels = parse_labels(item.get("tags")) + parse_labels(item.get("category"))
    return ClipRecord(
        id=f"{source}_{stem}",
        names=names,
        captions=item_captions(json_path, position, item, per_audio),
        labels=labels,
        split=split,
        duration=parse_seconds(item.get("duration")),
        source=source,
    )


def prepare_wavcaps(
    json_paths: Sequence[PathLike],
    audio_dirs: Sequence[PathLike],
    out: PathLike,
    source: str | None = None,
    split: str | None = None,
    options: BuildOptions = BuildOptions(),
) -> PrepareReport:
    """Write the manifest of WavCaps JSON files; one audio folder for all, or one per JSON.

    Raises ``MetadataError`` naming the file and item for an item without ``id`` or caption.
    """
    records: list[ClipRecord] = []
    for json_path, index in index_pairs(json_paths, audio_dirs):
        items, per_audio = read_items(json_path)
        name = source or source_name(json_path)
        records += locate(
            [item_record(json_path, i, item, per_audio, name, split) for i, item in enumerate(items)], index
        )
    return build_manifest(records, out, options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", nargs="+", required=True, help="fsd_final.json, bbc_final.json, ...")
    add_audio_dirs_argument(parser, per="JSON")
    parser.add_argument("--source", help="source name and id prefix (default: wavcaps_<subset> from the JSON name)")
    add_split_argument(parser)


def run(args: argparse.Namespace, out: PathLike, options: BuildOptions) -> PrepareReport:
    return prepare_wavcaps(args.json, args.audio_dir, out, args.source, args.split, options)
