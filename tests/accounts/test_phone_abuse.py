"""SMS pumping: limits per destination number, per client address and for the whole
site, besides each account's own; numbers outside SMS_ALLOWED_REGIONS, premium-rate,
shared-cost and unknown-type numbers refused before any code is made."""

from __future__ import annotations

import time
from collections.abc import Callable
from html import unescape
from typing import Any

import phonenumbers
import pytest
from django.test import Client
from django.urls import reverse

from accounts.actor import Actor
from accounts.flows import verified_change as vc
from accounts.flows.errors import RateLimited
from accounts.flows.phone_change import PHONE_CHANGE
from accounts.models import AuditEvent, User, VerificationCode
from accounts.sms.backends import locmem
from tests.conftest import reauthenticate
from tests.helpers import LimiterClock

pytestmark = pytest.mark.django_db

NUMBER = "+33612345678"
TOO_MANY = "You have tried this too often in a short time."
NOT_TEXTABLE = (
    "Premium-rate and shared-cost numbers cannot receive our codes. Enter a mobile number."
)
WRONG_REGION = "We cannot send text messages to numbers in this country."


def mobile(n: int) -> str:
    """The n-th of a run of distinct French mobile numbers."""
    return f"+336123{n:05d}"


def sent_to(number: str) -> int:
    return sum(1 for message in locmem.outbox if message.to == number)


def web_client(user: User, ip: str) -> Client:
    """A signed-in, freshly re-authenticated browser at ``ip``."""
    client = Client(REMOTE_ADDR=ip)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    reauthenticate(client)
    return client


def start(client: Client, number: str) -> Any:
    return client.post(reverse("phone"), {"phone": number})


def actor(user: User, ip: str) -> Actor:
    return Actor(user=user, surface="api", ip=ip, reauthenticated_at=time.time())


def nothing_started(user: User) -> bool:
    """No code made and no request audited for ``user``."""
    return (
        not VerificationCode.objects.filter(user=user).exists()
        and not AuditEvent.objects.filter(subject=user, action="phone.change_requested").exists()
    )


@pytest.fixture
def clock(monkeypatch: Any) -> LimiterClock:
    return LimiterClock(monkeypatch)


# --- Per destination number -------------------------------------------------------


def test_a_number_gets_three_codes_an_hour_whichever_account_asks(
    user: User, user_factory: Callable[..., User], clock: LimiterClock
) -> None:
    bob = user_factory(username="bob")
    alice_client = web_client(user, "203.0.113.1")
    bob_client = web_client(bob, "203.0.113.2")
    assert start(alice_client, NUMBER).status_code == 302
    clock.advance(31)  # past each account's one code per 30 seconds
    assert start(alice_client, NUMBER).status_code == 302
    assert start(bob_client, NUMBER).status_code == 302
    clock.advance(31)
    refused = start(bob_client, NUMBER)
    assert refused.status_code == 429
    assert TOO_MANY in unescape(refused.content.decode())
    assert sent_to(NUMBER) == 3
    # Bob's refused request left his earlier code as it was, and made no other.
    assert VerificationCode.objects.filter(user=bob).count() == 1
    assert AuditEvent.objects.filter(subject=bob, action="phone.change_requested").count() == 1
    # A refusal by the number's limit does not use up Bob's own allowance (one
    # code per 30 seconds): another number goes out at once.
    assert start(bob_client, mobile(1)).status_code == 302
    assert sent_to(mobile(1)) == 1
    # An hour after the first code, the number gets one again.
    clock.advance(3600 - 62 + 1)
    assert start(bob_client, NUMBER).status_code == 302
    assert sent_to(NUMBER) == 4


def test_a_number_gets_ten_codes_a_day(user: User, clock: LimiterClock) -> None:
    for _hour in range(10):
        vc.start(ctx=actor(user, "203.0.113.1"), spec=PHONE_CHANGE, target=NUMBER)
        clock.advance(25 * 60)  # under the hourly limits of the number and the address
    with pytest.raises(RateLimited):
        vc.start(ctx=actor(user, "203.0.113.1"), spec=PHONE_CHANGE, target=NUMBER)
    assert sent_to(NUMBER) == 10
    clock.advance(24 * 3600)
    vc.start(ctx=actor(user, "203.0.113.1"), spec=PHONE_CHANGE, target=NUMBER)
    assert sent_to(NUMBER) == 11


def test_resending_counts_against_the_number(user: User, clock: LimiterClock) -> None:
    ctx = actor(user, "203.0.113.1")
    vc.start(ctx=ctx, spec=PHONE_CHANGE, target=NUMBER)
    for _resend in range(2):
        clock.advance(31)
        assert vc.resend(ctx=ctx, spec=PHONE_CHANGE) is not None
    clock.advance(31)
    with pytest.raises(RateLimited):
        vc.resend(ctx=ctx, spec=PHONE_CHANGE)
    assert sent_to(NUMBER) == 3


# --- Per client address -----------------------------------------------------------


def test_an_address_sends_ten_codes_an_hour(
    user_factory: Callable[..., User], clock: LimiterClock
) -> None:
    users = [user_factory() for _ in range(11)]
    for n, someone in enumerate(users[:10]):
        vc.start(ctx=actor(someone, "198.51.100.7"), spec=PHONE_CHANGE, target=mobile(n))
    last = users[10]
    with pytest.raises(RateLimited):
        vc.start(ctx=actor(last, "198.51.100.7"), spec=PHONE_CHANGE, target=mobile(10))
    assert len(locmem.outbox) == 10
    assert nothing_started(last)
    # The same account and number from another address.
    vc.start(ctx=actor(last, "198.51.100.8"), spec=PHONE_CHANGE, target=mobile(10))
    assert sent_to(mobile(10)) == 1


def test_an_address_sends_thirty_codes_a_day(user: User, clock: LimiterClock) -> None:
    for n in range(30):
        vc.start(ctx=actor(user, "198.51.100.7"), spec=PHONE_CHANGE, target=mobile(n))
        clock.advance(7 * 60)  # nine an hour: under the account's and the address's hour
    with pytest.raises(RateLimited):
        vc.start(ctx=actor(user, "198.51.100.7"), spec=PHONE_CHANGE, target=mobile(30))
    assert len(locmem.outbox) == 30


def test_the_address_limit_is_a_429_on_the_page(
    user_factory: Callable[..., User], settings: Any
) -> None:
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "portal_sms_ip": "1/h/ip"}
    first = web_client(user_factory(), "198.51.100.7")
    second_user = user_factory()
    second = web_client(second_user, "198.51.100.7")
    assert start(first, mobile(1)).status_code == 302
    refused = start(second, mobile(2))
    assert refused.status_code == 429
    assert TOO_MANY in unescape(refused.content.decode())
    assert len(locmem.outbox) == 1
    assert nothing_started(second_user)


# --- Site-wide --------------------------------------------------------------------


def test_the_site_wide_hourly_cap(
    user_factory: Callable[..., User], settings: Any, clock: LimiterClock
) -> None:
    settings.SMS_SITE_HOURLY_CAP = 2
    clock.now = 3600 * 500_000 + 100  # 100 s into a clock hour
    users = [user_factory() for _ in range(3)]
    clients = [web_client(someone, f"203.0.113.{n}") for n, someone in enumerate(users)]
    assert start(clients[0], mobile(0)).status_code == 302
    assert start(clients[1], mobile(1)).status_code == 302
    refused = start(clients[2], mobile(2))
    assert refused.status_code == 429
    assert refused["Retry-After"] == "3501"
    assert TOO_MANY in unescape(refused.content.decode())
    assert len(locmem.outbox) == 2
    assert nothing_started(users[2])
    # The next clock hour sends again.
    clock.advance(3500)
    assert start(clients[2], mobile(2)).status_code == 302
    assert sent_to(mobile(2)) == 1


def test_no_site_wide_cap_with_zero(user_factory: Callable[..., User], settings: Any) -> None:
    settings.SMS_SITE_HOURLY_CAP = 0
    for n in range(3):
        vc.start(ctx=actor(user_factory(), f"203.0.113.{n}"), spec=PHONE_CHANGE, target=mobile(n))
    assert len(locmem.outbox) == 3


# --- Numbers refused --------------------------------------------------------------


def test_a_number_outside_the_allowed_regions_is_refused(
    auth_client: Client, user: User, settings: Any
) -> None:
    settings.SMS_ALLOWED_REGIONS = ["FR", "BE"]
    reauthenticate(auth_client)
    refused = start(auth_client, "+44 7400 123456")
    assert refused.status_code == 400
    assert WRONG_REGION in unescape(refused.content.decode())
    assert not locmem.outbox
    assert nothing_started(user)
    assert start(auth_client, "+32 470 12 34 56").status_code == 302
    assert sent_to("+32470123456") == 1


def test_every_region_is_allowed_by_default(auth_client: Client) -> None:
    reauthenticate(auth_client)
    assert start(auth_client, "+44 7400 123456").status_code == 302
    assert sent_to("+447400123456") == 1


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        ("08 91 12 34 56", phonenumbers.PhoneNumberType.PREMIUM_RATE),
        ("08 84 01 23 45", phonenumbers.PhoneNumberType.SHARED_COST),
        ("+44 90 1234 5678", phonenumbers.PhoneNumberType.PREMIUM_RATE),
    ],
)
def test_premium_rate_and_shared_cost_numbers_are_refused(
    auth_client: Client, user: User, number: str, kind: int
) -> None:
    assert phonenumbers.number_type(phonenumbers.parse(number, "FR")) == kind
    reauthenticate(auth_client)
    refused = start(auth_client, number)
    assert refused.status_code == 400
    assert NOT_TEXTABLE in unescape(refused.content.decode())
    assert not locmem.outbox
    assert nothing_started(user)


def test_a_number_of_unknown_type_is_refused(user: User, monkeypatch: Any) -> None:
    monkeypatch.setattr(
        phonenumbers, "number_type", lambda number: phonenumbers.PhoneNumberType.UNKNOWN
    )
    with pytest.raises(vc.InvalidTarget, match="Premium-rate and shared-cost numbers"):
        vc.start(ctx=actor(user, "203.0.113.1"), spec=PHONE_CHANGE, target=NUMBER)
    assert not locmem.outbox
    assert nothing_started(user)
