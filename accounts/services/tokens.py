"""Personal access tokens: made, found, revoked.

A token is ``pat_`` followed by 43 characters of URL-safe base64 (32 random bytes,
256 bits). The first ``PREFIX_LENGTH`` characters of the secret are stored as the
lookup key and shown in lists; the rest is only ever stored as a keyed SHA-256
(HMAC keyed by the site's secret key), compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.actor import Actor
from accounts.models import PersonalAccessToken, User
from accounts.services.audit import Action, audit_record

TOKEN_PREFIX = "pat_"
PREFIX_LENGTH = 8
SECRET_BYTES = 32
# The longest token text accepted: anything longer is not one of ours.
MAX_TOKEN_LENGTH = 80
# Last use is written at most this often per token.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_digest(secret: str) -> str:
    return salted_hmac("accounts.personal_access_token", secret, algorithm="sha256").hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: PersonalAccessToken
    # The full token text, shown once.
    secret: str


def token_create(
    *,
    ctx: Actor | None,
    user: User,
    name: str,
    scopes: list[str],
    expires_at: datetime,
    created_by: User | None = None,
) -> NewToken:
    for _attempt in range(5):
        secret = secrets.token_urlsafe(SECRET_BYTES)
        try:
            with transaction.atomic():
                token = PersonalAccessToken.objects.create(
                    user=user,
                    name=name,
                    prefix=secret[:PREFIX_LENGTH],
                    digest=token_digest(secret),
                    scopes=sorted(set(scopes)),
                    expires_at=expires_at,
                    created_by=created_by,
                )
        except IntegrityError:  # the prefix is taken (about 1 in 2**48): draw again
            continue
        audit_record(
            ctx=ctx,
            action=Action.TOKEN_CREATED,
            subject=user,
            data={
                "token": token.prefix,
                "name": name,
                "scopes": token.scopes,
                "expires_at": expires_at.isoformat(),
            },
        )
        return NewToken(token=token, secret=TOKEN_PREFIX + secret)
    raise RuntimeError("could not draw a free token prefix")


def token_revoke(*, ctx: Actor | None, token: PersonalAccessToken) -> bool:
    """Whether it was live (a second revocation changes nothing)."""
    now = timezone.now()
    revoked = PersonalAccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now
    )
    if revoked:
        token.revoked_at = now
        audit_record(
            ctx=ctx,
            action=Action.TOKEN_REVOKED,
            subject=token.user,
            data={"token": token.prefix, "name": token.name},
        )
    return bool(revoked)


def tokens_revoke_all(*, user: User) -> int:
    """Every live token of ``user`` dies (suspension, deletion, password change):
    personal access tokens, and the OAuth tokens of the apps the user allowed."""
    from accounts.oauth import oauth_tokens_revoke_all

    oauth_tokens_revoke_all(user=user)
    return PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def token_authenticate(raw: str) -> PersonalAccessToken | None:
    """The live token named by ``raw`` (its owner loaded), or None: unknown, wrong
    secret, revoked, expired, or an owner who may not use the site. Records the
    use (at most once a minute)."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > MAX_TOKEN_LENGTH:
        return None
    secret = raw[len(TOKEN_PREFIX) :]
    if len(secret) <= PREFIX_LENGTH:
        return None
    now = timezone.now()
    token = (
        # The owner's machine client too (none for a person): whether the owner is a
        # service account is then known without a query (``User.is_service_account``).
        PersonalAccessToken.objects.select_related("user", "user__machine_client")
        .filter(prefix=secret[:PREFIX_LENGTH], revoked_at__isnull=True, expires_at__gt=now)
        .first()
    )
    if token is None or not hmac.compare_digest(token.digest, token_digest(secret)):
        return None
    user = token.user
    if not user.is_active or user.state != User.State.ACTIVE:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        PersonalAccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
