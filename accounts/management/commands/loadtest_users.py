"""Creates (or resets) the accounts the load test signs in with.

    LOADTEST_PASSWORD=… manage.py loadtest_users --count 32 [--prefix loadtest-]

Accounts ``loadtest-001`` … ``loadtest-032`` with a verified email address
(``loadtest-001@example.org``…), no second factor, and the password of
``LOADTEST_PASSWORD`` (one is made up and printed when it is unset). Running it
again resets the password and reactivates them; their display names are kept.
Run it where ``DATABASE_URL`` points at the deployment's database (``scripts/loadtest``
does it by itself for a local run). ``--delete`` removes them again.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User

MAX_USERS = 10_000


class Command(BaseCommand):
    help = "Creates or resets the load test's accounts (password from LOADTEST_PASSWORD)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--count", type=int, default=32)
        parser.add_argument("--prefix", default="loadtest-")
        parser.add_argument("--domain", default="example.org", help="of their email addresses")
        parser.add_argument("--delete", action="store_true", help="remove the accounts instead")

    def handle(
        self, *args: Any, count: int, prefix: str, domain: str, delete: bool, **options: Any
    ) -> None:
        if not 1 <= count <= MAX_USERS:
            raise CommandError(f"--count must be between 1 and {MAX_USERS}.")
        if not prefix or not prefix.isascii() or not prefix.replace("-", "").isalnum():
            raise CommandError("--prefix must be ASCII letters, digits and dashes.")
        names = [f"{prefix}{index:03d}" for index in range(1, count + 1)]
        if delete:
            deleted, _ = User.objects.filter(username__in=names).delete()
            self.stdout.write(f"deleted {deleted} rows")
            return
        password = os.environ.get("LOADTEST_PASSWORD", "")
        made_up = not password
        if made_up:
            password = secrets.token_urlsafe(18)
        # One hash for every account: hashing is deliberately slow.
        encoded = make_password(password)
        with transaction.atomic():
            existing = {u.username: u for u in User.objects.filter(username__in=names)}
            for name in names:
                user = existing.get(name) or User(username=name, email=f"{name}@{domain}")
                user.password = encoded
                user.save()
                EmailAddress.objects.update_or_create(
                    user=user,
                    email=user.email,
                    defaults={"verified": True, "primary": True},
                )
        self.stdout.write(f"{len(names)} accounts: {names[0]} … {names[-1]}")
        if made_up:
            self.stdout.write(f"password: {password}")
