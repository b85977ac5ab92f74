"""Fetch Debian packages with ``apt-get download`` and unpack them with ``dpkg -x``.

Nothing is installed on the system: ``.deb`` files are cached in ``<out>/.debs/`` and each
package is unpacked into ``<out>/.unpacked/<package>/``. A cached ``.deb`` is never
downloaded again, and an unpacked tree is reused while it came from the same ``.deb``.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

UNPACK_MARKER = ".unpacked-from"


class PackageUnavailable(RuntimeError):
    """A package that apt cannot download (unknown name, no network, no package lists)."""


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def cached_deb(cache_dir: Path, package: str) -> Path | None:
    """The newest cached ``<package>_<version>_<arch>.deb`` in ``cache_dir``, or None."""
    debs = sorted(cache_dir.glob(f"{package}_*.deb"))
    return debs[-1] if debs else None


def deb_field(deb: Path, name: str) -> str:
    """One control field of a ``.deb`` (e.g. ``Version``), via ``dpkg-deb -f``."""
    result = _run(["dpkg-deb", "-f", str(deb), name])
    if result.returncode != 0:
        raise PackageUnavailable(f"{deb}: dpkg-deb failed: {result.stderr.strip()}")
    return result.stdout.strip()


def unpack_deb(deb: Path, dest: Path) -> Path:
    """Unpack ``deb`` into ``dest`` with ``dpkg -x`` unless ``dest`` already holds it."""
    marker = dest / UNPACK_MARKER
    if marker.is_file() and marker.read_text().strip() == deb.name:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    result = _run(["dpkg", "-x", str(deb), str(dest)])
    if result.returncode != 0:
        raise PackageUnavailable(f"{deb}: dpkg -x failed: {result.stderr.strip()}")
    marker.write_text(deb.name + "\n")
    return dest


@dataclass
class AptFetcher:
    """Downloads (once) and unpacks Debian packages under ``out``.

    Call it with a package name; it returns the package version. ``downloaded_bytes`` sums
    the ``.deb`` files fetched by this instance (cached ones are not counted).
    """

    out: Path
    downloaded_bytes: int = 0
    _lists_updated: bool = field(default=False, repr=False)

    @property
    def cache_dir(self) -> Path:
        return self.out / ".debs"

    def unpack_dir(self, package: str) -> Path:
        return self.out / ".unpacked" / package

    def __call__(self, package: str) -> str:
        deb = cached_deb(self.cache_dir, package) or self.download(package)
        unpack_deb(deb, self.unpack_dir(package))
        return deb_field(deb, "Version")

    def download(self, package: str) -> Path:
        """``apt-get download`` into the cache; runs ``apt-get update`` once if that fails."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        result = _run(["apt-get", "download", package], cwd=self.cache_dir)
        if result.returncode != 0 and not self._lists_updated:
            log.info("apt-get download %s failed; running apt-get update once", package)
            self._lists_updated = True
            _run(["apt-get", "update"])
            result = _run(["apt-get", "download", package], cwd=self.cache_dir)
        deb = cached_deb(self.cache_dir, package)
        if result.returncode != 0 or deb is None:
            reason = (result.stderr.strip().splitlines() or ["no .deb written"])[-1]
            raise PackageUnavailable(f"{package}: {reason}")
        self.downloaded_bytes += deb.stat().st_size
        log.info("downloaded %s (%.1f MB)", deb.name, deb.stat().st_size / 1e6)
        return deb
