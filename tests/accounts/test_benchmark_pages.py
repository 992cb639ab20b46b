"""``manage.py benchmark_pages`` keeps working: a very short run, on SQLite, that
prints a row per settings page (its figures are not checked: timings depend on
the machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import translation

from accounts.navigation import SECTIONS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("data", ["realistic", "grown"])
def test_the_page_benchmark_runs_and_prints_every_page(tmp_path: Path, data: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(DJANGO_DEBUG="1", PORTAL_VAR_DIR=str(tmp_path))
    command = ["manage.py", "benchmark_pages", "--data", data, "--rounds", "1", "--requests", "50"]
    result = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = {line[:28].strip(): line[28:].split() for line in lines}
    assert "bare view" in rows, result.stdout
    with translation.override("en"):
        labels = [str(section.label)[:28] for section in SECTIONS]
    for label in labels:
        assert label in rows, (label, result.stdout)
        # req/s, bare req/s, ratio, p50, p99, queries
        assert len(rows[label]) == 6, rows[label]
        assert int(rows[label][-1]) <= 10
    assert any(line.startswith("worker memory (RSS):") for line in lines), result.stdout
    assert any(line.startswith(f"data: {data} (") for line in lines), result.stdout
