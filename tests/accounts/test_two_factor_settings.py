"""The two-step verification settings: authenticator app, security keys and passkeys,
backup codes; their policy modes, re-authentication and CSRF."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.core import mail
from django.db import transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.actor import Actor
from accounts.flows import mfa as mfa_flows
from accounts.flows.errors import AccessDenied, ImpersonationRefused, ReauthenticationRequired
from accounts.models import AuditEvent, BackupCode, BackupCodeDevice, User
from accounts.policy import PolicyDenied
from accounts.services import mfa as mfa_services
from tests.conftest import reauthenticate, verify_second_factor

pytestmark = pytest.mark.django_db

REGISTER_COMPLETE = "django_otp_webauthn.helpers.WebAuthnHelper.register_complete"
REGISTER_STATE = "otp_webauthn_register_state"
CODE_IN_PAGE = re.compile(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>")


# --- Helpers ----------------------------------------------------------------------------


def totp_code(device: TOTPDevice) -> str:
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return str(totp.token()).zfill(device.digits)


def wrong_code(device: TOTPDevice) -> str:
    return "000000" if totp_code(device) != "000000" else "111111"


def wait_out_throttle(device: Any) -> None:
    type(device).objects.filter(pk=device.pk, throttling_failure_timestamp__isnull=False).update(
        throttling_failure_timestamp=timezone.now() - timedelta(hours=1)
    )


def make_credential(user: User, name: str = "Blue key") -> WebAuthnCredential:
    n = WebAuthnCredential.objects.count() + 1
    return WebAuthnCredential.objects.create(
        user=user,
        name=name,
        confirmed=True,
        credential_id=f"credential-{user.pk}-{n}-{time.monotonic_ns()}".encode(),
        public_key=b"public-key",
        sign_count=0,
        aaguid="00000000-0000-0000-0000-000000000000",
    )


def registering(user: User, name: str = "") -> Callable[..., WebAuthnCredential]:
    """What django-otp-webauthn's register_complete does once the browser answered:
    saves the new credential (made only when called, as the real one does)."""

    def complete(*args: Any, **kwargs: Any) -> WebAuthnCredential:
        return make_credential(user, name=name)

    return complete


def set_session(client: Client, **values: Any) -> None:
    session = client.session
    for key, value in values.items():
        session[key] = value
    session.save()


def text(response: Any) -> str:
    return unescape(response.content.decode())


def subjects_to(address: str) -> list[str]:
    return [m.subject for m in mail.outbox if address in m.to]


def audit_actions(user: User) -> list[str]:
    return list(
        AuditEvent.objects.filter(subject=user).order_by("pk").values_list("action", flat=True)
    )


def state(user: User) -> dict[str, Any]:
    """Everything the two-factor URLs can change, to show a refusal changed nothing."""
    return {
        "totp": sorted(TOTPDevice.objects.filter(user=user).values_list("pk", "confirmed")),
        "passkeys": sorted(
            WebAuthnCredential.objects.filter(user=user).values_list("pk", "name", "confirmed")
        ),
        "backup": sorted(
            BackupCode.objects.filter(device__user=user).values_list("pk", "code_hash", "used_at")
        ),
        "audit": audit_actions(user),
        "mail": len(mail.outbox),
    }


def json_post(client: Client, name: str, **kwargs: Any) -> Any:
    return client.post(reverse(name, **kwargs), data="{}", content_type="application/json")


@pytest.fixture
def fresh(auth_client: Client) -> Client:
    """Signed in and just re-authenticated with the password."""
    reauthenticate(auth_client)
    return auth_client


@pytest.fixture
def with_totp(user: User) -> TOTPDevice:
    device = TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    return device


@pytest.fixture
def with_codes(user: User, with_totp: TOTPDevice) -> list[str]:
    return mfa_services.backup_codes_generate(user=user)


# --- Authenticator app --------------------------------------------------------------------


def test_starting_an_app_needs_a_recent_reauthentication(auth_client: Client, user: User) -> None:
    response = auth_client.post(reverse("totp_start"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert not TOTPDevice.objects.exists()
    assert auth_client.get(reverse("totp_confirm"))["Location"].startswith(
        reverse("account_reauthenticate")
    )


def test_setting_up_an_app(fresh: Client, user: User) -> None:
    response = fresh.post(reverse("totp_start"))
    assert response.status_code == 302
    assert response["Location"] == reverse("totp_confirm")
    device = TOTPDevice.objects.get(user=user)
    assert not device.confirmed
    assert not BackupCodeDevice.objects.exists()

    page = fresh.get(reverse("totp_confirm"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "<svg" in body
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    groups = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    assert all(len(g) == 4 for g in groups.split(" ")[:-1])
    assert groups in body

    wrong = fresh.post(reverse("totp_confirm"), {"code": wrong_code(device)})
    assert wrong.status_code == 400
    assert "That code is not right" in text(wrong)
    device.refresh_from_db()
    assert not device.confirmed
    assert not AuditEvent.objects.filter(action="mfa.totp_added").exists()
    assert not mail.outbox

    wait_out_throttle(device)
    done = fresh.post(reverse("totp_confirm"), {"code": totp_code(device)})
    assert done.status_code == 302
    assert done["Location"] == reverse("backup_codes_new")
    device.refresh_from_db()
    assert device.confirmed
    assert fresh.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert BackupCode.objects.filter(device__user=user, used_at__isnull=True).count() == 10
    actions = audit_actions(user)
    assert "mfa.totp_added" in actions
    assert "mfa.backup_codes_generated" in actions
    subjects = subjects_to(user.email)
    assert any("A second factor was added" in s for s in subjects)
    assert any("New backup codes were generated" in s for s in subjects)

    # The codes, shown once and downloadable, are the ones that work.
    shown = fresh.get(reverse("backup_codes_new"))
    assert shown.status_code == 200
    codes = CODE_IN_PAGE.findall(shown.content.decode())
    assert len(codes) == 10
    assert len(set(codes)) == 10
    download = fresh.get(reverse("backup_codes_download"))
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/plain")
    assert "attachment" in download["Content-Disposition"]
    assert "no-store" in download["Cache-Control"]
    assert all(code in download.content.decode() for code in codes)
    assert BackupCodeDevice.objects.get(user=user).verify_token(codes[0])

    saved = fresh.post(reverse("backup_codes_new"))
    assert saved.status_code == 302
    assert saved["Location"] == reverse("two_factor")
    again = fresh.get(reverse("backup_codes_new"))
    assert again.status_code == 302
    assert again["Location"] == reverse("two_factor")
    assert fresh.get(reverse("backup_codes_download")).status_code == 404


def test_a_throttled_setup_says_so(fresh: Client, user: User) -> None:
    fresh.post(reverse("totp_start"))
    device = TOTPDevice.objects.get(user=user)
    for _ in range(3):
        fresh.post(reverse("totp_confirm"), {"code": wrong_code(device)})
    refused = fresh.post(reverse("totp_confirm"), {"code": totp_code(device)})
    assert refused.status_code == 400
    device.refresh_from_db()
    assert not device.confirmed
    assert "Too many wrong codes" in text(refused)


def test_new_codes_are_viewable_only_for_a_while(fresh: Client, user: User) -> None:
    fresh.post(reverse("totp_start"))
    device = TOTPDevice.objects.get(user=user)
    fresh.post(reverse("totp_confirm"), {"code": totp_code(device)})
    stash = fresh.session["portal_new_backup_codes"]
    stash["at"] -= 11 * 60
    set_session(fresh, portal_new_backup_codes=stash)
    assert fresh.get(reverse("backup_codes_new")).status_code == 302
    assert fresh.get(reverse("backup_codes_download")).status_code == 404


def test_replacing_the_app_keeps_the_old_one_until_the_new_one_is_confirmed(
    fresh: Client, user: User, with_totp: TOTPDevice, with_codes: list[str]
) -> None:
    old_codes = sorted(BackupCode.objects.values_list("pk", "code_hash"))
    fresh.post(reverse("totp_start"))
    new = TOTPDevice.objects.get(user=user, confirmed=False)
    assert TOTPDevice.objects.filter(pk=with_totp.pk, confirmed=True).exists()
    page = fresh.get(reverse("totp_confirm"))
    assert "keeps working until this one is confirmed" in text(page)

    # Starting again replaces the pending one, never the confirmed one.
    fresh.post(reverse("totp_start"))
    assert TOTPDevice.objects.filter(user=user, confirmed=False).count() == 1
    assert TOTPDevice.objects.filter(pk=with_totp.pk, confirmed=True).exists()
    new = TOTPDevice.objects.get(user=user, confirmed=False)

    done = fresh.post(reverse("totp_confirm"), {"code": totp_code(new)})
    assert done.status_code == 302
    assert done["Location"] == reverse("two_factor")
    assert list(TOTPDevice.objects.filter(user=user).values_list("pk", "confirmed")) == [
        (new.pk, True)
    ]
    assert AuditEvent.objects.filter(action="mfa.totp_replaced", subject=user).count() == 1
    assert not AuditEvent.objects.filter(action="mfa.totp_added").exists()
    # Backup codes were not regenerated.
    assert sorted(BackupCode.objects.values_list("pk", "code_hash")) == old_codes
    assert AuditEvent.objects.filter(action="mfa.backup_codes_generated").count() == 1
    assert "portal_new_backup_codes" not in fresh.session


# --- Backup codes -------------------------------------------------------------------------


def test_regenerating_backup_codes_invalidates_the_old_set(
    fresh: Client, user: User, with_codes: list[str]
) -> None:
    response = fresh.post(reverse("backup_codes_regenerate"))
    assert response.status_code == 302
    assert response["Location"] == reverse("backup_codes_new")
    new_codes = CODE_IN_PAGE.findall(fresh.get(reverse("backup_codes_new")).content.decode())
    assert len(new_codes) == 10
    assert not set(new_codes) & set(with_codes)
    device = BackupCodeDevice.objects.get(user=user)
    assert device.codes.count() == 10
    assert not device.verify_token(with_codes[0])
    wait_out_throttle(device)
    device.refresh_from_db()
    assert device.verify_token(new_codes[0])
    assert AuditEvent.objects.filter(action="mfa.backup_codes_generated").count() == 2
    assert any("New backup codes were generated" in s for s in subjects_to(user.email))


def test_remaining_codes_are_counted_with_a_warning_when_few_are_left(
    auth_client: Client, user: User, with_codes: list[str]
) -> None:
    page = text(auth_client.get(reverse("two_factor")))
    assert "10 unused codes left." in page
    assert "running out of backup codes" not in page

    device = BackupCodeDevice.objects.get(user=user)
    for code in with_codes[:7]:
        assert device.verify_token(code)
    page = text(auth_client.get(reverse("two_factor")))
    assert "3 unused codes left." in page
    assert "running out of backup codes" not in page

    assert device.verify_token(with_codes[7])
    page = text(auth_client.get(reverse("two_factor")))
    assert "2 unused codes left." in page
    assert "running out of backup codes" in page


def test_backup_codes_are_never_the_only_factor(fresh: Client, user: User) -> None:
    with pytest.raises(ValueError, match="never the only second factor"):
        mfa_services.backup_codes_generate(user=user)
    assert not BackupCodeDevice.objects.exists()
    response = fresh.post(reverse("backup_codes_regenerate"))
    assert response.status_code == 302
    assert response["Location"] == reverse("two_factor")
    assert not BackupCodeDevice.objects.exists()
    assert not AuditEvent.objects.filter(action="mfa.backup_codes_generated").exists()


def test_removing_the_last_factor_asks_first_then_removes_the_codes_too(
    fresh: Client, user: User, with_codes: list[str]
) -> None:
    before = state(user)
    ask = fresh.post(reverse("totp_remove"))
    assert ask.status_code == 200
    assert "Turn off two-step verification?" in text(ask)
    assert state(user) == before

    done = fresh.post(reverse("totp_remove"), {"confirm": "yes"})
    assert done.status_code == 302
    assert done["Location"] == reverse("two_factor")
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not BackupCodeDevice.objects.filter(user=user).exists()
    assert not BackupCode.objects.exists()
    actions = audit_actions(user)
    assert "mfa.totp_removed" in actions
    assert "mfa.backup_codes_removed" in actions
    assert any("A second factor was removed" in s for s in subjects_to(user.email))


def test_removing_the_app_beside_a_key_keeps_the_codes(
    fresh: Client, user: User, with_codes: list[str]
) -> None:
    make_credential(user)
    done = fresh.post(reverse("totp_remove"))
    assert done.status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert BackupCode.objects.filter(device__user=user).count() == 10
    assert not AuditEvent.objects.filter(action="mfa.backup_codes_removed").exists()


# --- Security keys and passkeys -----------------------------------------------------------


def test_renaming_your_own_key(auth_client: Client, user: User) -> None:
    credential = make_credential(user, name="Blue key")
    page = auth_client.get(reverse("passkey_rename", args=[credential.pk]))
    assert page.status_code == 200
    assert "Blue key" in text(page)
    empty = auth_client.post(reverse("passkey_rename", args=[credential.pk]), {"name": "  "})
    assert empty.status_code == 400
    done = auth_client.post(reverse("passkey_rename", args=[credential.pk]), {"name": "Laptop"})
    assert done.status_code == 302
    assert done["Location"] == reverse("two_factor")
    credential.refresh_from_db()
    assert credential.name == "Laptop"
    event = AuditEvent.objects.get(action="mfa.passkey_renamed")
    assert event.subject == user
    assert event.data == {"before": "Blue key", "after": "Laptop"}


def test_someone_elses_key_is_a_404(fresh: Client, user: User, user_factory: Any) -> None:
    mallory = user_factory(username="mallory")
    make_credential(mallory, name="Other key")
    theirs = make_credential(mallory, name="Mallory's key")
    before = state(mallory)
    url = reverse("passkey_rename", args=[theirs.pk])
    assert fresh.get(url).status_code == 404
    assert fresh.post(url, {"name": "Pwned"}).status_code == 404
    assert fresh.post(reverse("passkey_remove", args=[theirs.pk])).status_code == 404
    assert (
        fresh.post(reverse("passkey_remove", args=[theirs.pk]), {"confirm": "yes"}).status_code
        == 404
    )
    assert fresh.get(reverse("passkey_rename", args=[999999])).status_code == 404
    assert state(mallory) == before
    theirs.refresh_from_db()
    assert theirs.name == "Mallory's key"


def test_removing_the_last_key_asks_first(fresh: Client, user: User) -> None:
    credential = make_credential(user)
    mfa_services.backup_codes_generate(user=user)
    before = state(user)
    ask = fresh.post(reverse("passkey_remove", args=[credential.pk]))
    assert ask.status_code == 200
    assert "Turn off two-step verification?" in text(ask)
    assert state(user) == before

    done = fresh.post(reverse("passkey_remove", args=[credential.pk]), {"confirm": "yes"})
    assert done.status_code == 302
    assert not WebAuthnCredential.objects.filter(user=user).exists()
    assert not BackupCodeDevice.objects.filter(user=user).exists()
    actions = audit_actions(user)
    assert "mfa.passkey_removed" in actions
    assert "mfa.backup_codes_removed" in actions
    assert any("A second factor was removed" in s for s in subjects_to(user.email))


def test_removing_one_of_two_keys_does_not_ask(fresh: Client, user: User) -> None:
    first = make_credential(user, name="One")
    make_credential(user, name="Two")
    done = fresh.post(reverse("passkey_remove", args=[first.pk]))
    assert done.status_code == 302
    assert list(WebAuthnCredential.objects.values_list("name", flat=True)) == ["Two"]


def test_registering_the_first_key(fresh: Client, user: User) -> None:
    begin = json_post(fresh, "passkey_register_begin")
    assert begin.status_code == 200, begin.content
    assert "challenge" in begin.json()
    assert REGISTER_STATE in fresh.session
    with mock.patch(REGISTER_COMPLETE, side_effect=registering(user)):
        done = json_post(fresh, "passkey_register_complete")
    assert done.status_code == 200, done.content
    credential = WebAuthnCredential.objects.get(user=user)
    assert credential.name == "Security key"
    assert done.json()["id"] == credential.pk
    assert done.json()["next"] == reverse("passkey_rename", args=[credential.pk]) + "?new=1"
    event = AuditEvent.objects.get(action="mfa.passkey_added")
    assert event.subject == user
    assert event.data == {"name": "Security key"}
    # The first real factor brings the backup codes, waiting to be shown.
    assert BackupCode.objects.filter(device__user=user).count() == 10
    assert AuditEvent.objects.filter(action="mfa.backup_codes_generated").count() == 1
    subjects = subjects_to(user.email)
    assert any("A second factor was added" in s for s in subjects)
    assert any("New backup codes were generated" in s for s in subjects)
    assert fresh.session[DEVICE_ID_SESSION_KEY] == credential.persistent_id

    # Naming it, then the codes.
    named = fresh.post(done.json()["next"], {"name": "Yellow key"})
    assert named.status_code == 302
    assert named["Location"] == reverse("backup_codes_new")
    credential.refresh_from_db()
    assert credential.name == "Yellow key"
    assert len(CODE_IN_PAGE.findall(fresh.get(reverse("backup_codes_new")).content.decode())) == 10


def test_registering_another_key_keeps_the_codes(
    fresh: Client, user: User, with_codes: list[str]
) -> None:
    verify_second_factor(fresh, user)  # signed in with the app, as the second step does
    set_session(fresh, **{REGISTER_STATE: {"challenge": "x"}})
    with mock.patch(REGISTER_COMPLETE, side_effect=registering(user, name="Laptop")):
        done = json_post(fresh, "passkey_register_complete")
    assert done.status_code == 200, done.content
    assert WebAuthnCredential.objects.get(user=user).name == "Laptop"
    assert AuditEvent.objects.filter(action="mfa.backup_codes_generated").count() == 1
    assert "portal_new_backup_codes" not in fresh.session


def test_registration_needs_a_recent_reauthentication(auth_client: Client, user: User) -> None:
    begin = json_post(auth_client, "passkey_register_begin")
    assert begin.status_code == 403
    assert begin.json()["code"] == "reauthentication_required"
    assert REGISTER_STATE not in auth_client.session
    set_session(auth_client, **{REGISTER_STATE: {"challenge": "x"}})
    with mock.patch(REGISTER_COMPLETE, side_effect=registering(user)) as complete:
        done = json_post(auth_client, "passkey_register_complete")
    assert done.status_code == 403
    assert done.json()["code"] == "reauthentication_required"
    assert not complete.called
    assert not WebAuthnCredential.objects.exists()
    assert not AuditEvent.objects.filter(action="mfa.passkey_added").exists()


REGISTER_REFUSALS = [
    pytest.param({}, "reauthentication_required", False, id="not-reauthenticated"),
    pytest.param({"passkeys": "off"}, "policy", True, id="passkeys-off"),
    pytest.param({"passkeys": "read_only"}, "policy", True, id="passkeys-read-only"),
    pytest.param({"enabled": False}, "policy", True, id="settings-off"),
]


@pytest.mark.parametrize(("values", "code", "reauth"), REGISTER_REFUSALS)
@pytest.mark.parametrize("endpoint", ["passkey_register_begin", "passkey_register_complete"])
def test_registration_refused_changes_nothing(
    auth_client: Client,
    user: User,
    policy: Any,
    values: dict[str, Any],
    code: str,
    reauth: bool,
    endpoint: str,
) -> None:
    if reauth:
        reauthenticate(auth_client)
    if values:
        policy(**values)
    set_session(auth_client, **{REGISTER_STATE: {"challenge": "x"}})
    with mock.patch(REGISTER_COMPLETE, side_effect=registering(user)) as complete:
        response = json_post(auth_client, endpoint)
    assert response.status_code == 403
    assert response.json()["code"] == code
    assert not complete.called
    assert not WebAuthnCredential.objects.exists()
    assert not BackupCodeDevice.objects.exists()


@pytest.mark.parametrize(("values", "code", "reauth"), REGISTER_REFUSALS)
@pytest.mark.parametrize("endpoint", ["passkey_register_begin", "passkey_register_complete"])
def test_registration_refusal_is_a_client_error(
    auth_client: Client,
    user: User,
    policy: Any,
    values: dict[str, Any],
    code: str,
    reauth: bool,
    endpoint: str,
) -> None:
    if reauth:
        reauthenticate(auth_client)
    if values:
        policy(**values)
    set_session(auth_client, **{REGISTER_STATE: {"challenge": "x"}})
    response = json_post(auth_client, endpoint)
    assert response.status_code == 403


# --- Policy modes -------------------------------------------------------------------------

MFA_WRITES = [
    pytest.param("totp_start", {}, id="totp_start"),
    pytest.param("totp_confirm", {"code": "CODE"}, id="totp_confirm"),
    pytest.param("totp_remove", {"confirm": "yes"}, id="totp_remove"),
    pytest.param("backup_codes_regenerate", {}, id="backup_codes_regenerate"),
]
PASSKEY_WRITES = [
    pytest.param("passkey_rename", {"name": "Renamed"}, id="passkey_rename"),
    pytest.param("passkey_remove", {"confirm": "yes"}, id="passkey_remove"),
]


@pytest.fixture
def everything(fresh: Client, user: User) -> dict[str, Any]:
    """A user with every kind of factor, a pending app, and a fresh re-authentication."""
    confirmed = TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    pending = TOTPDevice.objects.create(user=user, name="New phone", confirmed=False)
    credential = make_credential(user, name="Blue key")
    mfa_services.backup_codes_generate(user=user)
    mail.outbox.clear()
    return {"confirmed": confirmed, "pending": pending, "credential": credential}


def _post(client: Client, name: str, data: dict[str, Any], things: dict[str, Any]) -> Any:
    args = [things["credential"].pk] if name.startswith("passkey_") else []
    if data.get("code") == "CODE":
        data = {"code": totp_code(things["pending"])}
    return client.post(reverse(name, args=args), data)


@pytest.mark.parametrize(("mode", "status"), [("off", 404), ("read_only", 403)])
@pytest.mark.parametrize(("name", "data"), MFA_WRITES)
def test_mfa_writes_follow_the_policy(
    fresh: Client,
    user: User,
    policy: Any,
    everything: dict[str, Any],
    mode: str,
    status: int,
    name: str,
    data: dict[str, Any],
) -> None:
    policy(mfa=mode)
    before = state(user)
    response = _post(fresh, name, data, everything)
    assert response.status_code == status
    if status == 403:
        assert "can't be changed here" in text(response)
    assert state(user) == before


@pytest.mark.parametrize(("mode", "status"), [("off", 404), ("read_only", 403)])
@pytest.mark.parametrize(("name", "data"), PASSKEY_WRITES)
def test_passkey_writes_follow_the_policy(
    fresh: Client,
    user: User,
    policy: Any,
    everything: dict[str, Any],
    mode: str,
    status: int,
    name: str,
    data: dict[str, Any],
) -> None:
    policy(passkeys=mode)
    before = state(user)
    response = _post(fresh, name, data, everything)
    assert response.status_code == status
    assert state(user) == before


@pytest.mark.parametrize(("name", "data"), MFA_WRITES + PASSKEY_WRITES)
def test_the_master_switch_refuses_every_write(
    fresh: Client,
    user: User,
    policy: Any,
    everything: dict[str, Any],
    name: str,
    data: dict[str, Any],
) -> None:
    policy(enabled=False)
    before = state(user)
    response = _post(fresh, name, data, everything)
    assert response.status_code == 403
    assert "turned off" in text(response)
    assert state(user) == before


@pytest.mark.parametrize(("name", "data"), MFA_WRITES + PASSKEY_WRITES)
def test_the_same_writes_work_in_edit_mode(
    fresh: Client, user: User, everything: dict[str, Any], name: str, data: dict[str, Any]
) -> None:
    """The control for the refusals above: each request, as sent, changes something."""
    before = state(user)
    response = _post(fresh, name, data, everything)
    assert response.status_code == 302
    assert state(user) != before


def test_the_overview_follows_the_policy(auth_client: Client, policy: Any) -> None:
    page = text(auth_client.get(reverse("two_factor")))
    assert "Authenticator app" in page
    assert "Security keys and passkeys" in page
    policy(mfa="off")
    page = text(auth_client.get(reverse("two_factor")))
    assert "Authenticator app" not in page
    assert "Security keys and passkeys" in page
    policy(mfa="read_only", passkeys="off")
    page = text(auth_client.get(reverse("two_factor")))
    assert "Set up an app" not in page
    assert "Security keys and passkeys" not in page
    policy(mfa="off", passkeys="off")
    assert auth_client.get(reverse("two_factor")).status_code == 404
    assert auth_client.get(reverse("backup_codes_new")).status_code == 404
    assert auth_client.get(reverse("backup_codes_download")).status_code == 404


# --- CSRF ---------------------------------------------------------------------------------

CSRF_POSTS = [
    "totp_start",
    "totp_confirm",
    "totp_remove",
    "passkey_register_begin",
    "passkey_register_complete",
    "passkey_rename",
    "passkey_remove",
    "backup_codes_regenerate",
    "backup_codes_new",
    "reauthenticate_two_factor",
    "reauthenticate_webauthn_complete",
]


@pytest.mark.parametrize("name", CSRF_POSTS)
def test_posts_need_the_csrf_token(user: User, name: str) -> None:
    TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    TOTPDevice.objects.create(user=user, name="New phone", confirmed=False)
    credential = make_credential(user)
    mfa_services.backup_codes_generate(user=user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    before = state(user)
    args = [credential.pk] if name in {"passkey_rename", "passkey_remove"} else []
    url = reverse(name, args=args)
    if name.startswith(("passkey_register", "reauthenticate_webauthn")):
        response = client.post(url, data="{}", content_type="application/json")
    else:
        response = client.post(url, {"code": "123456", "name": "x", "confirm": "yes"})
    assert response.status_code == 403
    assert "CSRF" in response.content.decode()
    assert state(user) == before


def test_with_the_csrf_token_the_same_post_goes_through(user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    client.get(reverse("two_factor"))
    token = client.cookies["csrftoken"].value
    response = client.post(reverse("totp_start"), {"csrfmiddlewaretoken": token})
    # Past the CSRF check, stopped only by re-authentication.
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))


# --- Query budget -------------------------------------------------------------------------


@pytest.mark.parametrize("keys", [1, 8])
def test_overview_query_budget(
    auth_client: Client, user: User, keys: int, django_assert_max_num_queries: Any
) -> None:
    TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    for n in range(keys):
        make_credential(user, name=f"Key {n}")
    mfa_services.backup_codes_generate(user=user)
    auth_client.get(reverse("two_factor"))  # warm the policy cache
    with django_assert_max_num_queries(8):
        response = auth_client.get(reverse("two_factor"))
    assert response.status_code == 200
    assert text(response).count("Key ") >= keys


def test_overview_queries_do_not_grow_with_keys(auth_client: Client, user: User) -> None:
    from django.db import connection

    TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    make_credential(user, name="Key 0")
    auth_client.get(reverse("two_factor"))
    with CaptureQueriesContext(connection) as one:
        auth_client.get(reverse("two_factor"))
    for n in range(1, 8):
        make_credential(user, name=f"Key {n}")
    with CaptureQueriesContext(connection) as eight:
        auth_client.get(reverse("two_factor"))
    assert len(eight.captured_queries) == len(one.captured_queries)


# --- The flows, called directly (every surface goes through them) -------------------------


def api_actor(user: User, **extra: Any) -> Actor:
    values: dict[str, Any] = {"surface": "api", "reauthenticated_at": time.time(), **extra}
    return Actor(user=user, **values)


def test_the_app_flows_audit_and_tell_the_user_after_commit(user: User) -> None:
    ctx = api_actor(user, ip="203.0.113.7")
    device = mfa_flows.totp_start(ctx=ctx)
    assert not device.confirmed
    with transaction.atomic():
        with pytest.raises(mfa_flows.WrongCode):
            mfa_flows.totp_confirm(ctx=ctx, code=wrong_code(device))
        wait_out_throttle(device)
        confirmed = mfa_flows.totp_confirm(ctx=ctx, code=totp_code(device))
        assert confirmed.device.pk == device.pk
        assert not confirmed.replaced
        assert confirmed.backup_codes
        assert len(confirmed.backup_codes) == 10
        assert not mail.outbox  # not before the change is committed
    subjects = subjects_to(user.email)
    assert any("A second factor was added" in s for s in subjects)
    assert any("New backup codes were generated" in s for s in subjects)
    added = AuditEvent.objects.get(action="mfa.totp_added")
    assert added.subject == user
    assert added.actor == user
    assert added.ip_address == "203.0.113.7"
    assert BackupCodeDevice.objects.get(user=user).verify_token(confirmed.backup_codes[0])

    mail.outbox.clear()
    with pytest.raises(mfa_flows.LastFactor):
        mfa_flows.totp_remove(ctx=ctx)
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    with transaction.atomic():
        assert mfa_flows.totp_remove(ctx=ctx, confirm_last=True)
        assert not mail.outbox
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not BackupCodeDevice.objects.filter(user=user).exists()
    actions = audit_actions(user)
    assert "mfa.totp_removed" in actions
    assert "mfa.backup_codes_removed" in actions
    assert any("A second factor was removed" in s for s in subjects_to(user.email))


def test_a_refused_confirmation_keeps_the_wrong_code_count(user: User) -> None:
    ctx = api_actor(user)
    device = mfa_flows.totp_start(ctx=ctx)
    for _ in range(3):
        with pytest.raises((mfa_flows.WrongCode, mfa_flows.CodeThrottled)):
            mfa_flows.totp_confirm(ctx=ctx, code=wrong_code(device))
    with pytest.raises(mfa_flows.CodeThrottled):
        mfa_flows.totp_confirm(ctx=ctx, code=totp_code(device))
    device.refresh_from_db()
    assert not device.confirmed
    assert device.throttling_failure_count >= 1
    assert not AuditEvent.objects.filter(subject=user).exists()
    assert not mail.outbox


FLOW_WRITES: list[Any] = [
    pytest.param(lambda ctx, t: mfa_flows.totp_start(ctx=ctx), "mfa", id="totp_start"),
    pytest.param(
        lambda ctx, t: mfa_flows.totp_confirm(ctx=ctx, code=totp_code(t["pending"])),
        "mfa",
        id="totp_confirm",
    ),
    pytest.param(
        lambda ctx, t: mfa_flows.totp_remove(ctx=ctx, confirm_last=True), "mfa", id="totp_remove"
    ),
    pytest.param(
        lambda ctx, t: mfa_flows.backup_codes_regenerate(ctx=ctx), "mfa", id="backup_codes"
    ),
    pytest.param(
        lambda ctx, t: mfa_flows.passkey_rename(ctx=ctx, pk=t["credential"].pk, name="New"),
        "passkeys",
        id="passkey_rename",
    ),
    pytest.param(
        lambda ctx, t: mfa_flows.passkey_remove(ctx=ctx, pk=t["credential"].pk, confirm_last=True),
        "passkeys",
        id="passkey_remove",
    ),
    pytest.param(
        lambda ctx, t: mfa_flows.passkey_registration_complete(ctx=ctx, pk=t["credential"].pk),
        "passkeys",
        id="passkey_registration_complete",
    ),
]


@pytest.mark.parametrize(("write", "field"), FLOW_WRITES)
def test_a_read_only_field_refuses_the_flow(
    user: User, policy: Any, everything: dict[str, Any], write: Any, field: str
) -> None:
    policy(**{field: "read_only"})
    before = state(user)
    with pytest.raises(PolicyDenied):
        write(api_actor(user), everything)
    assert state(user) == before


@pytest.mark.parametrize(("write", "field"), FLOW_WRITES)
def test_the_flows_refuse_an_impersonating_staff_member(
    user: User, staff_user: User, everything: dict[str, Any], write: Any, field: str
) -> None:
    before = state(user)
    with pytest.raises(ImpersonationRefused):
        write(Actor(user=user, impersonator_id=staff_user.pk, surface="web"), everything)
    assert state(user) == before


@pytest.mark.parametrize(("write", "field"), [p for p in FLOW_WRITES if p.id != "passkey_rename"])
def test_the_flows_need_a_recent_reauthentication(
    user: User, everything: dict[str, Any], write: Any, field: str
) -> None:
    before = state(user)
    stale = time.time() - settings.ACCOUNT_REAUTHENTICATION_TIMEOUT - 1
    for reauthenticated_at in (None, stale):
        with pytest.raises(ReauthenticationRequired):
            write(api_actor(user, reauthenticated_at=reauthenticated_at), everything)
    assert state(user) == before


@pytest.mark.parametrize(
    "write",
    [
        lambda ctx, pk: mfa_flows.passkey_rename(ctx=ctx, pk=pk, name="Pwned"),
        lambda ctx, pk: mfa_flows.passkey_remove(ctx=ctx, pk=pk, confirm_last=True),
        lambda ctx, pk: mfa_flows.passkey_registration_complete(ctx=ctx, pk=pk),
    ],
    ids=["rename", "remove", "registration_complete"],
)
def test_someone_elses_key_through_the_flow_is_access_denied(
    user: User, user_factory: Any, write: Any
) -> None:
    mallory = user_factory(username="mallory")
    theirs = make_credential(mallory, name="Mallory's key")
    make_credential(user, name="Mine")
    before = state(mallory)
    with pytest.raises(AccessDenied) as refused:
        write(api_actor(user), theirs.pk)
    assert refused.value.status == 404
    assert state(mallory) == before


def test_regenerating_without_a_real_factor_is_refused(user: User) -> None:
    with pytest.raises(mfa_flows.NoRealFactor):
        mfa_flows.backup_codes_regenerate(ctx=api_actor(user))
    assert not BackupCodeDevice.objects.exists()


def test_back_office_and_commands_skip_the_self_service_gate(
    user: User, policy: Any, with_codes: list[str]
) -> None:
    """Staff act under their own permissions, not the users' field policy."""
    policy(mfa="read_only")
    codes = mfa_flows.backup_codes_regenerate(ctx=Actor(user=user, surface="cli"))
    assert len(codes) == 10
    assert not set(codes) & set(with_codes)


def test_the_sign_in_flow_records_the_second_factor(user: User, with_codes: list[str]) -> None:
    ctx = Actor(user=None, surface="api", ip="198.51.100.4")
    with pytest.raises(mfa_flows.WrongCode):
        mfa_flows.sign_in_with_code(ctx=ctx, user=user, method="backup", code="zzzzz-zzzzz")
    assert not AuditEvent.objects.filter(action="mfa.sign_in").exists()
    wait_out_throttle(BackupCodeDevice.objects.get(user=user))
    with transaction.atomic():
        verified = mfa_flows.sign_in_with_code(
            ctx=ctx, user=user, method="backup", code=with_codes[0]
        )
        assert not mail.outbox
    assert verified.kind == "backup"
    used = AuditEvent.objects.get(action="mfa.backup_code_used")
    signed_in = AuditEvent.objects.get(action="mfa.sign_in")
    assert used.actor == user
    assert signed_in.actor == user
    assert signed_in.data == {"method": "backup"}
    assert signed_in.ip_address == "198.51.100.4"
    subjects = subjects_to(user.email)
    assert any("A backup code was used" in s for s in subjects)
    assert any("New sign-in to your account" in s for s in subjects)


def test_reauthenticating_with_a_second_factor_is_refused_while_impersonating(
    user: User, staff_user: User, with_totp: TOTPDevice
) -> None:
    with pytest.raises(ImpersonationRefused):
        mfa_flows.reauthenticate_with_code(
            ctx=Actor(user=user, impersonator_id=staff_user.pk),
            method="totp",
            code=totp_code(with_totp),
        )
    with_totp.refresh_from_db()
    assert with_totp.last_t == -1  # the code was not even checked
    assert not AuditEvent.objects.filter(action="reauthenticated").exists()


def test_someone_elses_key_does_not_sign_in_through_the_flow(user: User, user_factory: Any) -> None:
    theirs = make_credential(user_factory(username="mallory"))
    with pytest.raises(AccessDenied):
        mfa_flows.sign_in_with_key(ctx=Actor(user=None), user=user, device=theirs)
    with pytest.raises(AccessDenied):
        mfa_flows.reauthenticate_with_key(ctx=Actor(user=user), device=theirs)
    assert not AuditEvent.objects.exists()
