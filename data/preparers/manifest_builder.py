"""Shared machinery of the dataset preparers: metadata reading, audio lookup, probing, writing.

Every preparer (1) parses its metadata into ``ClipRecord`` objects (candidate file names,
captions, labels, split), (2) ``locate``s them in an ``AudioIndex`` (one scan of the audio
folder, then dictionary look-ups, so naming conventions and extensions are cheap to try),
and (3) calls ``build_manifest``: probe each header for its duration, write the JSONL
manifest, and list each clip whose file is missing or unreadable in ``<out>.missing.txt``
(``id<TAB>file<TAB>reason`` per line). Malformed metadata raises ``MetadataError``.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import logging
import os
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from audioldm.audio.io import AudioReadError, audio_info, not_a_file
from audioldm.safe_output import atomic_file
from data.manifest import ManifestEntry, write_manifest

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")
PathLike = str | os.PathLike


class PrepareError(ValueError):
    """A problem with a preparer's input (a bad option); the message is one line."""


class MetadataError(PrepareError):
    """A metadata file that cannot be used; the message names the file and the problem."""


@dataclass
class ClipRecord:
    """One clip as the metadata describes it, before and after it is looked up on disk.

    ``names`` are candidate file names (or paths relative to the audio folder), best first;
    a name without an audio extension is tried with each of ``AUDIO_EXTENSIONS``.
    ``duration`` is the metadata's own value, used only when headers are not probed.
    """

    id: str
    names: list[str]
    captions: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    split: str | None = None
    duration: float | None = None
    source: str = ""
    path: str | None = None  # set by ``locate`` when a file is found
    searched: str = ""  # where ``locate`` looked, for the missing-file log


@dataclass(frozen=True)
class BuildOptions:
    """How ``build_manifest`` treats the located files."""

    probe: bool = True  # read each header for the duration (and to catch unreadable files)
    relative_paths: bool = False  # write paths relative to the manifest's folder
    workers: int = 8  # threads probing headers


@dataclass
class PrepareReport:
    """What a preparer did: entries written, clips left out and why, where the log is."""

    manifest: Path
    written: int = 0
    missing: int = 0
    unreadable: int = 0
    skipped: int = 0  # left out on purpose (e.g. no caption with ``--skip-uncaptioned``)
    log: Path | None = None

    def summary(self) -> str:
        """One line: ``wrote N entries to X; M missing, U unreadable[, S skipped][ (listed in L)]``."""
        skipped = f", {self.skipped} skipped" if self.skipped else ""
        listed = f" (listed in {self.log})" if self.log is not None else ""
        return (
            f"wrote {self.written} entries to {self.manifest}; {self.missing} missing, "
            f"{self.unreadable} unreadable{skipped}{listed}"
        )


# ----------------------------------------------------------------------------- metadata


def read_csv(path: PathLike, required: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a CSV file with a header row, as dicts keyed by lower-cased column names.

    Spaces after separators and a UTF-8 byte-order mark are tolerated; values are stripped.
    Raises ``MetadataError`` naming the file when it is absent or lacks a required column, and the
    line of a quoted value that runs over several lines (an unterminated quote would swallow rows).
    """
    path = Path(path)
    if not path.is_file():
        reason = not_a_file(path, "metadata file") if path.exists() else "metadata file not found"
        raise MetadataError(f"{path}: {reason}")
    with path.open(encoding="utf-8-sig", newline="") as f:
        records = csv_records(path, f)
        _, header = next(records, (0, None))
        if header is None:
            raise MetadataError(f"{path}: empty file, expected a header row")
        columns = [c.strip().lower() for c in header]
        check_columns(path, columns, required)
        rows = []
        for _, values in records:
            if not any(v.strip() for v in values):
                continue
            values = [v.strip() for v in values] + [""] * (len(columns) - len(values))
            rows.append(dict(zip(columns, values)))
    return rows


def csv_records(path: PathLike, f: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, values) of each CSV record in the open file ``f`` (spaces after separators skipped).

    A quoted value that runs over several lines is a ``MetadataError`` naming the line where it starts:
    an unterminated quote would otherwise swallow every row up to the next quote character."""
    reader = csv.reader(f, skipinitialspace=True)
    start = 1
    try:
        for values in reader:
            if reader.line_num > start and any("\n" in v or "\r" in v for v in values):
                raise MetadataError(
                    f"{path}:{start}: a quoted value runs on to line {reader.line_num} "
                    f"(an unterminated quote?): close the quote, or put the value on one line"
                )
            yield start, values
            start = reader.line_num + 1
    except csv.Error as e:
        raise MetadataError(f"{path}:{reader.line_num}: not valid CSV ({e})") from None


def check_columns(path: PathLike, columns: Sequence[str], required: Sequence[str], kind: str = "column") -> None:
    """Raise ``MetadataError`` naming ``path`` and the first required column not in ``columns``."""
    missing = [c for c in required if c not in columns]
    if missing:
        raise MetadataError(f"{path}: missing {kind} '{missing[0]}' (found: {', '.join(columns) or 'none'})")


def read_json(path: PathLike) -> Any:
    """Parsed JSON of ``path``; ``MetadataError`` when absent or not valid JSON."""
    path = Path(path)
    if not path.is_file():
        reason = not_a_file(path, "metadata file") if path.exists() else "metadata file not found"
        raise MetadataError(f"{path}: {reason}")
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise MetadataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def split_from_filename(path: PathLike, table: dict[str, str]) -> str | None:
    """The split a metadata file's name implies: the first word of its stem found in ``table``.

    ``split_from_filename("clotho_captions_development.csv", {"development": "train"})``
    gives ``"train"``; words are separated by anything that is not a letter or digit.
    """
    for word in re.split(r"[^0-9a-z]+", Path(path).stem.lower()):
        if word in table:
            return table[word]
    return None


def parse_labels(value: Any) -> list[str]:
    """Labels from a metadata field: a list, a Python/JSON list written as text, or one string."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            pass
    if isinstance(value, (list, tuple)):
        return unique(str(v).strip() for v in value)
    return [] if value is None else unique([str(value).strip()])


def parse_seconds(text: Any) -> float | None:
    """A duration or time from metadata as float, or None when absent or not a number."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value and value >= 0 else None  # drop NaN and negatives


def seconds_text(text: str) -> str:
    """A time written without needless decimals: ``"30.000"`` -> ``"30"``, ``"7.50"`` -> ``"7.5"``."""
    value = parse_seconds(text)
    if value is None:
        return text.strip()
    return str(int(value)) if value.is_integer() else f"{value:g}"


def youtube_clip_names(ytid: str, start: str, end: str | None = None) -> list[str]:
    """File stems YouTube-clip download tools use for a segment of video ``ytid``.

    ``{ytid}``, ``{ytid}_{start}`` and ``{ytid}_{start}_{end}`` with the times written as
    ``30``, ``30.0`` and ``30.000``, then all of them again with AudioSet's ``Y`` prefix.
    ``end`` defaults to ``start + 10`` s.
    """
    t0 = parse_seconds(start) or 0.0
    t1 = parse_seconds(end) if end is not None else None
    t1 = t0 + 10.0 if t1 is None else t1
    spell = (lambda v: seconds_text(str(v)), "{:.1f}".format, "{:.3f}".format)
    pairs = list(dict.fromkeys((f(t0), f(t1)) for f in spell))
    stems = [ytid] + [f"{ytid}_{s}" for s, _ in pairs] + [f"{ytid}_{s}_{e}" for s, e in pairs]
    return unique(stems + ["Y" + stem for stem in stems])


def format_template(template: str, fields: dict[str, str]) -> str:
    """``template.format(**fields)``; an unknown field is a ``PrepareError`` listing the known ones."""
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError) as e:
        known = ", ".join("{%s}" % k for k in fields)
        raise PrepareError(f"name template {template!r}: bad field {e} (known: {known})") from None


def unique(items: Iterable[str]) -> list[str]:
    """Items in first-seen order without repeats or empty strings."""
    return list(dict.fromkeys(item for item in items if item))


def merge_records(records: Iterable[ClipRecord]) -> list[ClipRecord]:
    """Fold records with the same id into the first one (captions, labels, names joined).

    This groups e.g. AudioCaps val/test rows (one row per caption) into one clip. The first
    record's split, duration, source and path win.
    """
    merged: dict[str, ClipRecord] = {}
    for record in records:
        first = merged.get(record.id)
        if first is None:
            merged[record.id] = ClipRecord(
                record.id,
                unique(record.names),
                unique(c.strip() for c in record.captions),
                unique(record.labels),
                record.split,
                record.duration,
                record.source,
                record.path,
                record.searched,
            )
            continue
        first.names = unique(first.names + record.names)
        first.captions = unique(first.captions + [c.strip() for c in record.captions])
        first.labels = unique(first.labels + record.labels)
        first.path = first.path or record.path
    return list(merged.values())


def file_stem(name: str) -> str:
    """``name`` without folders and without an audio extension (other dots are kept)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    root, ext = os.path.splitext(base)
    return root if ext.lower() in AUDIO_EXTENSIONS else base


# ----------------------------------------------------------------------------- audio lookup


def _key(name: str) -> str:
    """Lookup key of a file name or relative path: NFC unicode, ``/`` separators, no leading
    ``./``, lower-case audio extension."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/"))
    while name.startswith("./"):
        name = name[2:]
    root, ext = os.path.splitext(name)
    return root + ext.lower() if ext.lower() in AUDIO_EXTENSIONS else name


class AudioIndex:
    """Every audio file under ``root`` (recursively, following links once), found by name.

    ``find(["abc", "Yabc.wav"])`` tries ``abc.wav``, ``abc.flac``, ..., then ``Yabc.wav``,
    ``Yabc.flac``, ...: a name with an audio extension is tried as written first, then with
    the other extensions. A name with a ``/`` is a path relative to ``root``; a bare name
    matches a file in any subfolder (the first in sorted order when several share it).
    """

    def __init__(self, root: PathLike):
        self.root = Path(root).resolve()
        self._by_rel: dict[str, str] = {}
        self._by_name: dict[str, str] = {}
        if not self.root.is_dir():
            return
        seen: set[str] = set()
        for folder, dirs, files in os.walk(self.root, followlinks=True):
            real = os.path.realpath(folder)
            if real in seen:
                dirs.clear()
                continue
            seen.add(real)
            dirs.sort()
            for name in sorted(files):
                if os.path.splitext(name)[1].lower() not in AUDIO_EXTENSIONS:
                    continue
                full = os.path.join(folder, name)
                rel = os.path.relpath(full, self.root)
                self._by_rel.setdefault(_key(rel), full)
                self._by_name.setdefault(_key(name), full)

    def paths(self) -> list[str]:
        """Absolute paths of all indexed files, sorted by relative path."""
        return [self._by_rel[k] for k in sorted(self._by_rel)]

    def relative(self, path: str) -> str:
        """``path`` relative to the root, with ``/`` separators."""
        return Path(os.path.relpath(path, self.root)).as_posix()

    def find(self, names: Iterable[str]) -> str | None:
        """Absolute path of the first candidate that exists, or None."""
        for name in names:
            found = self.find_all(name)
            if found:
                return found[0]
        return None

    def find_all(self, name: str) -> list[str]:
        """Every file ``name`` stands for: the file as written when it exists, else each file of its stem
        with another audio extension (``clip`` finds ``clip.mp3`` and ``clip.ogg``), in extension order."""
        if os.path.isabs(name):
            if os.path.isfile(name):
                return [name]
            name = os.path.basename(name)
        table = self._by_rel if "/" in name.replace("\\", "/") else self._by_name
        spellings = _spellings(name)
        if os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS and _key(name) in table:
            return [table[_key(name)]]
        return unique(table[_key(c)] for c in spellings if _key(c) in table)


def _spellings(name: str) -> list[str]:
    """``name`` as written, then with each other audio extension (or each, if it has none)."""
    root, ext = os.path.splitext(name)
    if ext.lower() in AUDIO_EXTENSIONS:
        return [name] + [root + e for e in AUDIO_EXTENSIONS if e != ext.lower()]
    return [name + e for e in AUDIO_EXTENSIONS]


def index_pairs(metadata: Sequence[PathLike], audio_dirs: Sequence[PathLike]) -> list[tuple[Path, AudioIndex]]:
    """Pair each metadata file with the index of its audio folder.

    One folder serves all metadata files; otherwise give one folder per file, in order.
    Each distinct folder is scanned once.
    """
    if not metadata:
        raise PrepareError("no metadata file given")
    if len(audio_dirs) not in (1, len(metadata)):
        raise PrepareError(
            f"give one audio folder, or one per metadata file "
            f"({len(metadata)} metadata files, {len(audio_dirs)} folders)"
        )
    indexes: dict[Path, AudioIndex] = {}
    pairs = []
    for i, meta in enumerate(metadata):
        folder = Path(audio_dirs[i if len(audio_dirs) > 1 else 0]).resolve()
        if folder not in indexes:
            indexes[folder] = AudioIndex(folder)
            if not folder.is_dir():
                log.warning("audio folder %s does not exist: every clip will be missing", folder)
        pairs.append((Path(meta), indexes[folder]))
    return pairs


def locate(records: Iterable[ClipRecord], index: AudioIndex) -> list[ClipRecord]:
    """Set each record's ``path`` to the first of its ``names`` found in ``index``."""
    records = list(records)
    for record in records:
        if record.path is None:
            record.path = index.find(record.names)
            record.searched = str(index.root)
    return records


# ----------------------------------------------------------------------------- writing


def _probe(path: str) -> tuple[float | None, str | None]:
    """(duration, None) for a readable header, else (None, reason)."""
    try:
        info = audio_info(path)
    except AudioReadError as e:
        return None, e.reason
    if info.frames <= 0:
        return None, "empty file (0 samples)"
    return info.duration, None


def _missing_reason(record: ClipRecord) -> str:
    tried = ", ".join(record.names[:4]) + (", ..." if len(record.names) > 4 else "")
    where = f" in {record.searched}" if record.searched else ""
    return f"file not found{where} (names tried, any of {'/'.join(AUDIO_EXTENSIONS)}: {tried})"


def build_manifest(
    records: Iterable[ClipRecord], out: PathLike, options: BuildOptions = BuildOptions(), skipped: int = 0
) -> PrepareReport:
    """Write the located ``records`` as a manifest at ``out`` and report what was left out.

    Records without a ``path`` are missing; with ``options.probe`` a file whose header
    cannot be read is unreadable. Both are listed in ``<out>.missing.txt`` (removed when
    there is nothing to list). Ids are unique: records sharing one are merged first.
    """
    out = Path(out)
    records = merge_records(records)
    found = [r for r in records if r.path is not None]
    problems = [(r.id, r.names[0] if r.names else "", _missing_reason(r)) for r in records if r.path is None]
    report = PrepareReport(manifest=out, missing=len(problems), skipped=skipped)
    if options.probe:
        with ThreadPoolExecutor(max(1, options.workers)) as pool:
            probes = list(pool.map(_probe, [r.path for r in found]))
    else:
        probes = [(r.duration, None) for r in found]
    base = out.resolve().parent
    entries = []
    for record, (duration, error) in zip(found, probes):
        if error is not None:
            report.unreadable += 1
            problems.append((record.id, record.path, error))
            continue
        path = os.path.relpath(record.path, base) if options.relative_paths else os.path.abspath(record.path)
        entries.append(
            ManifestEntry(
                id=record.id,
                path=path,
                captions=record.captions,
                duration=duration,
                labels=record.labels,
                split=record.split,
                source=record.source,
            )
        )
    log_path = out.with_name(out.name + ".missing.txt")
    if not entries:  # nothing usable: an error, as data.shard_writer and data.preencode make it; no manifest
        if problems:
            with atomic_file(log_path, text=True) as f:
                f.writelines(f"{clip_id}\t{name}\t{reason}\n" for clip_id, name, reason in problems)
        listed = f" (listed in {log_path})" if problems else ""
        raise PrepareError(
            f"{out}: no clip to write: {report.missing} missing and {report.unreadable} unreadable of "
            f"{len(records)} in the metadata{listed}; no manifest written"
        )
    report.written = write_manifest(entries, out)
    if problems:
        with atomic_file(log_path, text=True) as f:  # temp file renamed when complete; one line on a full disk
            for clip_id, name, reason in problems:
                f.write(f"{clip_id}\t{name}\t{reason}\n")
        report.log = log_path
    elif log_path.exists():
        log_path.unlink()
    log.info(report.summary())
    return report


def add_audio_dirs_argument(parser: argparse.ArgumentParser, per: str) -> None:
    """``--audio-dir DIR [DIR ...]``: one folder for all metadata files, or one per ``per``."""
    parser.add_argument(
        "--audio-dir",
        nargs="+",
        required=True,
        help=f"audio folder (searched recursively), or one per {per} in the same order",
    )


def add_split_argument(parser: argparse.ArgumentParser, default: str = "none") -> None:
    """``--split {train,val,test}`` for every clip; ``default`` says what happens without it."""
    parser.add_argument("--split", choices=("train", "val", "test"), help=f"split of every clip (default: {default})")
