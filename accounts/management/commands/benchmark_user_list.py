"""Prints how long the back-office user list takes, and how many queries it runs.

    manage.py benchmark_user_list [--runs 5]

Run it on PostgreSQL after ``seed_users`` (for example at 10 000 and at 1 000 000
users). It signs in a benchmark superuser with a verified second factor through the
test client and times: the first page, a search by email prefix, a search by name,
a search by phone, and a state filter. A benchmark, not a test: it prints figures.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User

CASES = [
    ("first page", ""),
    ("search email prefix", "?q=chloe.dubois.12"),
    ("search display name", "?q=Emma%20Moreau"),
    ("search phone", "?q=%2B3360000123"),
    ("search username", "?q=seed-0004242"),
    ("filter suspended", "?state__exact=suspended"),
    ("filter with second factor", "?second_factor=yes"),
]


class Command(BaseCommand):
    help = "Times the back-office user list (first page, searches, filters)."

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
            f"{'case':28} {'median ms':>10} {'max ms':>8} {'queries':>8} {'status':>6}"
        )
        for label, query in CASES:
            url = "/admin/accounts/user/" + query
            client.get(url)  # warm caches and the plan
            timings = []
            counts = []
            status = 0
            for _run in range(runs):
                with CaptureQueriesContext(connection) as captured:
                    started = time.perf_counter()
                    response = client.get(url)
                    timings.append((time.perf_counter() - started) * 1000)
                counts.append(len(captured.captured_queries))
                status = response.status_code
            self.stdout.write(
                f"{label:28} {statistics.median(timings):10.1f} {max(timings):8.1f} "
                f"{max(counts):8d} {status:6d}"
            )
