"""Prints the Account API's throughput: ``GET /api/my-account`` with a personal
access token, as a ratio to a bare JSON view that authenticates the same token.

    manage.py benchmark_api [--rounds 10] [--requests 200] [--profile endpoint|bare]

Both are called in the same run, alternating (each round times one block of
each, in turns ABBA; the ratio is the median of the rounds' ratios), through the
portal's WSGI handler and its whole middleware stack, in this process: no HTTP
server and no network, so the figures are those of Django, the middlewares, the
API and the database. The bare view is a plain Django view that authenticates
the bearer token with the API's own ``TokenAuth`` and answers ``{"id": ...}``;
it exists only here, in a URLconf of this command (the project's URLs plus that
view, under ``/api/``). The goal is a ratio of at least 60 %. ``--profile``
prints a cProfile of one target instead.

The user and the token are made in a throw-away database, made by Django's
test machinery and removed at the end: a temporary SQLite file by default, or
``NAME_benchmark_api`` beside the database of ``DATABASE_URL`` (PostgreSQL).
``DEBUG`` is off while timing. A benchmark, not a test: it prints figures.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test.utils import override_settings
from django.urls import path
from django.utils import timezone
from ninja.errors import AuthenticationError

from accounts.actor import Actor
from accounts.api.auth import TokenAuth
from accounts.api.errors import unauthenticated
from accounts.management.throwaway import throwaway_database
from accounts.models import User
from accounts.services.tokens import token_create

ENDPOINT = "/api/my-account"
BARE = "/api/benchmark-bare"
GOAL = 0.60
HOST = "localhost"

_bare_auth = TokenAuth()


def bare_view(request: HttpRequest) -> HttpResponse:
    """The least an authenticated JSON answer costs: the same token check."""
    try:
        user = _bare_auth(request)
    except AuthenticationError:
        user = None
    if user is None:
        return unauthenticated()
    return JsonResponse({"id": user.pk})


def _urlpatterns() -> list[Any]:
    """The project's URLs with the bare view just before the API's, so that
    Django tries about as many patterns to reach either."""
    from portal.urls import urlpatterns as project

    at = next(i for i, entry in enumerate(project) if str(entry.pattern) == "api/")
    return [*project[:at], path(BARE.lstrip("/"), bare_view), *project[at:]]


# The benchmark's URLconf (ROOT_URLCONF while it runs).
urlpatterns = _urlpatterns()


def _environ(url: str, token: str) -> dict[str, Any]:
    """What a WSGI server hands the application for ``GET url`` over HTTPS."""
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": url,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": HOST,
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": HOST,
        "HTTP_ACCEPT": "application/json",
        "HTTP_USER_AGENT": "benchmark_api",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


class Caller:
    """Calls the WSGI application as a server would, and keeps the status."""

    def __init__(self, application: Any, token: str) -> None:
        self.application = application
        self.token = token
        self.status = ""

    def _start_response(self, status: str, headers: Any, exc_info: Any = None) -> None:
        self.status = status

    def __call__(self, url: str) -> int:
        result = self.application(_environ(url, self.token), self._start_response)
        try:
            for _chunk in result:
                pass
        finally:
            if hasattr(result, "close"):
                result.close()
        return int(self.status.split()[0])


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _count_queries(call: Callable[[str], int], url: str, times: int) -> float:
    count = 0

    def counter(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counter):
        for _ in range(times):
            call(url)
    return count / times


class Command(BaseCommand):
    help = "Times GET /api/my-account with a token against a bare authenticated JSON view."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--rounds", type=int, default=10, help="alternating rounds")
        parser.add_argument("--requests", type=int, default=200, help="requests per block")
        parser.add_argument(
            "--profile",
            choices=["endpoint", "bare"],
            help="print a cProfile of one block of this target instead",
        )

    def handle(self, *args: Any, rounds: int, requests: int, **options: Any) -> None:
        if rounds < 1 or requests < 1:
            raise CommandError("--rounds and --requests must be at least 1.")
        with throwaway_database("benchmark_api") as name:
            self.stdout.write(f"database: {connection.vendor} ({name}), removed at the end")
            with override_settings(
                DEBUG=False,
                ROOT_URLCONF=__name__,
                ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, HOST],
            ):
                self._run(rounds, requests, options.get("profile"))

    def _run(self, rounds: int, requests: int, profile: str | None) -> None:
        from accounts.requests import PortalWSGIHandler

        user = User.objects.create(username="benchmark-api", email="benchmark-api@example.org")
        token = token_create(
            ctx=Actor(user=user, surface="cli"),
            user=user,
            name="benchmark",
            scopes=["account:read"],
            expires_at=timezone.now() + timedelta(days=1),
        ).secret
        call = Caller(PortalWSGIHandler(), token)
        targets = {"bare": BARE, "endpoint": ENDPOINT}
        for url in targets.values():  # warm up: imports, caches, the token's "last used"
            for _ in range(50):
                status = call(url)
            if status != 200:
                raise CommandError(f"GET {url} answered {status}.")

        if profile:
            self._profile(call, targets[profile], requests)
            return

        timings: dict[str, list[float]] = {name: [] for name in targets}
        # Each round's ratio compares two blocks timed side by side, so a busy
        # moment of the machine weighs on both; the run's ratio is their median.
        round_ratios: list[float] = []
        for index in range(rounds):
            order = ["bare", "endpoint"] if index % 2 == 0 else ["endpoint", "bare"]
            spent: dict[str, float] = {}
            for name in order:
                url = targets[name]
                block = timings[name]
                for _ in range(requests):
                    started = time.perf_counter()
                    call(url)
                    block.append(time.perf_counter() - started)
                spent[name] = sum(block[-requests:])
            round_ratios.append(spent["bare"] / spent["endpoint"])
        queries = {name: _count_queries(call, url, 20) for name, url in targets.items()}

        self.stdout.write(
            "In-process WSGI calls (the portal's WSGI handler, every middleware), no HTTP "
            f"server or network; one thread; {rounds} alternating rounds of {requests} requests."
        )
        self.stdout.write(
            f"{'target':40} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'queries/req':>12}"
        )
        labels = {
            "bare": "bare JSON view, same TokenAuth",
            "endpoint": f"GET {ENDPOINT} (token)",
        }
        for name in ("bare", "endpoint"):
            values = timings[name]
            self.stdout.write(
                f"{labels[name]:40} {len(values) / sum(values):8.0f} "
                f"{statistics.median(values) * 1000:7.2f} {_percentile(values, 0.99) * 1000:7.2f} "
                f"{queries[name]:12.1f}"
            )
        ratio = statistics.median(round_ratios)
        verdict = "meets" if ratio >= GOAL else "BELOW"
        self.stdout.write(
            f"ratio endpoint / bare: {ratio:.0%} ({verdict} the goal of {GOAL:.0%}); "
            f"rounds from {min(round_ratios):.0%} to {max(round_ratios):.0%}"
        )

    def _profile(self, call: Callable[[str], int], url: str, requests: int) -> None:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests):
            call(url)
        profiler.disable()
        report = io.StringIO()
        pstats.Stats(profiler, stream=report).sort_stats("cumulative").print_stats(50)
        self.stdout.write(report.getvalue())
