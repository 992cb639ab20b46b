"""The throw-away database the benchmark commands run against."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection


@contextmanager
def throwaway_database(suffix: str) -> Iterator[str]:
    """A new database beside the configured one, made by Django's test machinery
    and removed at the end; this process's connection points at it. For SQLite, a
    file in a temporary folder (the WSGI handler closes the connection after each
    request, as in production, so it cannot be in memory); otherwise
    ``NAME_<suffix>`` on the same server (not the test suite's ``test_NAME``, which
    may be in use). Yields the new database's name."""
    with tempfile.TemporaryDirectory() as folder:
        old_name = connection.settings_dict["NAME"]
        test = connection.settings_dict.setdefault("TEST", {})
        if connection.vendor == "sqlite":
            test["NAME"] = str(Path(folder) / "benchmark.sqlite3")
        else:
            test["NAME"] = f"{old_name}_{suffix}"
        name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        try:
            yield name
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)
