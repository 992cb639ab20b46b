"""Prometheus metrics at /metrics: only for a scraper with the token (anyone else
gets the site's 404), request metrics by view, and the portal's own counters moving
when their events happen."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from prometheus_client import REGISTRY

from accounts.models import User
from accounts.sms.backends import locmem
from tests.accounts.test_two_factor_signin import totp_code, wait_out_throttle, wrong_code
from tests.conftest import PASSWORD, reauthenticate
from tests.helpers import BrokenSmsBackend

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-0123456789abcdef"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(token: str | None = TOKEN, method: str = "get") -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return getattr(Client(), method)("/metrics", **headers)


@pytest.fixture
def token(settings: Any) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def same_page(response: Any) -> str:
    """A page without what changes from one request to the next (the CSP nonce,
    the CSRF token)."""
    text = response.content.decode()
    text = re.sub(r'nonce="[^"]*"', 'nonce=""', text)
    text = re.sub(r'("X-CSRFToken": |name="csrfmiddlewaretoken" value=)"[^"]*"', r'\1""', text)
    return text


def not_found_page() -> str:
    """What any unknown address answers, as if it were /metrics."""
    return same_page(Client().get("/no-such-pag")).replace("/no-such-pag", "/metrics")


# --- The endpoint ---------------------------------------------------------------------


def test_with_the_token_the_metrics_are_served(token: str) -> None:
    response = scrape()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert response["Cache-Control"] == "no-store"
    assert "# TYPE portal_sign_ins_total counter" in response.content.decode()


def test_without_a_token_it_does_not_exist(token: str) -> None:
    response = scrape(None)
    assert response.status_code == 404
    assert same_page(response) == not_found_page()
    wrong = scrape("wrong")
    assert wrong.status_code == 404
    assert same_page(wrong) == not_found_page()


def test_a_wrong_token_is_a_404(token: str) -> None:
    assert scrape("scrape-token-0123456789abcdeF").status_code == 404
    assert scrape("").status_code == 404
    assert scrape(TOKEN + "x").status_code == 404
    other_scheme = Client().get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}")
    assert other_scheme.status_code == 404


def test_without_a_configured_token_nobody_gets_it(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert scrape("").status_code == 404
    assert scrape(TOKEN).status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_other_methods_are_a_404_without_the_token(token: str) -> None:
    assert scrape(None, method="post").status_code == 404
    assert scrape("wrong", method="post").status_code == 404
    # With it, the page only reads.
    assert scrape(method="post").status_code == 405


def test_no_cookie_and_no_session(token: str, auth_client: Client) -> None:
    sessions = Session.objects.count()
    response = scrape()
    assert response.cookies == {}
    assert Session.objects.count() == sessions
    # Even from a browser holding a session.
    response = auth_client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response.cookies == {}


def test_not_redirected_to_https(settings: Any, token: str) -> None:
    settings.SECURE_SSL_REDIRECT = True
    assert scrape().status_code == 200
    # Anyone else is redirected like from any other address.
    assert scrape("wrong")["Location"] == "https://testserver/metrics"
    assert Client().get("/no-such-page")["Location"] == "https://testserver/no-such-page"


def test_request_metrics_by_view(token: str, auth_client: Client) -> None:
    assert auth_client.get(reverse("settings_home")).status_code == 200
    page = scrape().content.decode()
    assert re.search(
        r'^django_http_requests_latency_seconds_by_view_method_count\{method="GET",'
        r'view="settings_home"\} [1-9]',
        page,
        re.MULTILINE,
    )
    assert re.search(
        r'^django_http_responses_total_by_status_view_method_total\{method="GET",'
        r'status="200",view="settings_home"\} [1-9]',
        page,
        re.MULTILINE,
    )


def test_made_up_methods_do_not_make_new_series(token: str) -> None:
    Client().generic("BREW", reverse("account_login"))
    page = scrape().content.decode()
    assert 'method="BREW"' not in page
    assert 'method="<invalid method>"' in page


# --- Sign-ins ---------------------------------------------------------------------------


def sign_in(client: Client, user: User, password: str = PASSWORD) -> Any:
    return client.post(reverse("account_login"), {"login": user.username, "password": password})


def test_sign_in_success_and_failure(user: User) -> None:
    success = value("portal_sign_ins_total", outcome="success")
    failure = value("portal_sign_ins_total", outcome="failure")
    assert sign_in(Client(), user, "not the password").status_code == 200
    assert value("portal_sign_ins_total", outcome="failure") == failure + 1
    assert value("portal_sign_ins_total", outcome="success") == success
    assert sign_in(Client(), user).status_code == 302
    assert value("portal_sign_ins_total", outcome="success") == success + 1
    assert value("portal_sign_ins_total", outcome="failure") == failure + 1


def test_second_step(user: User) -> None:
    device = TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    counts = {
        outcome: value("portal_sign_ins_total", outcome=outcome)
        for outcome in ("success", "second_step_required", "second_step_success")
    }
    failed = value("portal_sign_ins_total", outcome="second_step_failure")
    client = Client()
    assert sign_in(client, user)["Location"] == reverse("two_factor_verify")
    assert client.get(reverse("two_factor_verify")).status_code == 200
    assert value("portal_sign_ins_total", outcome="second_step_required") == (
        counts["second_step_required"] + 1
    )
    assert value("portal_sign_ins_total", outcome="success") == counts["success"]

    verify = reverse("two_factor_verify")
    assert client.post(verify, {"method": "totp", "code": wrong_code(device)}).status_code == 400
    assert value("portal_sign_ins_total", outcome="second_step_failure") == failed + 1
    wait_out_throttle(device)
    assert client.post(verify, {"method": "totp", "code": totp_code(device)}).status_code == 302
    assert value("portal_sign_ins_total", outcome="second_step_success") == (
        counts["second_step_success"] + 1
    )
    assert value("portal_sign_ins_total", outcome="success") == counts["success"] + 1


# --- Codes, rate limits ---------------------------------------------------------------


def test_codes_sent_by_channel(auth_client: Client) -> None:
    emails = value("portal_one_time_codes_sent_total", channel="email", purpose="email_change")
    texts = value("portal_one_time_codes_sent_total", channel="sms", purpose="phone_change")
    reauthenticate(auth_client)
    assert auth_client.post(reverse("email"), {"email": "new@example.org"}).status_code == 302
    assert (
        value("portal_one_time_codes_sent_total", channel="email", purpose="email_change")
        == emails + 1
    )
    assert auth_client.post(reverse("phone"), {"phone": "06 12 34 56 78"}).status_code == 302
    assert len(locmem.outbox) == 1
    assert (
        value("portal_one_time_codes_sent_total", channel="sms", purpose="phone_change")
        == texts + 1
    )


def test_a_code_for_a_taken_address_is_not_counted_as_sent(
    auth_client: Client, user_factory: Any
) -> None:
    user_factory(username="bob", email="bob@example.org")
    before = value("portal_one_time_codes_sent_total", channel="email", purpose="email_change")
    reauthenticate(auth_client)
    assert auth_client.post(reverse("email"), {"email": "bob@example.org"}).status_code == 302
    after = value("portal_one_time_codes_sent_total", channel="email", purpose="email_change")
    assert after == before


def test_allauth_codes_are_counted(user: User) -> None:
    before = value("portal_one_time_codes_sent_total", channel="email", purpose="password_reset")
    response = Client().post(reverse("account_reset_password"), {"email": user.email})
    assert response.status_code == 302
    after = value("portal_one_time_codes_sent_total", channel="email", purpose="password_reset")
    assert after == before + 1


def test_portal_rate_limit_refusals_by_name(auth_client: Client) -> None:
    before = value("portal_rate_limit_refusals_total", limit="portal_email_change_code")
    reauthenticate(auth_client)
    assert auth_client.post(reverse("email"), {"email": "new@example.org"}).status_code == 302
    # One code every 30 seconds.
    assert auth_client.post(reverse("email"), {"email": "new@example.org"}).status_code == 429
    assert value("portal_rate_limit_refusals_total", limit="portal_email_change_code") == (
        before + 1
    )


def test_sign_in_lockout_is_a_refusal(user: User) -> None:
    before = value("portal_rate_limit_refusals_total", limit="login_failed")
    for _ in range(5):
        assert sign_in(Client(), user, "wrong").status_code == 200
    assert value("portal_rate_limit_refusals_total", limit="login_failed") == before
    assert sign_in(Client(), user, "wrong").status_code == 200
    assert value("portal_rate_limit_refusals_total", limit="login_failed") == before + 1


def test_allauth_page_limits_are_counted_by_name(settings: Any, user: User) -> None:
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "1/m/ip"}
    before = value("portal_rate_limit_refusals_total", limit="login")
    assert sign_in(Client(), user).status_code == 302
    refused = sign_in(Client(), user)
    assert refused.status_code == 429
    assert "Too many attempts" in refused.content.decode()
    assert value("portal_rate_limit_refusals_total", limit="login") == before + 1


# --- Tasks --------------------------------------------------------------------------------


def test_queue_depth_and_failed_results_at_scrape_time(settings: Any, token: str) -> None:
    from django_tasks_db.models import DBTaskResult

    from accounts.tasks import deliver_sms

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    deliver_sms.enqueue(to="+33612345678", body="hello")
    deliver_sms.using(run_after=timezone.now() + timezone.timedelta(hours=1)).enqueue(
        to="+33612345678", body="later"
    )
    failed = deliver_sms.enqueue(to="+33612345678", body="failed")
    DBTaskResult.objects.filter(pk=failed.id).update(status="FAILED")
    page = scrape().content.decode()
    assert 'portal_task_queue_depth{queue="default",state="due"} 1.0' in page
    assert 'portal_task_queue_depth{queue="default",state="deferred"} 1.0' in page
    assert 'portal_task_results_failed{queue="default"} 1.0' in page


def test_a_delivery_given_up_is_counted(settings: Any) -> None:
    from accounts.tasks import deliver_sms

    settings.SMS_BACKEND = f"{BrokenSmsBackend.__module__}.BrokenSmsBackend"
    before = value("portal_task_delivery_failures_total", task="deliver_sms", outcome="gave_up")
    result = deliver_sms.enqueue(to="+33612345678", body="hello")
    assert result.return_value is False
    after = value("portal_task_delivery_failures_total", task="deliver_sms", outcome="gave_up")
    assert after == before + 1
