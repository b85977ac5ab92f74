"""generate.py's output folder, written as the clips are made and continued after an interruption.

Each sampling pass's clips are written as ``NNN_<label>.wav`` (16 kHz) and ``.png`` (the log-mel) as soon as the
pass ends, and their rows are appended to the run's journal, ``generate.clips.jsonl`` (a first line with the
command, then one row per clip: its index, files, prompt and CLAP score). When the run completes, the folder's
indexes are written whole, in clip order: ``generated.jsonl`` (a manifest of the clips, their prompts as
captions, which evaluate.py and the benchmarks read) and ``generate.json`` (the settings, the command and every
clip's row); the journal is removed. Memory stays flat in the number of prompts: one pass's clips at a time.

A folder holding an earlier run of the same command is continued: the clips its journal (or its complete
``generate.json``) lists, with their files present, are not made again (clip i always draws from seed + i). A
folder holding another command's outputs is refused unless ``--overwrite``, which replaces them; until the new run
completes, the earlier indexes and the clips not yet made again stay as they were.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from audioldm.request.limits import RequestError
from audioldm.safe_output import atomic_file, check_output_folder, removed_on_error, write_error

OUTPUT_NAME = re.compile(r"^\d{3,}_.*\.(wav|png)$")
MANIFEST, SETTINGS, JOURNAL = "generated.jsonl", "generate.json", "generate.clips.jsonl"
INDEX_FILES = (MANIFEST, SETTINGS, JOURNAL)


def earlier_outputs(folder: str | os.PathLike) -> list[str]:
    """The files in ``folder`` that look like a generate.py run's outputs (its indexes and NNN_*.wav/png)."""
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if n in INDEX_FILES or OUTPUT_NAME.match(n))


def read_rows(path: Path) -> list[dict]:
    """The complete JSON lines of ``path`` (a line cut off by a crash is left out)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return [r for r in rows if isinstance(r, dict) and isinstance(r.get("index"), int)]


class ClipFolder:
    """The output folder of one generate.py command (``command``: its settings written as the command;
    ``settings``: all its arguments, kept in the journal and in ``generate.json``)."""

    def __init__(self, folder: str, command: str, mode: str, settings: dict, overwrite: bool = False):
        self.folder, self.command, self.mode, self.settings = Path(folder), command, mode, settings
        check_output_folder(folder, "--out ")
        self.earlier = earlier_outputs(folder)
        self.done: dict[int, dict] = {} if overwrite else self._continued()
        self.new: dict[int, dict] = {}
        self._journal_started = False

    def _continued(self) -> dict[int, dict]:
        """The clips an earlier run of this command made; refuses another command's outputs."""
        if not self.earlier:
            return {}
        journal = self.folder / JOURNAL
        if journal.is_file():
            command, rows = _journal_command(journal), read_rows(journal)
        else:
            try:
                previous = json.loads((self.folder / SETTINGS).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                previous = {}
            command = previous.get("command") if isinstance(previous, dict) else None
            rows = [r for r in previous.get("outputs", []) if isinstance(r.get("index"), int)] if command else []
        if command != self.command:
            raise RequestError(
                f"--out {self.folder}: holds {len(self.earlier)} earlier generate.py output file(s) of another "
                f"command (e.g. {self.earlier[0]}); pass --overwrite to replace them, or choose another folder"
            )
        return {r["index"]: r for r in rows if all((self.folder / r[k]).is_file() for k in ("path", "image"))}

    def add(self, indices: list[int], result: Any) -> None:
        """Write one pass's clips (clip ``indices[j]`` is ``result``'s j-th) and append their rows to the journal
        (started with the first pass: the command, the settings, and the rows of the clips already there)."""
        from audioldm.pipeline.outputs import save_clip, slug

        if not self._journal_started:
            with removed_on_error(self.folder):
                self.folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for j, i in enumerate(indices):
            stem = self.folder / f"{i:03d}_{slug(result.texts[j])}"
            wav, png = save_clip(result.waveform[j], result.log_mel[j], stem, result.texts[j])
            score = None if result.clap_score is None else round(float(result.clap_score[j]), 4)
            rows.append(
                {
                    "index": i,
                    "id": stem.name,
                    "path": os.path.basename(wav),
                    "image": os.path.basename(png),
                    "prompt": result.texts[j],
                    "seconds": result.waveform.shape[-1] / 16000,
                    "clap_score": score,
                }
            )
        if not self._journal_started:  # a fresh journal: no line cut off by an earlier crash is appended to
            header = {"command": self.command, "settings": self.settings}
            with atomic_file(self.folder / JOURNAL, text=True) as f:
                f.writelines(json.dumps(r) + "\n" for r in [header, *sorted(self.done.values(), key=_index)])
            self._journal_started = True
        self._append_to_journal(rows)
        self.new.update((r["index"], r) for r in rows)

    def finish(self) -> list[dict]:
        """The complete run's indexes (in clip order); earlier clips not made again and the journal are removed.
        Returns the rows."""
        rows = sorted({**self.done, **self.new}.values(), key=_index)
        with atomic_file(self.folder / MANIFEST, text=True) as f:
            f.writelines(json.dumps(self._manifest_row(r)) + "\n" for r in rows)
        with atomic_file(self.folder / SETTINGS, text=True) as f:
            json.dump({"settings": self.settings, "command": self.command, "outputs": rows}, f, indent=2)
        kept = {name for r in rows for name in (r["path"], r["image"])} | {MANIFEST, SETTINGS}
        for name in self.earlier + [JOURNAL]:  # --overwrite: the earlier run's clips that were not made again go
            if name not in kept and (self.folder / name).exists():
                os.remove(self.folder / name)
        return rows

    def _manifest_row(self, row: dict) -> dict:
        return {
            "id": row["id"],
            "path": row["path"],
            "captions": [row["prompt"]],
            "duration": row["seconds"],
            "source": f"generated:{self.mode}",
        }

    def _append_to_journal(self, rows: list[dict]) -> None:
        """Append whole lines and sync them: an interruption leaves at most one cut-off line, which is skipped."""
        path = self.folder / JOURNAL
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write("".join(json.dumps(r) + "\n" for r in rows))
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise write_error(path, e) from None


def _index(row: dict) -> int:
    return row["index"]


def _journal_command(path: Path) -> str | None:
    """The command on a journal's first line (None when it has none)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        try:
            first = json.loads(f.readline())
        except ValueError:
            return None
    return first.get("command") if isinstance(first, dict) else None
