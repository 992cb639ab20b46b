"""Staff's reads about users: the user list (search, filters, a count that stays
fast at a million rows), a user's overview, and the audit log's CSV rows. The
back-office uses them, and the Management API will."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import AuditEvent, User

# What the user list searches (the back-office's search box and the API's ``q``).
USER_SEARCH_FIELDS = ("username", "email", "display_name", "phone")
COUNT_CAP = 10_000
RECENT_EVENTS = 20


def users_annotated(queryset: QuerySet[User] | None = None) -> QuerySet[User]:
    """Users with ``has_second_factor`` (a confirmed app or security key)."""
    queryset = queryset if queryset is not None else User.objects.all()
    totp = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
    keys = WebAuthnCredential.objects.filter(user=OuterRef("pk"), confirmed=True)
    return queryset.annotate(has_second_factor=Exists(totp) | Exists(keys))


def users_with_second_factor(queryset: QuerySet[User], value: bool | None) -> QuerySet[User]:
    """Only the users with (True) or without (False) a second factor."""
    if value is None:
        return queryset
    # The device tables are small: look users up from them (an index lookup)
    # rather than testing every user row for a device.
    with_factor = (
        TOTPDevice.objects.filter(confirmed=True)
        .values("user_id")
        .union(WebAuthnCredential.objects.filter(confirmed=True).values("user_id"))
    )
    if value:
        return queryset.filter(pk__in=with_factor)
    return queryset.exclude(pk__in=with_factor)


def user_list(
    *,
    search: str = "",
    state: str | None = None,
    is_staff: bool | None = None,
    second_factor: bool | None = None,
) -> QuerySet[User]:
    """The user list, newest first: ``search`` looks in ``USER_SEARCH_FIELDS``."""
    queryset = users_annotated()
    for term in search.split():
        condition = Q()
        for name in USER_SEARCH_FIELDS:
            condition |= Q(**{f"{name}__icontains": term})
        queryset = queryset.filter(condition)
    if state:
        queryset = queryset.filter(state=state)
    if is_staff is not None:
        queryset = queryset.filter(is_staff=is_staff)
    return users_with_second_factor(queryset, second_factor).order_by("-date_joined")


def capped_count(queryset: QuerySet[Any], cap: int = COUNT_CAP) -> int:
    """At most ``cap + 1``: beyond the cap a list says "10,000+" instead of
    scanning the whole table for an exact number."""
    return queryset[: cap + 1].count()


def user_backoffice_overview(*, user: User) -> dict[str, object]:
    """Everything staff read on a user's page, in a fixed number of queries whatever
    the number of sessions or events (lists are bounded)."""
    from allauth.account.models import EmailAddress
    from allauth.socialaccount.models import SocialAccount

    from accounts.models import BackupCodeDevice
    from accounts.selectors.sessions import user_sessions_for_staff
    from accounts.services.audit import Action

    events = list(
        AuditEvent.objects.filter(subject=user)
        .select_related("actor", "impersonator")
        .order_by("-created_at", "-id")[:RECENT_EVENTS]
    )
    backup = BackupCodeDevice.objects.filter(user=user).first()
    return {
        "emails": list(EmailAddress.objects.filter(user=user).order_by("-primary", "email")),
        "linked": list(SocialAccount.objects.filter(user=user).order_by("date_joined")),
        "totp": list(TOTPDevice.objects.filter(user=user, confirmed=True)),
        "keys": list(WebAuthnCredential.objects.filter(user=user, confirmed=True)),
        "backup_remaining": (
            backup.codes.filter(used_at__isnull=True).count() if backup is not None else None
        ),
        "sessions": user_sessions_for_staff(user=user),
        "events": [
            {
                "when": e.created_at,
                "label": Action.LABELS.get(e.action, e.action),
                "actor": e.actor.username if e.actor else "",
                "impersonator": e.impersonator.username if e.impersonator else "",
                "ip": e.ip_address or "",
            }
            for e in events
        ],
    }


# --- The audit log as CSV ---------------------------------------------------------------

AUDIT_CSV_HEADER = (
    "time", "action", "subject", "actor", "impersonator", "ip_address", "user_agent", "data",
)  # fmt: skip


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in {"=", "+", "-", "@", "\t", "\r"} else value


def audit_csv_rows(events: QuerySet[AuditEvent]) -> Iterator[list[str]]:
    """The header, then one row per event (streamed in chunks)."""
    yield list(AUDIT_CSV_HEADER)
    rows: Iterable[AuditEvent] = events.select_related("actor", "impersonator").iterator(
        chunk_size=2000
    )
    for event in rows:
        yield [
            event.created_at.isoformat(),
            event.action,
            _cell(event.subject_label),
            _cell(event.actor.username if event.actor else ""),
            _cell(event.impersonator.username if event.impersonator else ""),
            event.ip_address or "",
            _cell(event.user_agent),
            _cell(json.dumps(event.data, ensure_ascii=False, sort_keys=True)),
        ]
