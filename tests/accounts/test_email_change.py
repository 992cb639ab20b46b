from __future__ import annotations

import re
import threading
import time
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.actor import Actor, cli_actor
from accounts.flows import verified_change as vc
from accounts.flows.email_change import EMAIL_CHANGE
from accounts.flows.errors import ImpersonationRefused, ReauthenticationRequired
from accounts.flows.verified_change import InvalidTarget
from accounts.models import AccountPolicy, AuditEvent, User, VerificationCode
from accounts.policy import PolicyDenied, forget_policy
from accounts.services.codes import CodeResult, Purpose, code_consume, code_issue
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
    assert response.status_code == 302
    assert response["Location"] == reverse("email_confirm")
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
    assert notice.alternatives
    assert "text/html" in notice.alternatives[0][1]
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
    assert again.status_code == 302
    assert again["Location"] == reverse("email")
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
    assert len(to_bob) == 1
    assert "Someone tried to use your email address" in to_bob[0].subject
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
    assert response.status_code == 302
    assert response["Location"] == reverse("email")


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
    alice = user_factory(username="alice")
    vc.start(ctx=api_actor(alice), spec=EMAIL_CHANGE, target="race@example.org")
    code = code_from_last_email("race@example.org")
    barrier = threading.Barrier(2)
    results: list[str] = []

    def confirm_in_thread() -> None:
        from django.db import connections

        try:
            me = User.objects.get(pk=alice.pk)
            barrier.wait(timeout=10)
            results.append(vc.confirm(ctx=api_actor(me), spec=EMAIL_CHANGE, code=code).result.value)
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


# --- Wrong codes racing each other ------------------------------------------------


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_wrong_codes_record_at_most_the_allowance(
    user_factory: Any, settings: Any
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent transactions (PostgreSQL)")
    settings.VERIFICATION_CODE_MAX_ATTEMPTS = 5
    alice = user_factory(username="alice")
    issued = code_issue(user=alice, purpose=Purpose.EMAIL_CHANGE, target="race@example.org")
    wrong = _wrong(issued.code)
    barrier = threading.Barrier(20)
    results: list[CodeResult] = []

    def guess() -> None:
        from django.db import connections, transaction

        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                result, _row = code_consume(user=alice, purpose=Purpose.EMAIL_CHANGE, code=wrong)
            results.append(result)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 20
    assert VerificationCode.objects.get(pk=issued.row.pk).attempts == 5
    assert results.count(CodeResult.WRONG) == 4
    assert results.count(CodeResult.EXHAUSTED) == 16


def test_the_last_attempt_is_counted_once_even_from_a_stale_read(
    user: User, settings: Any, monkeypatch: Any
) -> None:
    """Two wrong codes both read the row with one attempt left: the conditional
    update lets only one of them count it, the other is told it is exhausted."""
    settings.VERIFICATION_CODE_MAX_ATTEMPTS = 5
    issued = code_issue(user=user, purpose=Purpose.EMAIL_CHANGE, target="new@example.org")
    VerificationCode.objects.filter(pk=issued.row.pk).update(attempts=4)
    stale = VerificationCode.objects.get(pk=issued.row.pk)
    wrong = _wrong(issued.code)

    first, _row = code_consume(user=user, purpose=Purpose.EMAIL_CHANGE, code=wrong)
    assert first is CodeResult.EXHAUSTED
    assert VerificationCode.objects.get(pk=stale.pk).attempts == 5
    # The second guess read the row before the first one counted (attempts == 4).
    monkeypatch.setattr("accounts.services.codes.code_pending", lambda **_kw: stale)
    assert stale.attempts == 4
    second, _row = code_consume(user=user, purpose=Purpose.EMAIL_CHANGE, code=wrong)
    assert second is CodeResult.EXHAUSTED
    assert VerificationCode.objects.get(pk=stale.pk).attempts == 5
    # Not even the right code gets through now.
    monkeypatch.undo()
    right, _row = code_consume(user=user, purpose=Purpose.EMAIL_CHANGE, code=issued.code)
    assert right is CodeResult.EXHAUSTED


# --- The flow on another surface --------------------------------------------------


def api_actor(user: User, **kwargs: Any) -> Actor:
    kwargs.setdefault("reauthenticated_at", time.time())
    return Actor(user=user, surface="api", ip="203.0.113.9", **kwargs)


def set_policy_mode(field: str, mode: str) -> None:
    AccountPolicy.objects.update_or_create(pk=1, defaults={field: mode})
    forget_policy()


def test_the_flow_changes_the_email_from_another_surface(user: User) -> None:
    ctx = api_actor(user)
    with transaction.atomic():
        started = vc.start(ctx=ctx, spec=EMAIL_CHANGE, target="  New@Example.org ")
        assert not mail.outbox  # only once the change is committed
    assert started.target == "new@example.org"
    assert vc.pending(user, EMAIL_CHANGE) == "new@example.org"
    requested = AuditEvent.objects.get(action="email.change_requested")
    assert requested.data == {"new_email": "new@example.org"}
    assert requested.ip_address == "203.0.113.9"
    code = code_from_last_email("new@example.org")

    wrong = vc.confirm(ctx=ctx, spec=EMAIL_CHANGE, code=_wrong(code))
    assert wrong.result is CodeResult.WRONG
    assert not wrong.ok
    with transaction.atomic():
        done = vc.confirm(ctx=ctx, spec=EMAIL_CHANGE, code=code)
        assert not [m for m in mail.outbox if m.to == ["alice@example.org"]]
    assert done.ok
    assert (done.before, done.after) == ("alice@example.org", "new@example.org")
    user.refresh_from_db()
    assert user.email == "new@example.org"
    assert list(
        EmailAddress.objects.filter(user=user).values_list("email", "verified", "primary")
    ) == [("new@example.org", True, True)]
    event = AuditEvent.objects.get(action="email.changed")
    assert event.actor == user
    assert event.subject == user
    assert event.data == {"before": "alice@example.org", "after": "new@example.org"}
    notice = [m for m in mail.outbox if m.to == ["alice@example.org"]][-1]
    assert "Your email address was changed" in notice.subject
    assert vc.pending(user, EMAIL_CHANGE) is None


def test_the_flow_refuses_a_read_only_email(user: User) -> None:
    set_policy_mode("email", "read_only")
    with pytest.raises(PolicyDenied):
        vc.start(ctx=api_actor(user), spec=EMAIL_CHANGE, target="new@example.org")
    assert not VerificationCode.objects.exists()
    assert not AuditEvent.objects.exists()
    assert not mail.outbox
    user.refresh_from_db()
    assert user.email == "alice@example.org"


def test_the_flow_refuses_a_confirmation_once_the_email_is_read_only(user: User) -> None:
    vc.start(ctx=api_actor(user), spec=EMAIL_CHANGE, target="new@example.org")
    code = code_from_last_email("new@example.org")
    set_policy_mode("email", "read_only")
    with pytest.raises(PolicyDenied):
        vc.confirm(ctx=api_actor(user), spec=EMAIL_CHANGE, code=code)
    user.refresh_from_db()
    assert user.email == "alice@example.org"
    assert VerificationCode.objects.get().attempts == 0


def test_the_flow_needs_a_recent_reauthentication(user: User) -> None:
    for when in (None, time.time() - 301):
        with pytest.raises(ReauthenticationRequired):
            vc.start(
                ctx=api_actor(user, reauthenticated_at=when),
                spec=EMAIL_CHANGE,
                target="new@example.org",
            )
    assert not VerificationCode.objects.exists()
    assert not mail.outbox


def test_the_flow_refuses_while_impersonating(user: User, user_factory: Any) -> None:
    staff = user_factory(username="staff", is_staff=True)
    ctx = api_actor(user, impersonator_id=staff.pk)
    with pytest.raises(ImpersonationRefused):
        vc.start(ctx=ctx, spec=EMAIL_CHANGE, target="new@example.org")
    code_issue(user=user, purpose=Purpose.EMAIL_CHANGE, target="new@example.org")
    for step in (
        lambda: vc.confirm(ctx=ctx, spec=EMAIL_CHANGE, code="123456"),
        lambda: vc.resend(ctx=ctx, spec=EMAIL_CHANGE),
        lambda: vc.cancel(ctx=ctx, spec=EMAIL_CHANGE),
    ):
        with pytest.raises(ImpersonationRefused):
            step()
    assert VerificationCode.objects.get().attempts == 0
    assert not mail.outbox


def test_the_flow_refuses_an_invalid_or_current_address(user: User) -> None:
    for target in ("not an address", "ALICE@example.org"):
        with pytest.raises(InvalidTarget):
            vc.start(ctx=api_actor(user), spec=EMAIL_CHANGE, target=target)
    assert not VerificationCode.objects.exists()


def test_a_command_needs_no_reauthentication(user: User) -> None:
    vc.start(ctx=cli_actor(user), spec=EMAIL_CHANGE, target="new@example.org")
    assert vc.confirm(
        ctx=cli_actor(user), spec=EMAIL_CHANGE, code=code_from_last_email("new@example.org")
    ).ok


def test_the_code_page_tells_the_lifetime_from_the_setting(fresh: Client, settings: Any) -> None:
    settings.VERIFICATION_CODE_TIMEOUT = 600
    start(fresh, "new@example.org")
    page = unescape(fresh.get(reverse("email_confirm")).content.decode())
    assert "It expires after 10 minutes." in page
    assert "It expires in 10 minutes." in mail.outbox[-1].body
