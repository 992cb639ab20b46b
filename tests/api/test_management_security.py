"""The Management API on a user's ways in: linked accounts (identities), second
factors, sessions and personal access tokens. Each answer is the back-office's for
the same action: same permission, guard rails, effect and audit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from allauth.socialaccount.models import SocialAccount
from allauth.usersessions.models import UserSession
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import AuditEvent, BackupCode, BackupCodeDevice, PersonalAccessToken, User
from accounts.services import mfa as mfa_services
from accounts.services.audit import Action
from accounts.services.moderation import user_suspend
from tests.accounts.test_backoffice_roles import (
    OPERATORS,
    SECURITY,
    SUPERUSER,
    SUPPORT,
    live_client,
    make_staff,
)
from tests.api.conftest import ApiClient, assert_error, make_token, management_client
from tests.api.test_identities_api import link
from tests.api.test_mfa_api import make_key
from tests.conftest import staff_signed_in

pytestmark = pytest.mark.django_db

BASE = "/api/management/users"
# The test client sends a DELETE's body as bytes unless told it is JSON.
JSON = "application/json"
HUGE = 2**70
SAFARI_ON_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


# --- Helpers ----------------------------------------------------------------------------


@pytest.fixture
def staff(user_factory: Callable[..., User]) -> Callable[[str], User]:
    """staff(role) -> a staff member of that role (one per role)."""
    made: dict[str, User] = {}

    def make(role: str) -> User:
        if role not in made:
            made[role] = make_staff(user_factory, role)
        return made[role]

    return make


@pytest.fixture
def as_role(staff: Callable[[str], User]) -> Callable[[str], ApiClient]:
    """as_role(role) -> that role's staff member calling with a management token."""
    return lambda role: management_client(staff(role))


@pytest.fixture
def bob(user_factory: Callable[..., User]) -> User:
    return user_factory(username="bob")


def subjects_to(address: str) -> list[str]:
    return [str(m.subject) for m in mail.outbox if address in m.to]


def the_event(action: str, subject: User) -> AuditEvent:
    [event] = AuditEvent.objects.filter(action=action, subject=subject)
    return event


def fake_session(user: User, impersonated_by: int | None = None, **fields: Any) -> UserSession:
    now = timezone.now()
    return UserSession.objects.create(
        user=user,
        session_key=uuid.uuid4().hex,
        ip=fields.pop("ip", "198.51.100.1"),
        user_agent=fields.pop("user_agent", SAFARI_ON_IPHONE),
        created_at=fields.pop("created_at", now - timedelta(hours=2)),
        last_seen_at=fields.pop("last_seen_at", now),
        data={"impersonated_by": impersonated_by} if impersonated_by else {},
    )


def state(user: User) -> dict[str, Any]:
    """Everything these endpoints change, to show that a refusal changed nothing."""
    return {
        "linked": sorted(SocialAccount.objects.filter(user=user).values_list("pk", flat=True)),
        "totp": TOTPDevice.objects.filter(user=user).count(),
        "keys": WebAuthnCredential.objects.filter(user=user).count(),
        "codes": BackupCode.objects.filter(device__user=user).count(),
        "sessions": UserSession.objects.filter(user=user).count(),
        "tokens": sorted(
            PersonalAccessToken.objects.filter(user=user).values_list("pk", "revoked_at")
        ),
        "audit": AuditEvent.objects.filter(subject=user).count(),
        "mail": len(mail.outbox),
    }


def grant(member: User, codename: str, app_label: str = "accounts") -> User:
    """``member`` with one more permission (no role has it), reloaded (permission cache)."""
    member.user_permissions.add(
        Permission.objects.get(content_type__app_label=app_label, codename=codename)
    )
    return User.objects.get(pk=member.pk)


def in_a_month() -> str:
    return (timezone.now() + timedelta(days=30)).isoformat()


# --- Who may call: every endpoint ---------------------------------------------------------

READS: list[tuple[str, str, dict[str, Any]]] = [
    ("get", "identities", {}),
    ("get", "second-factors", {}),
    ("get", "sessions", {}),
    ("get", "personal-access-tokens", {}),
]
WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("delete", "identities/dummy/101", {}),
    ("delete", "second-factors", {"reason": "Lost phone"}),
    ("delete", "sessions", {}),
    ("post", "personal-access-tokens", {"name": "x", "scopes": ["account:read"]}),
    ("delete", "personal-access-tokens/1", {}),
]


def call(client: ApiClient, method: str, path: str, body: dict[str, Any], pk: int) -> Any:
    if method == "post" and "expires_at" not in body and "scopes" in body:
        body = {**body, "expires_at": in_a_month()}
    if method == "get":
        return client.get(f"{BASE}/{pk}/{path}")
    return getattr(client, method)(f"{BASE}/{pk}/{path}", body, content_type=JSON)


@pytest.mark.parametrize(("method", "path", "body"), READS + WRITES)
def test_an_end_users_token_gets_403(
    user: User, bob: User, method: str, path: str, body: dict[str, Any]
) -> None:
    before = state(bob)
    assert_error(call(ApiClient(make_token(user)), method, path, body, bob.pk), 403, "forbidden")
    assert state(bob) == before


@pytest.mark.parametrize(("method", "path", "body"), READS + WRITES)
def test_an_operator_gets_403(
    as_role: Callable[[str], ApiClient], user: User, method: str, path: str, body: dict[str, Any]
) -> None:
    client = as_role(OPERATORS)
    before = state(user)
    assert_error(call(client, method, path, body, user.pk), 403, "forbidden")
    assert state(user) == before


@pytest.mark.parametrize(("method", "path", "body"), READS + WRITES)
def test_unknown_and_huge_user_ids_are_404(
    as_role: Callable[[str], ApiClient], method: str, path: str, body: dict[str, Any]
) -> None:
    client = as_role(SUPERUSER)
    assert_error(call(client, method, path, body, 999999), 404, "not_found")
    assert_error(call(client, method, path, body, HUGE), 404, "not_found")


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_nobody_acts_on_their_own_account(
    staff: Callable[[str], User], method: str, path: str, body: dict[str, Any]
) -> None:
    root = staff(SUPERUSER)
    client = management_client(root)
    link(root, "101")
    before = state(root)
    body_error = assert_error(call(client, method, path, body, root.pk), 403, "forbidden")
    assert "your own account" in body_error["message"]
    assert state(root) == before


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_only_superusers_act_on_staff(
    staff: Callable[[str], User],
    user_factory: Callable[..., User],
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    """A staff member holding every permission of these actions but not superuser is
    refused on another staff member, as in the back-office."""
    member = make_staff(user_factory, SECURITY, username="sec_everything")
    for codename in ("add_personalaccesstoken", "delete_personalaccesstoken"):
        member = grant(member, codename)
    member = grant(member, "delete_socialaccount", app_label="socialaccount")
    colleague = staff(SUPPORT)
    link(colleague, "101")
    before = state(colleague)
    response = call(management_client(member), method, path, body, colleague.pk)
    assert_error(response, 403, "forbidden")
    assert state(colleague) == before


# --- GET .../identities -----------------------------------------------------------------


def test_identities_list(as_role: Callable[[str], ApiClient], user: User, bob: User) -> None:
    first = link(user, "101", username="alice-dummy-handle")
    SocialAccount.objects.filter(pk=first.pk).update(date_joined=timezone.now() - timedelta(days=3))
    second = link(user, "102", email="")
    link(bob, "202", username="bob-dummy-handle")
    response = as_role(SUPPORT).get(f"{BASE}/{user.pk}/identities")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [(i["id"], i["provider"], i["uid"]) for i in body] == [
        (first.pk, "dummy", "101"),
        (second.pk, "dummy", "102"),
    ]
    assert body[0]["provider_name"] == "Dummy"
    assert body[0]["display_name"] == "alice-dummy-handle"
    assert body[0]["email"] == "alice.101@dummy.example"
    assert body[1]["email"] is None
    first.refresh_from_db()
    assert body[0]["linked_at"].startswith(first.date_joined.date().isoformat())
    assert body[0]["last_login"] is not None
    assert "bob-dummy-handle" not in response.content.decode()


def test_identities_list_of_staff_and_of_oneself_is_a_read(
    staff: Callable[[str], User], as_role: Callable[[str], ApiClient]
) -> None:
    """Reading is not acting: as on the back-office's user page, Support read their
    own and other staff's linked accounts."""
    client = as_role(SUPPORT)
    link(staff(SUPPORT), "1")
    link(staff(SUPERUSER), "2")
    assert [i["uid"] for i in client.get(f"{BASE}/{staff(SUPPORT).pk}/identities").json()] == ["1"]
    assert [i["uid"] for i in client.get(f"{BASE}/{staff(SUPERUSER).pk}/identities").json()] == [
        "2"
    ]


def test_identities_list_query_budget(
    as_role: Callable[[str], ApiClient],
    user: User,
    django_assert_max_num_queries: Any,
) -> None:
    client = as_role(SUPPORT)
    for uid in range(8):
        link(user, str(uid))
    SocialAccount.objects.create(user=user, provider="gone", uid="x", extra_data={})
    with django_assert_max_num_queries(9):
        response = client.get(f"{BASE}/{user.pk}/identities")
    assert len(response.json()) == 9


# --- DELETE .../identities/{provider}/{uid} ---------------------------------------------------


def test_a_superuser_unlinks_an_identity(
    as_role: Callable[[str], ApiClient], staff: Callable[[str], User], user: User
) -> None:
    account = link(user, "101")
    other = link(user, "102")
    response = as_role(SUPERUSER).delete(f"{BASE}/{user.pk}/identities/dummy/101")
    assert response.status_code == 200, response.content
    assert response.json() == {"ok": True}
    assert list(SocialAccount.objects.filter(user=user)) == [other]
    assert not SocialAccount.objects.filter(pk=account.pk).exists()
    event = the_event(Action.SOCIAL_UNLINKED, user)
    assert (event.actor, event.surface) == (staff(SUPERUSER), "api")
    assert event.data["provider"] == "Dummy"
    assert subjects_to(user.email) == ["[Account portal] An account was unlinked from yours"]
    # The staff member's address and device are not in the user's message.
    assert "127.0.0.1" not in mail.outbox[-1].body


@pytest.mark.parametrize("role", [SUPPORT, SECURITY])
def test_roles_without_allauths_permission_cannot_unlink(
    as_role: Callable[[str], ApiClient], user: User, role: str
) -> None:
    link(user, "101")
    link(user, "102")
    before = state(user)
    assert_error(as_role(role).delete(f"{BASE}/{user.pk}/identities/dummy/101"), 403, "forbidden")
    assert state(user) == before


def test_staff_given_the_permission_unlink_an_end_users_identity(
    staff: Callable[[str], User], user: User
) -> None:
    member = grant(staff(SUPPORT), "delete_socialaccount", app_label="socialaccount")
    link(user, "101")
    response = management_client(member).delete(f"{BASE}/{user.pk}/identities/dummy/101")
    assert response.status_code == 200, response.content
    assert not SocialAccount.objects.filter(user=user).exists()
    assert the_event(Action.SOCIAL_UNLINKED, user).actor == member


def test_staff_cannot_unlink_the_last_way_to_sign_in(
    as_role: Callable[[str], ApiClient], user_factory: Callable[..., User]
) -> None:
    """A user without a password whose only way in is this linked account: staff are
    refused as the user is (409); once another way exists, the unlink goes."""
    client = as_role(SUPERUSER)
    carol = user_factory(username="carol", password=None)
    link(carol, "301")
    before = state(carol)
    body = assert_error(
        client.delete(f"{BASE}/{carol.pk}/identities/dummy/301"),
        409,
        "social.last_sign_in_method",
    )
    assert "last way to sign in" in body["message"]
    assert state(carol) == before
    link(carol, "302")
    assert client.delete(f"{BASE}/{carol.pk}/identities/dummy/301").status_code == 200
    assert list(SocialAccount.objects.filter(user=carol).values_list("uid", flat=True)) == ["302"]


def test_with_a_password_but_no_verified_address_the_last_identity_stays(
    as_role: Callable[[str], ApiClient], user_factory: Callable[..., User]
) -> None:
    dave = user_factory(username="dave", verified=False)
    link(dave, "401")
    assert_error(
        as_role(SUPERUSER).delete(f"{BASE}/{dave.pk}/identities/dummy/401"),
        409,
        "social.last_sign_in_method",
    )
    assert SocialAccount.objects.filter(user=dave).exists()


def test_unlink_an_uid_with_a_slash(as_role: Callable[[str], ApiClient], user: User) -> None:
    SocialAccount.objects.create(
        user=user, provider="dummy", uid="https://id.example/alice", extra_data={}
    )
    response = as_role(SUPERUSER).delete(
        f"{BASE}/{user.pk}/identities/dummy/https://id.example/alice"
    )
    assert response.status_code == 200, response.content
    assert not SocialAccount.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    ("provider", "uid"),
    [("dummy", "202"), ("dummy", "999"), ("google", "101"), ("nope", "x" * 191)],
    ids=["someone-elses", "unknown-uid", "other-provider", "unknown"],
)
def test_someone_elses_or_an_unknown_identity_is_404(
    as_role: Callable[[str], ApiClient], user: User, bob: User, provider: str, uid: str
) -> None:
    link(user, "101")
    link(bob, "202")
    before = state(user), state(bob)
    assert_error(
        as_role(SUPERUSER).delete(f"{BASE}/{user.pk}/identities/{provider}/{uid}"),
        404,
        "not_found",
    )
    assert (state(user), state(bob)) == before


@pytest.mark.parametrize(
    "tail",
    ["dummy/1%000", "du%01mmy/101", f"dummy/{'1' * 192}", f"{'d' * 201}/101"],
    ids=["nul-in-uid", "control-in-provider", "uid-too-long", "provider-too-long"],
)
def test_bad_identity_paths_are_422(
    as_role: Callable[[str], ApiClient], user: User, tail: str
) -> None:
    link(user, "101")
    assert_error(
        as_role(SUPERUSER).delete(f"{BASE}/{user.pk}/identities/{tail}"), 422, "validation_error"
    )
    assert SocialAccount.objects.filter(user=user).exists()


def test_unlink_query_budget(
    as_role: Callable[[str], ApiClient],
    user: User,
    django_assert_max_num_queries: Any,
) -> None:
    client = as_role(SUPERUSER)
    for uid in range(8):
        link(user, str(uid))
    with django_assert_max_num_queries(17):
        response = client.delete(f"{BASE}/{user.pk}/identities/dummy/3")
    assert response.status_code == 200, response.content


# --- GET .../second-factors -------------------------------------------------------------------


def test_second_factors_of_an_account_without_any(
    as_role: Callable[[str], ApiClient], user: User
) -> None:
    response = as_role(SUPPORT).get(f"{BASE}/{user.pk}/second-factors")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "enabled": False,
        "authenticator_app": None,
        "security_keys": [],
        "backup_codes_remaining": None,
    }


def test_second_factors(as_role: Callable[[str], ApiClient], user: User, bob: User) -> None:
    app = TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    TOTPDevice.objects.filter(pk=app.pk).update(last_used_at=timezone.now())
    blue = make_key(user, "Blue key", discoverable=True)
    old = make_key(user, "Old key", discoverable=False)
    make_key(bob, "Bob's key")
    codes = mfa_services.backup_codes_generate(user=user)
    BackupCodeDevice.objects.get(user=user).verify_token(codes[0])
    response = as_role(SUPPORT).get(f"{BASE}/{user.pk}/second-factors")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["enabled"] is True
    assert body["authenticator_app"]["added_at"].startswith(str(app.created_at.year))
    assert body["authenticator_app"]["last_used_at"] is not None
    assert [(k["id"], k["name"], k["passkey"]) for k in body["security_keys"]] == [
        (blue.pk, "Blue key", True),
        (old.pk, "Old key", False),
    ]
    assert set(body["security_keys"][0]) == {"id", "name", "created_at", "last_used_at", "passkey"}
    assert body["backup_codes_remaining"] == len(codes) - 1
    assert "key" not in body["authenticator_app"]


def test_second_factors_query_budget(
    as_role: Callable[[str], ApiClient],
    user: User,
    django_assert_max_num_queries: Any,
) -> None:
    client = as_role(SUPPORT)
    TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    for n in range(6):
        make_key(user, f"Key {n}")
    mfa_services.backup_codes_generate(user=user)
    with django_assert_max_num_queries(10):
        response = client.get(f"{BASE}/{user.pk}/second-factors")
    assert len(response.json()["security_keys"]) == 6


# --- DELETE .../second-factors --------------------------------------------------------------


def with_every_factor(user: User) -> None:
    TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    make_key(user, "Blue key")
    mfa_services.backup_codes_generate(user=user)


@pytest.mark.parametrize("role", [SUPPORT, SECURITY, SUPERUSER])
def test_reset_second_factors(
    as_role: Callable[[str], ApiClient], staff: Callable[[str], User], user: User, role: str
) -> None:
    with_every_factor(user)
    response = as_role(role).delete(
        f"{BASE}/{user.pk}/second-factors",
        {"reason": "  Lost phone, ticket 42  "},
        content_type=JSON,
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"removed": 2}
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not WebAuthnCredential.objects.filter(user=user).exists()
    assert not BackupCodeDevice.objects.filter(user=user).exists()
    event = the_event(Action.MFA_RESET, user)
    assert (event.actor, event.surface) == (staff(role), "api")
    assert event.data == {"reason": "Lost phone, ticket 42"}
    assert subjects_to(user.email) == ["[Account portal] Your two-step verification was reset"]


def test_reset_second_factors_the_same_roles_as_the_back_office(
    staff: Callable[[str], User], user: User
) -> None:
    """Support may (their action page opens), Operators may not (403 there too)."""
    page = reverse("admin:accounts_user_reset_mfa", args=[user.pk])
    assert staff_signed_in(staff(SUPPORT)).get(page).status_code == 200
    assert staff_signed_in(staff(OPERATORS)).get(page).status_code == 403
    with_every_factor(user)
    url = f"{BASE}/{user.pk}/second-factors"
    before = state(user)
    refused = management_client(staff(OPERATORS)).delete(url, {"reason": "x"}, content_type=JSON)
    assert_error(refused, 403, "forbidden")
    assert state(user) == before
    assert (
        management_client(staff(SUPPORT))
        .delete(url, {"reason": "x"}, content_type=JSON)
        .status_code
        == 200
    )


def test_reset_second_factors_of_staff_like_the_back_office(
    staff: Callable[[str], User],
) -> None:
    colleague = staff(SECURITY)
    page = reverse("admin:accounts_user_reset_mfa", args=[colleague.pk])
    url = f"{BASE}/{colleague.pk}/second-factors"
    support = staff(SUPPORT)
    assert staff_signed_in(support).get(page).status_code == 403
    assert_error(
        management_client(support).delete(url, {"reason": "x"}, content_type=JSON), 403, "forbidden"
    )
    assert staff_signed_in(staff(SUPERUSER)).get(page).status_code == 200
    response = management_client(staff(SUPERUSER)).delete(url, {"reason": "x"}, content_type=JSON)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": ""},
        {"reason": "   "},
        {"reason": "a\x00b"},
        {"reason": "a\x01b"},
        {"reason": "x" * 501},
        {"reason": 5},
        {"reason": "ok", "extra": 1},
    ],
    ids=["missing", "empty", "blank", "nul", "control", "too-long", "not-text", "extra-field"],
)
def test_reset_second_factors_bad_reason_is_422(
    as_role: Callable[[str], ApiClient], user: User, body: dict[str, Any]
) -> None:
    with_every_factor(user)
    before = state(user)
    response = as_role(SUPPORT).delete(f"{BASE}/{user.pk}/second-factors", body, content_type=JSON)
    details = assert_error(response, 422, "validation_error")["details"]
    assert details
    assert state(user) == before


def test_a_reason_on_several_lines_is_kept(as_role: Callable[[str], ApiClient], user: User) -> None:
    with_every_factor(user)
    response = as_role(SUPPORT).delete(
        f"{BASE}/{user.pk}/second-factors",
        {"reason": "Ticket 42\nCaller checked\tby phone"},
        content_type=JSON,
    )
    assert response.status_code == 200, response.content
    assert the_event(Action.MFA_RESET, user).data["reason"] == "Ticket 42\nCaller checked\tby phone"


def test_reset_second_factors_query_budget(
    as_role: Callable[[str], ApiClient],
    user: User,
    django_assert_max_num_queries: Any,
) -> None:
    client = as_role(SUPPORT)
    TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    for n in range(6):
        make_key(user, f"Key {n}")
    mfa_services.backup_codes_generate(user=user)
    with django_assert_max_num_queries(22):
        response = client.delete(
            f"{BASE}/{user.pk}/second-factors", {"reason": "Lost"}, content_type=JSON
        )
    assert response.json() == {"removed": 7}


# --- GET .../sessions -------------------------------------------------------------------------


def test_sessions(
    as_role: Callable[[str], ApiClient], staff: Callable[[str], User], user: User, bob: User
) -> None:
    now = timezone.now()
    older = fake_session(user, ip="203.0.113.7", last_seen_at=now - timedelta(hours=1))
    watched = fake_session(
        user, impersonated_by=staff(SECURITY).pk, user_agent="", last_seen_at=now
    )
    fake_session(bob)
    response = as_role(SUPPORT).get(f"{BASE}/{user.pk}/sessions")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [(s["id"], s["impersonation"]) for s in body] == [
        (watched.pk, True),
        (older.pk, False),
    ]
    assert body[1]["ip"] == "203.0.113.7"
    assert body[1]["device"] == "Mobile Safari on iOS"
    assert body[1]["user_agent"] == SAFARI_ON_IPHONE
    assert body[1]["created_at"].startswith(older.created_at.date().isoformat())
    assert set(body[1]) == {
        "id", "ip", "user_agent", "device", "created_at", "last_seen_at", "impersonation",
    }  # fmt: skip


def test_sessions_as_the_back_office_lists_them(staff: Callable[[str], User], user: User) -> None:
    for n in range(3):
        fake_session(user, ip=f"203.0.113.{n}")
    page = staff_signed_in(staff(SUPPORT)).get(
        reverse("admin:accounts_user_change", args=[user.pk])
    )
    shown = [s.ip for s in page.context["overview"]["sessions"]]
    listed = management_client(staff(SUPPORT)).get(f"{BASE}/{user.pk}/sessions").json()
    assert [s["ip"] for s in listed] == shown
    assert len(shown) == 3


def test_sessions_query_budget(
    as_role: Callable[[str], ApiClient],
    user: User,
    django_assert_max_num_queries: Any,
) -> None:
    client = as_role(SUPPORT)
    for _n in range(10):
        fake_session(user)
    with django_assert_max_num_queries(7):
        response = client.get(f"{BASE}/{user.pk}/sessions")
    assert len(response.json()) == 10


# --- DELETE .../sessions ----------------------------------------------------------------------


@pytest.mark.parametrize("role", [SUPPORT, SECURITY, SUPERUSER])
def test_end_every_session(
    as_role: Callable[[str], ApiClient], staff: Callable[[str], User], user: User, role: str
) -> None:
    browser = live_client(user)
    fake_session(user)
    token = ApiClient(make_token(user))
    response = as_role(role).delete(f"{BASE}/{user.pk}/sessions")
    assert response.status_code == 200, response.content
    assert response.json() == {"ended": 2}
    assert not UserSession.objects.filter(user=user).exists()
    assert browser.get(reverse("settings_home")).status_code == 302
    event = the_event(Action.SESSIONS_ENDED_BY_STAFF, user)
    assert (event.actor, event.surface, event.data) == (staff(role), "api", {"count": 2})
    # As the back-office's action: sessions only, the user's tokens keep working.
    assert token.get("/api/my-account").status_code == 200


def test_end_every_session_with_another_session_store(
    as_role: Callable[[str], ApiClient], user: User, settings: Any
) -> None:
    """Sessions kept elsewhere than the database end one by one, as allauth ends them."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    browsers = [live_client(user) for _n in range(2)]
    response = as_role(SUPPORT).delete(f"{BASE}/{user.pk}/sessions")
    assert response.json() == {"ended": 2}
    assert not UserSession.objects.filter(user=user).exists()
    assert not any(b.get(reverse("settings_home")).status_code == 200 for b in browsers)


def test_end_sessions_the_same_roles_as_the_back_office(
    staff: Callable[[str], User], user: User
) -> None:
    page = reverse("admin:accounts_user_end_sessions", args=[user.pk])
    assert staff_signed_in(staff(SUPPORT)).get(page).status_code == 200
    assert staff_signed_in(staff(OPERATORS)).get(page).status_code == 403
    fake_session(user)
    url = f"{BASE}/{user.pk}/sessions"
    assert_error(management_client(staff(OPERATORS)).delete(url), 403, "forbidden")
    assert UserSession.objects.filter(user=user).exists()
    assert management_client(staff(SUPPORT)).delete(url).json() == {"ended": 1}


def test_end_sessions_of_oneself_is_refused_like_the_back_office(
    staff: Callable[[str], User],
) -> None:
    support = staff(SUPPORT)
    page = reverse("admin:accounts_user_end_sessions", args=[support.pk])
    assert staff_signed_in(support).get(page).status_code == 403
    fake_session(support)
    assert_error(
        management_client(support).delete(f"{BASE}/{support.pk}/sessions"), 403, "forbidden"
    )
    assert UserSession.objects.filter(user=support).count() == 2  # and the page's own


def test_end_sessions_query_budget(
    as_role: Callable[[str], ApiClient],
    user: User,
    django_assert_max_num_queries: Any,
) -> None:
    client = as_role(SUPPORT)
    browsers = [live_client(user) for _n in range(3)]
    for _n in range(8):
        fake_session(user)
    # The stored sessions and their rows go in one query each, whatever their number.
    with django_assert_max_num_queries(15):
        assert client.delete(f"{BASE}/{user.pk}/sessions").json() == {"ended": 11}
    assert not any(b.get(reverse("settings_home")).status_code == 200 for b in browsers)


# --- GET .../personal-access-tokens ------------------------------------------------------------


def test_tokens_list(
    as_role: Callable[[str], ApiClient], staff: Callable[[str], User], user: User, bob: User
) -> None:
    client = as_role(SUPERUSER)
    make_token(user, ["account:read"])
    revoked = PersonalAccessToken.objects.get(user=user)
    PersonalAccessToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    made = client.post(
        f"{BASE}/{user.pk}/personal-access-tokens",
        {"name": "Backup script", "scopes": ["account:read"], "expires_at": in_a_month()},
    ).json()
    make_token(bob)
    response = client.get(f"{BASE}/{user.pk}/personal-access-tokens")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [(t["id"], t["created_by"]) for t in body] == [
        (made["id"], staff(SUPERUSER).pk),
        (revoked.pk, None),
    ]
    assert body[1]["revoked_at"] is not None
    assert body[0]["prefix"].startswith("pat_")
    assert body[0]["prefix"].endswith("…")
    assert "token" not in body[0]
    assert made["token"] not in response.content.decode()


@pytest.mark.parametrize("role", [SUPPORT, SECURITY])
def test_roles_do_not_see_tokens(
    as_role: Callable[[str], ApiClient], user: User, role: str
) -> None:
    make_token(user)
    assert_error(as_role(role).get(f"{BASE}/{user.pk}/personal-access-tokens"), 403, "forbidden")


def test_staff_given_the_view_permission_list_tokens(
    staff: Callable[[str], User], user: User
) -> None:
    member = grant(staff(SUPPORT), "view_personalaccesstoken")
    make_token(user)
    response = management_client(member).get(f"{BASE}/{user.pk}/personal-access-tokens")
    assert [t["name"] for t in response.json()] == ["test"]


def test_tokens_list_query_budget(
    as_role: Callable[[str], ApiClient],
    user: User,
    django_assert_max_num_queries: Any,
) -> None:
    client = as_role(SUPERUSER)
    for _n in range(8):
        make_token(user)
    with django_assert_max_num_queries(6):
        response = client.get(f"{BASE}/{user.pk}/personal-access-tokens")
    assert len(response.json()) == 8


# --- POST .../personal-access-tokens --------------------------------------------------------


def test_a_superuser_makes_a_token_for_a_user(
    as_role: Callable[[str], ApiClient], staff: Callable[[str], User], user: User
) -> None:
    expires = timezone.now() + timedelta(days=90)
    response = as_role(SUPERUSER).post(
        f"{BASE}/{user.pk}/personal-access-tokens",
        {
            "name": "  Backup   script ",
            "scopes": ["account:write", "account:read"],
            "expires_at": expires.isoformat(),
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Backup script"
    assert body["scopes"] == ["account:read", "account:write"]
    assert body["created_by"] == staff(SUPERUSER).pk
    token = PersonalAccessToken.objects.get(pk=body["id"])
    assert (token.user, token.created_by) == (user, staff(SUPERUSER))
    # The secret is the user's: it reaches their account through the Account API.
    assert body["token"].startswith("pat_")
    me = ApiClient(body["token"]).get("/api/my-account")
    assert (me.status_code, me.json()["username"]) == (200, "alice")
    event = the_event(Action.TOKEN_CREATED, user)
    assert (event.actor, event.surface) == (staff(SUPERUSER), "api")
    assert event.data["name"] == "Backup script"
    assert subjects_to(user.email) == [
        "[Account portal] A personal access token was created for your account"
    ]
    assert body["token"] not in mail.outbox[-1].body


@pytest.mark.parametrize("role", [SUPPORT, SECURITY])
def test_roles_cannot_make_tokens(
    as_role: Callable[[str], ApiClient], user: User, role: str
) -> None:
    before = state(user)
    response = as_role(role).post(
        f"{BASE}/{user.pk}/personal-access-tokens",
        {"name": "x", "scopes": ["account:read"], "expires_at": in_a_month()},
    )
    assert_error(response, 403, "forbidden")
    assert state(user) == before


def test_staff_given_the_permission_make_a_token_for_an_end_user(
    staff: Callable[[str], User], user: User
) -> None:
    member = grant(staff(SECURITY), "add_personalaccesstoken")
    response = management_client(member).post(
        f"{BASE}/{user.pk}/personal-access-tokens",
        {"name": "x", "scopes": ["account:read"], "expires_at": in_a_month()},
    )
    assert response.status_code == 201, response.content
    assert PersonalAccessToken.objects.get(user=user).created_by == member


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": ["management"]}, "scopes"),
        ({"scopes": ["account:read", "management"]}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["users:read"]}, "scopes"),
        ({"name": "   "}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": (timezone.now() + timedelta(days=400)).isoformat()}, "expires_at"),
        ({"expires_at": "soon"}, "expires_at"),
        ({"extra": True}, "extra"),
    ],
    ids=[
        "management",
        "with-management",
        "no-scope",
        "unknown-scope",
        "blank-name",
        "nul-in-name",
        "long-name",
        "past",
        "beyond-a-year",
        "not-a-date",
        "extra-field",
    ],
)
def test_bad_token_input_is_422(
    as_role: Callable[[str], ApiClient], user: User, body: dict[str, Any], field: str
) -> None:
    data = {"name": "ok", "scopes": ["account:read"], "expires_at": in_a_month(), **body}
    before = state(user)
    details = assert_error(
        as_role(SUPERUSER).post(f"{BASE}/{user.pk}/personal-access-tokens", data),
        422,
        "validation_error",
    )["details"]
    assert field in details, details
    assert state(user) == before


def test_a_staff_members_account_never_gets_a_management_token_from_someone_else(
    as_role: Callable[[str], ApiClient], staff: Callable[[str], User]
) -> None:
    """Not even from a superuser, and not even when the member has a second factor:
    a management token is made by its owner (the Account API)."""
    colleague = staff(SUPPORT)
    TOTPDevice.objects.create(user=colleague, name="Phone", confirmed=True)
    response = as_role(SUPERUSER).post(
        f"{BASE}/{colleague.pk}/personal-access-tokens",
        {"name": "ops", "scopes": ["management"], "expires_at": in_a_month()},
    )
    assert_error(response, 422, "validation_error")
    assert not PersonalAccessToken.objects.filter(user=colleague).exists()


@pytest.mark.parametrize("state_of", ["suspended", "pending_deletion"])
def test_no_token_for_an_account_that_is_not_active(
    as_role: Callable[[str], ApiClient], user: User, state_of: str
) -> None:
    if state_of == "suspended":
        user_suspend(ctx=None, user=user, reason="Spam")
    else:
        User.objects.filter(pk=user.pk).update(state=User.State.PENDING_DELETION, is_active=False)
    mail.outbox.clear()
    before = state(user)
    response = as_role(SUPERUSER).post(
        f"{BASE}/{user.pk}/personal-access-tokens",
        {"name": "x", "scopes": ["account:read"], "expires_at": in_a_month()},
    )
    assert_error(response, 409, "wrong_state")
    assert state(user) == before


def test_no_more_tokens_than_an_account_may_have(
    as_role: Callable[[str], ApiClient], user: User, settings: Any
) -> None:
    settings.PERSONAL_ACCESS_TOKENS_PER_USER = 2
    make_token(user)
    make_token(user)
    response = as_role(SUPERUSER).post(
        f"{BASE}/{user.pk}/personal-access-tokens",
        {"name": "x", "scopes": ["account:read"], "expires_at": in_a_month()},
    )
    body = assert_error(response, 409, "tokens.too_many")
    assert "This account" in body["message"]
    assert PersonalAccessToken.objects.filter(user=user).count() == 2


def test_make_token_query_budget(
    as_role: Callable[[str], ApiClient],
    user: User,
    django_assert_max_num_queries: Any,
) -> None:
    client = as_role(SUPERUSER)
    for _n in range(5):
        make_token(user)
    with django_assert_max_num_queries(16):
        response = client.post(
            f"{BASE}/{user.pk}/personal-access-tokens",
            {"name": "x", "scopes": ["account:read"], "expires_at": in_a_month()},
        )
    assert response.status_code == 201, response.content


# --- DELETE .../personal-access-tokens/{token_id} ----------------------------------------------


def test_a_superuser_revokes_a_users_token(
    as_role: Callable[[str], ApiClient], staff: Callable[[str], User], user: User
) -> None:
    secret = make_token(user)
    token = PersonalAccessToken.objects.get(user=user)
    mail.outbox.clear()
    client = as_role(SUPERUSER)
    response = client.delete(f"{BASE}/{user.pk}/personal-access-tokens/{token.pk}")
    assert response.status_code == 200, response.content
    assert response.json()["id"] == token.pk
    assert response.json()["revoked_at"] is not None
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert_error(ApiClient(secret).get("/api/my-account"), 401, "unauthenticated")
    event = the_event(Action.TOKEN_REVOKED, user)
    assert (event.actor, event.surface) == (staff(SUPERUSER), "api")
    assert subjects_to(user.email) == [
        "[Account portal] A personal access token of your account was revoked"
    ]
    # Again: nothing more happens.
    again = client.delete(f"{BASE}/{user.pk}/personal-access-tokens/{token.pk}")
    assert again.status_code == 200
    assert AuditEvent.objects.filter(action=Action.TOKEN_REVOKED).count() == 1
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("role", [SUPPORT, SECURITY])
def test_roles_cannot_revoke_tokens(
    as_role: Callable[[str], ApiClient], user: User, role: str
) -> None:
    make_token(user)
    token = PersonalAccessToken.objects.get(user=user)
    before = state(user)
    response = as_role(role).delete(f"{BASE}/{user.pk}/personal-access-tokens/{token.pk}")
    assert_error(response, 403, "forbidden")
    assert state(user) == before


@pytest.mark.parametrize("which", ["someone-elses", "unknown", "huge"])
def test_someone_elses_or_an_unknown_token_is_404(
    as_role: Callable[[str], ApiClient], user: User, bob: User, which: str
) -> None:
    make_token(bob)
    token_id = {
        "someone-elses": PersonalAccessToken.objects.get(user=bob).pk,
        "unknown": 999999,
        "huge": HUGE,
    }[which]
    before = state(bob)
    response = as_role(SUPERUSER).delete(f"{BASE}/{user.pk}/personal-access-tokens/{token_id}")
    assert_error(response, 404, "not_found")
    assert state(bob) == before


def test_revoke_token_query_budget(
    as_role: Callable[[str], ApiClient],
    user: User,
    django_assert_max_num_queries: Any,
) -> None:
    client = as_role(SUPERUSER)
    for _n in range(5):
        make_token(user)
    token = PersonalAccessToken.objects.filter(user=user).first()
    assert token is not None
    with django_assert_max_num_queries(13):
        response = client.delete(f"{BASE}/{user.pk}/personal-access-tokens/{token.pk}")
    assert response.status_code == 200, response.content
