"""AudioSet: segment CSVs plus the class index to a manifest with label-built captions.

Input format (https://research.google.com/audioset/download.html). Segment files
(``balanced_train_segments.csv``, ``unbalanced_train_segments.csv``, ``eval_segments.csv``)
start with three ``#`` comment lines, then one segment per line::

    # Segments csv created Sun Mar  5 10:54:31 2017
    # num_ytids=22160, num_segs=22160, num_unique_labels=527, num_positive_labels=52882
    # YTID, start_seconds, end_seconds, positive_labels
    --PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"

``class_labels_indices.csv`` maps machine ids to display names (quoted, may hold commas)::

    index,mid,display_name
    0,/m/09x0r,"Speech"

Entries: id ``audioset_{YTID}_{start}``, labels = display names (an unknown mid is kept as
is), split from the file name (``*train*`` -> train, ``eval`` -> test) unless given.
Caption: ``caption_template`` with ``{labels}`` replaced by the label names in row order,
each lower-cased and cut at its first comma, joined as "a, b and c". Default template
"The sound of {labels}": labels Dog, Bark and "Domestic animals, pets" give
"The sound of dog, bark and domestic animals".

Files are looked for as ``Y{YTID}``, ``{YTID}``, ``{YTID}_{start}``, ``{YTID}_{start}_{end}``
(times as 30, 30.0, 30.000; with and without ``Y``) with any audio extension, or by
``name_template`` (fields ``{ytid} {start_seconds} {end_seconds} {start} {end}``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from data.preparers.manifest_builder import (
    BuildOptions,
    ClipRecord,
    MetadataError,
    PathLike,
    PrepareReport,
    add_audio_dirs_argument,
    add_split_argument,
    build_manifest,
    csv_records,
    format_template,
    index_pairs,
    locate,
    read_csv,
    seconds_text,
    split_from_filename,
    youtube_clip_names,
)

NAME = "audioset"
HELP = 'AudioSet segment CSVs (YTID, start, end, "mids") + class_labels_indices.csv'
SOURCE = "audioset"
SEGMENT_COLUMNS = ("YTID", "start_seconds", "end_seconds", "positive_labels")
SPLIT_WORDS = {"train": "train", "eval": "test", "test": "test", "val": "val", "valid": "val"}
DEFAULT_CAPTION_TEMPLATE = "The sound of {labels}"


def read_class_labels(path: PathLike) -> dict[str, str]:
    """``mid -> display_name`` from ``class_labels_indices.csv``."""
    return {row["mid"]: row["display_name"] for row in read_csv(path, ("mid", "display_name"))}


def read_segments(path: PathLike) -> list[tuple[str, str, str, list[str]]]:
    """``(YTID, start_seconds, end_seconds, [mid, ...])`` per segment line; ``#`` lines skipped."""
    path = Path(path)
    if not path.is_file():
        raise MetadataError(f"{path}: metadata file not found")
    segments = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        for lineno, row in csv_records(path, f):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if len(row) < len(SEGMENT_COLUMNS):
                raise MetadataError(
                    f"{path}:{lineno}: missing column '{SEGMENT_COLUMNS[len(row)]}' "
                    f"(expected {', '.join(SEGMENT_COLUMNS)})"
                )
            ytid, start, end, mids = (v.strip() for v in row[:4])
            segments.append((ytid, start, end, [m.strip() for m in mids.split(",") if m.strip()]))
    return segments


def labels_caption(labels: Sequence[str], template: str = DEFAULT_CAPTION_TEMPLATE) -> str:
    """A readable caption from display names (see the module docstring); "" without labels."""
    names = list(dict.fromkeys(label.split(",")[0].strip().lower() for label in labels if label.strip()))
    if not names:
        return ""
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return template.replace("{labels}", joined)


def prepare_audioset(
    segment_csvs: Sequence[PathLike],
    class_labels_csv: PathLike,
    audio_dirs: Sequence[PathLike],
    out: PathLike,
    split: str | None = None,
    name_template: str | None = None,
    caption_template: str = DEFAULT_CAPTION_TEMPLATE,
    options: BuildOptions = BuildOptions(),
) -> PrepareReport:
    """Write the manifest of AudioSet segment CSVs; one audio folder for all, or one per CSV."""
    display = read_class_labels(class_labels_csv)
    records: list[ClipRecord] = []
    for csv_path, index in index_pairs(segment_csvs, audio_dirs):
        clip_split = split or split_from_filename(csv_path, SPLIT_WORDS)
        clips = []
        for ytid, start_raw, end_raw, mids in read_segments(csv_path):
            start, end = seconds_text(start_raw), seconds_text(end_raw)
            labels = [display.get(mid, mid) for mid in mids]
            if name_template:
                fields = {"ytid": ytid, "start_seconds": start_raw, "end_seconds": end_raw, "start": start, "end": end}
                names = [format_template(name_template, fields)]
            else:
                stems = youtube_clip_names(ytid, start, end)
                names = ["Y" + ytid] + stems
            caption = labels_caption(labels, caption_template)
            clips.append(
                ClipRecord(
                    id=f"{SOURCE}_{ytid}_{start}",
                    names=names,
                    captions=[caption] if caption else [],
                    labels=labels,
                    split=clip_split,
                    source=SOURCE,
                )
            )
        records += locate(clips, index)
    return build_manifest(records, out, options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--segments", nargs="+", required=True, help="balanced_train_segments.csv, eval_segments.csv, ..."
    )
    parser.add_argument("--labels", required=True, help="class_labels_indices.csv")
    add_audio_dirs_argument(parser, per="segment CSV")
    add_split_argument(parser, default="train for *train*, test for eval")
    parser.add_argument(
        "--name-template",
        help="file name of a clip, e.g. 'Y{ytid}.wav' (fields: {ytid} {start_seconds} {end_seconds} {start} {end})",
    )
    parser.add_argument(
        "--caption-template",
        default=DEFAULT_CAPTION_TEMPLATE,
        help="caption with {labels} replaced by the joined label names (default: %(default)r)",
    )


def run(args: argparse.Namespace, out: PathLike, options: BuildOptions) -> PrepareReport:
    return prepare_audioset(
        args.segments, args.labels, args.audio_dir, out, args.split, args.name_template, args.caption_template, options
    )
