from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.actor import Actor
from accounts.flows import verified_change as vc
from accounts.flows.errors import ImpersonationRefused, ReauthenticationRequired
from accounts.flows.phone_change import PHONE_CHANGE, phone_delete
from accounts.models import AccountPolicy, AuditEvent, User, VerificationCode
from accounts.policy import PolicyDenied, forget_policy
from accounts.services.codes import Purpose, code_issue
from accounts.sms.backends import locmem
from tests.conftest import PASSWORD, reauthenticate

pytestmark = pytest.mark.django_db

NUMBER = "+33612345678"
NUMBER_SHOWN = "+33 6 12 34 56 78"
OTHER_NUMBER = "+33698765432"
OTHER_SHOWN = "+33 6 98 76 54 32"


def sms_to(number: str) -> list[Any]:
    return [message for message in locmem.outbox if message.to == number]


def code_from_sms(number: str) -> str:
    """The 6-digit code in the newest SMS sent to ``number``."""
    messages = sms_to(number)
    assert messages, f"no SMS was sent to {number}"
    found = re.findall(r"\b\d{6}\b", messages[-1].body)
    assert len(found) == 1, messages[-1].body
    return found[0]


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def live_codes(user: User) -> Any:
    return VerificationCode.objects.filter(
        user=user, purpose=Purpose.PHONE_CHANGE, used_at__isnull=True
    )


def start(client: Client, number: str = "06 12 34 56 78") -> Any:
    return client.post(reverse("phone"), {"phone": number})


def confirm(client: Client, code: str) -> Any:
    return client.post(reverse("phone_confirm"), {"code": code})


def page_text(client: Client, url: str) -> str:
    return unescape(client.get(url).content.decode())


def give_phone(user: User, number: str = OTHER_NUMBER) -> None:
    User.objects.filter(pk=user.pk).update(phone=number, phone_verified=True)


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


# --- Adding, changing and removing ------------------------------------------------


def test_page_shows_the_form(auth_client: Client) -> None:
    response = auth_client.get(reverse("phone"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="phone"' in html
    assert "Add a phone number" in html
    assert html.count("<h1>") == 1


def test_page_query_budget(auth_client: Client, django_assert_max_num_queries: Any) -> None:
    auth_client.get(reverse("phone"))
    with django_assert_max_num_queries(3):
        assert auth_client.get(reverse("phone")).status_code == 200


def test_add_a_national_number_by_code(auth_client: Client, user: User) -> None:
    reauthenticate(auth_client)
    response = start(auth_client, "06 12 34 56 78")
    assert response.status_code == 302
    assert response["Location"] == reverse("phone_confirm")
    # One SMS, to the number in E.164, with a 6-digit code; nothing changed yet.
    assert [message.to for message in locmem.outbox] == [NUMBER]
    code = code_from_sms(NUMBER)
    row = live_codes(user).get()
    assert row.target == NUMBER
    assert code not in row.code_hash
    user.refresh_from_db()
    assert user.phone == ""
    assert not user.phone_verified
    page = page_text(auth_client, response["Location"])
    assert f"We sent a code by SMS to {NUMBER_SHOWN}." in page
    assert not mail.outbox

    confirmed = confirm(auth_client, code)
    assert confirmed.status_code == 302
    assert confirmed["Location"] == reverse("phone")
    user.refresh_from_db()
    assert user.phone == NUMBER
    assert user.phone_verified
    event = AuditEvent.objects.get(action="phone.added")
    assert event.subject == user
    assert event.actor == user
    assert event.data == {"before": "", "after": NUMBER}
    assert not AuditEvent.objects.filter(action="phone.changed").exists()
    assert len(mail.outbox) == 1
    notice = mail.outbox[0]
    assert notice.to == ["alice@example.org"]
    assert "A phone number was added to your account" in notice.subject
    assert NUMBER_SHOWN in notice.body
    page = page_text(auth_client, confirmed["Location"])
    assert f"Your phone number is now {NUMBER_SHOWN}." in page
    assert not live_codes(user).exists()


def test_change_the_number(auth_client: Client, user: User) -> None:
    give_phone(user, OTHER_NUMBER)
    reauthenticate(auth_client)
    assert start(auth_client, "+33 6 12 34 56 78").status_code == 302
    assert [message.to for message in locmem.outbox] == [NUMBER]
    assert confirm(auth_client, code_from_sms(NUMBER)).status_code == 302
    user.refresh_from_db()
    assert user.phone == NUMBER
    assert user.phone_verified
    event = AuditEvent.objects.get(action="phone.changed")
    assert event.data == {"before": OTHER_NUMBER, "after": NUMBER}
    assert not AuditEvent.objects.filter(action="phone.added").exists()
    assert len(mail.outbox) == 1
    notice = mail.outbox[0]
    assert notice.to == ["alice@example.org"]
    assert "Your phone number was changed" in notice.subject
    assert OTHER_SHOWN in notice.body
    assert NUMBER_SHOWN in notice.body


def test_remove_the_number(auth_client: Client, user: User) -> None:
    give_phone(user, NUMBER)
    reauthenticate(auth_client)
    response = auth_client.post(reverse("phone_remove"))
    assert response.status_code == 302
    assert response["Location"] == reverse("phone")
    user.refresh_from_db()
    assert user.phone == ""
    assert not user.phone_verified
    event = AuditEvent.objects.get(action="phone.removed")
    assert event.subject == user
    assert event.data == {"before": NUMBER}
    assert len(mail.outbox) == 1
    notice = mail.outbox[0]
    assert notice.to == ["alice@example.org"]
    assert "Your phone number was removed" in notice.subject
    assert NUMBER_SHOWN in notice.body
    assert "Your phone number was removed." in page_text(auth_client, reverse("phone"))
    assert not locmem.outbox


def test_removing_when_there_is_no_number_does_nothing(auth_client: Client, user: User) -> None:
    reauthenticate(auth_client)
    assert auth_client.post(reverse("phone_remove")).status_code == 302
    assert not AuditEvent.objects.filter(action="phone.removed").exists()
    assert not mail.outbox


def test_removing_requires_recent_reauthentication(auth_client: Client, user: User) -> None:
    give_phone(user, NUMBER)
    response = auth_client.post(reverse("phone_remove"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    user.refresh_from_db()
    assert user.phone == NUMBER
    assert user.phone_verified
    assert not AuditEvent.objects.filter(action="phone.removed").exists()
    assert not mail.outbox


def test_starting_requires_recent_reauthentication(auth_client: Client, user: User) -> None:
    response = start(auth_client)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert not locmem.outbox
    assert not VerificationCode.objects.exists()
    assert not AuditEvent.objects.exists()


def test_reauthentication_resumes_the_suspended_request(auth_client: Client, user: User) -> None:
    first = start(auth_client)
    resumed = auth_client.post(first["Location"], {"password": PASSWORD})
    assert resumed.status_code == 302
    assert resumed["Location"] == reverse("phone_confirm")
    assert [message.to for message in locmem.outbox] == [NUMBER]
    assert live_codes(user).get().target == NUMBER


@pytest.mark.parametrize("value", ["123", "+999 1", "abc"])
def test_invalid_numbers_are_refused(auth_client: Client, user: User, value: str) -> None:
    reauthenticate(auth_client)
    response = start(auth_client, value)
    assert response.status_code == 400
    assert "Enter a valid phone number." in unescape(response.content.decode())
    assert not locmem.outbox
    assert not VerificationCode.objects.exists()
    user.refresh_from_db()
    assert user.phone == ""


def test_the_current_number_is_refused(auth_client: Client, user: User) -> None:
    give_phone(user, NUMBER)
    reauthenticate(auth_client)
    response = start(auth_client, "06 12 34 56 78")
    assert response.status_code == 400
    assert "This is already your phone number." in unescape(response.content.decode())
    assert not locmem.outbox
    assert not VerificationCode.objects.exists()


def test_a_typo_does_not_use_up_the_send_allowance(auth_client: Client, user: User) -> None:
    reauthenticate(auth_client)
    assert start(auth_client, "06 12 34 56 7").status_code == 400
    assert not locmem.outbox
    response = start(auth_client, "06 12 34 56 78")
    assert response.status_code == 302
    assert sms_to(NUMBER)


# --- Codes ------------------------------------------------------------------------


def test_wrong_codes_until_attempts_run_out(auth_client: Client, user: User, settings: Any) -> None:
    settings.VERIFICATION_CODE_MAX_ATTEMPTS = 5
    reauthenticate(auth_client)
    start(auth_client)
    code = code_from_sms(NUMBER)
    wrong = other_code(code)
    for _attempt in range(4):
        response = confirm(auth_client, wrong)
        assert response.status_code == 400
        assert "That code is not right." in unescape(response.content.decode())
    fifth = confirm(auth_client, wrong)
    assert "Too many wrong codes. Ask for a new one." in unescape(fifth.content.decode())
    assert live_codes(user).get().attempts == 5
    # After that even the right code is refused.
    right = confirm(auth_client, code)
    assert right.status_code == 400
    assert "Too many wrong codes. Ask for a new one." in unescape(right.content.decode())
    user.refresh_from_db()
    assert user.phone == ""
    assert not user.phone_verified
    assert not AuditEvent.objects.filter(action__in=["phone.added", "phone.changed"]).exists()
    assert not mail.outbox


def test_expired_code_is_refused(auth_client: Client, user: User) -> None:
    reauthenticate(auth_client)
    start(auth_client)
    code = code_from_sms(NUMBER)
    live_codes(user).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = confirm(auth_client, code)
    assert response.status_code == 400
    assert "This code has expired. Ask for a new one." in unescape(response.content.decode())
    user.refresh_from_db()
    assert user.phone == ""
    assert not AuditEvent.objects.filter(action="phone.added").exists()


def test_a_code_works_only_once(auth_client: Client, user: User) -> None:
    reauthenticate(auth_client)
    start(auth_client)
    code = code_from_sms(NUMBER)
    assert confirm(auth_client, code).status_code == 302
    # The number is removed again; the used code cannot bring it back.
    assert auth_client.post(reverse("phone_remove")).status_code == 302
    user.refresh_from_db()
    assert user.phone == ""
    again = confirm(auth_client, code)
    assert again.status_code == 302
    assert again["Location"] == reverse("phone")
    page = page_text(auth_client, again["Location"])
    assert "There is no phone number waiting for confirmation." in page
    user.refresh_from_db()
    assert user.phone == ""
    assert not user.phone_verified
    assert AuditEvent.objects.filter(action="phone.added").count() == 1
    assert [m.subject for m in mail.outbox if "added" in m.subject] == [
        "[Account portal] A phone number was added to your account"
    ]


def test_a_newer_request_kills_the_older_code(auth_client: Client, user: User) -> None:
    reauthenticate(auth_client)
    start(auth_client, "06 12 34 56 78")
    first = code_from_sms(NUMBER)
    cache.clear()  # the send-code rate limit is tested below
    start(auth_client, "06 98 76 54 32")
    second = code_from_sms(OTHER_NUMBER)
    assert live_codes(user).get().target == OTHER_NUMBER
    if first != second:  # one chance in a million that they are equal
        stale = confirm(auth_client, first)
        assert stale.status_code == 400
        assert "That code is not right." in unescape(stale.content.decode())
        user.refresh_from_db()
        assert user.phone == ""
    assert confirm(auth_client, second).status_code == 302
    user.refresh_from_db()
    assert user.phone == OTHER_NUMBER
    assert user.phone_verified


def test_resend_is_rate_limited(auth_client: Client, user: User) -> None:
    reauthenticate(auth_client)
    start(auth_client)
    first = code_from_sms(NUMBER)
    response = auth_client.post(reverse("phone_resend"))
    assert response.status_code == 429
    assert len(locmem.outbox) == 1
    assert live_codes(user).count() == 1
    # Once the window has passed, a new code replaces the old one.
    cache.clear()
    resent = auth_client.post(reverse("phone_resend"))
    assert resent.status_code == 302
    assert resent["Location"] == reverse("phone_confirm")
    assert len(sms_to(NUMBER)) == 2
    second = code_from_sms(NUMBER)
    if first != second:
        assert confirm(auth_client, first).status_code == 400
    assert confirm(auth_client, second).status_code == 302
    user.refresh_from_db()
    assert user.phone == NUMBER


def test_cancel_drops_the_pending_code(auth_client: Client, user: User) -> None:
    reauthenticate(auth_client)
    start(auth_client)
    code = code_from_sms(NUMBER)
    response = auth_client.post(reverse("phone_cancel"))
    assert response.status_code == 302
    assert response["Location"] == reverse("phone")
    assert not live_codes(user).exists()
    assert auth_client.get(reverse("phone_confirm"))["Location"] == reverse("phone")
    assert confirm(auth_client, code).status_code == 302
    user.refresh_from_db()
    assert user.phone == ""


def test_write_urls_refuse_get(auth_client: Client) -> None:
    for name in ("phone_resend", "phone_cancel", "phone_remove"):
        assert auth_client.get(reverse(name)).status_code == 405


# --- A number another account has ----------------------------------------------


def _outward(client: Client, response: Any) -> tuple[int, str, list[str], str]:
    """What the requester can see: status, redirect, flashed messages, next page."""
    page = client.get(response["Location"])
    messages = [str(m) for m in page.context["messages"]]
    # Per-response tokens: CSRF and the CSP nonce.
    html = re.sub(r'value="[^"]*"', "", page.content.decode())
    html = re.sub(r'"X-CSRFToken": "[^"]*"', "", html)
    html = re.sub(r'nonce="[^"]*"', "", html)
    return response.status_code, response["Location"], messages, html


def cancel(client: Client) -> None:
    """Cancels the pending change and reads the page (and its flashed message)."""
    client.get(client.post(reverse("phone_cancel"))["Location"])


def test_a_number_of_another_account_looks_the_same_but_never_confirms(
    auth_client: Client, user: User, user_factory: Callable[..., User], monkeypatch: Any
) -> None:
    bob = user_factory(username="bob", phone=NUMBER, phone_verified=True)
    reauthenticate(auth_client)
    # Knowing the code that was issued (it is never sent) shows it still cannot work.
    monkeypatch.setattr("accounts.services.codes._generate", lambda: "424242")
    taken = _outward(auth_client, start(auth_client, "06 12 34 56 78"))
    assert not locmem.outbox
    row = live_codes(user).get()
    assert row.target == NUMBER
    assert not row.deliverable

    # The same request for the same number once it is free.
    cancel(auth_client)
    User.objects.filter(pk=bob.pk).update(phone="", phone_verified=False)
    cache.clear()
    free = _outward(auth_client, start(auth_client, "06 12 34 56 78"))
    assert sms_to(NUMBER)
    assert taken == free
    assert taken[0] == 302
    assert taken[1] == reverse("phone_confirm")
    assert taken[2] == [f"We sent a code by SMS to {NUMBER_SHOWN}."]

    # Back to taken: no code is ever sent, and even the issued code is refused.
    cancel(auth_client)
    User.objects.filter(pk=bob.pk).update(phone=NUMBER, phone_verified=True)
    locmem.outbox.clear()
    mail.outbox.clear()
    cache.clear()
    start(auth_client, "06 12 34 56 78")
    cache.clear()
    assert auth_client.post(reverse("phone_resend")).status_code == 302
    assert not locmem.outbox
    response = confirm(auth_client, "424242")
    assert response.status_code == 400
    assert "That code is not right." in unescape(response.content.decode())
    user.refresh_from_db()
    bob.refresh_from_db()
    assert user.phone == ""
    assert not user.phone_verified
    assert bob.phone == NUMBER
    assert bob.phone_verified
    assert not AuditEvent.objects.filter(action__in=["phone.added", "phone.changed"]).exists()
    assert not AuditEvent.objects.filter(subject=bob).exists()
    assert not mail.outbox


def test_a_number_taken_before_confirming_is_refused(
    auth_client: Client, user: User, user_factory: Callable[..., User]
) -> None:
    bob = user_factory(username="bob")
    reauthenticate(auth_client)
    start(auth_client)
    code = code_from_sms(NUMBER)
    # Bob gets the number while Alice's code is pending.
    User.objects.filter(pk=bob.pk).update(phone=NUMBER, phone_verified=True)
    response = confirm(auth_client, code)
    assert response.status_code == 400
    assert "Start again." in unescape(response.content.decode())
    user.refresh_from_db()
    bob.refresh_from_db()
    assert user.phone == ""
    assert not user.phone_verified
    assert bob.phone == NUMBER
    assert not AuditEvent.objects.filter(action="phone.added").exists()
    assert not mail.outbox


# --- Someone else ---------------------------------------------------------------


def test_another_user_cannot_confirm_my_code(
    auth_client: Client, user: User, user_factory: Callable[..., User]
) -> None:
    bob = user_factory(username="bob")
    bob_client = signed_in(bob)
    reauthenticate(auth_client)
    start(auth_client)
    code = code_from_sms(NUMBER)

    # Bob has nothing pending: he is sent back to his page.
    response = confirm(bob_client, code)
    assert response.status_code == 302
    assert response["Location"] == reverse("phone")
    # With a pending change of his own, Alice's code is just a wrong code for him.
    reauthenticate(bob_client)
    start(bob_client, "06 98 76 54 32")
    if code != code_from_sms(OTHER_NUMBER):  # one chance in a million that they are equal
        assert confirm(bob_client, code).status_code == 400
    bob.refresh_from_db()
    assert bob.phone == ""
    assert live_codes(bob).get().target == OTHER_NUMBER

    row = live_codes(user).get()
    assert row.attempts == 0
    assert row.used_at is None
    user.refresh_from_db()
    assert user.phone == ""
    assert confirm(auth_client, code).status_code == 302
    user.refresh_from_db()
    assert user.phone == NUMBER


# --- CSRF -----------------------------------------------------------------------


CSRF_WRITES = [
    ("phone", {"phone": "06 11 22 33 44"}),
    ("phone_confirm", {"code": "123456"}),
    ("phone_resend", {}),
    ("phone_cancel", {}),
    ("phone_remove", {}),
]


@pytest.mark.parametrize(("url_name", "data"), CSRF_WRITES)
def test_csrf_is_enforced_on_every_write(
    user: User, url_name: str, data: dict[str, str], monkeypatch: Any
) -> None:
    give_phone(user, OTHER_NUMBER)
    monkeypatch.setattr("accounts.services.codes._generate", lambda: "123456")
    code_issue(user=user, purpose=Purpose.PHONE_CHANGE, target=NUMBER)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    # Re-authenticated (with the token), so only the missing token stops the write.
    client.get(reverse("account_reauthenticate"))
    token = client.cookies["csrftoken"].value
    reauth = client.post(
        reverse("account_reauthenticate"),
        {"password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert reauth.status_code == 302
    events_before = AuditEvent.objects.count()

    response = client.post(reverse(url_name), data)
    assert response.status_code == 403
    user.refresh_from_db()
    assert user.phone == OTHER_NUMBER
    assert user.phone_verified
    row = live_codes(user).get()
    assert row.target == NUMBER
    assert row.attempts == 0
    assert row.used_at is None
    assert VerificationCode.objects.count() == 1
    assert not locmem.outbox
    assert not mail.outbox
    assert AuditEvent.objects.count() == events_before


# --- The flow on another surface ------------------------------------------------


def api_actor(user: User, **kwargs: Any) -> Actor:
    kwargs.setdefault("reauthenticated_at", time.time())
    return Actor(user=user, surface="api", **kwargs)


def test_the_flow_adds_a_number_from_another_surface(user: User, settings: Any) -> None:
    settings.VERIFICATION_CODE_TIMEOUT = 600
    started = vc.start(ctx=api_actor(user), spec=PHONE_CHANGE, target="06 12 34 56 78")
    assert started.target == NUMBER
    (sms,) = sms_to(NUMBER)
    assert "It expires in 10 minutes." in sms.body
    done = vc.confirm(ctx=api_actor(user), spec=PHONE_CHANGE, code=code_from_sms(NUMBER))
    assert done.ok
    assert (done.before, done.after) == ("", NUMBER)
    user.refresh_from_db()
    assert user.phone == NUMBER
    assert user.phone_verified
    assert AuditEvent.objects.get(action="phone.added").data == {"before": "", "after": NUMBER}
    assert "A phone number was added to your account" in mail.outbox[-1].subject
    assert phone_delete(ctx=api_actor(user)) == NUMBER
    user.refresh_from_db()
    assert user.phone == ""
    assert AuditEvent.objects.filter(action="phone.removed").count() == 1


def test_the_flow_refuses_a_read_only_phone(user: User) -> None:
    give_phone(user, OTHER_NUMBER)
    AccountPolicy.objects.update_or_create(pk=1, defaults={"phone": "read_only"})
    forget_policy()
    with pytest.raises(PolicyDenied):
        vc.start(ctx=api_actor(user), spec=PHONE_CHANGE, target=NUMBER)
    with pytest.raises(PolicyDenied):
        phone_delete(ctx=api_actor(user))
    user.refresh_from_db()
    assert user.phone == OTHER_NUMBER
    assert not VerificationCode.objects.exists()
    assert not locmem.outbox


def test_removing_through_the_flow_needs_reauthentication_and_no_impersonation(
    user: User, user_factory: Callable[..., User]
) -> None:
    give_phone(user, NUMBER)
    with pytest.raises(ReauthenticationRequired):
        phone_delete(ctx=api_actor(user, reauthenticated_at=None))
    staff = user_factory(username="staff", is_staff=True)
    with pytest.raises(ImpersonationRefused):
        phone_delete(ctx=api_actor(user, impersonator_id=staff.pk))
    user.refresh_from_db()
    assert user.phone == NUMBER


def test_the_code_page_tells_the_lifetime_from_the_setting(
    auth_client: Client, settings: Any
) -> None:
    settings.VERIFICATION_CODE_TIMEOUT = 600
    reauthenticate(auth_client)
    start(auth_client)
    page = page_text(auth_client, reverse("phone_confirm"))
    assert f"Enter the code we sent by SMS to {NUMBER_SHOWN}. It expires after 10 minutes." in page


def test_the_blank_forms_are_each_pages_own_and_the_same_for_everyone(
    user: User, user_factory: Callable[..., User]
) -> None:
    """The email and phone pages share a template whose blank form is written once
    per page and language: each page shows its own form, as a fresh one renders."""
    from django.template.loader import render_to_string

    from accounts.forms import EmailChangeForm, PhoneForm
    from accounts.policy import load_policy

    bob = user_factory(username="bob")
    give_phone(bob, NUMBER)
    pages = [(reverse("phone"), PhoneForm, "phone"), (reverse("email"), EmailChangeForm, "email")]
    for who in (user, bob, user):
        client = Client()
        client.force_login(who, backend="django.contrib.auth.backends.ModelBackend")
        for url, form_class, name in pages:
            html = client.get(url).content.decode()
            fresh = render_to_string(
                "accounts/includes/form_fields.html",
                {"form": form_class(user=who, policy=load_policy())},
            )
            assert fresh in html
            assert f'name="{name}"' in html
            assert f'name="{"email" if name == "phone" else "phone"}"' not in html
