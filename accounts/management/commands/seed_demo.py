from __future__ import annotations

import base64
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.actor import cli_actor
from accounts.models import User
from accounts.services.mfa import backup_codes_generate

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


# Development only (the command refuses to run with debug off).
DEMO_TOTP_KEY_HEX = "64656d6f2d706f7274616c2d746f74702d6b6579"


class Command(BaseCommand):
    help = "Creates (or resets) the demo user and the demo staff user. Development only."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo only runs with DJANGO_DEBUG on: it creates accounts with "
                "published passwords."
            )
        with transaction.atomic():
            users = [self._ensure(dict(spec)) for spec in DEMO_ACCOUNTS]
            staff = next(user for user in users if user.is_staff)
            secret, codes = self._second_factor(staff)
        base = settings.SITE_URL
        self.stdout.write(self.style.SUCCESS("Demo accounts are ready."))
        self.stdout.write(f"  Sign in at {base}/accounts/login/")
        for spec in DEMO_ACCOUNTS:
            role = "staff (back-office at /admin/)" if spec["is_staff"] else "user"
            self.stdout.write(
                f"  {role}: username {spec['username']} or {spec['email']}, "
                f"password {spec['password']}"
            )
        self.stdout.write(
            f"  {staff.username}'s second step: authenticator app key {secret} "
            "(add it to any TOTP app)"
        )
        self.stdout.write(f"  {staff.username}'s backup codes: {' '.join(codes)}")

    def _second_factor(self, user: User) -> tuple[str, list[str]]:
        """The demo staff user's authenticator app (a fixed, published key, so an app
        set up once keeps working after another run) and a new set of backup codes."""
        TOTPDevice.objects.filter(user=user).delete()
        device = TOTPDevice.objects.create(
            user=user, name="Demo authenticator", confirmed=True, key=DEMO_TOTP_KEY_HEX
        )
        codes = backup_codes_generate(user=user, ctx=cli_actor())
        secret = base64.b32encode(device.bin_key).decode().rstrip("=")
        return secret, codes

    def _ensure(self, spec: dict[str, Any]) -> User:
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
        return user
