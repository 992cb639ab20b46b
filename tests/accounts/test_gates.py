"""The gate table (``accounts.gates.GATES``) and its one middleware: what each URL
needs at the door, and a request parked for re-authentication that is checked
again before it is replayed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from allauth.account.internal.flows.reauthentication import STATE_SESSION_KEY
from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, reverse

from accounts import urls as account_urls
from accounts.gates import GATES, SOCIAL_CONNECT, Gate
from accounts.impersonation import STARTED_KEY
from accounts.models import User
from accounts.policy import FIELDS
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

# --- The table -------------------------------------------------------------------------

# The facts of the four lists the table replaced, written out once more: the table
# must say the same.
POLICY_FIELDS = {
    "account_email": "email",
    "email": "email",
    "phone": "phone",
    "sessions": "sessions",
    "account_change_password": "password",
    "account_set_password": "password",
    "account_change_phone": "phone",
    "socialaccount_connections": "social",
    "usersessions_list": "sessions",
    "otp_webauthn:credential-registration-begin": "passkeys",
    "otp_webauthn:credential-registration-complete": "passkeys",
    "tokens": "tokens",
    "token_create": "tokens",
    "tokens_new": "tokens",
    "token_revoke": "tokens",
    "connected_apps": "connected_apps",
    "connected_app_revoke": "connected_apps",
}
REAUTH = {
    "account_set_password",
    "account_email",
    "socialaccount_connections",
    "usersessions_list",
    "otp_webauthn:credential-registration-begin",
    "otp_webauthn:credential-registration-complete",
    "token_create",
    "token_revoke",
    "connected_app_revoke",
}
SENSITIVE = {
    "account_change_password", "account_set_password", "account_email",
    "account_reauthenticate", "reauthenticate_email", "reauthenticate_two_factor",
    "email", "email_confirm", "email_resend", "email_cancel",
    "phone", "phone_confirm", "phone_resend", "phone_cancel", "phone_remove",
    "profile_username_edit",
    "totp_start", "totp_confirm", "totp_remove",
    "passkey_add", "passkey_register_begin", "passkey_register_complete",
    "passkey_rename", "passkey_remove",
    "backup_codes_regenerate", "backup_codes_new", "backup_codes_download",
    "socialaccount_connections",
    "sessions", "session_end", "sessions_end_others", "usersessions_list",
    "export", "delete_account", "deletion_cancel",
    "token_create", "tokens_new", "token_revoke",
    "connected_app_revoke",
}  # fmt: skip
SECRET = {"backup_codes_new", "backup_codes_download", "export", "tokens_new"}
PENDING_DELETION = {"deletion_pending", "deletion_cancel", "account_logout", "set_language"}


def names(flag: Callable[[Gate], bool]) -> set[str]:
    return {name for name, gate in GATES.items() if flag(gate)}


def test_the_table_says_what_the_four_lists_said() -> None:
    assert {n: g.field for n, g in GATES.items() if g.field is not None} == POLICY_FIELDS
    assert names(lambda g: g.needs_reauth) == REAUTH
    assert names(lambda g: g.sensitive_while_impersonating) == SENSITIVE
    assert names(lambda g: g.secret_on_read) == SECRET
    assert names(lambda g: g.allowed_while_pending_deletion) == PENDING_DELETION
    assert Gate("social", needs_reauth=True, sensitive_while_impersonating=True) == SOCIAL_CONNECT


def test_every_settings_page_has_a_row() -> None:
    """A new page of the portal must say what it needs at the door."""
    ours = {p.name for p in account_urls.urlpatterns if isinstance(p, URLPattern)}
    assert ours - set(GATES) == set()


def test_every_field_is_a_policy_field() -> None:
    assert {g.field for g in GATES.values() if g.field is not None} <= set(FIELDS)


def test_one_middleware_in_the_place_of_four() -> None:
    stack = settings.MIDDLEWARE
    assert "accounts.gates.GateMiddleware" in stack
    for gone in (
        "accounts.policy.PolicyMiddleware",
        "accounts.reauth.ReauthenticationMiddleware",
        "accounts.middleware.AccountStateMiddleware",
    ):
        assert gone not in stack
    position = stack.index("accounts.gates.GateMiddleware")
    for before in (
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django_otp.middleware.OTPMiddleware",
        "hijack.middleware.HijackUserMiddleware",
        "accounts.impersonation.ImpersonationMiddleware",
    ):
        assert stack.index(before) < position
    assert position < stack.index("django_htmx.middleware.HtmxMiddleware")


# --- The door ---------------------------------------------------------------------------


def impersonated(user: User, staff: User) -> Client:
    """A session of ``user`` opened by ``staff`` through django-hijack."""
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session["hijack_history"] = [str(staff.pk)]
    session[STARTED_KEY] = time.time()
    session.save()
    return client


def test_impersonation_refuses_writes_and_secret_pages(user: User, staff_user: User) -> None:
    client = impersonated(user, staff_user)
    assert client.get(reverse("email")).status_code == 200
    assert client.post(reverse("email"), {"email": "n@example.org"}).status_code == 403
    assert client.get(reverse("export")).status_code == 403
    assert client.get(reverse("backup_codes_new")).status_code == 403
    # The social connect rule, and a page that is not sensitive.
    assert client.post(reverse("dummy_login"), {"process": "connect"}).status_code == 403
    assert client.get(reverse("security_activity")).status_code == 200


def test_impersonation_is_refused_before_the_policy(
    user: User, staff_user: User, policy_modes: Any
) -> None:
    policy_modes(email="off")
    client = impersonated(user, staff_user)
    assert client.post(reverse("email"), {"email": "n@example.org"}).status_code == 403
    assert client.get(reverse("email")).status_code == 404


@pytest.mark.parametrize(
    ("mode", "enabled", "read", "write"),
    [("off", True, 404, 404), ("read_only", True, 302, 403), ("edit", False, 200, 403)],
)
def test_a_library_page_follows_the_policy(
    auth_client: Client, policy_modes: Any, mode: str, enabled: bool, read: int, write: int
) -> None:
    policy_modes(sessions=mode, enabled=enabled)
    url = reverse("usersessions_list")
    response = auth_client.get(url)
    assert response.status_code == read
    if enabled is False:
        assert b"turned off" in response.content
    assert auth_client.post(url).status_code == write


def test_a_library_write_needs_a_recent_reauthentication(auth_client: Client) -> None:
    response = auth_client.post(reverse("usersessions_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))


def test_an_account_pending_deletion_reaches_only_its_pages(user: User) -> None:
    User.objects.filter(pk=user.pk).update(state="pending_deletion", is_active=False)
    client = Client()
    client.force_login(user, backend="accounts.backends.PortalAuthenticationBackend")
    for name in ("settings_home", "account_change_password", "usersessions_list"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"] == reverse("deletion_pending")
    assert client.get(reverse("deletion_pending")).status_code == 200
    # Static files (WhiteNoise, before the gates) are served, not redirected.
    assert client.get(settings.STATIC_URL + "css/portal.css").status_code == 200


# --- A parked request is checked again before it is replayed -----------------------------


def park(client: Client, name: str, data: dict[str, Any]) -> str:
    """POSTs without a recent re-authentication: allauth keeps the request in the
    session and sends the user to re-authenticate. Returns that page's URL."""
    response = client.post(reverse(name), data)
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(reverse("account_reauthenticate")), location
    assert "request" in client.session[STATE_SESSION_KEY]
    return location


def test_a_parked_library_request_is_replayed_when_nothing_changed(auth_client: Client) -> None:
    location = park(auth_client, "usersessions_list", {})
    replayed = auth_client.post(location, {"password": PASSWORD})
    assert replayed.status_code == 302
    assert replayed["Location"] == reverse("sessions")
    assert STATE_SESSION_KEY not in auth_client.session


@pytest.mark.parametrize(
    ("name", "field"), [("usersessions_list", "sessions"), ("account_email", "email")]
)
@pytest.mark.parametrize(
    ("mode", "enabled", "status"),
    [("read_only", True, 403), ("off", True, 404), ("edit", False, 403)],
)
def test_a_parked_library_request_meets_the_policy_in_force(
    auth_client: Client,
    policy_modes: Any,
    name: str,
    field: str,
    mode: str,
    enabled: bool,
    status: int,
) -> None:
    location = park(auth_client, name, {})
    policy_modes(**{field: mode, "enabled": enabled})
    assert auth_client.post(location, {"password": PASSWORD}).status_code == status
    # Dropped: it is never replayed, even once the policy allows it again.
    assert STATE_SESSION_KEY not in auth_client.session


def test_a_parked_unlink_is_not_replayed_past_a_read_only_policy(
    auth_client: Client, user: User, policy_modes: Any
) -> None:
    account = SocialAccount.objects.create(user=user, provider="dummy", uid="101", extra_data={})
    location = park(auth_client, "socialaccount_connections", {"account": account.pk})
    policy_modes(social="read_only")
    assert auth_client.post(location, {"password": PASSWORD}).status_code == 403
    assert SocialAccount.objects.filter(pk=account.pk).exists()


def test_a_parked_link_is_not_replayed_past_a_read_only_policy(
    auth_client: Client, user: User, policy_modes: Any
) -> None:
    location = park(auth_client, "dummy_login", {"process": "connect"})
    policy_modes(social="read_only")
    response = auth_client.post(location, {"password": PASSWORD})
    assert response.status_code == 403
    assert not SocialAccount.objects.exists()


@pytest.mark.parametrize(
    ("name", "field", "data"),
    [
        ("email", "email", {"email": "n@example.org"}),
        ("profile_username_edit", "username", {"username": "mallory"}),
    ],
)
def test_a_parked_change_of_ours_is_not_replayed_past_a_read_only_policy(
    auth_client: Client, user: User, policy_modes: Any, name: str, field: str, data: dict[str, Any]
) -> None:
    location = park(auth_client, name, data)
    policy_modes(**{field: "read_only"})
    response = auth_client.post(location, {"password": PASSWORD})
    assert response.status_code == 403
    assert b"read-only" in response.content
    user.refresh_from_db()
    assert user.username == "alice"
    from accounts.models import VerificationCode

    assert not VerificationCode.objects.exists()


def test_a_parked_request_for_another_page_does_not_block_reauthentication(
    auth_client: Client, policy_modes: Any
) -> None:
    park(auth_client, "usersessions_list", {})
    policy_modes(sessions="read_only")
    url = reverse("account_reauthenticate") + "?next=/settings/"
    response = auth_client.post(url, {"password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/settings/"
