"""GET /api/management/users: the back-office list's selector, as JSON."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from tests.api.conftest import ApiClient, assert_error, make_token, management_client

pytestmark = pytest.mark.django_db
URL = "/api/management/users"


@pytest.fixture
def support(user_factory: Callable[..., User]) -> User:
    member = user_factory(username="sue", is_staff=True)
    member.groups.add(Group.objects.get(name="Support"))
    return member


@pytest.fixture
def people(user_factory: Callable[..., User]) -> list[User]:
    now = timezone.now()
    made = []
    for n, (name, display) in enumerate(
        [("emma", "Emma Moreau"), ("lucas", "Lucas Martin"), ("emmanuel", "Emmanuel Petit")]
    ):
        person = user_factory(username=name, display_name=display)
        User.objects.filter(pk=person.pk).update(date_joined=now - timedelta(days=10 - n))
        made.append(person)
    return made


def _names(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["username"] for row in response.json()["items"]]


def test_search_filters_and_ordering(support: User, people: list[User]) -> None:
    client = management_client(support)
    assert _names(client.get(URL, {"search": "emma"})) == ["emmanuel", "emma"]
    assert _names(client.get(URL, {"search": "moreau"})) == ["emma"]
    assert _names(client.get(URL, {"search": str(people[1].pk)})) == ["lucas"]
    TOTPDevice.objects.create(user=people[1], name="app", confirmed=True)
    assert _names(client.get(URL, {"has_second_factor": "true", "search": "l"})) == ["lucas"]
    User.objects.filter(pk=people[0].pk).update(state="suspended", is_active=False)
    assert _names(client.get(URL, {"state": "suspended"})) == ["emma"]
    after = (people[1].date_joined - timedelta(seconds=1)).isoformat()
    joined = _names(client.get(URL, {"joined_after": after, "ordering": "username"}))
    assert "emma" not in joined
    assert joined == sorted(joined)


def test_cursor_paging_walks_the_whole_list_once(support: User, people: list[User]) -> None:
    client = management_client(support)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"page_size": 2, "ordering": "username"}
        if cursor:
            params["cursor"] = cursor
        body = client.get(URL, params).json()
        seen += [row["username"] for row in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    everyone = sorted(User.objects.values_list("username", flat=True))
    assert seen == everyone


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "nonsense"},
        {"page_size": 101},
        {"page_size": 0},
        {"ordering": "password"},
        {"state": "gone"},
        {"search": "a\x00b"},
        {"joined_after": "yesterday"},
    ],
)
def test_bad_input_is_422(support: User, params: dict[str, Any]) -> None:
    assert_error(management_client(support).get(URL, params), 422, "validation_error")


def test_a_cursor_of_another_ordering_is_refused(support: User, people: list[User]) -> None:
    client = management_client(support)
    cursor = client.get(URL, {"page_size": 1}).json()["next_cursor"]
    assert cursor
    assert_error(
        client.get(URL, {"cursor": cursor, "ordering": "username"}), 422, "validation_error"
    )


def test_who_may_list(user_factory: Callable[..., User], user: User) -> None:
    operator = user_factory(username="op", is_staff=True)
    operator.groups.add(Group.objects.get(name="Operators"))
    assert_error(management_client(operator).get(URL), 403, "forbidden")
    assert_error(ApiClient(make_token(user)).get(URL), 403, "forbidden")


def test_query_budget(
    support: User, user_factory: Callable[..., User], django_assert_max_num_queries: Any
) -> None:
    for n in range(30):
        TOTPDevice.objects.create(user=user_factory(), name=f"app {n}", confirmed=True)
    client = management_client(support)
    client.get(URL)
    # The token, the staff member's second factor, their permissions (2), the page.
    with django_assert_max_num_queries(5):
        assert len(client.get(URL, {"page_size": 25}).json()["items"]) == 25
