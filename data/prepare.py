"""Turn a dataset's official metadata into a manifest (JSONL, see ``data/manifest.py``).

Usage::

    python -m data.prepare FORMAT --out manifest.jsonl [format options]
    python -m data.prepare audiocaps --csv train.csv --audio-dir /data/audiocaps/train --out ac_train.jsonl
    python -m data.prepare FORMAT --help        # the options of one format

Formats: audiocaps, audioset, wavcaps, bbc, clotho, folder. Options of every format:
``--no-probe`` (skip reading headers; durations then come from the metadata, if any),
``--relative-paths`` (audio paths relative to the manifest's folder), ``--workers N``.
Prints one summary line; clips whose audio is missing or unreadable are listed in
``<out>.missing.txt``. A malformed metadata file gives a one-line error and exit status 2.
``--out`` never replaces a file the command reads, nor an existing file that is not a manifest
(its own earlier output) unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from audioldm.safe_output import OutputError, check_output, main_guard
from data.manifest import looks_like_manifest
from data.preparers import PREPARERS, BuildOptions, PrepareError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m data.prepare", description=__doc__.split("\n\n")[0])
    formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    for name, preparer in PREPARERS.items():
        sub = formats.add_parser(
            name, help=preparer.HELP, description=preparer.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        sub.add_argument("--out", required=True, help="manifest to write (JSONL)")
        preparer.add_arguments(sub)
        sub.add_argument(
            "--no-probe", action="store_true", help="do not read audio headers (duration from the metadata, else null)"
        )
        sub.add_argument(
            "--relative-paths", action="store_true", help="write audio paths relative to the manifest's folder"
        )
        sub.add_argument("--workers", type=int, default=8, help="threads reading headers (default: %(default)s)")
        sub.add_argument(
            "--overwrite",
            action="store_true",
            help="replace an existing --out that is not a manifest (never one of the inputs)",
        )
    return parser


@main_guard  # a full disk or a denied permission while writing: one line
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    options = BuildOptions(probe=not args.no_probe, relative_paths=args.relative_paths, workers=args.workers)
    reads = [value for key, value in vars(args).items() if key != "out" and isinstance(value, str)]
    try:
        check_output(args.out, reads=reads, overwrite=args.overwrite, is_own=looks_like_manifest)
        report = PREPARERS[args.format].run(args, args.out, options)
    except (PrepareError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.format}: {report.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
