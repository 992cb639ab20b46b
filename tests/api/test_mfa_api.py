"""Two-step verification through the Account API: the overview, the authenticator
app, security keys and passkeys, backup codes."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import AuditEvent, BackupCode, BackupCodeDevice, User
from accounts.services import mfa as mfa_services
from accounts.services.audit import Action
from tests.api.conftest import ApiClient, assert_error, make_token, verify
from tests.conftest import reauthenticate

pytestmark = pytest.mark.django_db


# --- Helpers ----------------------------------------------------------------------------


def totp_code(device: TOTPDevice) -> str:
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return str(totp.token()).zfill(device.digits)


def wrong_code(device: TOTPDevice) -> str:
    return "000000" if totp_code(device) != "000000" else "111111"


def make_key(user: User, name: str = "Blue key", discoverable: bool | None = True) -> Any:
    return WebAuthnCredential.objects.create(
        user=user,
        name=name,
        confirmed=True,
        credential_id=f"credential-{user.pk}-{time.monotonic_ns()}".encode(),
        public_key=b"public-key",
        sign_count=0,
        aaguid="00000000-0000-0000-0000-000000000000",
        discoverable=discoverable,
    )


def with_app(user: User) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)


def subjects_to(address: str) -> list[str]:
    return [str(m.subject) for m in mail.outbox if address in m.to]


def actions(user: User) -> list[str]:
    return list(
        AuditEvent.objects.filter(subject=user).order_by("pk").values_list("action", flat=True)
    )


def state(user: User) -> dict[str, Any]:
    """Everything these endpoints can change, to show a refusal changed nothing."""
    return {
        "totp": sorted(TOTPDevice.objects.filter(user=user).values_list("pk", "confirmed")),
        "keys": sorted(WebAuthnCredential.objects.filter(user=user).values_list("pk", "name")),
        "codes": sorted(BackupCode.objects.filter(device__user=user).values_list("code_hash")),
        "audit": actions(user),
        "mail": len(mail.outbox),
    }


def web_client(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    reauthenticate(client)
    return client


@pytest.fixture
def bob(user_factory: Callable[..., User]) -> User:
    return user_factory(username="bob")


# --- GET /api/my-account/mfa ---------------------------------------------------------------


def test_overview_of_an_account_without_second_factor(api: ApiClient) -> None:
    response = api.get("/api/my-account/mfa")
    assert response.status_code == 200
    assert response.json() == {
        "enabled": False,
        "totp": {"enabled": False, "created_at": None},
        "security_keys": [],
        "backup_codes": {"remaining": None, "low": False},
    }


def test_overview_with_every_factor(api: ApiClient, user: User) -> None:
    app = with_app(user)
    key = make_key(user, "Blue key", discoverable=True)
    make_key(user, "Old key", discoverable=False)
    codes = mfa_services.backup_codes_generate(user=user)
    BackupCodeDevice.objects.get(user=user).verify_token(codes[0])
    body = api.get("/api/my-account/mfa").json()
    assert body["enabled"] is True
    assert body["totp"]["enabled"] is True
    assert body["totp"]["created_at"].startswith(str(app.created_at.year))
    assert [(k["name"], k["passkey"]) for k in body["security_keys"]] == [
        ("Blue key", True),
        ("Old key", False),
    ]
    assert body["security_keys"][0]["id"] == key.pk
    assert body["security_keys"][0]["last_used_at"] is None
    assert body["backup_codes"] == {"remaining": 9, "low": False}


def test_overview_leaves_out_the_part_whose_field_is_off(
    api: ApiClient, user: User, policy_modes: Any
) -> None:
    with_app(user)
    make_key(user)
    policy_modes(mfa="off")
    body = api.get("/api/my-account/mfa").json()
    assert set(body) == {"enabled", "security_keys"}
    assert body["enabled"] is True
    policy_modes(mfa="read_only", passkeys="off")
    body = api.get("/api/my-account/mfa").json()
    assert set(body) == {"enabled", "totp", "backup_codes"}
    policy_modes(mfa="off", passkeys="off")
    assert_error(api.get("/api/my-account/mfa"), 404, "policy.field_not_enabled")


def test_overview_shows_only_ones_own_factors(api: ApiClient, bob: User) -> None:
    with_app(bob)
    make_key(bob)
    body = api.get("/api/my-account/mfa").json()
    assert body["enabled"] is False
    assert body["security_keys"] == []


# --- The authenticator app ------------------------------------------------------------------


def test_totp_start_needs_a_verification(api: ApiClient, user: User) -> None:
    assert_error(api.post("/api/my-account/mfa/totp"), 401, "verification.required")
    assert not TOTPDevice.objects.exists()


def test_totp_start_gives_the_secret_and_the_otpauth_uri(
    verified_api: ApiClient, user: User
) -> None:
    response = verified_api.post("/api/my-account/mfa/totp")
    assert response.status_code == 200, response.content
    body = response.json()
    device = TOTPDevice.objects.get(user=user)
    assert not device.confirmed
    assert body["secret"] == base64.b32encode(device.bin_key).decode().rstrip("=")
    uri = urlsplit(body["otpauth_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == "/Account portal:alice"
    query = parse_qs(uri.query)
    assert query["secret"] == [body["secret"]]
    assert query["issuer"] == ["Account portal"]
    assert query["digits"] == ["6"]
    # The settings page shows the same key, from the same selector.
    page = web_client(user).get(reverse("totp_confirm")).content.decode()
    secret = body["secret"]
    assert " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) in page
    assert not AuditEvent.objects.filter(action__startswith="mfa.").exists()
    assert not mail.outbox


def test_totp_confirm_turns_the_app_on_with_the_first_backup_codes(
    verified_api: ApiClient, user: User
) -> None:
    verified_api.post("/api/my-account/mfa/totp")
    device = TOTPDevice.objects.get(user=user)
    response = verified_api.post("/api/my-account/mfa/totp/confirm", {"code": totp_code(device)})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["replaced"] is False
    assert len(body["backup_codes"]) == 10
    device.refresh_from_db()
    assert device.confirmed
    assert BackupCodeDevice.objects.get(user=user).verify_token(body["backup_codes"][0])
    assert actions(user)[-2:] == [Action.TOTP_ADDED, Action.BACKUP_CODES_GENERATED]
    subjects = subjects_to(user.email)
    assert any("A second factor was added" in s for s in subjects)
    assert any("New backup codes were generated" in s for s in subjects)
    assert verified_api.get("/api/my-account").json()["second_factor"] is True


def test_totp_confirm_replacing_the_app_keeps_the_codes(
    verified_api: ApiClient, user: User
) -> None:
    old = with_app(user)
    mfa_services.backup_codes_generate(user=user)
    verified_api.post("/api/my-account/mfa/totp")
    new = TOTPDevice.objects.get(user=user, confirmed=False)
    body = verified_api.post("/api/my-account/mfa/totp/confirm", {"code": totp_code(new)}).json()
    assert body == {"replaced": True, "backup_codes": None}
    assert list(TOTPDevice.objects.filter(user=user).values_list("pk", flat=True)) == [new.pk]
    assert not TOTPDevice.objects.filter(pk=old.pk).exists()
    assert Action.TOTP_REPLACED in actions(user)


def test_totp_confirm_without_a_setup_is_404(verified_api: ApiClient, user: User) -> None:
    with_app(user)
    assert_error(
        verified_api.post("/api/my-account/mfa/totp/confirm", {"code": "123456"}),
        404,
        "mfa.no_pending_setup",
    )


def test_totp_confirm_wrong_codes_are_refused_then_throttled(
    verified_api: ApiClient, user: User
) -> None:
    """django-otp's own throttling, shared with the settings page (it is the device's)."""
    verified_api.post("/api/my-account/mfa/totp")
    device = TOTPDevice.objects.get(user=user)
    before = state(user)
    assert_error(
        verified_api.post("/api/my-account/mfa/totp/confirm", {"code": wrong_code(device)}),
        422,
        "mfa.wrong_code",
    )
    throttled = verified_api.post("/api/my-account/mfa/totp/confirm", {"code": totp_code(device)})
    assert_error(throttled, 429, "mfa.throttled")
    # One wrong code locks the device for a second (django-otp doubles it each time).
    assert throttled["Retry-After"] == "1"
    assert state(user) == before
    # The page refuses too: the same device counts the wrong codes.
    page = web_client(user).post(reverse("totp_confirm"), {"code": totp_code(device)})
    assert page.status_code == 400
    assert "Too many wrong codes" in page.content.decode()


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({}, "code"),
        ({"code": ""}, "code"),
        ({"code": "1" * 21}, "code"),
        ({"code": "123\x00456"}, "code"),
        ({"code": 123456}, "code"),
        ({"code": "123456", "extra": 1}, "extra"),
    ],
)
def test_totp_confirm_bad_input_is_422(
    verified_api: ApiClient, user: User, body: dict[str, Any], field_name: str
) -> None:
    verified_api.post("/api/my-account/mfa/totp")
    response = verified_api.post("/api/my-account/mfa/totp/confirm", body)
    details = assert_error(response, 422, "validation_error")["details"]
    assert field_name in details
    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def test_an_unreadable_body_is_400(verified_api: ApiClient, user: User) -> None:
    key = make_key(user)
    verified_api.post("/api/my-account/mfa/totp")
    for method, path in [
        ("POST", "/api/my-account/mfa/totp/confirm"),
        ("PATCH", f"/api/my-account/mfa/security-keys/{key.pk}"),
    ]:
        response = verified_api.generic(method, path, b'{"code": ')
        assert_error(response, 400, "bad_request")
    key.refresh_from_db()
    assert key.name == "Blue key"


def test_totp_remove_beside_a_key(verified_api: ApiClient, user: User) -> None:
    with_app(user)
    make_key(user)
    mfa_services.backup_codes_generate(user=user)
    response = verified_api.delete("/api/my-account/mfa/totp")
    assert response.status_code == 200, response.content
    assert response.json() == {"removed": True}
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert BackupCodeDevice.objects.filter(user=user).exists()
    assert actions(user)[-1] == Action.TOTP_REMOVED
    assert any("A second factor was removed" in s for s in subjects_to(user.email))


def test_totp_remove_of_the_last_factor_needs_confirm_last(
    verified_api: ApiClient, user: User
) -> None:
    with_app(user)
    mfa_services.backup_codes_generate(user=user)
    before = state(user)
    assert_error(verified_api.delete("/api/my-account/mfa/totp"), 409, "mfa.last_factor")
    assert state(user) == before
    response = verified_api.delete("/api/my-account/mfa/totp?confirm_last=true")
    assert response.json() == {"removed": True}
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not BackupCodeDevice.objects.filter(user=user).exists()
    assert actions(user)[-2:] == [Action.TOTP_REMOVED, Action.BACKUP_CODES_REMOVED]


def test_totp_remove_without_an_app(verified_api: ApiClient, user: User) -> None:
    assert verified_api.delete("/api/my-account/mfa/totp").json() == {"removed": False}
    assert not AuditEvent.objects.filter(action=Action.TOTP_REMOVED).exists()


def test_totp_remove_bad_query_is_422(verified_api: ApiClient, user: User) -> None:
    with_app(user)
    details = assert_error(
        verified_api.delete("/api/my-account/mfa/totp?confirm_last=perhaps"),
        422,
        "validation_error",
    )["details"]
    assert "confirm_last" in details
    assert TOTPDevice.objects.filter(user=user).exists()


# --- Security keys and passkeys -----------------------------------------------------------


def test_security_keys_list(api: ApiClient, user: User, bob: User) -> None:
    first = make_key(user, "Blue key", discoverable=True)
    second = make_key(user, "Red key", discoverable=None)
    WebAuthnCredential.objects.filter(pk=second.pk).update(last_used_at=timezone.now())
    make_key(bob, "Bob's key")
    response = api.get("/api/my-account/mfa/security-keys")
    assert response.status_code == 200
    body = response.json()
    assert [(k["id"], k["name"], k["passkey"]) for k in body] == [
        (first.pk, "Blue key", True),
        (second.pk, "Red key", None),
    ]
    assert set(body[0]) == {"id", "name", "created_at", "last_used_at", "passkey"}
    assert body[0]["last_used_at"] is None
    assert body[1]["last_used_at"] is not None


def test_security_key_rename(api: ApiClient, user: User) -> None:
    """No verification: a key is named right after registering it (as on the page)."""
    key = make_key(user, "Security key")
    response = api.patch(f"/api/my-account/mfa/security-keys/{key.pk}", {"name": "  Blue  key "})
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Blue  key"
    key.refresh_from_db()
    assert key.name == "Blue  key"
    event = AuditEvent.objects.get(action=Action.PASSKEY_RENAMED)
    assert event.data == {"before": "Security key", "after": "Blue  key"}


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "Blue\x00key", "Blue\x07key"])
def test_security_key_rename_bad_names_are_422(api: ApiClient, user: User, name: str) -> None:
    key = make_key(user)
    body = assert_error(
        api.patch(f"/api/my-account/mfa/security-keys/{key.pk}", {"name": name}),
        422,
        "validation_error",
    )
    assert list(body["details"]) == ["name"]
    key.refresh_from_db()
    assert key.name == "Blue key"


def test_security_key_rename_bad_bodies_are_422(api: ApiClient, user: User) -> None:
    key = make_key(user)
    url = f"/api/my-account/mfa/security-keys/{key.pk}"
    assert "name" in assert_error(api.patch(url, {}), 422, "validation_error")["details"]
    assert "name" in assert_error(api.patch(url, {"name": 5}), 422, "validation_error")["details"]
    assert (
        "x"
        in assert_error(api.patch(url, {"name": "A", "x": 1}), 422, "validation_error")["details"]
    )
    assert assert_error(api.patch(url, {"name": "a" * 201}), 422, "validation_error")


@pytest.mark.parametrize("method", ["patch", "delete"])
@pytest.mark.parametrize("which", ["someone_else", "unknown", "huge", "negative"])
def test_someone_elses_or_unknown_key_is_404(
    verified_api: ApiClient, user: User, bob: User, method: str, which: str
) -> None:
    make_key(user)
    bobs = make_key(bob, "Bob's key")
    key_id = {"someone_else": bobs.pk, "unknown": 999999, "huge": 2**70, "negative": -1}[which]
    url = f"/api/my-account/mfa/security-keys/{key_id}"
    response = (
        verified_api.patch(url, {"name": "Mine"})
        if method == "patch"
        else (verified_api.delete(url + "?confirm_last=true"))
    )
    assert_error(response, 404, "not_found")
    bobs.refresh_from_db()
    assert bobs.name == "Bob's key"
    assert WebAuthnCredential.objects.count() == 2


def test_a_key_id_that_is_not_a_number_is_422(verified_api: ApiClient) -> None:
    assert_error(
        verified_api.delete("/api/my-account/mfa/security-keys/abc"), 422, "validation_error"
    )


def test_security_key_remove_needs_a_verification(api: ApiClient, user: User) -> None:
    key = make_key(user)
    make_key(user, "Red key")
    assert_error(
        api.delete(f"/api/my-account/mfa/security-keys/{key.pk}"), 401, "verification.required"
    )
    assert WebAuthnCredential.objects.filter(pk=key.pk).exists()


def test_security_key_remove_one_of_two(verified_api: ApiClient, user: User) -> None:
    key = make_key(user, "Blue key")
    other = make_key(user, "Red key")
    mfa_services.backup_codes_generate(user=user)
    response = verified_api.delete(f"/api/my-account/mfa/security-keys/{key.pk}")
    assert response.status_code == 200, response.content
    assert response.json() == {"name": "Blue key"}
    assert list(WebAuthnCredential.objects.filter(user=user)) == [other]
    assert BackupCodeDevice.objects.filter(user=user).exists()
    event = AuditEvent.objects.get(action=Action.PASSKEY_REMOVED)
    assert event.data == {"name": "Blue key"}
    assert any("A second factor was removed" in s for s in subjects_to(user.email))


def test_security_key_remove_the_last_factor_needs_confirm_last(
    verified_api: ApiClient, user: User
) -> None:
    key = make_key(user)
    mfa_services.backup_codes_generate(user=user)
    before = state(user)
    url = f"/api/my-account/mfa/security-keys/{key.pk}"
    assert_error(verified_api.delete(url), 409, "mfa.last_factor")
    assert_error(verified_api.delete(url + "?confirm_last=false"), 409, "mfa.last_factor")
    assert state(user) == before
    assert verified_api.delete(url + "?confirm_last=true").status_code == 200
    assert not WebAuthnCredential.objects.filter(user=user).exists()
    assert not BackupCodeDevice.objects.filter(user=user).exists()


# --- Backup codes ---------------------------------------------------------------------------


def test_backup_codes_need_a_verification(api: ApiClient, user: User) -> None:
    with_app(user)
    assert_error(api.post("/api/my-account/mfa/backup-codes"), 401, "verification.required")
    assert not BackupCodeDevice.objects.exists()


def test_backup_codes_regenerate(verified_api: ApiClient, user: User) -> None:
    with_app(user)
    old = mfa_services.backup_codes_generate(user=user)
    response = verified_api.post("/api/my-account/mfa/backup-codes")
    assert response.status_code == 200, response.content
    codes = response.json()["codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    device = BackupCodeDevice.objects.get(user=user)
    assert device.verify_token(codes[0])
    device.throttle_reset()
    assert not device.verify_token(old[0])
    assert actions(user)[-1] == Action.BACKUP_CODES_GENERATED
    assert subjects_to(user.email) == ["[Account portal] New backup codes were generated"]
    assert verified_api.get("/api/my-account/mfa").json()["backup_codes"]["remaining"] == 9


def test_backup_codes_without_a_real_factor_are_refused(
    verified_api: ApiClient, user: User
) -> None:
    assert_error(verified_api.post("/api/my-account/mfa/backup-codes"), 409, "mfa.no_factor")
    assert not BackupCodeDevice.objects.exists()
    assert not mail.outbox


# --- Every endpoint: the policy, as on the settings pages ----------------------------------


@dataclass
class Things:
    """Alice with an app, a pending app, two keys and backup codes."""

    user: User
    app: TOTPDevice
    pending: TOTPDevice
    key: WebAuthnCredential
    other_key: WebAuthnCredential
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def things(user: User) -> Things:
    app = with_app(user)
    pending = TOTPDevice.objects.create(user=user, name="New phone", confirmed=False)
    key = make_key(user, "Blue key")
    other = make_key(user, "Red key")
    mfa_services.backup_codes_generate(user=user)
    mail.outbox.clear()
    return Things(user=user, app=app, pending=pending, key=key, other_key=other)


@dataclass(frozen=True)
class Endpoint:
    name: str
    fields: tuple[str, ...]  # the policy fields whose ``off`` removes it
    read: bool
    sensitive: bool  # needs a verification
    api: Callable[[ApiClient, Things], Any]
    # The settings page for the same thing (None: it has no page of its own).
    web: Callable[[Client, Things], Any] | None


def _code(t: Things) -> str:
    return totp_code(t.pending)


ENDPOINTS = [
    Endpoint(
        "overview",
        ("mfa", "passkeys"),
        True,
        False,
        lambda c, t: c.get("/api/my-account/mfa"),
        lambda c, t: c.get(reverse("two_factor")),
    ),
    Endpoint(
        "totp_start",
        ("mfa",),
        False,
        True,
        lambda c, t: c.post("/api/my-account/mfa/totp"),
        lambda c, t: c.post(reverse("totp_start")),
    ),
    Endpoint(
        "totp_confirm",
        ("mfa",),
        False,
        True,
        lambda c, t: c.post("/api/my-account/mfa/totp/confirm", {"code": _code(t)}),
        lambda c, t: c.post(reverse("totp_confirm"), {"code": _code(t)}),
    ),
    Endpoint(
        "totp_remove",
        ("mfa",),
        False,
        True,
        lambda c, t: c.delete("/api/my-account/mfa/totp"),
        lambda c, t: c.post(reverse("totp_remove")),
    ),
    Endpoint(
        "security_keys",
        ("passkeys",),
        True,
        False,
        lambda c, t: c.get("/api/my-account/mfa/security-keys"),
        # The overview lists them (see test_security_keys_off_hides_them_on_the_page_too).
        None,
    ),
    Endpoint(
        "security_key_rename",
        ("passkeys",),
        False,
        False,
        lambda c, t: c.patch(f"/api/my-account/mfa/security-keys/{t.key.pk}", {"name": "New"}),
        lambda c, t: c.post(reverse("passkey_rename", args=[t.key.pk]), {"name": "New"}),
    ),
    Endpoint(
        "security_key_remove",
        ("passkeys",),
        False,
        True,
        lambda c, t: c.delete(f"/api/my-account/mfa/security-keys/{t.key.pk}"),
        lambda c, t: c.post(reverse("passkey_remove", args=[t.key.pk])),
    ),
    Endpoint(
        "backup_codes",
        ("mfa",),
        False,
        True,
        lambda c, t: c.post("/api/my-account/mfa/backup-codes"),
        lambda c, t: c.post(reverse("backup_codes_regenerate")),
    ),
]
IDS = [e.name for e in ENDPOINTS]

# mode -> (status, code) for a write; reads answer 200 unless the field is off or the
# settings are (the master switch).
REFUSALS = {
    "off": (404, "policy.field_not_enabled"),
    "read_only": (403, "policy.field_not_editable"),
    "master_off": (403, "policy.not_enabled"),
}


def _set_mode(policy_modes: Any, endpoint: Endpoint, mode: str) -> None:
    if mode == "master_off":
        policy_modes(enabled=False)
    elif mode == "off":
        policy_modes(**dict.fromkeys(endpoint.fields, "off"))
    elif mode == "read_only":
        policy_modes(**dict.fromkeys(endpoint.fields, "read_only"))


def _expected(endpoint: Endpoint, mode: str) -> tuple[int, str | None]:
    if mode == "edit" or (endpoint.read and mode == "read_only"):
        return 200, None
    return REFUSALS[mode]


@pytest.mark.parametrize("mode", ["edit", "off", "read_only", "master_off"])
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_policy_modes_give_the_web_pages_answers(
    user: User, things: Things, policy_modes: Any, endpoint: Endpoint, mode: str
) -> None:
    api = ApiClient(make_token(user))
    verify(api)
    web = web_client(user)
    _set_mode(policy_modes, endpoint, mode)
    before = state(user)
    status, code = _expected(endpoint, mode)
    response = endpoint.api(api, things)
    if code is None:
        assert response.status_code == status, response.content
    else:
        assert_error(response, status, code)
        assert state(user) == before
    if endpoint.web is not None and endpoint.read and mode == "master_off":
        # The page shows its one notice instead of the data, where the API refuses.
        page = endpoint.web(web, things)
        assert page.status_code == 200
        assert "turned off" in page.content.decode()
    elif endpoint.web is not None and (endpoint.read or mode != "edit"):
        # The page for the same field gives the same status (a write that succeeds
        # there redirects; the API's already changed what the page would).
        page = endpoint.web(web, things)
        assert page.status_code == status, page.content[:300]


def test_security_keys_off_hides_them_on_the_page_too(
    auth_client: Client, user: User, policy_modes: Any
) -> None:
    make_key(user, "Blue key")
    policy_modes(passkeys="off")
    assert "Blue key" not in auth_client.get(reverse("two_factor")).content.decode()


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.sensitive], ids=lambda e: e.name)
def test_sensitive_endpoints_need_this_users_verification(
    user: User, bob: User, things: Things, endpoint: Endpoint
) -> None:
    api = ApiClient(make_token(user))
    before = state(user)
    assert_error(endpoint.api(api, things), 401, "verification.required")
    api.verification = verify(ApiClient(make_token(bob)))
    assert_error(endpoint.api(api, things), 401, "verification.invalid")
    assert state(user) == before


def test_a_verification_past_the_timeout_is_refused(
    user: User, things: Things, settings: Any
) -> None:
    from accounts.models import ApiVerification

    api = ApiClient(make_token(user))
    verify(api)
    ApiVerification.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(api.post("/api/my-account/mfa/backup-codes"), 401, "verification.expired")


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if not e.read], ids=lambda e: e.name)
def test_writes_need_the_write_scope(user: User, things: Things, endpoint: Endpoint) -> None:
    reader = ApiClient(make_token(user, ["account:read"]))
    verify_as_writer = ApiClient(make_token(user))
    reader.verification = verify(verify_as_writer)
    before = state(user)
    assert_error(endpoint.api(reader, things), 403, "token.insufficient_scope")
    assert state(user) == before


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.read], ids=lambda e: e.name)
def test_reads_need_the_read_scope(user: User, things: Things, endpoint: Endpoint) -> None:
    assert endpoint.api(ApiClient(make_token(user, ["account:read"])), things).status_code == 200
    writer = ApiClient(make_token(user, ["account:write"]))
    assert_error(endpoint.api(writer, things), 403, "token.insufficient_scope")


def impersonated_by_staff(user: User, user_factory: Callable[..., User]) -> Client:
    """A staff member's browser viewing ``user``'s account (django-hijack)."""
    from django.contrib.auth.models import Group

    from tests.conftest import staff_signed_in

    agent = user_factory(username="agent", is_staff=True)
    agent.groups.add(Group.objects.get(name="Security admins"))
    client = staff_signed_in(agent)
    started = client.post(
        reverse("admin:accounts_user_impersonate", args=[user.pk]),
        {"user_pk": user.pk, "reason": "Ticket 1: the user asked for help"},
    )
    assert started.status_code == 302, started.content[:300]
    assert client.session["hijack_history"] == [str(agent.pk)]
    return client


def test_impersonating_staff_cannot_change_second_factors(
    user: User, user_factory: Callable[..., User], things: Things
) -> None:
    """Through the API, with the session of a staff member viewing the account."""
    client = impersonated_by_staff(user, user_factory)
    before = state(user)
    for endpoint in ENDPOINTS:
        if endpoint.read:
            continue
        response = endpoint.api(_SessionApi(client), things)
        assert_error(response, 403, "impersonation.refused")
    assert state(user) == before


class _SessionApi:
    """The test client of a signed-in browser, sending JSON like ``ApiClient``."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def get(self, path: str) -> Any:
        return self.client.get(path)

    def post(self, path: str, data: Any = None) -> Any:
        return self.client.post(path, data or {}, content_type="application/json")

    def patch(self, path: str, data: Any = None) -> Any:
        return self.client.patch(path, data or {}, content_type="application/json")

    def delete(self, path: str) -> Any:
        return self.client.delete(path)


# --- Query budgets: the count does not grow with the number of keys ------------------------


def _many(user: User, keys: int) -> Things:
    app = with_app(user)
    pending = TOTPDevice.objects.create(user=user, name="New phone", confirmed=False)
    made = [make_key(user, f"Key {n}") for n in range(keys)]
    mfa_services.backup_codes_generate(user=user)
    return Things(user=user, app=app, pending=pending, key=made[0], other_key=made[1])


# The real count plus two; the same with 2 or 12 keys.
BUDGETS = {
    "overview": 8,
    "totp_start": 8,
    "totp_confirm": 19,
    "totp_remove": 18,
    "security_keys": 5,
    "security_key_rename": 13,
    "security_key_remove": 20,
    "backup_codes": 21,
}


@pytest.mark.parametrize("keys", [2, 12])
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_query_budget(
    user: User, endpoint: Endpoint, keys: int, django_assert_max_num_queries: Any
) -> None:
    t = _many(user, keys)
    api = ApiClient(make_token(user))
    verify(api)
    api.get("/api/my-account")  # warm the policy cache and the token's last use
    with django_assert_max_num_queries(BUDGETS[endpoint.name]):
        response = endpoint.api(api, t)
    assert response.status_code == 200, response.content
