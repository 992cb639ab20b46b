"""The pieces every flow stands on: the Actor, rate limits inside flows, delivery
after commit through the task worker, the access rules and the web translation of
a flow's refusals."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from allauth.usersessions.models import UserSession
from django.core import mail
from django.db import transaction
from django.test import RequestFactory, override_settings

from accounts.access import access_own_session, access_user_for_staff
from accounts.actor import Actor, cli_actor
from accounts.flows import gate
from accounts.flows.errors import (
    AccessDenied,
    ImpersonationRefused,
    RateLimited,
    ReauthenticationRequired,
)
from accounts.limits import limit_consume
from accounts.models import AuditEvent
from accounts.notifications import notify, sms_schedule
from accounts.policy import PolicyDenied
from accounts.services.audit import audit_record
from accounts.sms.backends import locmem
from accounts.web import FlowErrorMiddleware, actor_from_request


def test_actor_target_is_the_subject_when_staff_act_on_someone(user_factory: Any) -> None:
    staff, alice = user_factory(is_staff=True), user_factory()

    assert Actor(user=staff, subject=alice, surface="admin").target == alice
    assert Actor(user=alice).target == alice
    with pytest.raises(ValueError, match="needs an account"):
        _ = cli_actor().target


def test_actor_from_request_names_the_impersonator_and_the_session(
    rf: RequestFactory, user_factory: Any
) -> None:
    staff, alice = user_factory(is_staff=True), user_factory()
    request = rf.post("/", HTTP_USER_AGENT="Firefox", REMOTE_ADDR="203.0.113.9")
    request.user = alice
    request.session = type("S", (dict,), {"session_key": "abc"})(hijack_history=[str(staff.pk)])

    ctx = actor_from_request(request)

    assert (ctx.user, ctx.impersonator_id, ctx.ip, ctx.user_agent, ctx.session_key) == (
        alice,
        staff.pk,
        "203.0.113.9",
        "Firefox",
        "abc",
    )
    assert ctx.surface == "web"
    assert ctx.reauthenticated_at is None


def test_audit_record_takes_who_and_where_from_the_actor(user_factory: Any) -> None:
    staff, alice = user_factory(is_staff=True), user_factory()
    ctx = Actor(user=alice, impersonator_id=staff.pk, ip="198.51.100.7", user_agent="UA")

    event = audit_record(ctx=ctx, action="profile.updated", subject=alice)

    event.refresh_from_db()
    assert (event.actor, event.impersonator, event.ip_address, event.user_agent) == (
        alice,
        staff,
        "198.51.100.7",
        "UA",
    )


def test_limit_consume_counts_per_user_like_the_pages(settings: Any, user_factory: Any) -> None:
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "portal_check_code": "2/m/user"}
    alice, bob = user_factory(), user_factory()
    ctx = Actor(user=alice, ip="192.0.2.1", surface="api")

    limit_consume(ctx, action="portal_check_code")
    limit_consume(ctx, action="portal_check_code")
    with pytest.raises(RateLimited):
        limit_consume(ctx, action="portal_check_code")
    # Another account has its own allowance.
    limit_consume(Actor(user=bob, ip="192.0.2.1", surface="api"), action="portal_check_code")


def test_notification_goes_out_only_after_commit(user_factory: Any) -> None:
    alice = user_factory()
    ctx = Actor(user=alice)

    with transaction.atomic():
        notify(ctx=ctx, user=alice, event="password_changed")
        assert mail.outbox == []

    assert [m.to for m in mail.outbox] == [[alice.email]]


def test_a_rolled_back_change_tells_no_one(user_factory: Any) -> None:
    alice = user_factory()

    def change_then_fail() -> None:
        with transaction.atomic():
            notify(ctx=Actor(user=alice), user=alice, event="password_changed")
            sms_schedule(to="+33612345678", body="123456")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        change_then_fail()

    assert mail.outbox == []
    assert locmem.outbox == []


def test_notification_is_rendered_in_the_users_language(user_factory: Any) -> None:
    alice = user_factory(language="fr")

    with transaction.atomic():
        notify(ctx=Actor(user=alice, language="en"), user=alice, event="password_changed")

    assert "mot de passe" in mail.outbox[0].subject.lower()


def test_a_failing_mail_server_is_logged_never_raised(
    settings: Any, user_factory: Any, caplog: Any
) -> None:
    settings.MAILERS = {"default": {"BACKEND": "tests.helpers.BrokenEmailBackend"}}
    alice = user_factory()

    with caplog.at_level(logging.WARNING, logger="accounts.tasks"), transaction.atomic():
        notify(ctx=Actor(user=alice), user=alice, event="password_changed")

    assert "could not send the password_changed notification" in caplog.text
    assert "giving up" in caplog.text  # the immediate backend cannot wait to try again


def test_a_failing_sms_provider_is_logged_never_raised(settings: Any, caplog: Any, db: Any) -> None:
    settings.SMS_BACKEND = "tests.helpers.BrokenSmsBackend"

    with caplog.at_level(logging.WARNING, logger="accounts.tasks"), transaction.atomic():
        sms_schedule(to="+33612345678", body="123456")

    assert "could not send a text message" in caplog.text


def test_someone_elses_session_is_not_found(user_factory: Any) -> None:
    alice, bob = user_factory(), user_factory()
    theirs = UserSession.objects.create(user=bob, session_key="k" * 32, ip="192.0.2.1")

    with pytest.raises(AccessDenied) as refused:
        access_own_session(Actor(user=alice), theirs.pk)

    assert refused.value.status == 404
    assert access_own_session(Actor(user=bob), theirs.pk) == theirs


def test_staff_without_the_permission_are_refused(user_factory: Any) -> None:
    staff, alice = user_factory(is_staff=True), user_factory()
    ctx = Actor(user=staff, surface="admin")

    with pytest.raises(AccessDenied) as refused:
        access_user_for_staff(ctx, alice.pk, "accounts.suspend_user")

    assert refused.value.status == 403


def test_gate_applies_policy_impersonation_and_reauthentication(
    policy: Any, user_factory: Any
) -> None:
    alice = user_factory()
    fresh = Actor(user=alice, surface="api", reauthenticated_at=time.time())

    gate.check(fresh, field="email", reauth=True, sensitive=True)
    with pytest.raises(ReauthenticationRequired):
        gate.check(Actor(user=alice, surface="api"), field="email", reauth=True)
    with pytest.raises(ImpersonationRefused):
        gate.check(Actor(user=alice, impersonator_id=1), field="email", sensitive=True)
    policy(email="read_only")
    with pytest.raises(PolicyDenied):
        gate.check(fresh, field="email")
    # Staff and commands act under their permissions, not the users' field policy.
    gate.check(Actor(user=alice, surface="admin"), field="email", reauth=True)


def test_web_answers_a_rate_limit_with_429(rf: RequestFactory) -> None:
    middleware = FlowErrorMiddleware(lambda request: None)  # type: ignore[arg-type,return-value]
    request = rf.post("/")

    response = middleware.process_exception(request, RateLimited(retry_after=30))

    assert response is not None
    assert response.status_code == 429
    assert response["Retry-After"] == "30"


@override_settings(ACCOUNT_RATE_LIMITS={"portal_check_code": "1/m/user"})
def test_rate_limit_counters_are_shared_with_the_pages(
    user_factory: Any, rf: RequestFactory
) -> None:
    from allauth.core import ratelimit

    alice = user_factory()
    request = rf.post("/", REMOTE_ADDR="192.0.2.1")
    request.user = alice
    assert ratelimit.consume(request, action="portal_check_code", user=alice)

    with pytest.raises(RateLimited):
        limit_consume(Actor(user=alice, ip="192.0.2.1"), action="portal_check_code")


def test_events_name_no_one_when_the_system_acts(user_factory: Any) -> None:
    alice = user_factory()

    audit_record(ctx=None, action="account.restored", subject=alice)

    assert AuditEvent.objects.get(action="account.restored").actor is None
