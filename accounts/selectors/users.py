"""Staff's reads about users: the user list (search, filters, a count that stays
fast at a million rows), a user's overview, and the audit log's CSV rows. The
back-office uses them, and the Management API will."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections
from django.db.models import Exists, OuterRef, Q, QuerySet
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import AuditEvent, User
from accounts.user_search import (
    MAX_PHRASE_LENGTH,
    SEARCHED_FIELDS,
    KeyStartsWith,
    search_phrase,
)

# What the user list searches besides the exact id (the back-office's search box and
# the Management API's ``search``), through the keys in ``User.search_text``.
USER_SEARCH_FIELDS = SEARCHED_FIELDS
COUNT_CAP = 10_000
RECENT_EVENTS = 20
# The orders the list offers, each ended by the id so that rows joined at the same
# instant keep one order from page to page.
USER_ORDERINGS: dict[str, tuple[str, str]] = {
    "-date_joined": ("-date_joined", "-pk"),
    "date_joined": ("date_joined", "pk"),
    "username": ("username", "pk"),
    "-username": ("-username", "-pk"),
}
DEFAULT_ORDERING = "-date_joined"
MAX_ID = 2**63 - 1


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


def users_search(queryset: QuerySet[User], search: str) -> QuerySet[User]:
    """The users with a key starting with ``search`` (their username, email
    address, phone number or names, whole or from any word on, ignoring case: see
    ``accounts.user_search``), or whose id ``search`` is."""
    phrase = search_phrase(search)
    if not phrase:
        return queryset
    if len(phrase) > MAX_PHRASE_LENGTH:
        return queryset.none()
    condition = Q(KeyStartsWith(phrase))
    if phrase.isascii() and phrase.isdigit() and int(phrase) <= MAX_ID:
        condition |= Q(pk=int(phrase))
    return queryset.filter(condition)


def user_list(
    *,
    search: str = "",
    state: str | None = None,
    is_staff: bool | None = None,
    second_factor: bool | None = None,
    joined_after: datetime | None = None,
    ordering: str = DEFAULT_ORDERING,
) -> QuerySet[User]:
    """The user list: ``search`` as ``users_search``; ``joined_after`` keeps the users
    who joined strictly after that instant; ``ordering`` is one of ``USER_ORDERINGS``
    (newest first by default). Page it with ``user_page``."""
    if ordering not in USER_ORDERINGS:
        raise ValueError(f"Unknown ordering {ordering!r}")
    queryset = users_search(users_annotated(), search)
    if state:
        queryset = queryset.filter(state=state)
    if is_staff is not None:
        queryset = queryset.filter(is_staff=is_staff)
    if joined_after is not None:
        queryset = queryset.filter(date_joined__gt=joined_after)
    return users_with_second_factor(queryset, second_factor).order_by(*USER_ORDERINGS[ordering])


def searches(queryset: QuerySet[Any]) -> bool:
    """Whether ``queryset`` filters on a search (``users_search``)."""
    return any(
        isinstance(node, KeyStartsWith)
        for leaf in queryset.query.where.leaves()
        for node in (leaf.flatten() if hasattr(leaf, "flatten") else [leaf])
    )


def ids_in_order(queryset: QuerySet[Any], cap: int = COUNT_CAP) -> list[Any] | None:
    """The ids of all the rows of ``queryset``, in its order, when there are at
    most ``cap`` of them; None when there are more. One query.

    The rows are chosen by a subquery without ORDER BY, and only they are sorted.
    PostgreSQL then reads a search's index (all its matches: a few thousand for a
    common full name among a million users) or, when most rows match, the table
    until ``cap + 1`` of them. Asked for the first ``cap + 1`` in date order
    directly, it may prefer walking the date index and testing each row, a random
    read per row until enough match: a second for a common first name (its
    estimate counts the rows it expects to test, not their reads)."""
    terms = [term for term in queryset.query.order_by if isinstance(term, str) and term != "?"]
    if not terms or len(terms) != len(queryset.query.order_by):
        ids = list(queryset.values_list("pk", flat=True)[: cap + 1])
        return ids if len(ids) <= cap else None
    names = [term.removeprefix("-") for term in terms]
    chosen = queryset.order_by().values_list(*dict.fromkeys(["pk", *names]))[: cap + 1]
    sql, params = chosen.query.sql_with_params()
    connection = connections[queryset.db]
    qn = connection.ops.quote_name
    order = ", ".join(
        f"chosen.{qn(name)} {'DESC' if term.startswith('-') else 'ASC'}"
        for name, term in zip(names, terms, strict=True)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT chosen.{qn('pk')} FROM ({sql}) chosen ORDER BY {order}",  # noqa: S608 - Django's SQL, quoted names
            params,
        )
        ids = [row[0] for row in cursor.fetchall()]
    return ids if len(ids) <= cap else None


@dataclass(frozen=True)
class UserPage:
    rows: list[User]
    # The ``after`` of the next page (the last row's ordering values), or None on
    # the last page.
    next_after: tuple[Any, int] | None


def user_page(
    queryset: QuerySet[User],
    *,
    ordering: str = DEFAULT_ORDERING,
    after: Sequence[Any] | None = None,
    size: int = 50,
) -> UserPage:
    """One page of ``queryset`` in ``ordering``, starting after the row whose
    ordering values are ``after`` (``(date_joined, id)`` or ``(username, id)``, as
    the previous page's ``next_after`` gave them): keyset paging, so a page deep in
    the list costs what the first one does, and rows added or removed meanwhile
    neither repeat nor skip others. One query; two for a search."""
    if ordering not in USER_ORDERINGS:
        raise ValueError(f"Unknown ordering {ordering!r}")
    if size < 1:
        raise ValueError("size must be positive")
    field, _tie = USER_ORDERINGS[ordering]
    name = field.removeprefix("-")
    queryset = queryset.order_by(*USER_ORDERINGS[ordering])
    if after is not None:
        value, pk = after
        beyond = "lt" if field.startswith("-") else "gt"
        # The first condition alone is what the index can start from; the second
        # one steps over the rows of the cursor's own value already given.
        queryset = queryset.filter(
            Q(**{f"{name}__{beyond}e": value}),
            Q(**{f"{name}__{beyond}": value}) | Q(**{name: value, f"pk__{beyond}": pk}),
        )
    rows = None
    if searches(queryset):
        # A search: its matches' ids first (see ids_in_order), then the page by id;
        # when they are too many to read, they are common enough for the ordered
        # query to find a page of them soon.
        ids = ids_in_order(queryset, COUNT_CAP)
        if ids is not None:
            rows = list(queryset.filter(pk__in=ids[: size + 1]))
    if rows is None:
        rows = list(queryset[: size + 1])
    if len(rows) <= size:
        return UserPage(rows=rows, next_after=None)
    rows = rows[:size]
    last = rows[-1]
    return UserPage(rows=rows, next_after=(getattr(last, name), last.pk))


def capped_count(queryset: QuerySet[Any], cap: int = COUNT_CAP) -> int:
    """At most ``cap + 1``: beyond the cap a list says "10,000+" instead of
    scanning the whole table for an exact number. Neither the order nor the
    annotations change the number: without them PostgreSQL counts from an index
    alone (a filter's, or the primary key's) instead of reading each row."""
    return queryset.order_by().values("pk")[: cap + 1].count()


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
