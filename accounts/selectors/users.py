"""Staff's reads about users: the user list (search, filters, a count that stays
fast at a million rows), a user's overview, and the audit log's CSV rows. The
back-office uses them, and the Management API will."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connections
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import Col
from django.db.models.lookups import Exact
from django.db.models.sql.where import OR, WhereNode
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import AuditEvent, User
from accounts.user_search import (
    KEY_TABLE,
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


def _search_alone(queryset: QuerySet[Any]) -> tuple[str, int | None] | None:
    """The phrase of ``queryset``'s search (``users_search``) and the id it may also
    be, when that search is the only condition of a plain query of users."""
    query = queryset.query
    if (
        queryset.model is not User
        or query.is_sliced
        or query.distinct
        or query.combinator
        or query.extra_order_by
    ):
        return None
    where = query.where
    if where.negated or len(where.children) != 1:
        return None
    (node,) = where.children
    pk = None
    if isinstance(node, WhereNode):
        if node.negated or node.connector != OR or len(node.children) != 2:
            return None
        node, by_id = node.children
        if not (
            isinstance(by_id, Exact)
            and isinstance(by_id.lhs, Col)
            and by_id.lhs.target == User._meta.pk
            and isinstance(by_id.rhs, int)
        ):
            return None
        pk = by_id.rhs
    if isinstance(node, Exact) and node.rhs is True:
        node = node.lhs
    if not (
        isinstance(node, KeyStartsWith)
        and isinstance(node.column, Col)
        and node.column.target == User._meta.get_field("search_text")
    ):
        return None
    return node.phrase, pk


def _date_order(queryset: QuerySet[Any]) -> tuple[str, str] | None:
    """The directions of the date and of the id when ``queryset`` is ordered by the
    date, then the id (a term repeated counts once: the admin's list repeats its
    ordering's)."""
    terms: dict[str, str] = {}
    for term in queryset.query.order_by:
        if not isinstance(term, str):
            return None
        name = term.removeprefix("-")
        terms.setdefault("pk" if name == "id" else name, term)
    if list(terms) != ["date_joined", "pk"]:
        return None
    date, tie = terms.values()
    return ("DESC" if date[0] == "-" else "ASC", "DESC" if tie[0] == "-" else "ASC")


# A search is read from the key table when its phrase starts at most this many distinct
# keys (a full name, a name and its variants, a username...): each key's users are
# read in date order, only as far as the page needs.
MAX_KEYS = 8

# The distinct keys starting with the phrase: one index probe each, stopping after
# MAX_KEYS + 1.
_PREFIX_KEYS_SQL = f"""
WITH RECURSIVE prefix_keys(key, n) AS (
    (SELECT key, 1 FROM {KEY_TABLE} WHERE key ^@ %(phrase)s ORDER BY key USING ~<~ LIMIT 1)
    UNION ALL
    SELECT (
        SELECT s.key FROM {KEY_TABLE} s WHERE s.key ^@ %(phrase)s AND s.key ~>~ k.key
        ORDER BY s.key USING ~<~ LIMIT 1
    ), k.n + 1
    FROM prefix_keys k WHERE k.key IS NOT NULL AND k.n <= %(max_keys)s
), chosen AS MATERIALIZED (
    SELECT key FROM prefix_keys WHERE key IS NOT NULL
)"""  # noqa: S608 - a constant name
# Their users, at most cap + 1 of each key's, with the user whose id the phrase may be
# (one key's users are distinct: counted without comparing them).
_COUNTED_SQL = f""", counted AS MATERIALIZED (
    SELECT CASE WHEN (SELECT count(*) FROM chosen) = 1 AND {{alone}} THEN (
        SELECT count(*) FROM (
            SELECT FROM {KEY_TABLE} s WHERE s.key = (SELECT key FROM chosen) LIMIT %(cap_read)s
        ) t
    ) WHEN (SELECT count(*) FROM chosen) <= %(max_keys)s THEN (
        SELECT LEAST(%(cap_read)s, count(*)) FROM (
            SELECT DISTINCT t.user_id FROM chosen c, LATERAL (
                SELECT s.user_id FROM {KEY_TABLE} s WHERE s.key = c.key LIMIT %(cap_read)s
            ) t
            {{by_id}}
        ) u
    ) END AS total
)"""  # noqa: S608 - a constant name
# Each key's users in the list's order (from the cursor on), as many as the page needs,
# merged; with more keys than MAX_KEYS, all the matches from the search's own index.
_SEARCH_IDS_SQL = f"""{{keys}}{{counted}}
SELECT (SELECT count(*) FROM chosen), {{total}}, CASE
    WHEN (SELECT count(*) FROM chosen) > %(max_keys)s THEN ARRAY(
        SELECT found.pk FROM ({{fallback}}) found
        ORDER BY found.date_joined {{date_order}}, found.pk {{id_order}}
    )
    ELSE ARRAY(
        SELECT user_id FROM (
            SELECT DISTINCT t.user_id, t.date_joined FROM chosen c, LATERAL (
                SELECT s.user_id, s.date_joined FROM {KEY_TABLE} s
                WHERE s.key = c.key AND {{beyond}}
                ORDER BY s.date_joined {{date_order}}, s.user_id {{id_order}}
                LIMIT %(reach)s
            ) t
            {{by_id}}
        ) m
        ORDER BY date_joined {{date_order}}, user_id {{id_order}} OFFSET %(offset)s LIMIT %(limit)s
    )
END"""  # noqa: S608 - a constant name
_PLACEHOLDER = re.compile(r"%[%s]")


@dataclass(frozen=True)
class SearchIds:
    # Read from the key table (else from the search's index: all the matches).
    from_key_table: bool
    # How many users the search finds, up to ``cap + 1`` (from the key table, when
    # counted; from the index, always).
    total: int | None
    # From the key table, their ids in order from ``offset`` (after the cursor), at
    # most ``limit``; from the index, all of them, or None when they are more than
    # ``cap``.
    ids: list[int] | None


def _fallback_sql(queryset: QuerySet[Any], cap: int) -> tuple[str, dict[str, Any]] | None:
    """``SELECT pk, date_joined`` of at most ``cap + 1`` rows of ``queryset`` (a query of
    the users table alone) and its parameters, named."""
    query = queryset.query
    if len(query.alias_map) != 1:
        return None
    connection = connections[queryset.db]
    try:
        where, where_params = query.get_compiler(connection=connection).compile(query.where)
    except (EmptyResultSet, FullResultSet):
        return None
    values = iter(where_params)
    params: dict[str, Any] = {}

    def named(match: re.Match[str]) -> str:
        if match.group() == "%%":
            return "%%"
        name = f"fallback_{len(params)}"
        params[name] = next(values)
        return f"%({name})s"

    table = connection.ops.quote_name(User._meta.db_table)
    sql = (
        f"SELECT {table}.id AS pk, {table}.date_joined "  # noqa: S608 - Django's SQL
        f"FROM {table} WHERE {_PLACEHOLDER.sub(named, where)} LIMIT {int(cap) + 1}"
    )
    return sql, params


def search_ids(
    queryset: QuerySet[Any],
    *,
    limit: int,
    offset: int = 0,
    after: Sequence[Any] | None = None,
    count: bool = False,
    cap: int = COUNT_CAP,
    rest: QuerySet[Any] | None = None,
) -> SearchIds | None:
    """The ids of a search's matches, in one query that reads no user's row when
    PostgreSQL's key table can answer (``accounts.user_search``, "The key table"):
    those from ``offset`` (after the row whose date and id are ``after``), at most
    ``limit``, in ``queryset``'s order, and with ``count`` their number (up to
    ``cap + 1``). Each key's users are read in date order from the index, only as
    many as the page needs: a common full name costs what a rare one does. When
    more than ``MAX_KEYS`` distinct keys start with the phrase, the same query reads
    the ids of all the matches of ``rest`` (``queryset`` with the cursor's
    conditions; ``queryset`` by default) from the search's index instead, as
    ``ids_in_order`` does. For a ``queryset`` whose only condition is a search, in
    date order, on PostgreSQL; None otherwise."""
    if connections[queryset.db].vendor != "postgresql":
        return None
    search = _search_alone(queryset)
    order = _date_order(queryset)
    fallback = None
    if search is not None and order is not None:
        fallback = _fallback_sql(rest if rest is not None else queryset, cap)
    if search is None or order is None or fallback is None:
        return None
    phrase, pk = search
    date_order, id_order = order
    fallback_sql, params = fallback
    params.update(
        phrase=phrase, max_keys=MAX_KEYS, cap=cap, cap_read=cap + 1,
        offset=offset, limit=limit, reach=offset + limit,
    )  # fmt: skip
    # The key rows (s) and the user whose id the phrase may be (u) after the cursor.
    beyond_keys = beyond_id = "TRUE"
    if after is not None:
        if date_order != id_order:
            raise ValueError("A cursor needs the date and the id in the same direction")
        sign = "<" if date_order == "DESC" else ">"
        beyond_keys = f"(s.date_joined, s.user_id) {sign} (%(after_date)s, %(after_id)s)"
        beyond_id = f"(u.date_joined, u.id) {sign} (%(after_date)s, %(after_id)s)"
        params["after_date"], params["after_id"] = after
    counted_by_id = page_by_id = ""
    if pk is not None:
        params["pk"] = pk
        counted_by_id = "UNION SELECT u.id FROM accounts_user u WHERE u.id = %(pk)s"
        page_by_id = (
            "UNION SELECT u.id, u.date_joined FROM accounts_user u "  # noqa: S608 - constant SQL
            f"WHERE u.id = %(pk)s AND {beyond_id}"
        )
    counted = ""
    if count:
        alone = "TRUE" if pk is None else "FALSE"
        counted = _COUNTED_SQL.format(by_id=counted_by_id, alone=alone)
    sql = _SEARCH_IDS_SQL.format(
        keys=_PREFIX_KEYS_SQL,
        counted=counted,
        total="(SELECT total FROM counted)" if count else "NULL",
        fallback=fallback_sql,
        beyond=beyond_keys,
        by_id=page_by_id,
        date_order=date_order,
        id_order=id_order,
    )
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        keys, total, ids = cursor.fetchone()
    if keys > MAX_KEYS:
        within = len(ids) <= cap
        return SearchIds(from_key_table=False, total=len(ids), ids=ids if within else None)
    return SearchIds(from_key_table=True, total=total, ids=ids)


def ids_in_order(queryset: QuerySet[Any], cap: int = COUNT_CAP) -> list[Any] | None:
    """The ids of all the rows of ``queryset``, in its order, when there are at
    most ``cap`` of them; None when there are more. One query.

    The rows are chosen by a subquery without ORDER BY, and only they are sorted.
    PostgreSQL then reads a search's index (all its matches: a few thousand for a
    common full name among a million users) or, when most rows match, the table
    until ``cap + 1`` of them. Asked for the first ``cap + 1`` in date order
    directly, it may prefer walking the date index and testing each row, a random
    read per row until enough match: a second for a common first name (its
    estimate counts the rows it expects to test, not their reads). A search alone
    in date order is better asked with ``search_ids`` (only the page's ids)."""
    terms = [term for term in queryset.query.order_by if isinstance(term, str) and term != "?"]
    if not terms or len(terms) != len(queryset.query.order_by):
        ids = list(queryset.values_list("pk", flat=True)[: cap + 1])
        return ids if len(ids) <= cap else None
    names = [term.removeprefix("-") for term in terms]
    chosen = queryset.order_by().values_list(*dict.fromkeys(["pk", *names]))[: cap + 1]
    try:
        sql, params = chosen.query.sql_with_params()
    except EmptyResultSet:  # queryset.none(): a search longer than any key
        return []
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
    queryset = ordered = queryset.order_by(*USER_ORDERINGS[ordering])
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
        # A search: the page's ids first, then its rows by id. A search alone in date
        # order reads only the page's ids from the key table (search_ids); otherwise
        # all its matches' ids (ids_in_order). When they are too many to read, they
        # are common enough for the ordered query to find a page soon.
        found = search_ids(ordered, limit=size + 1, after=after, rest=queryset)
        ids = found.ids if found is not None else ids_in_order(queryset, COUNT_CAP)
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
