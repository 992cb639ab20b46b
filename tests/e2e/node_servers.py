"""Local node servers the browser tests start (an OpenID Connect provider, a relying
party): a free port, the package checked, and the line ``ready <url>`` awaited."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue

import pytest


@dataclass(frozen=True)
class NodeServer:
    url: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    def stop(self) -> None:
        stop(self.process)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def start(
    *, folder: Path, script: str, package: str, what: str, env: dict[str, str], timeout: float
) -> NodeServer:
    """Runs ``node <folder>/<script>`` with ``env`` and waits for its ``ready <url>``
    line; skips the test when node or ``package`` (``npm ci --prefix <folder>``) is
    missing."""
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"node is not installed: {what} cannot run")
    if not (folder / "node_modules" / package).is_dir():
        pytest.skip(
            f"{folder.relative_to(folder.parents[1])}/node_modules is missing: run "
            f"`npm ci --prefix {folder.relative_to(folder.parents[1])}` to install {what}"
        )
    process = subprocess.Popen(
        [node, str(folder / script)],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: Queue[str | None] = Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            line = lines.get(timeout=max(remaining, 0.01))
        except Empty:
            line = None
        if line is not None and line.startswith("ready "):
            return NodeServer(url=line.split()[1], process=process, output=output)
        if line is None:
            stop(process)
            raise RuntimeError(f"{what} did not start:\n" + "".join(output))
