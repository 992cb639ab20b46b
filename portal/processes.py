"""Helpers for what starts servers of the project's own (``manage.py
benchmark_pages``, ``scripts/loadtest``, the ops tests): a free local port, waiting
until a server answers, a gunicorn master's workers and their memory.

Standard library only: the load test imports it without setting Django up.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"


class ServerDidNotStart(RuntimeError):
    pass


def free_port(host: str = HOST) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_for_port(
    port: int,
    *,
    seconds: float = 60,
    process: subprocess.Popen[bytes] | subprocess.Popen[str] | None = None,
    host: str = HOST,
) -> None:
    """Returns once something accepts connections on ``port``; raises
    ``ServerDidNotStart`` if ``process`` ends first or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        if process is not None and process.poll() is not None:
            raise ServerDidNotStart(f"the server stopped (exit code {process.returncode})")
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise ServerDidNotStart(
                    f"nothing answered on port {port} within {seconds:.0f} s"
                ) from None
            time.sleep(0.1)


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started (a gunicorn master's workers), from /proc."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def rss_mb(pids: list[int]) -> list[float]:
    """Each process's resident memory in MB (one decimal), from /proc."""
    sizes = []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(round(int(line.split()[1]) / 1024, 1))
    return sizes


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float = 30) -> None:
    """SIGTERM (gunicorn stops gracefully), then SIGKILL after ``timeout`` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
