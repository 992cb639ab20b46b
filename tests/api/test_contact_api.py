"""POST /api/my-account/email (+ confirm, resend, pending), the phone number and
POST /api/my-account/password."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.usersessions.models import UserSession
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import AuditEvent, PersonalAccessToken, User, VerificationCode
from accounts.services.audit import Action
from accounts.sms.backends import locmem
from tests.api.conftest import ApiClient, assert_error, make_token, verify
from tests.conftest import PASSWORD, reauthenticate
from tests.helpers import code_from_last_email

pytestmark = pytest.mark.django_db

NUMBER = "+33612345678"
OTHER_NUMBER = "+33698765432"
NEW_PASSWORD = "a-fresh-and-long-passphrase-2026"


def sms_to(number: str) -> list[Any]:
    return [message for message in locmem.outbox if message.to == number]


def code_from_sms(number: str) -> str:
    messages = sms_to(number)
    assert messages, f"no SMS was sent to {number}"
    found = re.findall(r"\b\d{6}\b", messages[-1].body)
    assert len(found) == 1, messages[-1].body
    return found[0]


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def give_phone(user: User, number: str = OTHER_NUMBER) -> None:
    User.objects.filter(pk=user.pk).update(phone=number, phone_verified=True)


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def browser_sign_in(login: str = "alice", password: str = PASSWORD) -> Client:
    """A separate browser signing in through allauth's page (a tracked session)."""
    client = Client()
    response = client.post(reverse("account_login"), {"login": login, "password": password})
    assert response.status_code == 302, response.content[:500]
    return client


def json_post(client: Client, path: str, data: dict[str, Any] | None = None) -> Any:
    return client.post(path, data or {}, content_type="application/json")


def live_codes(user: User) -> Any:
    return VerificationCode.objects.filter(user=user, used_at__isnull=True)


# --- Email: start and confirm ---------------------------------------------------------


def test_email_change_start_then_confirm(verified_api: ApiClient, user: User) -> None:
    before = timezone.now()
    response = verified_api.post("/api/my-account/email", {"email": "  New.Address@Example.org "})
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"pending", "expires_at"}
    assert body["pending"] == "new.address@example.org"
    expires_at = parse_datetime(body["expires_at"])
    assert expires_at is not None
    assert before < expires_at <= timezone.now() + timedelta(minutes=30)
    assert abs(live_codes(user).get().expires_at - expires_at) < timedelta(milliseconds=1)
    code = code_from_last_email("new.address@example.org")
    user.refresh_from_db()
    assert user.email == "alice@example.org"  # not before the code
    assert AuditEvent.objects.get(action=Action.EMAIL_CHANGE_REQUESTED).data == {
        "new_email": "new.address@example.org"
    }

    # The code alone confirms it: no verification needed for this step.
    verified_api.verification = None
    done = verified_api.post("/api/my-account/email/confirm", {"code": code})
    assert done.status_code == 200, done.content
    assert done.json() == {"email": "new.address@example.org"}
    user.refresh_from_db()
    assert user.email == "new.address@example.org"
    assert list(
        EmailAddress.objects.filter(user=user).values_list("email", "verified", "primary")
    ) == [("new.address@example.org", True, True)]
    event = AuditEvent.objects.get(action=Action.EMAIL_CHANGED)
    assert event.data == {"before": "alice@example.org", "after": "new.address@example.org"}
    assert event.actor == user
    notice = [m for m in mail.outbox if m.to == ["alice@example.org"]][-1]
    assert "Your email address was changed" in notice.subject
    # The code is spent.
    assert_error(
        verified_api.post("/api/my-account/email/confirm", {"code": code}), 422, "code.missing"
    )


def test_email_start_needs_a_verification(api: ApiClient, user: User) -> None:
    assert_error(
        api.post("/api/my-account/email", {"email": "new@example.org"}),
        401,
        "verification.required",
    )
    assert not VerificationCode.objects.exists()
    assert not mail.outbox


def test_email_start_refuses_another_users_verification(
    api: ApiClient, user_factory: Callable[..., User]
) -> None:
    api.verification = verify(ApiClient(make_token(user_factory(username="bob"))))
    mail.outbox.clear()
    assert_error(
        api.post("/api/my-account/email", {"email": "new@example.org"}),
        401,
        "verification.invalid",
    )
    assert not VerificationCode.objects.exists()
    assert not mail.outbox


def test_a_session_with_a_recent_reauthentication_changes_the_email(
    auth_client: Client, user: User
) -> None:
    assert_error(
        json_post(auth_client, "/api/my-account/email", {"email": "new@example.org"}),
        401,
        "verification.required",
    )
    reauthenticate(auth_client)
    response = json_post(auth_client, "/api/my-account/email", {"email": "new@example.org"})
    assert response.status_code == 200, response.content
    code = code_from_last_email("new@example.org")
    done = json_post(auth_client, "/api/my-account/email/confirm", {"code": code})
    assert done.json() == {"email": "new@example.org"}


@pytest.mark.parametrize("taken", ["bob@example.org", "BOB@Example.org"])
def test_a_taken_address_looks_exactly_like_a_free_one(
    user: User, user_factory: Callable[..., User], taken: str, monkeypatch: Any
) -> None:
    bob = user_factory(username="bob")
    monkeypatch.setattr("accounts.services.codes._generate", lambda: "424242")

    def attempt(address: str) -> tuple[int, dict[str, Any]]:
        cache.clear()
        client = ApiClient(make_token(user))
        verify(client)
        response = client.post("/api/my-account/email", {"email": address})
        body = response.json()
        assert parse_datetime(body.pop("expires_at"))  # differs by the time of the call
        body["pending"] = body["pending"].replace(address.lower(), "ADDRESS")
        return response.status_code, body

    mail.outbox.clear()
    free = attempt("free.address@example.org")
    assert free == (200, {"pending": "ADDRESS"})
    mail.outbox.clear()
    assert attempt(taken) == free
    # No code went out; the address's owner was told instead.
    assert [m.to for m in mail.outbox] == [[bob.email]]
    assert "Someone tried to use your email address" in mail.outbox[0].subject
    # Even the code that was issued (never sent) cannot confirm it.
    client = ApiClient(make_token(user))
    assert_error(
        client.post("/api/my-account/email/confirm", {"code": "424242"}), 422, "code.wrong"
    )
    user.refresh_from_db()
    bob.refresh_from_db()
    assert (user.email, bob.email) == ("alice@example.org", "bob@example.org")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not-an-email",
        "new\x00@example.org",
        "new@exa\x00mple.org",
        "new\u202e@example.org",
        "a" * 245 + "@example.org",  # over the form's 254
        "alice@example.org",  # the current address
        "ALICE@Example.org",
    ],
)
def test_email_bad_input_is_422_on_the_field(
    verified_api: ApiClient, user: User, value: str
) -> None:
    body = assert_error(
        verified_api.post("/api/my-account/email", {"email": value}), 422, "validation_error"
    )
    assert list(body["details"]) == ["email"]
    assert not VerificationCode.objects.exists()
    assert not mail.outbox


def test_email_shape_errors_are_422(verified_api: ApiClient) -> None:
    body = assert_error(
        verified_api.post("/api/my-account/email", {"email": "x" * 255}), 422, "validation_error"
    )
    assert list(body["details"]) == ["email"]
    body = assert_error(verified_api.post("/api/my-account/email", {}), 422, "validation_error")
    assert list(body["details"]) == ["email"]
    body = assert_error(
        verified_api.post("/api/my-account/email", {"email": "n@example.org", "x": 1}),
        422,
        "validation_error",
    )
    assert list(body["details"]) == ["x"]
    body = assert_error(
        verified_api.post("/api/my-account/email", {"email": 42}), 422, "validation_error"
    )
    assert list(body["details"]) == ["email"]


def test_the_flows_own_refusal_is_422_on_the_field_too(
    verified_api: ApiClient, monkeypatch: Any
) -> None:
    # Should the form ever let the current address through, the flow still refuses it.
    monkeypatch.setattr(
        "accounts.forms.EmailChangeForm.clean_email", lambda self: self.cleaned_data["email"]
    )
    body = assert_error(
        verified_api.post("/api/my-account/email", {"email": "Alice@example.org"}),
        422,
        "validation_error",
    )
    assert body["details"] == {"email": ["This is already your email address."]}


def test_email_confirm_refusals(verified_api: ApiClient, user: User) -> None:
    assert_error(
        verified_api.post("/api/my-account/email/confirm", {"code": "123456"}), 422, "code.missing"
    )
    verified_api.post("/api/my-account/email", {"email": "new@example.org"})
    code = code_from_last_email("new@example.org")
    body = assert_error(
        verified_api.post("/api/my-account/email/confirm", {"code": other_code(code)}),
        422,
        "code.wrong",
    )
    assert body["message"] == "That code is not right. Check it and try again."
    for value, field in [("", "code"), ("12\x0034", "code"), ("1" * 21, "code")]:
        body = assert_error(
            verified_api.post("/api/my-account/email/confirm", {"code": value}),
            422,
            "validation_error",
        )
        assert list(body["details"]) == [field]
    VerificationCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(
        verified_api.post("/api/my-account/email/confirm", {"code": code}), 422, "code.expired"
    )
    user.refresh_from_db()
    assert user.email == "alice@example.org"


def test_wrong_codes_until_attempts_run_out(verified_api: ApiClient, user: User) -> None:
    verified_api.post("/api/my-account/email", {"email": "new@example.org"})
    code = code_from_last_email("new@example.org")
    for _ in range(4):
        assert_error(
            verified_api.post("/api/my-account/email/confirm", {"code": other_code(code)}),
            422,
            "code.wrong",
        )
    assert_error(
        verified_api.post("/api/my-account/email/confirm", {"code": other_code(code)}),
        422,
        "code.exhausted",
    )
    assert_error(
        verified_api.post("/api/my-account/email/confirm", {"code": code}), 422, "code.exhausted"
    )


def test_email_resend_and_cancel(verified_api: ApiClient, user: User) -> None:
    assert_error(verified_api.post("/api/my-account/email/resend"), 422, "code.missing")
    verified_api.post("/api/my-account/email", {"email": "new@example.org"})
    first = code_from_last_email("new@example.org")
    cache.clear()  # the send allowance (tested below)
    response = verified_api.post("/api/my-account/email/resend")
    assert response.status_code == 200, response.content
    assert response.json()["pending"] == "new@example.org"
    second = code_from_last_email("new@example.org")
    assert len([m for m in mail.outbox if m.to == ["new@example.org"]]) == 2
    assert live_codes(user).count() == 1
    if first != second:
        assert_error(
            verified_api.post("/api/my-account/email/confirm", {"code": first}), 422, "code.wrong"
        )

    response = verified_api.delete("/api/my-account/email/pending")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert not live_codes(user).exists()
    assert_error(
        verified_api.post("/api/my-account/email/confirm", {"code": second}), 422, "code.missing"
    )
    # Cancelling again is harmless.
    assert verified_api.delete("/api/my-account/email/pending").status_code == 200


def test_email_send_allowance_is_the_pages(auth_client: Client, api: ApiClient) -> None:
    reauthenticate(auth_client)
    assert auth_client.post(reverse("email"), {"email": "one@example.org"}).status_code == 302
    verify(api)
    response = api.post("/api/my-account/email", {"email": "two@example.org"})
    assert_error(response, 429, "rate_limited")
    assert 0 < int(response["Retry-After"]) <= 30
    assert not [m for m in mail.outbox if m.to == ["two@example.org"]]
    # Resending counts against the same allowance.
    assert_error(api.post("/api/my-account/email/resend"), 429, "rate_limited")


def test_code_checks_count_against_the_pages_allowance(
    auth_client: Client, api: ApiClient, settings: Any
) -> None:
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "portal_check_code": "2/m/user"}
    reauthenticate(auth_client)
    auth_client.post(reverse("email"), {"email": "new@example.org"})
    code = code_from_last_email("new@example.org")
    for _ in range(2):
        assert (
            auth_client.post(reverse("email_confirm"), {"code": other_code(code)}).status_code
            == 400
        )
    response = api.post("/api/my-account/email/confirm", {"code": code})
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0


# --- Phone ------------------------------------------------------------------------------


def test_phone_add_then_confirm(verified_api: ApiClient, user: User) -> None:
    response = verified_api.post("/api/my-account/phone", {"phone": "06 12 34 56 78"})
    assert response.status_code == 200, response.content
    assert response.json()["pending"] == NUMBER
    code = code_from_sms(NUMBER)
    user.refresh_from_db()
    assert user.phone == ""
    verified_api.verification = None
    done = verified_api.post("/api/my-account/phone/confirm", {"code": code})
    assert done.status_code == 200, done.content
    assert done.json() == {"phone": NUMBER}
    user.refresh_from_db()
    assert (user.phone, user.phone_verified) == (NUMBER, True)
    event = AuditEvent.objects.get(action=Action.PHONE_ADDED)
    assert event.data == {"before": "", "after": NUMBER}
    assert any("A phone number was added" in m.subject for m in mail.outbox)


def test_phone_change_then_remove(verified_api: ApiClient, user: User) -> None:
    give_phone(user)
    verified_api.post("/api/my-account/phone", {"phone": "+33 6 12 34 56 78"})
    verified_api.post("/api/my-account/phone/confirm", {"code": code_from_sms(NUMBER)})
    assert AuditEvent.objects.get(action=Action.PHONE_CHANGED).data == {
        "before": OTHER_NUMBER,
        "after": NUMBER,
    }
    mail.outbox.clear()
    response = verified_api.delete("/api/my-account/phone")
    assert response.status_code == 200, response.content
    assert response.json() == {"ok": True}
    user.refresh_from_db()
    assert (user.phone, user.phone_verified) == ("", False)
    assert AuditEvent.objects.filter(action=Action.PHONE_REMOVED).count() == 1
    assert len(mail.outbox) == 1
    # Nothing left to remove: nothing happens.
    assert verified_api.delete("/api/my-account/phone").status_code == 200
    assert AuditEvent.objects.filter(action=Action.PHONE_REMOVED).count() == 1
    assert len(mail.outbox) == 1


def test_phone_start_and_remove_need_a_verification(api: ApiClient, user: User) -> None:
    give_phone(user)
    assert_error(api.post("/api/my-account/phone", {"phone": NUMBER}), 401, "verification.required")
    assert_error(api.delete("/api/my-account/phone"), 401, "verification.required")
    user.refresh_from_db()
    assert user.phone == OTHER_NUMBER
    assert not locmem.outbox


def test_phone_refuses_another_users_verification(
    api: ApiClient, user: User, user_factory: Callable[..., User]
) -> None:
    give_phone(user)
    api.verification = verify(ApiClient(make_token(user_factory(username="bob"))))
    assert_error(api.post("/api/my-account/phone", {"phone": NUMBER}), 401, "verification.invalid")
    assert_error(api.delete("/api/my-account/phone"), 401, "verification.invalid")
    user.refresh_from_db()
    assert user.phone == OTHER_NUMBER


def test_a_taken_number_looks_exactly_like_a_free_one(
    user: User, user_factory: Callable[..., User], monkeypatch: Any
) -> None:
    bob = user_factory(username="bob", phone=NUMBER, phone_verified=True)
    monkeypatch.setattr("accounts.services.codes._generate", lambda: "424242")

    def attempt() -> tuple[int, dict[str, Any]]:
        cache.clear()
        client = ApiClient(make_token(user))
        verify(client)
        response = client.post("/api/my-account/phone", {"phone": "06 12 34 56 78"})
        body = response.json()
        assert parse_datetime(body.pop("expires_at"))  # differs by the time of the call
        return response.status_code, body

    taken = attempt()
    assert not locmem.outbox
    User.objects.filter(pk=bob.pk).update(phone="", phone_verified=False)
    free = attempt()
    assert sms_to(NUMBER)
    assert taken == free == (200, {"pending": NUMBER})
    # Taken again: the code issued (never sent) cannot confirm it.
    User.objects.filter(pk=bob.pk).update(phone=NUMBER, phone_verified=True)
    attempt()
    client = ApiClient(make_token(user))
    assert_error(
        client.post("/api/my-account/phone/confirm", {"code": "424242"}), 422, "code.wrong"
    )
    user.refresh_from_db()
    assert user.phone == ""


@pytest.mark.parametrize(
    "value",
    ["", "abc", "06 12\x00 34 56 78", "+33 6 12 34 56 7\u202e8", "12", "+33 6 98 76 54 32"],
)
def test_phone_bad_input_is_422_on_the_field(
    verified_api: ApiClient, user: User, value: str
) -> None:
    give_phone(user)  # the last value is the current number
    body = assert_error(
        verified_api.post("/api/my-account/phone", {"phone": value}), 422, "validation_error"
    )
    assert list(body["details"]) == ["phone"]
    assert not locmem.outbox
    assert not VerificationCode.objects.exists()


def test_phone_too_long_is_422(verified_api: ApiClient) -> None:
    body = assert_error(
        verified_api.post("/api/my-account/phone", {"phone": "1" * 33}), 422, "validation_error"
    )
    assert list(body["details"]) == ["phone"]


def test_phone_confirm_refusals(verified_api: ApiClient, user: User) -> None:
    assert_error(
        verified_api.post("/api/my-account/phone/confirm", {"code": "123456"}), 422, "code.missing"
    )
    verified_api.post("/api/my-account/phone", {"phone": NUMBER})
    code = code_from_sms(NUMBER)
    assert_error(
        verified_api.post("/api/my-account/phone/confirm", {"code": other_code(code)}),
        422,
        "code.wrong",
    )
    body = assert_error(
        verified_api.post("/api/my-account/phone/confirm", {"code": "\x00"}),
        422,
        "validation_error",
    )
    assert list(body["details"]) == ["code"]
    user.refresh_from_db()
    assert user.phone == ""


def test_phone_resend_and_cancel(verified_api: ApiClient, user: User) -> None:
    verified_api.post("/api/my-account/phone", {"phone": NUMBER})
    cache.clear()
    response = verified_api.post("/api/my-account/phone/resend")
    assert response.status_code == 200, response.content
    assert response.json()["pending"] == NUMBER
    assert len(sms_to(NUMBER)) == 2
    assert verified_api.delete("/api/my-account/phone/pending").json() == {"ok": True}
    assert not live_codes(user).exists()
    assert_error(verified_api.post("/api/my-account/phone/resend"), 422, "code.missing")


def test_sms_allowance_is_the_pages(auth_client: Client, api: ApiClient) -> None:
    reauthenticate(auth_client)
    assert auth_client.post(reverse("phone"), {"phone": "06 12 34 56 78"}).status_code == 302
    verify(api)
    response = api.post("/api/my-account/phone", {"phone": "06 98 76 54 32"})
    assert_error(response, 429, "rate_limited")
    assert 0 < int(response["Retry-After"]) <= 30
    assert not sms_to(OTHER_NUMBER)
    assert_error(api.post("/api/my-account/phone/resend"), 429, "rate_limited")
    assert len(locmem.outbox) == 1


def test_the_number_limit_is_the_pages(
    api: ApiClient, user_factory: Callable[..., User], settings: Any
) -> None:
    # Another account's page used up the destination number's allowance.
    settings.ACCOUNT_RATE_LIMITS = {
        **settings.ACCOUNT_RATE_LIMITS,
        "portal_sms_destination": "1/h/key",
    }
    bob = signed_in(user_factory(username="bob"))
    reauthenticate(bob)
    assert bob.post(reverse("phone"), {"phone": NUMBER}).status_code == 302
    verify(api)
    assert_error(api.post("/api/my-account/phone", {"phone": NUMBER}), 429, "rate_limited")
    assert len(sms_to(NUMBER)) == 1


# --- Password ---------------------------------------------------------------------------


def test_password_change_with_a_token(verified_api: ApiClient, user: User) -> None:
    browser = browser_sign_in()
    other_token = ApiClient(make_token(user))
    mail.outbox.clear()
    response = verified_api.post("/api/my-account/password", {"password": NEW_PASSWORD})
    assert response.status_code == 200, response.content
    assert response.json() == {"ok": True}
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    # One audit event (allauth's signals are not sent twice), one notice.
    event = AuditEvent.objects.get(action__startswith="password.")
    assert (event.action, event.actor, event.subject) == (Action.PASSWORD_CHANGED, user, user)
    assert [m.to for m in mail.outbox] == [["alice@example.org"]]
    assert "password" in mail.outbox[0].subject.lower()
    # The token that made the change is revoked by it, like every other one.
    assert_error(verified_api.get("/api/my-account"), 401, "unauthenticated")
    assert_error(other_token.get("/api/my-account"), 401, "unauthenticated")
    assert not PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    # Every session ended.
    assert SESSION_KEY not in browser.session
    assert not UserSession.objects.filter(user=user).exists()


def test_password_change_keeps_the_calling_session(user: User) -> None:
    first = browser_sign_in()
    second = browser_sign_in()
    reauthenticate(first)
    response = json_post(first, "/api/my-account/password", {"password": NEW_PASSWORD})
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert first.get(reverse("settings_home")).status_code == 200
    assert first.get("/api/my-account").json()["username"] == "alice"
    ended = second.get(reverse("settings_home"))
    assert ended.status_code == 302
    assert ended["Location"].startswith(reverse("account_login"))
    assert list(UserSession.objects.filter(user=user).values_list("session_key", flat=True)) == [
        first.session.session_key
    ]
    assert AuditEvent.objects.filter(action=Action.PASSWORD_CHANGED).count() == 1


def test_password_set_for_an_account_without_one(
    user_factory: Callable[..., User], api_for: Any
) -> None:
    carol = user_factory(username="carol", password=None)
    client = api_for(carol)
    pending = client.post("/api/verifications/code", {"channel": "email"}).json()
    code = code_from_last_email("carol@example.org")
    proof = client.post(
        "/api/verifications/code/verify",
        {"verification_id": pending["verification_id"], "code": code},
    )
    client.verification = proof.json()["verification_id"]
    response = client.post("/api/my-account/password", {"password": NEW_PASSWORD})
    assert response.status_code == 200, response.content
    carol.refresh_from_db()
    assert carol.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.get(action__startswith="password.").action == Action.PASSWORD_SET


def test_password_needs_a_verification(api: ApiClient, user: User) -> None:
    assert_error(
        api.post("/api/my-account/password", {"password": NEW_PASSWORD}),
        401,
        "verification.required",
    )
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert api.get("/api/my-account").status_code == 200


def test_password_refuses_another_users_verification(
    api: ApiClient, user: User, user_factory: Callable[..., User]
) -> None:
    api.verification = verify(ApiClient(make_token(user_factory(username="bob"))))
    assert_error(
        api.post("/api/my-account/password", {"password": NEW_PASSWORD}),
        401,
        "verification.invalid",
    )
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "This field is required."),
        ("short-pw", "This password is too short."),
        ("password1234", "This password is too common."),
        ("alice-example-org", "too similar"),
        ("a-long-passphrase\x00-2026", "Null characters are not allowed."),
    ],
)
def test_password_rules_are_the_pages(
    verified_api: ApiClient, user: User, value: str, message: str
) -> None:
    body = assert_error(
        verified_api.post("/api/my-account/password", {"password": value}),
        422,
        "validation_error",
    )
    assert list(body["details"]) == ["password"]
    assert any(message in text for text in body["details"]["password"]), body
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert not AuditEvent.objects.filter(action__startswith="password.").exists()
    assert verified_api.get("/api/my-account").status_code == 200


def test_password_too_long_is_422(verified_api: ApiClient) -> None:
    body = assert_error(
        verified_api.post("/api/my-account/password", {"password": "x" * 4097}),
        422,
        "validation_error",
    )
    assert list(body["details"]) == ["password"]


def test_password_allowance_is_the_pages(auth_client: Client, api: ApiClient, user: User) -> None:
    for _ in range(5):
        auth_client.post(
            reverse("account_change_password"),
            {"oldpassword": "wrong", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        )
    assert auth_client.post(reverse("account_change_password"), {}).status_code == 429
    verify(api)
    response = api.post("/api/my-account/password", {"password": NEW_PASSWORD})
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


# --- Every endpoint: policy, scope, the page's answers ------------------------------------

# (method, API path, body, web URL name, web form data, policy field)
ENDPOINTS = [
    (
        "post",
        "/api/my-account/email",
        {"email": "n@example.org"},
        "email",
        {"email": "n@example.org"},
        "email",
    ),
    (
        "post",
        "/api/my-account/email/confirm",
        {"code": "123456"},
        "email_confirm",
        {"code": "123456"},
        "email",
    ),
    ("post", "/api/my-account/email/resend", None, "email_resend", {}, "email"),
    ("delete", "/api/my-account/email/pending", None, "email_cancel", {}, "email"),
    ("post", "/api/my-account/phone", {"phone": NUMBER}, "phone", {"phone": NUMBER}, "phone"),
    (
        "post",
        "/api/my-account/phone/confirm",
        {"code": "123456"},
        "phone_confirm",
        {"code": "123456"},
        "phone",
    ),
    ("post", "/api/my-account/phone/resend", None, "phone_resend", {}, "phone"),
    ("delete", "/api/my-account/phone/pending", None, "phone_cancel", {}, "phone"),
    ("delete", "/api/my-account/phone", None, "phone_remove", {}, "phone"),
    (
        "post",
        "/api/my-account/password",
        {"password": NEW_PASSWORD},
        "account_change_password",
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        "password",
    ),
]
ENDPOINT_IDS = [f"{e[0]} {e[1]}" for e in ENDPOINTS]


def call(client: ApiClient, method: str, path: str, body: dict[str, Any] | None) -> Any:
    if method == "delete":
        return client.delete(path)
    return client.post(path, body)


@pytest.mark.parametrize(
    ("modes", "status", "code"),
    [
        ({"mode": "read_only"}, 403, "policy.field_not_editable"),
        ({"mode": "off"}, 404, "policy.field_not_enabled"),
        ({"mode": "edit", "enabled": False}, 403, "policy.not_enabled"),
    ],
    ids=["read_only", "off", "master-switch"],
)
@pytest.mark.parametrize(
    ("method", "path", "body", "page", "form", "field"), ENDPOINTS, ids=ENDPOINT_IDS
)
def test_policy_gives_the_pages_answers(
    verified_api: ApiClient,
    user: User,
    policy_modes: Any,
    modes: dict[str, Any],
    status: int,
    code: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    page: str,
    form: dict[str, Any],
    field: str,
) -> None:
    give_phone(user)
    web = signed_in(user)
    reauthenticate(web)
    values = {field: modes["mode"], **({"enabled": modes["enabled"]} if "enabled" in modes else {})}
    policy_modes(**values)
    assert_error(call(verified_api, method, path, body), status, code)
    assert web.post(reverse(page), form).status_code == status
    user.refresh_from_db()
    assert (user.email, user.phone) == ("alice@example.org", OTHER_NUMBER)
    assert user.check_password(PASSWORD)
    assert not locmem.outbox
    assert not VerificationCode.objects.exists()


@pytest.mark.parametrize(
    ("method", "path", "body", "page", "form", "field"), ENDPOINTS, ids=ENDPOINT_IDS
)
def test_edit_mode_lets_every_endpoint_through(
    verified_api: ApiClient,
    user: User,
    policy_modes: Any,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    page: str,
    form: dict[str, Any],
    field: str,
) -> None:
    policy_modes(**{field: "edit"})
    response = call(verified_api, method, path, body)
    # No pending change for confirm and resend: refused by the flow, past the door.
    if path.endswith(("/confirm", "/resend")):
        assert_error(response, 422, "code.missing")
    else:
        assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("method", "path", "body", "page", "form", "field"), ENDPOINTS, ids=ENDPOINT_IDS
)
def test_a_read_only_token_cannot_write(
    user: User,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    page: str,
    form: dict[str, Any],
    field: str,
) -> None:
    give_phone(user)
    reader = ApiClient(make_token(user, ["account:read"]))
    # A valid verification of the user's: the scope still decides.
    reader.verification = verify(ApiClient(make_token(user)))
    assert_error(call(reader, method, path, body), 403, "token.insufficient_scope")
    user.refresh_from_db()
    assert (user.email, user.phone) == ("alice@example.org", OTHER_NUMBER)
    assert user.check_password(PASSWORD)
    assert not VerificationCode.objects.exists()


def test_no_credentials_is_401_everywhere() -> None:
    client = ApiClient()
    for method, path, body, *_rest in ENDPOINTS:
        assert_error(call(client, method, path, body), 401, "unauthenticated")


def test_every_step_is_refused_while_impersonating(
    user: User, user_factory: Callable[..., User]
) -> None:
    from django.contrib.auth.models import Group

    from tests.conftest import verify_second_factor

    agent = user_factory(username="agent", is_staff=True)
    agent.groups.add(Group.objects.get(name="Security admins"))
    staff = signed_in(agent)
    verify_second_factor(staff, agent)
    response = staff.post(
        reverse("admin:accounts_user_impersonate", args=[user.pk]),
        {"user_pk": user.pk, "reason": "Ticket 4242"},
    )
    assert response.status_code == 302, response.content[:500]
    give_phone(user)
    for method, path, body, *_rest in ENDPOINTS:
        send = staff.delete if method == "delete" else staff.post
        assert_error(
            send(path, body or {}, content_type="application/json"), 403, "impersonation.refused"
        )
    user.refresh_from_db()
    assert (user.email, user.phone) == ("alice@example.org", OTHER_NUMBER)
    assert user.check_password(PASSWORD)


# --- Query budgets --------------------------------------------------------------------------


@pytest.fixture
def crowd(user: User, user_factory: Callable[..., User]) -> None:
    """Other accounts with numbers and addresses, more tokens, sessions and history
    for alice: nothing here may make a call cost more."""
    for n in range(6):
        user_factory(username=f"crowd{n}", phone=f"+3361111110{n}", phone_verified=True)
    for _ in range(3):
        make_token(user)
        browser_sign_in()
    for n in range(4):
        VerificationCode.objects.create(
            user=User.objects.get(username=f"crowd{n}"),
            purpose=VerificationCode.Purpose.EMAIL_CHANGE,
            target=f"c{n}@example.org",
            code_hash="x$y",
            expires_at=timezone.now() + timedelta(minutes=10),
        )
    cache.clear()


# Counted with savepoints; ``cache.clear()`` (the send allowance) also drops the
# cached policy, read again by the next call.


@pytest.mark.usefixtures("crowd")
def test_email_query_budgets(verified_api: ApiClient, django_assert_max_num_queries: Any) -> None:
    with django_assert_max_num_queries(15):
        response = verified_api.post("/api/my-account/email", {"email": "new@example.org"})
        assert response.status_code == 200
    cache.clear()
    with django_assert_max_num_queries(17):
        assert verified_api.post("/api/my-account/email/resend").status_code == 200
    code = code_from_last_email("new@example.org")
    with django_assert_max_num_queries(23):
        response = verified_api.post("/api/my-account/email/confirm", {"code": code})
        assert response.status_code == 200
    with django_assert_max_num_queries(4):
        assert verified_api.delete("/api/my-account/email/pending").status_code == 200


@pytest.mark.usefixtures("crowd")
def test_phone_query_budgets(
    verified_api: ApiClient, user: User, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(14):
        assert verified_api.post("/api/my-account/phone", {"phone": NUMBER}).status_code == 200
    cache.clear()
    with django_assert_max_num_queries(16):
        assert verified_api.post("/api/my-account/phone/resend").status_code == 200
    code = code_from_sms(NUMBER)
    with django_assert_max_num_queries(18):
        response = verified_api.post("/api/my-account/phone/confirm", {"code": code})
        assert response.status_code == 200
    with django_assert_max_num_queries(4):
        assert verified_api.delete("/api/my-account/phone/pending").status_code == 200
    with django_assert_max_num_queries(14):
        assert verified_api.delete("/api/my-account/phone").status_code == 200


@pytest.mark.usefixtures("crowd")
def test_password_query_budget(verified_api: ApiClient, django_assert_max_num_queries: Any) -> None:
    # The account's other sessions (three here) end in three queries whatever
    # their number: their list, the stored sessions, the list's rows.
    with django_assert_max_num_queries(17):
        response = verified_api.post("/api/my-account/password", {"password": NEW_PASSWORD})
        assert response.status_code == 200
