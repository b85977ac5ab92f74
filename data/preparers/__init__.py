"""Dataset preparers: each official metadata format to a manifest (see ``data/manifest.py``).

``PREPARERS`` is the explicit registry the CLI (``python -m data.prepare FORMAT ...``) uses.
Each preparer module has a library function ``prepare_<format>(...) -> PrepareReport`` and,
for the CLI, ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args, out, options)``.
"""

from types import ModuleType

from data.preparers import audiocaps, audioset, bbc, clotho, folder, wavcaps
from data.preparers.manifest_builder import BuildOptions, MetadataError, PrepareError, PrepareReport

PREPARERS: dict[str, ModuleType] = {m.NAME: m for m in (audiocaps, audioset, wavcaps, bbc, clotho, folder)}

__all__ = ["PREPARERS", "BuildOptions", "MetadataError", "PrepareError", "PrepareReport"]
