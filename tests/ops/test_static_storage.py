"""The static files' storage with debug off (``portal.storage``): WhiteNoise's hashed
names and compressed copies, compressing again only what changed."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path
from typing import Any

import brotli
import pytest
from django.core.management import call_command
from whitenoise.compress import Compressor

STORAGE = "portal.storage.StaticFilesStorage"


@pytest.fixture
def static(settings: Any, tmp_path: Path) -> tuple[Path, Path]:
    source, root = tmp_path / "source", tmp_path / "root"
    source.mkdir()
    settings.STATICFILES_DIRS = [source]
    settings.STATICFILES_FINDERS = ["django.contrib.staticfiles.finders.FileSystemFinder"]
    settings.STATIC_ROOT = root
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": STORAGE}}
    return source, root


def collect() -> None:
    call_command("collectstatic", interactive=False, verbosity=0, stdout=io.StringIO())


def css(version: str) -> str:
    return f"/* {version} */\n" + "body { color: black; }\n" * 200


def assert_copies_hold(path: Path, content: str) -> None:
    assert gzip.decompress(Path(f"{path}.gz").read_bytes()).decode() == content
    assert brotli.decompress(Path(f"{path}.br").read_bytes()).decode() == content


def hashed_names(root: Path) -> set[str]:
    return {path.name for path in root.glob("site.*.css")}


def test_collecting_makes_the_compressed_copies(static: tuple[Path, Path]) -> None:
    source, root = static
    (source / "site.css").write_text(css("one"))
    collect()
    (name,) = hashed_names(root)
    assert_copies_hold(root / "site.css", css("one"))
    assert_copies_hold(root / name, css("one"))


def test_collecting_again_leaves_the_copies_of_unchanged_files(
    static: tuple[Path, Path], monkeypatch: Any
) -> None:
    source, root = static
    (source / "site.css").write_text(css("one"))
    (source / "app.js").write_text("console.log('one');\n" * 200)
    compressed: list[str] = []
    compress = Compressor.compress

    def spy(self: Compressor, path: str) -> list[str]:
        compressed.append(Path(path).name)
        return compress(self, path)

    monkeypatch.setattr(Compressor, "compress", spy)
    collect()
    (name,) = hashed_names(root)
    assert {"site.css", name, "app.js"} <= set(compressed)
    compressed.clear()
    collect()
    assert compressed == []
    assert_copies_hold(root / name, css("one"))


def test_a_changed_file_is_compressed_again(static: tuple[Path, Path]) -> None:
    source, root = static
    (source / "site.css").write_text(css("one"))
    collect()
    (old,) = hashed_names(root)
    changed = source / "site.css"
    changed.write_text(css("two"))
    # Later than the collected copy, as a real change is (collectstatic copies a file
    # only when its time is later; two writes in one test can share a clock tick).
    later = root.joinpath("site.css").stat().st_mtime + 10
    os.utime(changed, (later, later))
    collect()
    (new,) = hashed_names(root) - {old}
    assert_copies_hold(root / "site.css", css("two"))
    assert_copies_hold(root / new, css("two"))
