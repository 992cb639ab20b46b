"""Prints how long the user list takes, and how many queries it runs.

    manage.py benchmark_user_list [--runs 5]

Run it on PostgreSQL after ``seed_users`` (for example at 10 000 and at 1 000 000
users). It times two surfaces of the same selector (``accounts.selectors.users``):

- the back-office list, through the test client with a benchmark superuser signed
  in with a verified second factor: the first page, searches (an email address's
  beginning, a name, a phone number, a username) and filters;
- the same cases through the Management API (``GET /api/management/users``, pages
  of 50, with a management token of that superuser), and what only the API
  offers: ``joined_after``, the order by username, and pages deep in the list
  (the cursor of the row in the middle of the list, found before timing).

A benchmark, not a test: it prints figures.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.selectors.users import USER_ORDERINGS
from accounts.services.tokens import token_create, token_revoke

CASES = [
    ("first page", ""),
    ("search email prefix", "?q=chloe.dubois.12"),
    ("search display name", "?q=Emma%20Moreau"),
    ("search phone", "?q=%2B3360000123"),
    ("search username", "?q=seed-0004242"),
    ("filter suspended", "?state__exact=suspended"),
    ("filter with second factor", "?second_factor=yes"),
]


def _middle(ordering: str) -> tuple[Any, int]:
    """The cursor of the row in the middle of the whole list in ``ordering``."""
    field, _ = USER_ORDERINGS[ordering]
    name = field.removeprefix("-")
    rows = User.objects.order_by(*USER_ORDERINGS[ordering]).values_list(name, "pk")
    value, pk = rows[User.objects.count() // 2]
    return value, pk


def api_cases() -> list[tuple[str, str]]:
    """The same cases through ``GET /api/management/users`` (pages of 50), and
    what only the API offers: ``joined_after``, the order by username, and pages
    deep in the list (the cursor of the row in the middle, found before timing)."""
    from accounts.api.management.users import _cursor

    month_ago = (timezone.now() - timedelta(days=30)).isoformat()
    deep = _cursor("-date_joined", _middle("-date_joined"))
    deep_by_name = _cursor("username", _middle("username"))
    return [
        ("first page", ""),
        ("search email prefix", "?search=chloe.dubois.12"),
        ("search display name", "?search=Emma%20Moreau"),
        ("search phone", "?search=%2B3360000123"),
        ("search username", "?search=seed-0004242"),
        ("filter suspended", "?state=suspended"),
        ("filter with second factor", "?has_second_factor=true"),
        ("joined in the last 30 days", "?" + urlencode({"joined_after": month_ago})),
        ("page in the middle", "?" + urlencode({"cursor": deep})),
        ("by username, first page", "?ordering=username"),
        (
            "by username, page in the middle",
            "?" + urlencode({"ordering": "username", "cursor": deep_by_name}),
        ),
    ]


class Command(BaseCommand):
    help = "Times the user list: the back-office's pages and the Management API's calls."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--runs", type=int, default=5)

    def handle(self, *args: Any, runs: int, **options: Any) -> None:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        admin, _ = User.objects.get_or_create(
            username="benchmark-admin",
            defaults={
                "email": "benchmark-admin@example.org",
                "is_staff": True,
                "is_superuser": True,
            },
        )
        device, _ = TOTPDevice.objects.get_or_create(
            user=admin, name="benchmark", defaults={"confirmed": True}
        )
        client = Client()
        client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()

        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM accounts_user")
            total = cursor.fetchone()[0]
        self.stdout.write(f"database: {connection.vendor}, users: {total:,}")
        self.stdout.write(
            f"{'case':32} {'median ms':>10} {'max ms':>8} {'queries':>8} {'status':>6}"
        )
        self.stdout.write("back-office list (/admin/accounts/user/)")
        for label, query in CASES:
            url = "/admin/accounts/user/" + query
            self._time(label, runs, lambda url=url: client.get(url))  # type: ignore[misc]
        token = token_create(
            ctx=None,
            user=admin,
            name="benchmark",
            scopes=["management"],
            expires_at=timezone.now() + timedelta(hours=1),
        )
        api = Client(HTTP_AUTHORIZATION=f"Bearer {token.secret}")
        self.stdout.write("Management API (GET /api/management/users, a management token)")
        for label, query in api_cases():
            url = "/api/management/users" + query
            self._time(label, runs, lambda url=url: api.get(url))  # type: ignore[misc]
        token_revoke(ctx=None, token=token.token)

    def _time(self, label: str, runs: int, call: Callable[[], Any]) -> None:
        call()  # warm caches and the plan
        timings = []
        counts = []
        status = 0
        for _run in range(runs):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                result = call()
                timings.append((time.perf_counter() - started) * 1000)
            counts.append(len(captured.captured_queries))
            status = getattr(result, "status_code", 200)
        self.stdout.write(
            f"{label:32} {statistics.median(timings):10.1f} {max(timings):8.1f} "
            f"{max(counts):8d} {status:6d}"
        )
