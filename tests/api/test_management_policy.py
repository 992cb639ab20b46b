"""GET/PUT /api/management/account-policy: the field policy, operators only, as
the back-office's policy page; a change is audited and in force at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from accounts.api.management.policy import AccountPolicyIn, AccountPolicyOut
from accounts.models import AccountPolicy, AuditEvent, PolicyMode, User
from accounts.policy import FIELDS
from accounts.services.audit import Action
from tests.api.conftest import ApiClient, assert_error, make_token, management_client
from tests.conftest import staff_signed_in

pytestmark = pytest.mark.django_db

URL = "/api/management/account-policy"


def staff(user_factory: Callable[..., User], role: str | None, username: str = "") -> User:
    if role == "superuser":
        return user_factory(username=username or "boss", is_staff=True, is_superuser=True)
    member = user_factory(
        username=username or f"staff_{(role or 'plain').split()[0]}", is_staff=True
    )
    if role:
        member.groups.add(Group.objects.get(name=role))
    return member


@pytest.fixture
def operator(user_factory: Callable[..., User]) -> User:
    return staff(user_factory, "Operators", "op")


@pytest.fixture
def api(operator: User) -> ApiClient:
    return management_client(operator)


def whole(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"enabled": True, **dict.fromkeys(FIELDS, "edit")}
    body.update(changes)
    return body


def row() -> AccountPolicy:
    return AccountPolicy.objects.get(pk=1)


def admin_post(**changes: str) -> dict[str, str]:
    data = dict.fromkeys(FIELDS, "edit")
    data.update(changes)
    data["enabled"] = "on"
    data["_save"] = "Save"
    return data


# --- The shape ------------------------------------------------------------------------


def test_the_schemas_have_every_field_of_the_policy() -> None:
    assert set(AccountPolicyIn.model_fields) == {"enabled", *FIELDS}
    assert set(AccountPolicyOut.model_fields) == {"enabled", *FIELDS, "updated_at"}
    assert all(AccountPolicyIn.model_fields[name].is_required() for name in ("enabled", *FIELDS))
    from accounts.api.management.policy import Mode

    assert set(Mode.__args__) == {mode.value for mode in PolicyMode}


def test_an_operator_reads_the_policy(api: ApiClient, policy_modes: Any) -> None:
    policy_modes(email="read_only", phone="off")

    response = api.get(URL)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"enabled", *FIELDS, "updated_at"}
    assert body["enabled"] is True
    assert (body["email"], body["phone"], body["name"]) == ("read_only", "off", "edit")


def test_reading_creates_the_default_row_when_there_is_none(api: ApiClient) -> None:
    AccountPolicy.objects.all().delete()
    body = api.get(URL).json()
    assert body == {**whole(), "updated_at": body["updated_at"]}


# --- Changing --------------------------------------------------------------------------


def test_an_operator_changes_the_policy_and_it_is_audited(
    api: ApiClient, operator: User, policy_modes: Any
) -> None:
    policy_modes()
    response = api.put(URL, whole(email="read_only", tokens="off", enabled=False))

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["email"], body["tokens"], body["enabled"]) == ("read_only", "off", False)
    saved = row()
    assert (saved.email, saved.tokens, saved.enabled) == ("read_only", "off", False)
    event = AuditEvent.objects.get(action=Action.POLICY_CHANGED)
    assert (event.actor, event.subject, event.surface) == (operator, None, "api")
    assert event.data["before"]["email"] == "edit"
    assert event.data["after"]["email"] == "read_only"
    assert event.data["changed"] == {
        "email": {"before": "edit", "after": "read_only"},
        "tokens": {"before": "edit", "after": "off"},
        "enabled": {"before": True, "after": False},
    }


def test_the_change_is_in_force_at_once_for_the_account_api(
    api: ApiClient, user: User, policy_modes: Any
) -> None:
    policy_modes()
    end_user = ApiClient(make_token(user))
    assert "email" in end_user.get("/api/my-account").json()
    assert end_user.patch("/api/my-account", {"display_name": "A"}).status_code == 200

    assert api.put(URL, whole(email="off", name="read_only")).status_code == 200

    assert "email" not in end_user.get("/api/my-account").json()
    assert_error(
        end_user.patch("/api/my-account", {"display_name": "B"}), 403, "policy.field_not_editable"
    )
    assert api.put(URL, whole(enabled=False)).status_code == 200
    assert_error(
        end_user.patch("/api/my-account", {"display_name": "C"}), 403, "policy.not_enabled"
    )


def test_the_same_values_as_the_policy_page(
    api: ApiClient, operator: User, policy_modes: Any
) -> None:
    """The page and the API save the same row through the same flow."""
    policy_modes()
    page = staff_signed_in(operator).post(
        reverse("admin:accounts_accountpolicy_change", args=[1]), admin_post(mfa="read_only")
    )
    assert page.status_code == 302
    assert api.get(URL).json()["mfa"] == "read_only"
    assert api.put(URL, whole(mfa="off")).status_code == 200
    assert row().mfa == "off"
    surfaces = list(
        AuditEvent.objects.filter(action=Action.POLICY_CHANGED)
        .order_by("id")
        .values_list("surface", flat=True)
    )
    assert surfaces == ["admin", "api"]


# --- Who may ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "read", "change"),
    [
        ("Operators", True, True),
        ("superuser", True, True),
        ("Support", False, False),
        ("Security admins", False, False),
        (None, False, False),
    ],
)
def test_the_roles_are_the_back_offices(
    user_factory: Callable[..., User],
    policy_modes: Any,
    role: str | None,
    read: bool,
    change: bool,
) -> None:
    policy_modes()
    member = staff(user_factory, role)
    client = management_client(member)
    browser = staff_signed_in(member)
    page_url = reverse("admin:accounts_accountpolicy_change", args=[1])

    got = client.get(URL)
    put = client.put(URL, whole(email="off"))
    page = browser.get(page_url)
    posted = browser.post(page_url, admin_post(phone="off"))

    assert (got.status_code == 200) is read
    assert (page.status_code == 200) is read
    assert (put.status_code == 200) is change
    assert (posted.status_code == 302) is change
    if not read:
        assert_error(got, 403, "forbidden")
        assert page.status_code == 403
    if not change:
        assert_error(put, 403, "forbidden")
        assert posted.status_code == 403
        assert (row().email, row().phone) == ("edit", "edit")
        assert not AuditEvent.objects.filter(action=Action.POLICY_CHANGED).exists()


def test_the_view_permission_reads_but_does_not_change(
    user_factory: Callable[..., User], policy_modes: Any
) -> None:
    policy_modes()
    member = staff(user_factory, None, "viewer")
    member.user_permissions.add(Permission.objects.get(codename="view_accountpolicy"))
    client = management_client(member)
    browser = staff_signed_in(member)
    page_url = reverse("admin:accounts_accountpolicy_change", args=[1])

    assert client.get(URL).status_code == 200
    assert browser.get(page_url).status_code == 200
    assert_error(client.put(URL, whole(email="off")), 403, "forbidden")
    assert browser.post(page_url, admin_post(email="off")).status_code == 403
    assert row().email == "edit"


def test_an_end_users_token_and_a_session_are_refused(
    user: User, auth_client: Client, policy_modes: Any
) -> None:
    policy_modes()
    end_user = ApiClient(make_token(user))
    assert_error(end_user.get(URL), 403, "forbidden")
    assert_error(end_user.put(URL, whole(email="off")), 403, "forbidden")
    assert_error(auth_client.get(URL), 403, "forbidden")
    assert_error(Client().get(URL), 401, "unauthenticated")
    assert row().email == "edit"


# --- Bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in whole().items() if k != "email"}, "email"),
        ({k: v for k, v in whole().items() if k != "enabled"}, "enabled"),
        (whole(email="write"), "email"),
        (whole(email="EDIT"), "email"),
        (whole(email="ed\x00it"), "email"),
        (whole(email=None), "email"),
        (whole(enabled="yes"), "enabled"),
        (whole(enabled=1), "enabled"),
        (whole(enabled=None), "enabled"),
        ({**whole(), "color": "off"}, "color"),
    ],
    ids=[
        "missing-field",
        "missing-enabled",
        "unknown-mode",
        "upper-case",
        "nul",
        "null",
        "enabled-string",
        "enabled-number",
        "enabled-null",
        "unknown-field",
    ],
)
def test_bad_input_is_422(
    api: ApiClient, policy_modes: Any, body: dict[str, Any], field: str
) -> None:
    policy_modes()
    details = assert_error(api.put(URL, body), 422, "validation_error")["details"]
    assert list(details) == [field]
    assert row().email == "edit"
    assert not AuditEvent.objects.filter(action=Action.POLICY_CHANGED).exists()


def test_a_body_that_is_not_json_is_refused(api: ApiClient, policy_modes: Any) -> None:
    policy_modes()
    response = api.put(URL, "{not json", content_type="application/json")
    assert response.status_code in (400, 422)
    assert response.json()["code"] in {"bad_request", "validation_error"}
    assert api.put(URL, [1, 2]).status_code == 422
    assert row().email == "edit"


# --- Query budgets ------------------------------------------------------------------------


def test_the_query_budgets(
    api: ApiClient, policy_modes: Any, django_assert_max_num_queries: Any
) -> None:
    policy_modes()
    api.get(URL)  # the token's last use is written once
    with django_assert_max_num_queries(5):
        assert api.get(URL).status_code == 200
    with django_assert_max_num_queries(11):
        assert api.put(URL, whole(email="off")).status_code == 200
