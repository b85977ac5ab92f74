"""Clotho: ``clotho_captions_{development,validation,evaluation}.csv`` to a manifest.

Input format (https://zenodo.org/records/4783391)::

    file_name,caption_1,caption_2,caption_3,caption_4,caption_5
    Radio Garble.wav,A radio dispatcher and an officer are communicating over the radio.,...

with the audio of each split in its own folder (``development/``, ``validation/``,
``evaluation/``). Entries: id ``clotho_{file stem}``, captions = every non-empty
``caption_N`` column in order, split from the CSV's name (development -> train,
validation -> val, evaluation -> test) unless given. Required: ``file_name`` and
``caption_1``.
"""

from __future__ import annotations

import argparse
import re
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
    read_csv,
    split_from_filename,
)

NAME = "clotho"
HELP = "Clotho captions CSV (file_name,caption_1..caption_5)"
SOURCE = "clotho"
REQUIRED_COLUMNS = ("file_name", "caption_1")
SPLIT_WORDS = {
    "development": "train",
    "dev": "train",
    "train": "train",
    "validation": "val",
    "val": "val",
    "evaluation": "test",
    "eval": "test",
    "test": "test",
}


def caption_columns(row: dict[str, str]) -> list[str]:
    """The ``caption_N`` columns of a row, by N."""
    found = [(int(m.group(1)), key) for key in row if (m := re.fullmatch(r"caption_(\d+)", key))]
    return [key for _, key in sorted(found)]


def prepare_clotho(
    csv_paths: Sequence[PathLike],
    audio_dirs: Sequence[PathLike],
    out: PathLike,
    split: str | None = None,
    options: BuildOptions = BuildOptions(),
) -> PrepareReport:
    """Write the manifest of Clotho caption CSVs; give one audio folder per CSV, in order
    (or one folder holding all splits' files)."""
    records: list[ClipRecord] = []
    for csv_path, index in index_pairs(csv_paths, audio_dirs):
        clip_split = split or split_from_filename(csv_path, SPLIT_WORDS)
        clips = [
            ClipRecord(
                id=f"{SOURCE}_{file_stem(row['file_name'])}",
                names=[row["file_name"]],
                captions=[row[key] for key in caption_columns(row)],
                split=clip_split,
                source=SOURCE,
            )
            for row in read_csv(csv_path, REQUIRED_COLUMNS)
        ]
        records += locate(clips, index)
    return build_manifest(records, out, options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--csv", nargs="+", required=True, help="clotho_captions_<split>.csv file(s)")
    add_audio_dirs_argument(parser, per="CSV")
    add_split_argument(parser, default="from each CSV's name")


def run(args: argparse.Namespace, out: PathLike, options: BuildOptions) -> PrepareReport:
    return prepare_clotho(args.csv, args.audio_dir, out, args.split, options)
