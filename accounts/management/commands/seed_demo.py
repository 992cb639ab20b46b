from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User

DEMO_ACCOUNTS = (
    {
        "username": "alice",
        "email": "alice@example.org",
        "password": "demo-alice-portal-2026",
        "display_name": "Alice Martin",
        "first_name": "Alice",
        "last_name": "Martin",
        "is_staff": False,
        "is_superuser": False,
    },
    {
        "username": "sam",
        "email": "sam@example.org",
        "password": "demo-sam-backoffice-2026",
        "display_name": "Sam Support",
        "first_name": "Sam",
        "last_name": "Support",
        "is_staff": True,
        "is_superuser": True,
    },
)


class Command(BaseCommand):
    help = "Creates (or resets) the demo user and the demo staff user. Development only."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo only runs with DJANGO_DEBUG on: it creates accounts with "
                "published passwords."
            )
        with transaction.atomic():
            for spec in DEMO_ACCOUNTS:
                self._ensure(dict(spec))
        base = settings.SITE_URL
        self.stdout.write(self.style.SUCCESS("Demo accounts are ready."))
        self.stdout.write(f"  Sign in at {base}/accounts/login/")
        for spec in DEMO_ACCOUNTS:
            role = "staff (back-office at /admin/)" if spec["is_staff"] else "user"
            self.stdout.write(
                f"  {role}: username {spec['username']} or {spec['email']}, "
                f"password {spec['password']}"
            )

    def _ensure(self, spec: dict[str, Any]) -> None:
        password = spec.pop("password")
        user = User.objects.filter(username__iexact=spec["username"]).first()
        if user is None:
            user = User(**spec)
        else:
            for key, value in spec.items():
                setattr(user, key, value)
        user.state = User.State.ACTIVE
        user.is_active = True
        user.set_password(password)
        user.save()
        EmailAddress.objects.filter(user=user).exclude(email__iexact=user.email).delete()
        EmailAddress.objects.update_or_create(
            user=user,
            email=user.email,
            defaults={"verified": True, "primary": True},
        )
