"""A user's personal access tokens, as the settings page and the Account API list
them: never the secret (it is not stored) nor its digest."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import PersonalAccessToken, User
from accounts.prepared import prepared
from accounts.services.tokens import TOKEN_PREFIX

# A revoked or expired token stays in the list this long, then drops out of it.
DEAD_TOKENS_SHOWN_DAYS = 30


@prepared
def _tokens(user_id: int, since: datetime) -> QuerySet[PersonalAccessToken]:
    # Not revoked and not expired before ``since`` (live ones included: they expire
    # later than now), or revoked since then.
    not_revoked = Q(revoked_at__isnull=True, expires_at__gte=since)
    recently_revoked = Q(revoked_at__gte=since)
    return (
        PersonalAccessToken.objects.filter(user_id=user_id)
        .filter(not_revoked | recently_revoked)
        .order_by("-created_at", "-id")
        .defer("digest")
    )


def user_tokens(*, user: User) -> list[PersonalAccessToken]:
    """The user's live tokens and those that died in the last
    ``DEAD_TOKENS_SHOWN_DAYS`` days, newest first (prepared: ``accounts.prepared``)."""
    return _tokens(user.pk, timezone.now() - timedelta(days=DEAD_TOKENS_SHOWN_DAYS))


def token_shown_prefix(token: PersonalAccessToken) -> str:
    """How a token is named in lists: its first characters, e.g. ``pat_AbCd1234…``."""
    return f"{TOKEN_PREFIX}{token.prefix}…"


def token_is_live(token: PersonalAccessToken) -> bool:
    return token.revoked_at is None and token.expires_at > timezone.now()
