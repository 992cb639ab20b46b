"""Real app servers for the operations tests: gunicorn in production settings on a
free local port, a small HTTP client keeping its own cookies (the production
cookies are ``Secure``; the servers speak plain HTTP on 127.0.0.1), a TCP proxy
that can cut the way to a service, and a private redis-server."""

from __future__ import annotations

import asyncio
import atexit
import http.client
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

from portal import processes
from portal.processes import free_port

HOST = "127.0.0.1"
# One site: every app server of it signs with the same key.
SECRET_KEY = secrets.token_urlsafe(48)
ROOT = Path(__file__).resolve().parents[2]


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    processes.wait_for_port(port, seconds=60, process=process)


def database_url_for(port: int | None = None) -> str:
    """The URL of this test run's (transactional) PostgreSQL database, through
    ``port`` when given."""
    parts = urlsplit(settings.DATABASE_URL)
    netloc = parts.netloc if port is None else f"{parts.username or 'postgres'}@{HOST}:{port}"
    return urlunsplit(parts._replace(netloc=netloc, path="/" + connection.settings_dict["NAME"]))


def server_password(user: Any, password: str) -> None:
    """Gives ``user`` ``password`` hashed as the servers hash (the suite's settings
    use a fast hasher the servers do not have)."""
    from django.contrib.auth.hashers import Argon2PasswordHasher

    user.password = Argon2PasswordHasher().encode(password, Argon2PasswordHasher().salt())
    user.save(update_fields=["password"])


def require_postgresql(why: str) -> None:
    import pytest

    if connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL (DATABASE_URL=postgres://...): {why}")


# --- gunicorn --------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    def worker_pids(self) -> list[int]:
        return sorted(processes.child_pids(self.process.pid))

    def output(self) -> str:
        return self.log.read_text(errors="replace")


_static_root: list[str] = []


def collected_static(env: dict[str, str]) -> str:
    """``collectstatic`` once per test run (debug off: pages link the hashed names),
    into a folder every test server shares; removed when the run ends."""
    if not _static_root:
        folder = tempfile.mkdtemp(prefix="portal-static-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
            cwd=ROOT,
            env={**env, "DJANGO_STATIC_ROOT": folder},
            check=True,
            timeout=600,
        )
        _static_root.append(folder)
    return _static_root[0]


@contextmanager
def gunicorn(folder: Path, **env_overrides: str) -> Iterator[Server]:
    """One gunicorn (one sync worker) with the production settings (debug off)."""
    from accounts.oauth_keys import development_key

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "OAUTH_PRIVATE_KEY_FILE"}}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=SECRET_KEY,
        DJANGO_ALLOWED_HOSTS=f"{HOST},localhost",
        DJANGO_SECURE_SSL_REDIRECT="0",
        SITE_URL=f"http://{HOST}:{port}",
        OAUTH_PRIVATE_KEY=development_key(folder / "oauth-key.pem"),
        PORTAL_VAR_DIR=str(folder),
        DJANGO_LOG_LEVEL="INFO",
        DJANGO_EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    )
    env.update(env_overrides)
    env["DJANGO_STATIC_ROOT"] = collected_static(env)
    log = folder / f"gunicorn-{port}.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "portal.wsgi:application",
        f"--bind={HOST}:{port}",
        "--workers=1",
        "--worker-class=sync",
        "--timeout=120",
        "--log-level=warning",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, port, log)
    try:
        wait_for_port(port, process)
        yield server
    finally:
        processes.stop(process)


# --- An HTTP client --------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass
class Browser:
    """Keeps cookies per name, whatever server of the site answered (several app
    servers behind one address are one site to a browser)."""

    cookies: dict[str, str] = field(default_factory=dict)
    timeout: float = 60

    def request(
        self,
        server: Server,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        conn = http.client.HTTPConnection(HOST, server.port, timeout=self.timeout)
        sent = {"Accept-Language": "en", "Accept": "text/html", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            conn.request(method, path, body=body, headers=sent)
            raw = conn.getresponse()
            text = raw.read().decode(errors="replace")
            for value in raw.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(value).items():
                    if morsel["max-age"] == "0" or not morsel.value or morsel.value == '""':
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
            return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, text)
        finally:
            conn.close()

    def get(self, server: Server, path: str, **headers: str) -> Response:
        return self.request(server, "GET", path, headers=headers)

    def post_form(self, server: Server, path: str, data: dict[str, str]) -> Response:
        """Posts a form as a browser does, with the CSRF token of the page at ``path``."""
        page = self.get(server, path)
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
        assert match, (page.status, page.body[:500])
        body = urlencode({"csrfmiddlewaretoken": match.group(1), **data}).encode()
        return self.request(
            server,
            "POST",
            path,
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    def sign_in(self, server: Server, login: str, password: str) -> Response:
        return self.post_form(server, "/accounts/login/", {"login": login, "password": password})


# --- A TCP proxy that can cut the way --------------------------------------------------


class CuttableProxy:
    """Forwards 127.0.0.1:port to a service. ``cut()`` closes every connection and
    refuses new ones (the service seems down); ``restore()`` listens again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> CuttableProxy:
        self._thread.start()
        self.restore()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, up_writer})
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._writers.difference_update({writer, up_writer})

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, HOST, self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def cut(self) -> None:
        self._run(self._stop())

    def restore(self) -> None:
        self._run(self._start())


# --- A private redis-server ------------------------------------------------------------


@dataclass
class PrivateRedis:
    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                HOST,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None


@contextmanager
def private_redis(folder: Path) -> Iterator[PrivateRedis]:
    import pytest

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = PrivateRedis(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
