"""BBC Sound Effects: the archive's ``BBCSoundEffects.csv`` to a manifest.

Input format (https://sound-effects.bbcrewind.co.uk, the CSV of the whole archive)::

    location,description,secs,category,CDNumber,CDName,tracknum
    07070001.wav,"Boat, motor: approach and stop.",158,Boats: Motor,EC1T5,Boats,1

``location`` is the audio file's name; WavCaps and other mirrors ship FLAC under the same
stem, so every audio extension is tried. Entries: id ``bbc_{stem of location}``, caption =
``description``, labels = ``category``, metadata duration = ``secs`` (used with
``--no-probe``), split only when given. Required columns: ``location``, ``description``
(header names are matched case-insensitively).
"""

from __future__ import annotations

import argparse
from typing import Sequence

from data.preparers.manifest_builder import (
    BuildOptions,
    ClipRecord,
    PathLike,
    PrepareReport,
    add_audio_dirs_argument,
    add_split_argument,
    build_manifest,
    file_stem,
    index_pairs,
    locate,
    parse_labels,
    parse_seconds,
    read_csv,
)

NAME = "bbc"
HELP = "BBC Sound Effects CSV (location, description, secs, category, CDNumber, CDName, tracknum)"
SOURCE = "bbc"
REQUIRED_COLUMNS = ("location", "description")


def row_record(row: dict[str, str], split: str | None) -> ClipRecord:
    """The record of one CSV row."""
    location = row["location"]
    return ClipRecord(
        id=f"{SOURCE}_{file_stem(location)}",
        names=[location],
        captions=[row["description"]],
        labels=parse_labels(row.get("category", "")),
        split=split,
        duration=parse_seconds(row.get("secs")),
        source=SOURCE,
    )


def prepare_bbc(
    csv_paths: Sequence[PathLike],
    audio_dirs: Sequence[PathLike],
    out: PathLike,
    split: str | None = None,
    options: BuildOptions = BuildOptions(),
) -> PrepareReport:
    """Write the manifest of BBC Sound Effects CSVs; one audio folder for all, or one per CSV."""
    records: list[ClipRecord] = []
    for csv_path, index in index_pairs(csv_paths, audio_dirs):
        records += locate([row_record(row, split) for row in read_csv(csv_path, REQUIRED_COLUMNS)], index)
    return build_manifest(records, out, options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--csv", nargs="+", required=True, help="BBCSoundEffects.csv")
    add_audio_dirs_argument(parser, per="CSV")
    add_split_argument(parser)


def run(args: argparse.Namespace, out: PathLike, options: BuildOptions) -> PrepareReport:
    return prepare_bbc(args.csv, args.audio_dir, out, args.split, options)
