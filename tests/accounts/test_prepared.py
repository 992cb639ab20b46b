"""``prepared`` queries give what their QuerySet gives, in one query, with the
values of each call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.management.account_data import add_tokens
from accounts.models import PersonalAccessToken, User
from accounts.prepared import prepared


def _tokens(user_id: int, since: datetime, name: str) -> QuerySet[Any]:
    return (
        PersonalAccessToken.objects.filter(user_id=user_id, expires_at__gte=since)
        .exclude(name=name)
        .order_by("-created_at", "-id")
    )


@prepared
def tokens_rows(user_id: int, since: datetime, name: str) -> QuerySet[Any]:
    return _tokens(user_id, since, name).values_list("id", "name", "scopes", "expires_at")


@prepared
def tokens_names(user_id: int, since: datetime, name: str) -> QuerySet[Any]:
    return _tokens(user_id, since, name).values_list("name", flat=True)


@prepared
def tokens_named(user_id: int, since: datetime, name: str) -> QuerySet[Any]:
    return _tokens(user_id, since, name).values_list("name", "expires_at", named=True)


@prepared
def tokens_instances(user_id: int, since: datetime, name: str) -> QuerySet[Any]:
    return _tokens(user_id, since, name).defer("digest")


@prepared
def token_counts(user_id: int) -> QuerySet[Any]:
    return (
        User.objects.filter(pk=user_id)
        .annotate(live=Count("access_tokens", filter=Q(access_tokens__revoked_at__isnull=True)))
        .values_list("username", "live")
    )


@pytest.fixture
def two_users(user_factory: Callable[..., User]) -> tuple[User, User]:
    first, second = user_factory(), user_factory()
    add_tokens(first, 4)
    add_tokens(second, 2)
    PersonalAccessToken.objects.filter(user=first, name="Token 1").update(
        expires_at=timezone.now() - timedelta(days=3)
    )
    PersonalAccessToken.objects.filter(user=second, name="Token 0").update(
        revoked_at=timezone.now(), scopes=["account:read", "account:write"]
    )
    return first, second


@pytest.mark.parametrize(
    ("function", "shape"),
    [
        (tokens_rows, lambda qs: qs.values_list("id", "name", "scopes", "expires_at")),
        (tokens_names, lambda qs: qs.values_list("name", flat=True)),
        (tokens_named, lambda qs: qs.values_list("name", "expires_at", named=True)),
    ],
)
def test_rows_equal_the_querysets_for_each_call(
    two_users: tuple[User, User], function: Any, shape: Any
) -> None:
    now = timezone.now()
    calls = [
        (two_users[0].pk, now, "Token 2"),
        (two_users[0].pk, now - timedelta(days=10), "none"),
        (two_users[1].pk, now, "Token 1"),
        (two_users[1].pk + 1000, now, "none"),
    ]
    got = [function(*call) for call in calls]

    assert got == [list(shape(_tokens(*call))) for call in calls]
    assert [len(rows) for rows in got] == [2, 4, 1, 0]
    # The ORM's converters ran: JSON decoded, datetimes aware.
    if function is tokens_rows:
        assert got[2][0][2] == ["account:read", "account:write"]
        assert timezone.is_aware(got[2][0][3])
    if function is tokens_named:
        assert got[2][0].name == "Token 0"
        assert type(got[2][0]).__name__ == "Row"


def test_instances_equal_the_querysets_with_deferred_fields_left_deferred(
    two_users: tuple[User, User],
) -> None:
    first = two_users[0]
    now = timezone.now()

    got = tokens_instances(first.pk, now, "Token 0")

    expected = list(_tokens(first.pk, now, "Token 0"))
    assert [(t.pk, t.name, t.scopes, t.expires_at, t.user_id) for t in got] == [
        (t.pk, t.name, t.scopes, t.expires_at, t.user_id) for t in expected
    ]
    assert [t.name for t in got] == ["Token 3", "Token 2"]
    assert got[0].get_deferred_fields() == {"digest"}
    assert got[0]._state.adding is False
    assert got[0].digest == "0" * 64  # loaded on demand, as with defer()


def test_annotations_are_converted(two_users: tuple[User, User]) -> None:
    first = two_users[0]

    assert token_counts(first.pk) == [(first.username, 4)]
    assert token_counts(two_users[1].pk) == [(two_users[1].username, 1)]


def test_one_query_per_call_and_the_sql_is_kept(two_users: tuple[User, User]) -> None:
    first = two_users[0]
    tokens_rows(first.pk, timezone.now(), "x")  # compiled here (once per process)

    with CaptureQueriesContext(connection) as ctx:
        tokens_rows(first.pk, timezone.now(), "Token 0")
        tokens_rows(two_users[1].pk, timezone.now(), "Token 0")

    assert len(ctx.captured_queries) == 2
    assert (
        ctx.captured_queries[0]["sql"].split("WHERE")[0]
        == (ctx.captured_queries[1]["sql"].split("WHERE")[0])
    )


def test_an_argument_that_does_not_reach_the_parameters_is_refused(db: Any) -> None:
    @prepared
    def unused(user_id: int, name: str) -> QuerySet[Any]:
        # ``name`` is forgotten: a prepared query would run without it.
        return PersonalAccessToken.objects.filter(user_id=user_id).values_list("id")

    with pytest.raises(TypeError, match="name did not reach"):
        unused(1, "Token 0")


def test_select_related_is_refused(db: Any) -> None:
    @prepared
    def joined(user_id: int) -> QuerySet[Any]:
        return PersonalAccessToken.objects.filter(user_id=user_id).select_related("user")

    with pytest.raises(TypeError, match="no select_related"):
        joined(1)


def test_none_is_refused(db: Any) -> None:
    """``filter(user_id=None)`` is ``IS NULL`` to the ORM; the kept SQL says ``= %s``."""
    with pytest.raises(TypeError, match="None cannot be a value"):
        token_counts(None)
