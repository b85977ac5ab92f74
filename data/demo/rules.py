"""The caption rules table: which files of which Debian package become clips, and their captions.

``caption_rules.csv`` has one rule per row::

    package,pattern,class,captions,max_files,gap
    scorched3d-data,*/wav/misc/dog*.wav,dog_bark,a dog barks|barking of a dog|a dog barking,,

``pattern`` is a glob (``fnmatch``: ``*`` also crosses ``/``) on the file's path inside the
package, e.g. ``usr/share/games/scorched3d/.../dog2.wav``. ``captions`` are 2-3 paraphrases
separated by ``|``. ``max_files`` (optional) keeps at most that many of the rule's files,
evenly spread over the sorted list. ``gap`` (optional, seconds) is the silence between
repeats when a short sound is looped. The first matching rule wins; files no rule matches
are ignored. Blank rows and rows whose package starts with ``#`` are comments.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Sequence

RULES_CSV = Path(__file__).with_name("caption_rules.csv")
REQUIRED_COLUMNS = ("package", "pattern", "class", "captions")


class RulesError(ValueError):
    """A malformed rules table; the message names the file and row."""


@dataclass(frozen=True)
class CaptionRule:
    """One row of the table: files of ``package`` matching ``pattern`` become clips of ``label``."""

    package: str
    pattern: str
    label: str
    captions: tuple[str, ...]
    max_files: int | None = None
    gap: float | None = None

    def matches(self, package: str, path: str) -> bool:
        """True if ``path`` (POSIX, relative to the package root) of ``package`` matches."""
        return package == self.package and fnmatchcase(path, self.pattern)


def _optional_number(text: str | None, kind: type, where: str, column: str):
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise RulesError(f"{where}: column '{column}' must be a {kind.__name__}, got {text!r}") from None
    if value < 0:
        raise RulesError(f"{where}: column '{column}' must not be negative")
    return value


def _rule_from_row(row: dict[str, str], where: str) -> CaptionRule:
    values = {key: (row.get(key) or "").strip() for key in REQUIRED_COLUMNS}
    missing = [key for key, value in values.items() if not value]
    if missing:
        raise RulesError(f"{where}: empty column(s) {missing}")
    captions = tuple(c.strip() for c in values["captions"].split("|") if c.strip())
    if len(captions) < 2:
        raise RulesError(f"{where}: give at least 2 captions separated by '|'")
    return CaptionRule(
        package=values["package"],
        pattern=values["pattern"],
        label=values["class"],
        captions=captions,
        max_files=_optional_number(row.get("max_files"), int, where, "max_files"),
        gap=_optional_number(row.get("gap"), float, where, "gap"),
    )


def load_rules(path: str | os.PathLike = RULES_CSV) -> list[CaptionRule]:
    """Read the rules table. Raises ``RulesError`` naming the row for a malformed rule."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        absent = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if absent:
            raise RulesError(f"{path}: missing column(s) {absent}")
        rules = []
        for lineno, row in enumerate(reader, start=2):
            package = (row.get("package") or "").strip()
            if not package or package.startswith("#"):
                continue
            rules.append(_rule_from_row(row, f"{path}:{lineno}"))
    if not rules:
        raise RulesError(f"{path}: no rules")
    return rules


def match_rule(rules: Sequence[CaptionRule], package: str, path: str) -> CaptionRule | None:
    """The first rule matching ``path`` inside ``package``, or None (the file is ignored)."""
    for rule in rules:
        if rule.matches(package, path):
            return rule
    return None


def rule_packages(rules: Sequence[CaptionRule]) -> list[str]:
    """The packages the rules draw from, in first-mention order."""
    return list(dict.fromkeys(rule.package for rule in rules))


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (the rules table's fingerprint, duplicate detection)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
