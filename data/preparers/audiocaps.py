"""AudioCaps: the official ``train.csv`` / ``val.csv`` / ``test.csv`` to a manifest.

Input format (https://github.com/cdjkim/audiocaps, ``dataset/*.csv``)::

    audiocap_id,youtube_id,start_time,caption
    91139,r1nicOVtvkQ,130,A woman talks nearby as water pours

train has one row per clip; val and test have five rows per clip (one per caption), which
become one entry with five captions. A clip is a ``(youtube_id, start_time)`` pair; its id
is ``audiocaps_{youtube_id}_{start_time}`` (start in whole seconds when whole), and its
split comes from the CSV's name (train / val / test) unless ``split`` is given.

Download tools name the files differently; without ``name_template`` each clip is looked
for (in this order) as ``{youtube_id}``, ``{youtube_id}_{start}``,
``{youtube_id}_{start}_{end}`` (times as 30, 30.0 or 30.000, end = start + 10), the same
with a ``Y`` prefix, then ``{audiocap_id}`` of each of its rows; every name with any of
.wav .flac .mp3 .ogg, in the audio folder or any subfolder. ``name_template`` (e.g.
``"{youtube_id}_{start_time}.wav"``) replaces that list; its fields are the CSV columns
plus ``{start}`` (the normalised start time); without an extension every one is tried.
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
    format_template,
    index_pairs,
    locate,
    merge_records,
    read_csv,
    seconds_text,
    split_from_filename,
    youtube_clip_names,
)

NAME = "audiocaps"
HELP = "AudioCaps train/val/test CSV (audiocap_id,youtube_id,start_time,caption)"
SOURCE = "audiocaps"
REQUIRED_COLUMNS = ("youtube_id", "start_time", "caption")
SPLIT_WORDS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def clip_record(row: dict[str, str], split: str | None, name_template: str | None = None) -> ClipRecord:
    """The record of one CSV row (rows of one clip share the id and are merged later)."""
    ytid, start = row["youtube_id"], seconds_text(row["start_time"])
    if name_template:
        names = [format_template(name_template, {**row, "start": start})]
    else:
        names = youtube_clip_names(ytid, start) + [row.get("audiocap_id", "")]
    return ClipRecord(id=f"{SOURCE}_{ytid}_{start}", names=names, captions=[row["caption"]], split=split, source=SOURCE)


def prepare_audiocaps(
    csv_paths: Sequence[PathLike],
    audio_dirs: Sequence[PathLike],
    out: PathLike,
    split: str | None = None,
    name_template: str | None = None,
    options: BuildOptions = BuildOptions(),
) -> PrepareReport:
    """Write the manifest of AudioCaps CSVs; one audio folder for all, or one per CSV.

    Raises ``MetadataError`` when a CSV lacks ``youtube_id``, ``start_time`` or ``caption``.
    """
    records: list[ClipRecord] = []
    for csv_path, index in index_pairs(csv_paths, audio_dirs):
        rows = read_csv(csv_path, REQUIRED_COLUMNS)
        clip_split = split or split_from_filename(csv_path, SPLIT_WORDS)
        records += locate(merge_records(clip_record(row, clip_split, name_template) for row in rows), index)
    return build_manifest(records, out, options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--csv", nargs="+", required=True, help="train.csv, val.csv and/or test.csv")
    add_audio_dirs_argument(parser, per="CSV")
    add_split_argument(parser, default="from each CSV's name")
    parser.add_argument(
        "--name-template",
        help="file name of a clip, e.g. '{youtube_id}_{start_time}.wav' "
        "(fields: CSV columns and {start}); default: try the common conventions",
    )


def run(args: argparse.Namespace, out: PathLike, options: BuildOptions) -> PrepareReport:
    return prepare_audiocaps(args.csv, args.audio_dir, out, args.split, args.name_template, options)
