"""One check for every command's output path, run before any work: never write over an input.

A command may replace its own previous output (a manifest over a manifest); any other existing
file is kept unless the user passes ``--overwrite``, and a file the command reads is never replaced.

Writes that fail (no space left, permission denied, read-only file system, quota) become one
``OutputError`` line naming the path and the cause: ``atomic_file`` writes ``<path><suffix>`` and renames
it into place, removing it on any failure (a finished file is never touched); ``removed_on_error`` does
the same for a temporary folder; ``main_guard`` turns what escapes a command's ``main`` into that line.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator

CAUSES = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.EFBIG: "file too large for the file system",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "something of that name exists already",
}


class OutputError(ValueError):
    """An output path that must not be written; the message names the path and the reason."""


def check_output(
    out: str | os.PathLike,
    reads: Iterable[str | os.PathLike] = (),
    overwrite: bool = False,
    is_own: Callable[[Path], bool] | None = None,
) -> Path:
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
            raise OutputError(
                f"{out}: already exists and is not this command's earlier output; "
                f"choose another path or pass --overwrite"
            )
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


def write_error(path: str | os.PathLike, error: OSError) -> OutputError:
    """One line: ``<path>: cannot write (<cause>)``."""
    cause = CAUSES.get(error.errno) or (error.strerror or str(error) or type(error).__name__).lower()
    return OutputError(f"{path}: cannot write ({cause})")


class _Recording:
    """A file whose write errors are kept: ``torch.save`` reports them as a RuntimeError without the errno."""

    def __init__(self, f: IO):
        self.f, self.error = f, None

    def __getattr__(self, name: str):
        return getattr(self.f, name)

    def write(self, data):
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        try:
            self.f.flush()
        except OSError as e:
            self.error = e
            raise


def _remove(path: str | os.PathLike) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.remove(path)
        except OSError:
            pass


@contextmanager
def removed_on_error(path: str | os.PathLike, *temporary: str | os.PathLike) -> Iterator[None]:
    """Run a block that writes ``path`` (through the ``temporary`` files or folders): on any failure the
    temporaries are removed, and an ``OSError`` becomes ``OutputError`` naming ``path``."""
    try:
        yield
    except BaseException as e:
        for tmp in temporary:
            _remove(tmp)
        if isinstance(e, OSError) and not isinstance(e, OutputError):
            raise write_error(path, e) from None
        raise


@contextmanager
def atomic_file(path: str | os.PathLike, suffix: str = ".tmp", text: bool = False) -> Iterator[IO]:
    """Open ``<path><suffix>`` for writing (binary, or UTF-8 text); when the block ends, flush, fsync and
    rename it to ``path``. On failure the temporary file is removed and ``path`` is left as it was; a
    write error (also one that ``torch.save`` hides in a RuntimeError) becomes ``OutputError``."""
    path = str(path)
    tmp = path + suffix
    with removed_on_error(path, tmp):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        f = _Recording(open(tmp, "w", encoding="utf-8") if text else open(tmp, "wb"))
        try:
            try:
                yield f
                f.flush()
                os.fsync(f.fileno())
            finally:
                f.f.close()
        except RuntimeError:
            if f.error is not None:  # torch.save: the write error it replaced
                raise f.error from None
            raise
        os.replace(tmp, path)


def main_guard(main: Callable[..., int]) -> Callable[..., int]:
    """``main`` with a write error (``OutputError``, or an ``OSError`` for a full disk, a denied permission,
    a read-only file system or a quota) printed as one ``error:`` line and exit status 2."""

    @functools.wraps(main)
    def guarded(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except OutputError as e:
            print(f"error: {e}", file=sys.stderr)
        except OSError as e:
            if e.errno not in CAUSES:
                raise
            where = f"{e.filename}: " if e.filename else ""
            print(f"error: {where}{CAUSES[e.errno]}{'' if where else ' (while writing the output)'}", file=sys.stderr)
        return 2

    return guarded
