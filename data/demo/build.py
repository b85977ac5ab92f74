"""Build the demo text-to-audio dataset from recorded, DFSG-free sounds in Debian packages.

    python -m data.demo.build [--out demo_data] [--force]

Steps: download the packages named in ``caption_rules.csv`` with ``apt-get download``
(cached in ``<out>/.debs/``), unpack them with ``dpkg -x`` into ``<out>/.unpacked/``, match
files against the rules, cut or loop each recording into 5-10 s clips at 16 kHz mono
(``<out>/audio/<class>/<name>.wav``), then write ``<out>/manifest.jsonl`` and
``<out>/CREDITS.txt``. Train and validation are split by source package, so no recording
is in both. A stamp file makes a second run a no-op until the rules, the split or this
builder change; ``--force`` rebuilds (still reusing the cached ``.deb`` files).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from audioldm.audio.io import AudioReadError, audio_info, load_audio, save_audio
from data.demo.clips import ClipSpec, RecordingIndex, make_clips
from data.demo.debian import AptFetcher, PackageUnavailable
from data.demo.rules import RULES_CSV, CaptionRule, file_sha256, load_rules, match_rule, rule_packages
from data.manifest import ManifestEntry, write_manifest

log = logging.getLogger(__name__)

BUILDER_VERSION = "1"
# Validation packages: ~11% of the clips; all their classes but keyboard_typing are also in train.
VAL_PACKAGES = ("lincity-ng-data", "freeciv-data", "bucklespring-data")
STAMP_NAME = ".build_stamp.json"
MANIFEST_NAME = "manifest.jsonl"
CREDITS_NAME = "CREDITS.txt"

Fetcher = Callable[[str], str]  # package name -> version; leaves <out>/.unpacked/<package>/


@dataclass(frozen=True)
class SourceFile:
    """One audio file inside an unpacked package, with the rule that captions it."""

    package: str
    path: str  # POSIX path inside the package
    file: Path
    rule: CaptionRule


@dataclass
class BuildReport:
    """What a build produced and what it skipped."""

    entries: list[ManifestEntry] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)
    duplicates: int = 0
    downloaded_bytes: int = 0
    up_to_date: bool = False

    def clips_per_class(self) -> dict[str, Counter]:
        """{class: Counter({split: clips})}, classes sorted by name."""
        table: dict[str, Counter] = {}
        for entry in self.entries:
            table.setdefault(entry.labels[0], Counter())[entry.split] += 1
        return dict(sorted(table.items()))


def _walk_files(root: Path) -> Iterable[tuple[str, Path]]:
    """(POSIX path relative to ``root``, file) for every regular file, sorted.

    Symbolic links are skipped: they may point outside the tree, and in these packages
    they point at files that are read anyway.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            file = Path(dirpath) / name
            if file.is_file() and not file.is_symlink():
                yield file.relative_to(root).as_posix(), file


def select_evenly(items: Sequence, limit: int | None) -> list:
    """At most ``limit`` items, evenly spread over ``items`` (all of them if no limit)."""
    if limit is None or len(items) <= limit:
        return list(items)
    if limit <= 0:
        return []
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def find_sources(
    unpacked_root: Path, rules: Sequence[CaptionRule], packages: Iterable[str]
) -> tuple[list[SourceFile], int]:
    """Files matched by a rule, exact duplicates (same bytes) dropped, ``max_files`` applied.

    Returns (sources, number of duplicate files dropped).
    """
    per_rule: dict[CaptionRule, list[SourceFile]] = {}
    seen: set[str] = set()
    duplicates = 0
    for package in packages:
        for path, file in _walk_files(unpacked_root / package):
            rule = match_rule(rules, package, path)
            if rule is None:
                continue
            digest = file_sha256(file)
            if digest in seen:
                duplicates += 1
                continue
            seen.add(digest)
            per_rule.setdefault(rule, []).append(SourceFile(package, path, file, rule))
    sources = [s for rule in rules for s in select_evenly(per_rule.get(rule, []), rule.max_files)]
    return sources, duplicates


def clip_name(source: SourceFile, index: int) -> str:
    """A readable, unique file stem: ``<package>-<file stem>-<path hash>-<index>``."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", Path(source.path).stem).strip("_").lower() or "clip"
    digest = hashlib.sha1(f"{source.package}/{source.path}".encode()).hexdigest()[:6]
    return f"{source.package}-{stem}-{digest}-{index:02d}"


def write_clips(source: SourceFile, wave: torch.Tensor, out: Path, spec: ClipSpec, split: str) -> list[ManifestEntry]:
    """Cut ``wave`` [N] into clips under ``out/audio/<class>/`` and return their entries.

    Returns [] for a nearly silent recording or one too short to loop.
    """
    clips = make_clips(wave, spec, source.rule.gap)
    folder = out / "audio" / source.rule.label
    if clips:
        folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for index, clip in enumerate(clips):
        name = clip_name(source, index)
        save_audio(folder / f"{name}.wav", clip, spec.sample_rate)
        entries.append(
            ManifestEntry(
                id=name,
                path=f"audio/{source.rule.label}/{name}.wav",
                captions=list(source.rule.captions),
                duration=round(clip.numel() / spec.sample_rate, 3),
                labels=[source.rule.label],
                split=split,
                source=f"debian:{source.package}/{source.path}",
            )
        )
    return entries


def process_sources(
    sources: Sequence[SourceFile], out: Path, spec: ClipSpec, val_packages: Sequence[str], report: BuildReport
) -> None:
    """Decode each source, skip unreadable ones and re-encoded duplicates, write its clips."""
    index = RecordingIndex()
    for source in sources:
        where = f"{source.package}/{source.path}"
        try:
            info = audio_info(source.file)
            wave = load_audio(source.file, spec.sample_rate, info=info)
        except AudioReadError as e:
            log.warning("unreadable: %s (%s)", where, e.reason)
            report.unreadable.append(where)
            continue
        if index.seen_before((info.frames, info.sample_rate), wave):
            report.duplicates += 1
            continue
        split = "val" if source.package in val_packages else "train"
        entries = write_clips(source, wave, out, spec, split)
        if not entries:
            log.info("nearly silent or too short: %s", where)
            report.silent.append(where)
        report.entries.extend(entries)


def write_credits(out: Path, report: BuildReport) -> None:
    """``CREDITS.txt``: every package used, its version, clip count and copyright file."""
    used = Counter(entry.source.split(":", 1)[1].split("/", 1)[0] for entry in report.entries)
    lines = [
        f"Demo dataset built by data/demo/build.py (builder version {BUILDER_VERSION}) from",
        "recorded sounds in packages of Debian main (DFSG-free). Each package's authors and",
        "licence terms are in its copyright file, copied to licenses/ in this folder.",
        "",
    ]
    for package in sorted(used):
        copyright_file = Path(".unpacked") / package / "usr/share/doc" / package / "copyright"
        where = "copyright file not found"
        if (out / copyright_file).is_file():
            (out / "licenses").mkdir(exist_ok=True)
            shutil.copyfile(out / copyright_file, out / "licenses" / f"{package}.copyright")
            where = f"copyright: licenses/{package}.copyright"
        lines.append(f"{package} {report.versions.get(package, '?')}: {used[package]} clips; {where}")
    (out / CREDITS_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_from_unpacked(
    out: str | os.PathLike,
    rules: Sequence[CaptionRule],
    versions: dict[str, str],
    val_packages: Sequence[str] = VAL_PACKAGES,
    spec: ClipSpec = ClipSpec(),
) -> BuildReport:
    """Clips, manifest and credits from the trees in ``<out>/.unpacked/<package>/``.

    Only the packages in ``versions`` (those fetched) are read. Clears ``<out>/audio`` first.
    """
    out = Path(out)
    report = BuildReport(versions=dict(versions))
    shutil.rmtree(out / "audio", ignore_errors=True)
    packages = [p for p in rule_packages(rules) if p in versions]
    sources, report.duplicates = find_sources(out / ".unpacked", rules, packages)
    log.info("%d files from %d packages match the rules", len(sources), len(packages))
    process_sources(sources, out, spec, val_packages, report)
    write_manifest(report.entries, out / MANIFEST_NAME)
    write_credits(out, report)
    return report


def build_stamp(rules_path: Path, val_packages: Sequence[str], spec: ClipSpec) -> dict:
    """What a finished build depends on; a rebuild happens when any of it changes."""
    return {
        "builder_version": BUILDER_VERSION,
        "rules_sha256": file_sha256(rules_path),
        "val_packages": sorted(val_packages),
        "clip_spec": asdict(spec),
    }


def is_up_to_date(out: Path, stamp: dict) -> bool:
    """True if ``out`` holds a finished build with this stamp."""
    stamp_file = out / STAMP_NAME
    if not stamp_file.is_file() or not (out / MANIFEST_NAME).is_file():
        return False
    try:
        return json.loads(stamp_file.read_text()) == stamp
    except json.JSONDecodeError:
        return False


def fetch_all(packages: Sequence[str], fetch: Fetcher, report: BuildReport) -> None:
    """Fetch every package; record versions, and reasons for those that are unavailable."""
    for package in packages:
        try:
            report.versions[package] = fetch(package)
        except PackageUnavailable as e:
            log.warning("package unavailable: %s", e)
            report.unavailable[package] = str(e)


def build(
    out: str | os.PathLike = "demo_data",
    rules_path: str | os.PathLike = RULES_CSV,
    force: bool = False,
    val_packages: Sequence[str] = VAL_PACKAGES,
    spec: ClipSpec = ClipSpec(),
    fetch: Fetcher | None = None,
) -> BuildReport:
    """Build the dataset in ``out`` unless an identical build is already there.

    ``fetch`` (package -> version) defaults to ``AptFetcher(out)``; tests pass a fake one.
    Returns a report with ``up_to_date=True`` (and no entries) when nothing was done.
    The stamp is only written when every package could be fetched, so that a run after a
    network failure retries (cached packages are not downloaded again).
    """
    out, rules_path = Path(out), Path(rules_path)
    stamp = build_stamp(rules_path, val_packages, spec)
    if not force and is_up_to_date(out, stamp):
        return BuildReport(up_to_date=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / STAMP_NAME).unlink(missing_ok=True)
    rules = load_rules(rules_path)
    fetcher = fetch or AptFetcher(out)
    fetched = BuildReport()
    fetch_all(rule_packages(rules), fetcher, fetched)
    report = build_from_unpacked(out, rules, fetched.versions, val_packages, spec)
    report.unavailable = fetched.unavailable
    report.downloaded_bytes = getattr(fetcher, "downloaded_bytes", 0)
    if not report.unavailable:  # otherwise the next run retries the missing packages
        (out / STAMP_NAME).write_text(json.dumps(stamp, indent=1) + "\n")
        shutil.rmtree(out / ".unpacked", ignore_errors=True)  # ~0.7 GB; a rebuild unpacks the cached .debs
    return report


def format_summary(report: BuildReport, out: Path, seconds: float) -> str:
    """The CLI's closing table: clips per class and split, skips, download size."""
    if report.up_to_date:
        return (
            f"{out}: already built with these rules and builder; nothing to do "
            f"({seconds:.1f} s). Use --force to rebuild."
        )
    table = report.clips_per_class()
    lines = [f"{'class':<22}{'train':>7}{'val':>6}"]
    lines += [f"{label:<22}{c['train']:>7}{c['val']:>6}" for label, c in table.items()]
    splits = Counter(entry.split for entry in report.entries)
    lines += [
        f"{'total':<22}{splits['train']:>7}{splits['val']:>6}",
        f"{len(report.entries)} clips, {len(table)} classes, "
        f"{sum(e.duration or 0 for e in report.entries) / 3600:.2f} h; packages: {len(report.versions)}",
        f"skipped: {len(report.unreadable)} unreadable, {len(report.silent)} nearly silent/too short, "
        f"{report.duplicates} duplicate files",
        f"downloaded this run: {report.downloaded_bytes / 1e6:.1f} MB; time {seconds:.1f} s",
        f"manifest: {out / MANIFEST_NAME}",
    ]
    if report.unavailable:
        lines.append("unavailable packages (run again to retry): " + ", ".join(sorted(report.unavailable)))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="demo_data", help="output folder (default: demo_data)")
    parser.add_argument("--force", action="store_true", help="rebuild even if already built")
    parser.add_argument("--rules", default=str(RULES_CSV), help="caption rules table (CSV)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    start = time.perf_counter()
    report = build(args.out, args.rules, force=args.force)
    print(format_summary(report, Path(args.out), time.perf_counter() - start))
    return 0 if report.up_to_date or report.entries else 1


if __name__ == "__main__":
    sys.exit(main())
