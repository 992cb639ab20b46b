"""Static files with debug off: WhiteNoise's storage (hashed names, compressed
copies), compressing only what changed.

WhiteNoise compresses every collected file again at each ``collectstatic``, which
``make serve`` runs at each start: about half a minute here, Brotli's highest level
for copies that are already there. A copy is kept when it decompresses to the file
as it is now: reading it back costs a small part of making it, and unlike file
times it cannot be fooled by a change made within the same clock tick."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from whitenoise.compress import brotli_installed
from whitenoise.storage import CompressedManifestStaticFilesStorage

DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {".gz": gzip.decompress}
if brotli_installed:
    import brotli

    DECOMPRESS[".br"] = brotli.decompress
    UNREADABLE: tuple[type[Exception], ...] = (OSError, EOFError, zlib.error, brotli.error)
else:  # pragma: no cover - brotli is in the lock file
    UNREADABLE = (OSError, EOFError, zlib.error)


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    def compress_files(self, paths: Iterable[str]) -> Iterator[tuple[str, str]]:
        return super().compress_files([path for path in paths if not self._compressed(path)])

    def _compressed(self, path: str) -> bool:
        """Every compressed copy of ``path`` is there and holds its content. (Files
        that do not compress well have none, and are tried again: they are few.)"""
        full = Path(self.path(path))
        try:
            data = full.read_bytes()
            return all(
                decompress(full.with_name(full.name + suffix).read_bytes()) == data
                for suffix, decompress in DECOMPRESS.items()
            )
        except UNREADABLE:
            return False
