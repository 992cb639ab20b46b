from __future__ import annotations

from collections.abc import Callable
from html import unescape
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth.models import Group
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import policy as policy_module
from accounts.actor import Actor
from accounts.models import AccountPolicy, AuditEvent, User, VerificationCode
from accounts.policy import FIELDS, get_policy
from accounts.services.policy import policy_update
from tests.conftest import PASSWORD, reauthenticate, verify_second_factor

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-long-passphrase-77"


@pytest.fixture(autouse=True)
def _user_has_a_phone(user: User) -> None:
    User.objects.filter(pk=user.pk).update(phone="+33698765432", phone_verified=True)


def _unchanged_name(user: User) -> bool:
    user.refresh_from_db()
    return user.display_name == "Alice Martin"


# Every URL (ours and the libraries') that writes a field, with what it posts and a
# check that nothing changed.
WRITES: list[tuple[str, str, dict[str, Any], Callable[[User], bool]]] = [
    ("name", "profile_name_edit", {"display_name": "Mallory"}, _unchanged_name),
    (
        "profile",
        "profile_details_edit",
        {"first_name": "M", "last_name": "X", "language": "fr", "time_zone": "UTC"},
        lambda u: (u.refresh_from_db(), u.first_name == "" and u.language == "")[1],
    ),
    (
        "username",
        "profile_username_edit",
        {"username": "mallory"},
        lambda u: (u.refresh_from_db(), u.username == "alice")[1],
    ),
    (
        "avatar",
        "profile_avatar_remove",
        {},
        lambda u: True,
    ),
    (
        "email",
        "email",
        {"email": "second@example.org"},
        lambda u: (
            not VerificationCode.objects.filter(purpose="email_change").exists()
            and not any("second@example.org" in m.to for m in mail.outbox)
        ),
    ),
    (
        "email",
        "account_email",
        {"action_add": "", "email": "second@example.org"},
        lambda u: not EmailAddress.objects.filter(email="second@example.org").exists(),
    ),
    (
        "phone",
        "phone",
        {"phone": "+33 6 12 34 56 78"},
        lambda u: not VerificationCode.objects.filter(purpose="phone_change").exists(),
    ),
    (
        "phone",
        "phone_remove",
        {},
        lambda u: (u.refresh_from_db(), u.phone == "+33698765432")[1],
    ),
    (
        "password",
        "account_change_password",
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        lambda u: (u.refresh_from_db(), u.check_password(PASSWORD))[1],
    ),
    (
        "password",
        "account_set_password",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        lambda u: (u.refresh_from_db(), u.check_password(PASSWORD))[1],
    ),
    (
        "social",
        "socialaccount_connections",
        {"account": "1"},
        lambda u: True,
    ),
]

# Pages per field: their URL answers 404 when the field is off.
PAGES = {
    "email": "email",
    "phone": "phone",
    "password": "account_change_password",
    "social": "socialaccount_connections",
}
NAV = {
    "email": "/settings/email/",
    "phone": "/settings/phone/",
    "password": "/accounts/password/change/",
}


def test_fresh_install_allows_everything() -> None:
    row = AccountPolicy.objects.get(pk=1)
    assert row.enabled
    assert all(getattr(row, name) == "edit" for name in FIELDS)
    assert get_policy().editable_fields == frozenset(FIELDS)


@pytest.mark.parametrize(("field", "url_name", "data", "unchanged"), WRITES)
def test_off_answers_404_and_changes_nothing(
    auth_client: Client,
    user: User,
    policy: Any,
    field: str,
    url_name: str,
    data: Any,
    unchanged: Any,
) -> None:
    policy(**{field: "off"})
    reauthenticate(auth_client)
    assert auth_client.post(reverse(url_name), data).status_code == 404
    assert unchanged(user)


@pytest.mark.parametrize(("field", "url_name", "data", "unchanged"), WRITES)
def test_read_only_answers_403_with_a_message_and_changes_nothing(
    auth_client: Client,
    user: User,
    policy: Any,
    field: str,
    url_name: str,
    data: Any,
    unchanged: Any,
) -> None:
    policy(**{field: "read_only"})
    reauthenticate(auth_client)
    response = auth_client.post(reverse(url_name), data)
    assert response.status_code == 403
    assert "can't be changed here" in unescape(response.content.decode())
    assert unchanged(user)


@pytest.mark.parametrize(("field", "url_name", "data", "unchanged"), WRITES)
def test_master_switch_off_refuses_every_write(
    auth_client: Client,
    user: User,
    policy: Any,
    field: str,
    url_name: str,
    data: Any,
    unchanged: Any,
) -> None:
    policy(enabled=False)
    reauthenticate(auth_client)
    response = auth_client.post(reverse(url_name), data)
    assert response.status_code == 403
    assert "turned off" in response.content.decode()
    assert unchanged(user)


EDIT_WRITES = [
    w
    for w in WRITES
    if w[1]
    not in {
        "profile_avatar_remove",
        "account_email",
        "account_set_password",
        "socialaccount_connections",
    }
]


@pytest.mark.parametrize(("field", "url_name", "data", "unchanged"), EDIT_WRITES)
def test_edit_mode_lets_the_write_through(
    auth_client: Client, user: User, field: str, url_name: str, data: Any, unchanged: Any
) -> None:
    reauthenticate(auth_client)
    response = auth_client.post(reverse(url_name), data)
    assert response.status_code == 302
    assert not unchanged(user)


@pytest.mark.parametrize("field", sorted(PAGES))
@pytest.mark.parametrize(("mode", "status"), [("off", 404), ("read_only", 200), ("edit", 200)])
def test_library_pages_follow_the_mode(
    auth_client: Client, policy: Any, field: str, mode: str, status: int
) -> None:
    policy(**{field: mode})
    assert auth_client.get(reverse(PAGES[field])).status_code == status


@pytest.mark.parametrize("field", sorted(NAV))
@pytest.mark.parametrize("mode", ["off", "read_only", "edit"])
def test_navigation_lists_a_section_unless_off(
    auth_client: Client, policy: Any, field: str, mode: str
) -> None:
    policy(**{field: mode})
    html = auth_client.get(reverse("settings_home")).content.decode()
    assert (f'href="{NAV[field]}"' in html) == (mode != "off")


@pytest.mark.parametrize("mode", ["off", "read_only", "edit"])
def test_profile_section_navigation_and_page(auth_client: Client, policy: Any, mode: str) -> None:
    policy(name=mode, avatar=mode, profile=mode, username=mode)
    html = auth_client.get(reverse("settings_home")).content.decode()
    assert ('href="/settings/profile/"' in html) == (mode != "off")
    response = auth_client.get(reverse("profile"))
    assert response.status_code == (404 if mode == "off" else 200)
    if mode == "read_only":
        page = response.content.decode()
        assert "Alice Martin" in page
        assert reverse("profile_name_edit") not in page
        assert reverse("profile_avatar") not in page
        assert reverse("profile_username_edit") not in page


@pytest.mark.parametrize(
    ("field", "card_url"),
    [
        ("name", "profile_name_edit"),
        ("profile", "profile_details_edit"),
        ("username", "profile_username_edit"),
    ],
)
def test_one_profile_field_off_hides_only_its_card(
    auth_client: Client, policy: Any, field: str, card_url: str
) -> None:
    policy(**{field: "off"})
    html = auth_client.get(reverse("profile")).content.decode()
    assert reverse(card_url) not in html
    assert auth_client.get(reverse(card_url)).status_code == 404
    others = {"profile_name_edit", "profile_details_edit", "profile_username_edit"} - {card_url}
    assert all(reverse(other) in html for other in others)


def test_master_switch_off_shows_one_notice_and_keeps_sign_in_working(
    client: Client, auth_client: Client, user: User, policy: Any
) -> None:
    policy(enabled=False)
    for url_name in ("settings_home", "profile", "email", "phone", "account_change_password"):
        response = auth_client.get(reverse(url_name))
        assert response.status_code == 200
        html = response.content.decode()
        assert html.count("Account settings are turned off") == 1
        assert 'href="/settings/profile/"' not in html
    # Sign-in, sign-out and password reset still work.
    response = client.post(reverse("account_login"), {"login": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert client.post(reverse("account_logout")).status_code == 302
    reset = client.post(reverse("account_reset_password"), {"email": "alice@example.org"})
    assert reset.status_code == 302


def test_warm_policy_costs_no_query(auth_client: Client) -> None:
    get_policy()  # warm the cache
    with CaptureQueriesContext(connection) as queries:
        get_policy()
        auth_client.get(reverse("profile"))
    assert not [q for q in queries.captured_queries if "accounts_accountpolicy" in q["sql"]]


def test_policy_is_read_once_per_request(auth_client: Client) -> None:
    from unittest import mock

    get_policy()
    with mock.patch.object(policy_module, "load_policy", wraps=policy_module.load_policy) as load:
        auth_client.get(reverse("profile"))
    assert load.call_count == 1


def test_saving_replaces_the_cached_policy_at_once() -> None:
    assert get_policy().editable("email")
    policy_update(ctx=None, values={"email": "read_only"})
    assert get_policy().mode("email") == "read_only"
    assert not get_policy().editable("email")


def test_a_copy_read_before_a_change_does_not_outlive_it() -> None:
    # A request finds no cached copy and reads the row; meanwhile another process
    # commits a change and stores it; the request then stores the row it read.
    from unittest import mock

    policy_module.forget_policy()
    stale = AccountPolicy.objects.get_or_create(pk=1)[0]

    def read_then_change(*args: Any, **kwargs: Any) -> Any:
        policy_update(ctx=None, values={"email": "read_only"})  # stores after commit
        query = mock.Mock()
        query.first.return_value = stale
        return query

    with mock.patch.object(policy_module.AccountPolicy.objects, "filter", read_then_change):
        assert policy_module.load_policy().mode("email") == "edit"  # what it read
    assert get_policy().mode("email") == "read_only"


def test_local_memory_cache_expires_within_seconds(settings: Any) -> None:
    settings.POLICY_LOCAL_CACHE_SECONDS = 3
    assert policy_module._cache_timeout() == 3
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache"}}
    assert policy_module._cache_timeout() is None


def test_saving_writes_an_audit_event_with_before_and_after(staff_user: User) -> None:
    policy_update(
        ctx=Actor(user=staff_user, surface="admin"), values={"email": "off", "enabled": False}
    )
    event = AuditEvent.objects.get(action="policy.changed")
    assert event.actor == staff_user
    assert event.data["before"]["email"] == "edit"
    assert event.data["after"]["email"] == "off"
    assert event.data["changed"] == {
        "enabled": {"before": True, "after": False},
        "email": {"before": "edit", "after": "off"},
    }


def test_invalid_modes_are_refused_and_nothing_is_saved() -> None:
    with pytest.raises(ValueError, match="invalid mode 'maybe' for email"):
        policy_update(ctx=None, values={"email": "maybe"})
    with pytest.raises(ValueError, match="unknown policy field 'is_staff'"):
        policy_update(ctx=None, values={"is_staff": "edit"})
    assert AccountPolicy.objects.get(pk=1).email == "edit"
    assert not AuditEvent.objects.exists()


# --- The back-office page ----------------------------------------------------


def _admin_post_data(**changes: str) -> dict[str, str]:
    data = dict.fromkeys(FIELDS, "edit")
    data["enabled"] = "on"
    data.update(changes)
    return data


def test_operator_edits_the_policy_in_the_back_office(user_factory: Any) -> None:
    operator = user_factory(username="olivia", is_staff=True)
    operator.groups.add(Group.objects.get(name="Operators"))
    client = Client()
    client.force_login(operator, backend="django.contrib.auth.backends.ModelBackend")
    verify_second_factor(client, operator)
    url = reverse("admin:accounts_accountpolicy_change", args=[1])
    page = client.get(url)
    assert page.status_code == 200
    assert "Changing it needs a recent re-authentication." in page.content.decode()
    response = client.post(url, _admin_post_data(phone="read_only"))
    assert response.status_code == 302
    assert AccountPolicy.objects.get(pk=1).phone == "read_only"
    assert get_policy().mode("phone") == "read_only"
    assert AuditEvent.objects.get(action="policy.changed").actor == operator


def test_staff_without_the_permission_cannot_edit_the_policy(
    staff_client: Client, staff_user: User
) -> None:
    url = reverse("admin:accounts_accountpolicy_change", args=[1])
    response = staff_client.post(url, _admin_post_data(phone="off"))
    assert response.status_code == 403
    assert AccountPolicy.objects.get(pk=1).phone == "edit"
    assert not AuditEvent.objects.exists()


def test_policy_cannot_be_added_or_deleted_in_the_back_office(user_factory: Any) -> None:
    admin = user_factory(username="root-admin", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    verify_second_factor(client, admin)
    assert client.get(reverse("admin:accounts_accountpolicy_add")).status_code == 403
    delete = reverse("admin:accounts_accountpolicy_delete", args=[1])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert AccountPolicy.objects.filter(pk=1).exists()
    assert client.get(reverse("admin:accounts_accountpolicy_changelist")).status_code == 302


def test_htmx_refusal_is_a_message_for_the_message_area(auth_client: Client, policy: Any) -> None:
    policy(name="read_only")
    response = auth_client.post(
        reverse("profile_name_edit"), {"display_name": "Mallory"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 403
    assert response["HX-Retarget"] == "#messages"
    assert "<html" not in response.content.decode()
    assert "read-only" in response.content.decode()


def test_refusals_are_translated(auth_client: Client, user: User, policy: Any) -> None:
    user.language = "fr"
    user.save(update_fields=["language"])
    policy(name="read_only")
    response = auth_client.post(reverse("profile_name_edit"), {"display_name": "Mallory"})
    assert response.status_code == 403
    assert "lecture seule" in unescape(response.content.decode())


@pytest.mark.parametrize("mode", ["off", "read_only"])
def test_forms_refuse_to_validate_against_the_policy(user: User, policy: Any, mode: str) -> None:
    from accounts.forms import NameForm

    policy(name=mode)
    form = NameForm({"display_name": "Mallory"}, instance=user, policy=get_policy())
    assert not form.is_valid()
    assert form.non_field_errors()
    policy(name="edit", enabled=False)
    form = NameForm({"display_name": "Mallory"}, instance=user, policy=get_policy())
    assert not form.is_valid()
    policy(enabled=True)
    assert NameForm({"display_name": "Ok"}, instance=user, policy=get_policy()).is_valid()


def test_shared_cache_is_replaced_on_save_for_every_process(settings: Any) -> None:
    import os

    redis = pytest.importorskip("redis")
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {url}")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "portal-test-policy",
        }
    }
    from django.core.cache import caches

    caches["default"].delete(policy_module.CACHE_KEY)
    get_policy()  # this process caches the row in Redis
    assert caches["default"].get(policy_module.CACHE_KEY)["modes"]["phone"] == "edit"
    # Another process reading Redis after the save sees the new row.
    policy_update(ctx=None, values={"phone": "off"})
    other_process_cache = caches.create_connection("default")
    assert other_process_cache.get(policy_module.CACHE_KEY)["modes"]["phone"] == "off"
    assert get_policy().mode("phone") == "off"
    assert other_process_cache.get(policy_module.CACHE_KEY)["modes"]["phone"] == "off"
    caches["default"].delete(policy_module.CACHE_KEY)
