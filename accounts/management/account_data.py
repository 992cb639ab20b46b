"""An account's data in bulk, as years of use leave it: sessions, security keys,
backup codes, security events, tokens and connected apps. The page benchmark
(``benchmark_pages``) and the query budget tests build their users with it."""

from __future__ import annotations

import uuid
from datetime import timedelta

from allauth.usersessions.models import UserSession
from django.utils import timezone
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import (
    AuditEvent,
    BackupCode,
    BackupCodeDevice,
    PersonalAccessToken,
    User,
)
from accounts.services.audit import Action

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def add_sessions(user: User, count: int) -> None:
    UserSession.objects.bulk_create(
        UserSession(user=user, session_key=uuid.uuid4().hex, ip="192.0.2.1", user_agent=UA)
        for _ in range(count)
    )


def add_passkeys(user: User, count: int) -> None:
    start = WebAuthnCredential.objects.filter(user=user).count()
    for i in range(start, start + count):
        # One by one: saving computes the credential id's hash.
        WebAuthnCredential.objects.create(
            user=user,
            name=f"Key {i}",
            confirmed=True,
            credential_id=f"credential-{user.pk}-{i}".encode(),
            public_key=b"public-key",
            sign_count=0,
            aaguid="00000000-0000-0000-0000-000000000000",
        )


def add_tokens(user: User, count: int) -> None:
    start = PersonalAccessToken.objects.filter(user=user).count()
    PersonalAccessToken.objects.bulk_create(
        PersonalAccessToken(
            user=user,
            name=f"Token {i}",
            prefix=f"p{user.pk:04}{i:03}",
            digest="0" * 64,
            scopes=["account:read"],
            expires_at=timezone.now() + timedelta(days=30),
        )
        for i in range(start, start + count)
    )


def add_apps(user: User, count: int) -> None:
    """Apps the user let act for them (connected apps)."""
    from allauth.idp.oidc.models import Client as App

    from accounts.models import AppGrant

    start = AppGrant.objects.filter(user=user).count()
    for i in range(start, start + count):
        app = App(name=f"App {user.pk}-{i}", type=App.Type.CONFIDENTIAL)
        app.set_secret(f"secret-{user.pk}-{i}")
        app.set_scopes(["openid", "account:read"])
        app.set_grant_types(["authorization_code"])
        app.set_redirect_uris([f"https://app{i}.example.com/callback"])
        app.set_response_types(["code"])
        app.save()
        AppGrant.objects.create(user=user, client=app, scopes=["openid", "account:read"])


def add_events(user: User, count: int, staff: User | None = None) -> None:
    actions = [Action.PROFILE_UPDATED, Action.PASSWORD_CHANGED, Action.REAUTHENTICATED]
    AuditEvent.objects.bulk_create(
        AuditEvent(
            action=actions[i % len(actions)],
            subject=user,
            subject_label=user.username,
            actor=staff if staff is not None and i % 5 == 0 else user,
            impersonator=staff if staff is not None and i % 7 == 0 else None,
            ip_address="192.0.2.1",
            user_agent=UA,
        )
        for i in range(count)
    )


def add_backup_codes(user: User, count: int = 10) -> None:
    device = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    BackupCode.objects.bulk_create(
        BackupCode(device=device, code_hash=f"hash-{i}") for i in range(count)
    )
