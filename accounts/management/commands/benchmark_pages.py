"""Prints the throughput of every settings page as a ratio to a bare
authenticated view, measured from outside through the production server.

    manage.py benchmark_pages [--data realistic|grown] [--rounds 6] [--requests 150]
                              [--concurrency 8] [--workers 2]

It starts gunicorn on a free local port with a throw-away database (a temporary
SQLite file, migrated; or a ``NAME_benchmark_pages`` database beside the one of
``DATABASE_URL`` on PostgreSQL, with ``REDIS_URL`` passed on), debug off, made-up
secrets and no HTTPS redirect. It makes a user with an authenticator app and
the data of a few years of use (``--data realistic``, the default: 4 sessions,
2 security keys, 200 security events; ``--data grown``: 50 sessions, 20 security
keys, 500 events, the query budget tests' much data; both with backup codes, 5
tokens, 3 connected apps and 2 linked accounts), signs them in with the second
factor verified, and sends GET requests with their cookies (session, CSRF) from a load
generator of its own (asyncio, one new connection per request, ``--concurrency``
at a time). Each round times, for each page, a block of requests to the page and
a block to the bare view side by side (in turns: bare first, then page first), so
a busy moment of the machine weighs on both; a page's ratio is the median of its
rounds' ratios (six short rounds by default rather than two long ones: on a
machine whose two cores also run the load generator, the bare view's own rate
moves by a tenth from one block to the next, and the median of six pairs is
steadier than either of two).

The bare view is ``login_required`` and answers a few bytes, through all of the
project's middleware: the least a signed-in page costs. It exists only in this
module's URLconf, which only the benchmark's server loads
(``portal.benchmark_settings``). Queries are counted in this process, with
Django's test client and the same session. The gunicorn workers' memory (RSS) is
read before the first timed request and after the last one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import path, reverse

from accounts.management.account_data import (
    add_apps,
    add_backup_codes,
    add_events,
    add_passkeys,
    add_sessions,
    add_tokens,
)
from accounts.management.throwaway import throwaway_database
from portal.processes import (
    ServerDidNotStart,
    child_pids,
    free_port,
    rss_mb,
    stop,
    wait_for_port,
)

BARE = "/settings/benchmark-bare/"
GOAL = 0.60
QUERY_GOAL = 10
HOST = "127.0.0.1"


@login_required
def bare_view(request: HttpRequest) -> HttpResponse:
    """The least a signed-in page costs: the whole middleware, no work of its own."""
    return HttpResponse(b"ok", content_type="text/plain")


def _urlpatterns() -> list[Any]:
    """The project's URLs with the bare view just before the settings pages', so
    that Django tries about as many patterns to reach either."""
    from portal.urls import urlpatterns as project

    at = next(i for i, entry in enumerate(project) if str(entry.pattern) == "settings/")
    return [*project[:at], path(BARE.lstrip("/"), bare_view), *project[at:]]


# The benchmark server's URLconf (portal.benchmark_settings).
urlpatterns = _urlpatterns()


def settings_pages() -> list[tuple[str, str]]:
    """(label, URL) of every section of the settings navigation."""
    from accounts.navigation import SECTIONS

    return [(str(section.label), reverse(section.url_name)) for section in SECTIONS]


# --- Data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    sessions: int
    keys: int
    events: int


DATA = {
    # What a user of a few years has: a phone and a laptop or two, a key or two.
    "realistic": Data(sessions=4, keys=2, events=200),
    # Much more of everything (the query budget tests' "much data").
    "grown": Data(sessions=50, keys=20, events=500),
}


def _make_user(data: Data = DATA["grown"]) -> Any:
    """A user with an authenticator app and ``data``'s sessions, keys and events."""
    from allauth.account.models import EmailAddress
    from allauth.socialaccount.models import SocialAccount, SocialApp
    from django.contrib.sites.models import Site
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import User

    user = User(
        username="benchmark",
        email="benchmark@example.org",
        display_name="Bench Mark",
        phone="+33698765432",
        phone_verified=True,
    )
    user.set_password(secrets.token_urlsafe(16))
    user.save()
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    device = TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    add_sessions(user, data.sessions)
    add_passkeys(user, data.keys)
    add_backup_codes(user)
    add_events(user, data.events)
    add_tokens(user, 5)
    add_apps(user, 3)
    # A configured provider (no request leaves the machine: the page only lists).
    social_app = SocialApp.objects.create(
        provider="github", name="GitHub", client_id="id", secret="secret"
    )
    social_app.sites.add(Site.objects.get_current())
    for i in range(2):
        SocialAccount.objects.create(
            user=user,
            provider="github",
            uid=str(1000 + i),
            extra_data={"id": 1000 + i, "login": f"bench-{i}"},
        )
    return user, device


def _sign_in(user: Any, device: Any) -> Any:
    """A test client signed in as ``user`` with the second factor verified, as the
    second step of sign-in leaves the session (see tests/conftest.py)."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


# --- The server --------------------------------------------------------------------------


@contextmanager
def _throwaway_database() -> Iterator[str]:
    """The throw-away database (``throwaway_database``); yields its ``DATABASE_URL``
    for the server's processes."""
    with throwaway_database("benchmark_pages") as name:
        if connection.vendor == "sqlite":
            yield f"sqlite:///{name}"
        else:
            parts = urlsplit(settings.DATABASE_URL)
            yield urlunsplit(parts._replace(path=f"/{name}"))


def _private_key(folder: Path) -> str:
    from accounts.oauth_keys import development_key

    return development_key(folder / "oauth-key.pem")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    def worker_pids(self) -> list[int]:
        return child_pids(self.process.pid)

    def worker_rss_mb(self) -> list[float]:
        return rss_mb(self.worker_pids())


@contextmanager
def _gunicorn(database_url: str, secret_key: str, workers: int) -> Iterator[Server]:
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.benchmark_settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secret_key,
            "DJANGO_ALLOWED_HOSTS": f"{HOST},localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "OAUTH_PRIVATE_KEY": _private_key(Path(folder)),
            "DATABASE_URL": database_url,
            "DJANGO_LOG_LEVEL": "ERROR",
        }
        env.pop("OAUTH_PRIVATE_KEY_FILE", None)
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi:application",
            f"--bind={HOST}:{port}",
            f"--workers={workers}",
            "--worker-class=sync",
            "--log-level=warning",
        ]
        # The server's log (one JSON line per request, as in production) goes to a
        # file in the temporary folder, not to the report.
        log = (Path(folder) / "server.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 (our own arguments)
            command, env=env, cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()  # the child holds its own copy
        server = Server(process, port)
        try:
            try:
                wait_for_port(port, seconds=30, process=process)
            except ServerDidNotStart as error:
                tail = (Path(folder) / "server.log").read_text(errors="replace")[-2000:]
                raise CommandError(f"gunicorn: {error}\n{tail}") from None
            yield server
        finally:
            stop(process, timeout=20)


# --- The load generator ----------------------------------------------------------------


@dataclass
class Block:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


async def _get(port: int, request: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(request)
        await writer.drain()
        response = await reader.read()  # gunicorn's sync workers close the connection
    finally:
        writer.close()
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0
    return status, time.perf_counter() - started


async def _block(port: int, url: str, cookie: str, requests: int, concurrency: int) -> Block:
    request = (
        f"GET {url} HTTP/1.1\r\nHost: {HOST}\r\nCookie: {cookie}\r\n"
        "Accept: text/html\r\nAccept-Language: en\r\nUser-Agent: benchmark_pages\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    block = Block()
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            status, seconds = await _get(port, request)
            block.latencies.append(seconds)
            if status != 200:
                block.errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    block.seconds = time.perf_counter() - started
    return block


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- The command -------------------------------------------------------------------------


class Command(BaseCommand):
    help = "Times every settings page against a bare signed-in view, through gunicorn."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--data",
            choices=sorted(DATA),
            default="realistic",
            help="the signed-in user's data (realistic: 4 sessions, 2 keys, 200 events; "
            "grown: 50 sessions, 20 keys, 500 events)",
        )
        parser.add_argument("--rounds", type=int, default=6, help="alternating rounds")
        parser.add_argument(
            "--requests", type=int, default=150, help="requests per block (page or bare view)"
        )
        parser.add_argument("--concurrency", type=int, default=8, help="connections at a time")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")

    def handle(
        self,
        *args: Any,
        data: str,
        rounds: int,
        requests: int,
        concurrency: int,
        workers: int,
        **options: Any,
    ) -> None:
        if min(rounds, requests, concurrency, workers) < 1:
            raise CommandError("--rounds, --requests, --concurrency and --workers must be ≥ 1.")
        secret_key = secrets.token_urlsafe(48)
        with _throwaway_database() as database_url:
            self.stdout.write(f"database: {connection.vendor}, throw-away, removed at the end")
            with override_settings(
                DEBUG=False,
                SECRET_KEY=secret_key,
                ROOT_URLCONF=__name__,
                ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver", HOST],
                SECURE_SSL_REDIRECT=False,
            ):
                user, device = _make_user(DATA[data])
                self.stdout.write(
                    f"data: {data} ({DATA[data].sessions} sessions, {DATA[data].keys} security "
                    f"keys, {DATA[data].events} security events)"
                )
                client = _sign_in(user, device)
                pages = settings_pages()
                queries = self._count_queries(client, [url for _label, url in pages])
                # What a browser sends back: the session and the CSRF cookie.
                cookie = "; ".join(f"{name}={c.value}" for name, c in client.cookies.items())
            with _gunicorn(database_url, secret_key, workers) as server:
                self._run(server, pages, queries, cookie, rounds, requests, concurrency)

    def _count_queries(self, client: Any, urls: list[str]) -> dict[str, int]:
        counts = {}
        # These in-process requests' log lines are not the report's.
        request_log = logging.getLogger("portal.request")
        level = request_log.level
        request_log.setLevel(logging.WARNING)
        try:
            for url in [BARE, *urls]:
                client.get(url)  # the session's bookkeeping, once
                with CaptureQueriesContext(connection) as ctx:
                    response = client.get(url)
                if response.status_code != 200:
                    raise CommandError(f"GET {url} answered {response.status_code} in-process.")
                counts[url] = len(ctx.captured_queries)
        finally:
            request_log.setLevel(level)
        return counts

    def _run(
        self,
        server: Server,
        pages: list[tuple[str, str]],
        queries: dict[str, int],
        cookie: str,
        rounds: int,
        requests: int,
        concurrency: int,
    ) -> None:
        def block(url: str, n: int) -> Block:
            return asyncio.run(_block(server.port, url, cookie, n, concurrency))

        # Warm up every worker: imports, template caches, the session's activity.
        for url in [BARE, *(url for _label, url in pages)]:
            warm = block(url, max(concurrency, 4 * len(server.worker_pids())))
            if warm.errors:
                raise CommandError(f"GET {url} through gunicorn did not answer 200.")
        rss_before = server.worker_rss_mb()

        sent = 0
        bare: dict[str, list[Block]] = {url: [] for _label, url in pages}
        timed: dict[str, list[Block]] = {url: [] for _label, url in pages}
        for index in range(rounds):
            for _label, url in pages:
                order = [BARE, url] if index % 2 == 0 else [url, BARE]
                for target in order:
                    result = block(target, requests)
                    sent += requests
                    if result.errors:
                        raise CommandError(f"GET {target}: {result.errors} answers were not 200.")
                    (bare if target == BARE else timed)[url].append(result)
        rss_after = server.worker_rss_mb()

        self.stdout.write(
            f"gunicorn, {len(server.worker_pids())} sync workers, debug off; {concurrency} "
            f"connections; {rounds} rounds of {requests} requests per page and per bare "
            f"block; {os.cpu_count()} CPUs"
        )
        self.stdout.write(
            f"{'page':28} {'req/s':>7} {'bare':>7} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'queries':>7}"
        )
        bare_all = [b for blocks in bare.values() for b in blocks]
        self._row("bare view", bare_all, None, queries[BARE])
        below: list[str] = []
        for label, url in pages:
            ratio = self._row(label, timed[url], bare[url], queries[url])
            if (ratio is not None and ratio < GOAL) or queries[url] > QUERY_GOAL:
                below.append(label)
        before, after = sum(rss_before), sum(rss_after)
        growth = (after - before) / before if before else 0.0
        self.stdout.write(
            f"worker memory (RSS): {', '.join(f'{v:.0f}' for v in rss_before)} MB before, "
            f"{', '.join(f'{v:.0f}' for v in rss_after)} MB after {sent} requests "
            f"({growth:+.1%})"
        )
        if below:
            self.stdout.write(
                f"below the goal (ratio ≥ {GOAL:.0%}, ≤ {QUERY_GOAL} queries): {', '.join(below)}"
            )
        else:
            self.stdout.write(
                f"every page meets the goal (ratio ≥ {GOAL:.0%}, ≤ {QUERY_GOAL} queries)"
            )

    def _row(
        self, label: str, blocks: list[Block], bare: list[Block] | None, queries: int
    ) -> float | None:
        latencies = [v for b in blocks for v in b.latencies]
        rate = len(latencies) / sum(b.seconds for b in blocks)
        ratio = None
        bare_rate = ""
        ratio_text = ""
        if bare is not None:
            ratios = [
                (len(p.latencies) / p.seconds) / (len(b.latencies) / b.seconds)
                for p, b in zip(blocks, bare, strict=True)
            ]
            ratio = statistics.median(ratios)
            bare_latencies = sum(len(b.latencies) for b in bare)
            bare_rate = f"{bare_latencies / sum(b.seconds for b in bare):7.0f}"
            ratio_text = f"{ratio:6.0%}"
        self.stdout.write(
            f"{label[:28]:28} {rate:7.0f} {bare_rate:>7} {ratio_text:>6} "
            f"{statistics.median(latencies) * 1000:7.1f} "
            f"{_percentile(latencies, 0.99) * 1000:7.1f} {queries:7d}"
        )
        return ratio
