"""``manage.py benchmark_api`` keeps working (a very short run, on SQLite)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_api_benchmark_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(DJANGO_DEBUG="1", PORTAL_VAR_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "manage.py", "benchmark_api", "--rounds", "2", "--requests", "3"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("bare JSON view") for line in lines), result.stdout
    endpoint = next(line for line in lines if line.startswith("GET /api/my-account"))
    assert endpoint.split()[-1] == "2.0"  # SQL queries per request
    assert any(line.startswith("ratio endpoint / bare:") for line in lines), result.stdout
