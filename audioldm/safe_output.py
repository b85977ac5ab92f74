"""One check for every command's output path, run before any work: never write over an input.

A command may replace its own previous output (a manifest over a manifest); any other existing
file is kept unless the user passes ``--overwrite``, and a file the command reads is never replaced.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable


class OutputError(ValueError):
    """An output path that must not be written; the message names the path and the reason."""


def check_output(out: str | os.PathLike, reads: Iterable[str | os.PathLike] = (), overwrite: bool = False,
                 is_own: Callable[[Path], bool] | None = None) -> Path:
    """Return ``out`` as a Path once it is safe to write, else raise ``OutputError`` (one line).

    ``reads``: files the command reads (never replaced); ``is_own(path)``: whether an existing file
    looks like this command's own earlier output (replaced without ``--overwrite``).
    """
    out = Path(out)
    if out.is_dir():
        raise OutputError(f"{out}: is a directory, not a file to write")
    if out.exists():
        resolved = out.resolve()
        if any(Path(p).exists() and Path(p).resolve() == resolved for p in reads):
            raise OutputError(f"{out}: is one of this command's inputs; refusing to write over it")
        if not overwrite and not (is_own is not None and is_own(out)):
            raise OutputError(f"{out}: already exists and is not this command's earlier output; "
                              f"choose another path or pass --overwrite")
    _check_writable_parent(out)
    return out


def check_output_folder(out: str | os.PathLike, label: str = "") -> Path:
    """Return the folder ``out`` once files can be written into it (it may not exist yet: it is then
    created by the caller), else raise ``OutputError`` (one line). ``label`` prefixes the message
    (e.g. ``"--out "``)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{label}{out}: is a file, not a folder; choose a folder to write into")
    if out.is_dir():
        if not os.access(out, os.W_OK | os.X_OK):
            raise OutputError(f"{label}{out}: cannot be written (permission denied)")
        return out
    _check_writable_parent(out, label)
    return out


def _check_writable_parent(out: Path, label: str = "") -> None:
    """The nearest existing folder above ``out`` must be a folder we may create files in."""
    parent = next((p for p in [out.parent, *out.parent.parents] if p.exists()), Path("."))
    if not parent.is_dir():
        raise OutputError(f"{label}{out}: cannot be written ({parent} is a file, not a folder)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{label}{out}: cannot be written ({parent} is not a writable folder)")
