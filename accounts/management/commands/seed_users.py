"""Bulk-creates synthetic users to measure the back-office at scale.

    manage.py seed_users --count 1000000

On PostgreSQL rows go through COPY (a million in a couple of minutes); elsewhere
through bulk inserts. Users are named seed-0000001…; running it again adds more.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from accounts.emails import email_key
from accounts.models import User
from accounts.user_search import SEARCHED_FIELDS, search_text_from

FIRST = ["Alice", "Bruno", "Chloé", "David", "Emma", "Farid", "Gina", "Hugo", "Inès",
         "Jules", "Karim", "Léa", "Marc", "Nora", "Oscar", "Paula", "Quentin", "Rosa", "Sami",
         "Tess"]  # fmt: skip
LAST = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
        "Leroy", "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "Roux"]  # fmt: skip
DOMAINS = ["example.org", "example.com", "example.net", "mail.example.fr"]
COLUMNS = [
    "password", "is_superuser", "username", "is_staff", "is_active", "date_joined", "email",
    "email_key", "first_name", "last_name", "display_name", "avatar", "phone", "phone_verified",
    "language", "time_zone", "state", "state_reason", "search_text",
]  # fmt: skip


class Command(BaseCommand):
    help = "Creates N synthetic users (for benchmarks of the back-office)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--batch", type=int, default=20_000)
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args: Any, count: int, batch: int, seed: int, **options: Any) -> None:
        if count <= 0:
            raise CommandError("--count must be positive")
        start = User.objects.filter(username__startswith="seed-").count()
        rng = random.Random(seed + start)  # noqa: S311 - synthetic data, not secrets
        now = timezone.now()
        written = 0
        while written < count:
            size = min(batch, count - written)
            rows = [self._row(start + written + i, rng, now) for i in range(size)]
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    self._copy(rows)
                else:
                    User.objects.bulk_create(
                        [User(**dict(zip(COLUMNS, row, strict=True))) for row in rows],
                        batch_size=2000,
                    )
            written += size
            self.stdout.write(f"  {written}/{count}")
        self.stdout.write(
            self.style.SUCCESS(f"Created {count} users (now {start + count} seed users).")
        )

    def _row(self, n: int, rng: random.Random, now: Any) -> list[Any]:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower()}.{n}@{rng.choice(DOMAINS)}"
        state = rng.choices(["active", "suspended", "pending_deletion"], weights=[97, 2, 1])[0]
        phone = f"+336{n:08d}" if n % 3 == 0 else ""
        row = [
            "!",  # no usable password
            False,
            f"seed-{n:07d}",
            False,
            state == "active",
            now - timedelta(minutes=rng.randint(0, 5 * 365 * 24 * 60)),
            email,
            email_key(email),
            first,
            last,
            f"{first} {last}",
            "",
            phone,
            bool(phone),
            rng.choice(["", "en", "fr"]),
            "UTC",
            state,
            "",
        ]
        # COPY writes around the ORM: the search text as User.save would store it.
        values = dict(zip(COLUMNS[:-1], row, strict=True))
        return [*row, search_text_from(values[name] for name in SEARCHED_FIELDS)]

    def _copy(self, rows: list[list[Any]]) -> None:
        connection.ensure_connection()
        raw = connection.connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY accounts_user ({', '.join(COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
