from __future__ import annotations

import re
import threading
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, User, VerificationCode
from tests.conftest import PASSWORD, reauthenticate
from tests.helpers import code_from_last_email

pytestmark = pytest.mark.django_db


def start(client: Client, address: str) -> Any:
    return client.post(reverse("email"), {"email": address})


def confirm(client: Client, code: str) -> Any:
    return client.post(reverse("email_confirm"), {"code": code})


@pytest.fixture
def fresh(auth_client: Client) -> Client:
    reauthenticate(auth_client)
    return auth_client


def test_change_needs_a_recent_reauthentication(auth_client: Client, user: User) -> None:
    response = start(auth_client, "new@example.org")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert not VerificationCode.objects.exists()
    assert not mail.outbox


def test_an_expired_reauthentication_is_not_enough(auth_client: Client, user: User) -> None:
    reauthenticate(auth_client)
    session = auth_client.session
    records = session["account_authentication_methods"]
    records[-1]["at"] -= 301  # the window is 300 seconds
    session["account_authentication_methods"] = records
    session.save()
    response = start(auth_client, "new@example.org")
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert not VerificationCode.objects.exists()


def test_the_whole_change(fresh: Client, user: User) -> None:
    response = start(fresh, "New.Address@Example.org")
    assert response.status_code == 302 and response["Location"] == reverse("email_confirm")
    code = code_from_last_email("new.address@example.org")
    # Not changed before the code is entered.
    user.refresh_from_db()
    assert user.email == "alice@example.org"
    page = fresh.get(reverse("email_confirm")).content.decode()
    assert "new.address@example.org" in page

    done = confirm(fresh, code)
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.email == "new.address@example.org"
    assert list(
        EmailAddress.objects.filter(user=user).values_list("email", "verified", "primary")
    ) == [("new.address@example.org", True, True)]
    event = AuditEvent.objects.get(action="email.changed")
    assert event.data == {"before": "alice@example.org", "after": "new.address@example.org"}
    # The old address is told, with what to do if it was not them.
    notice = [m for m in mail.outbox if m.to == ["alice@example.org"]][-1]
    assert "Your email address was changed" in notice.subject
    assert "new.address@example.org" in notice.body
    assert "/accounts/password/reset/" in notice.body
    assert notice.alternatives and "text/html" in notice.alternatives[0][1]
    # The new address signs in; the old one no longer does.
    assert (
        Client()
        .post(reverse("account_login"), {"login": "new.address@example.org", "password": PASSWORD})
        .status_code
        == 302
    )
    assert (
        Client()
        .post(reverse("account_login"), {"login": "alice@example.org", "password": PASSWORD})
        .status_code
        == 200
    )


def test_wrong_codes_until_attempts_run_out(fresh: Client, user: User) -> None:
    start(fresh, "new@example.org")
    code = code_from_last_email("new@example.org")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(4):
        response = confirm(fresh, wrong)
        assert response.status_code == 400
        assert "That code is not right" in unescape(response.content.decode())
    last = confirm(fresh, wrong)
    assert "Too many wrong codes" in unescape(last.content.decode())
    # Now even the right code is refused.
    refused = confirm(fresh, code)
    assert "Too many wrong codes" in unescape(refused.content.decode())
    user.refresh_from_db()
    assert user.email == "alice@example.org"


def test_expired_code(fresh: Client, user: User) -> None:
    start(fresh, "new@example.org")
    code = code_from_last_email("new@example.org")
    VerificationCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = confirm(fresh, code)
    assert "This code has expired" in unescape(response.content.decode())
    user.refresh_from_db()
    assert user.email == "alice@example.org"


def test_code_cannot_be_reused(fresh: Client, user: User) -> None:
    start(fresh, "new@example.org")
    code = code_from_last_email("new@example.org")
    assert confirm(fresh, code).status_code == 302
    again = confirm(fresh, code)
    assert again.status_code == 302 and again["Location"] == reverse("email")
    assert AuditEvent.objects.filter(action="email.changed").count() == 1


def test_newer_request_kills_the_older_code(fresh: Client, user: User) -> None:
    start(fresh, "first@example.org")
    first_code = code_from_last_email("first@example.org")
    cache.clear()  # past the resend limit
    start(fresh, "second@example.org")
    second_code = code_from_last_email("second@example.org")
    if first_code != second_code:
        response = confirm(fresh, first_code)
        assert "That code is not right" in unescape(response.content.decode())
    assert confirm(fresh, second_code).status_code == 302
    user.refresh_from_db()
    assert user.email == "second@example.org"


def test_a_code_for_another_address_does_not_work(
    fresh: Client, user: User, user_factory: Any
) -> None:
    # Bob's code (for his own change) does not confirm Alice's pending change.
    bob = user_factory(username="bob")
    bob_client = Client()
    bob_client.force_login(bob, backend="django.contrib.auth.backends.ModelBackend")
    reauthenticate(bob_client)
    start(bob_client, "bob.new@example.org")
    bob_code = code_from_last_email("bob.new@example.org")
    start(fresh, "alice.new@example.org")
    alice_code = code_from_last_email("alice.new@example.org")
    if bob_code != alice_code:
        assert "That code is not right" in unescape(confirm(fresh, bob_code).content.decode())
    user.refresh_from_db()
    assert user.email == "alice@example.org"
    bob.refresh_from_db()
    assert bob.email == "bob@example.org"


def test_resend_is_rate_limited(fresh: Client) -> None:
    start(fresh, "new@example.org")
    sent = len(mail.outbox)
    response = fresh.post(reverse("email_resend"))
    assert response.status_code == 429
    assert len(mail.outbox) == sent
    cache.clear()
    assert fresh.post(reverse("email_resend")).status_code == 302
    assert len(mail.outbox) == sent + 1


def test_cancel_drops_the_pending_change(fresh: Client, user: User) -> None:
    start(fresh, "new@example.org")
    code = code_from_last_email("new@example.org")
    assert fresh.post(reverse("email_cancel")).status_code == 302
    assert not VerificationCode.objects.filter(used_at__isnull=True).exists()
    assert confirm(fresh, code)["Location"] == reverse("email")
    user.refresh_from_db()
    assert user.email == "alice@example.org"


@pytest.mark.parametrize(
    "taken", ["bob@example.org", "BOB@example.org", "bob@EXAMPLE.ORG", "bob@exampLe.org"]
)
def test_taken_address_gets_the_same_response_as_a_free_one(
    user: User, user_factory: Any, taken: str
) -> None:
    bob = user_factory(username="bob")

    def attempt(address: str) -> tuple[int, str, str]:
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        reauthenticate(client)
        cache.clear()
        response = start(client, address)
        page = client.get(response["Location"]).content.decode()
        page = page.replace(address.lower(), "ADDRESS")
        # Per-response secrets differ between any two pages; nothing else may.
        page = re.sub(r'nonce="[^"]*"', "", page)
        page = re.sub(r"[A-Za-z0-9]{64}", "TOKEN", page)
        return response.status_code, response["Location"], page

    mail.outbox.clear()
    free = attempt("free.address@example.org")
    taken_result = attempt(taken)
    assert free == taken_result
    # No code went to the taken address; its owner was told instead.
    to_bob = [m for m in mail.outbox if m.to == [bob.email]]
    assert len(to_bob) == 1 and "Someone tried to use your email address" in to_bob[0].subject
    assert not any(
        m.to == [taken.lower()] and "code" in m.subject.lower()
        for m in mail.outbox
        if taken.lower() != bob.email
    )
    bob.refresh_from_db()
    assert bob.email == "bob@example.org"


@pytest.mark.parametrize("look_alike", ["bıb@example.org", "ｂｏｂ@example.org", "BOB@example.org"])
def test_look_alikes_of_a_taken_address_can_never_be_confirmed(
    fresh: Client, user: User, user_factory: Any, look_alike: str
) -> None:
    bob = user_factory(
        username="bob", email="bib@example.org" if "ı" in look_alike else "bob@example.org"
    )
    start(fresh, look_alike)
    row = VerificationCode.objects.get()
    assert not row.deliverable
    # Whatever code is tried, nothing changes and no address belongs to two accounts.
    for guess in ("000000", "123456"):
        confirm(fresh, guess)
    user.refresh_from_db()
    bob.refresh_from_db()
    assert user.email == "alice@example.org"
    assert User.objects.filter(email_key=bob.email_key).count() == 1


def test_signup_with_a_look_alike_of_an_existing_address_is_not_a_new_account(
    client: Client, user_factory: Any
) -> None:
    user_factory(username="mike", email="mike@example.org")
    response = client.post(
        reverse("account_signup"),
        {
            "email": "mıke@example.org",
            "username": "mallory",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302  # the same outward response as a free address
    assert not User.objects.filter(username="mallory").exists()
    assert User.objects.filter(email_key="mike@example.org").count() == 1


def test_same_address_as_now_is_refused(fresh: Client) -> None:
    response = start(fresh, "ALICE@example.org")
    assert response.status_code == 400
    assert "This is already your email address." in unescape(response.content.decode())
    assert not VerificationCode.objects.exists()


def test_confirm_without_a_pending_change(auth_client: Client) -> None:
    response = auth_client.get(reverse("email_confirm"))
    assert response.status_code == 302 and response["Location"] == reverse("email")


@pytest.mark.parametrize("url_name", ["email", "email_confirm", "email_resend", "email_cancel"])
def test_csrf_on_email_writes(user: User, url_name: str) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    assert (
        client.post(reverse(url_name), {"email": "x@example.org", "code": "1"}).status_code == 403
    )
    assert not VerificationCode.objects.exists()


@pytest.mark.parametrize("mode", ["off", "read_only"])
@pytest.mark.parametrize("url_name", ["email_confirm", "email_resend", "email_cancel"])
def test_policy_on_every_email_url(
    fresh: Client, user: User, policy: Any, mode: str, url_name: str
) -> None:
    start(fresh, "new@example.org")
    code = code_from_last_email("new@example.org")
    policy(email=mode)
    response = fresh.post(reverse(url_name), {"code": code})
    assert response.status_code == (404 if mode == "off" else 403)
    user.refresh_from_db()
    assert user.email == "alice@example.org"
    assert VerificationCode.objects.filter(used_at__isnull=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_confirmations_make_one_change(user_factory: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent transactions (PostgreSQL)")
    from accounts.services.email import email_change_confirm, email_change_start

    alice = user_factory(username="alice")
    started = email_change_start(user=alice, new_email="race@example.org", request=None)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def confirm_in_thread() -> None:
        from django.db import connections

        try:
            me = User.objects.get(pk=alice.pk)
            barrier.wait(timeout=10)
            results.append(
                email_change_confirm(user=me, code=started.code, request=None).result.value
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=confirm_in_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == ["missing", "ok"]
    assert AuditEvent.objects.filter(action="email.changed").count() == 1
    assert User.objects.get(pk=alice.pk).email == "race@example.org"
    assert EmailAddress.objects.filter(user=alice).count() == 1
