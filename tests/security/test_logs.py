"""Structured logs: the request id (X-Request-ID in and out, carried to the task
worker), one JSON line per request and per security event, and no secret in any log
record of a whole journey captured at DEBUG."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from portal.logs import RequestIdFilter, json_formatter
from tests.accounts.test_phone import code_from_sms
from tests.accounts.test_two_factor_signin import totp_code
from tests.api.conftest import ApiClient
from tests.conftest import PASSWORD
from tests.helpers import BrokenSmsBackend, code_from_last_email
from tests.oauth.conftest import machine_token, register_machine

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-long-passphrase-77"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every log record from DEBUG up, as JSON lines: the root logger at DEBUG, as
    ``DJANGO_LOG_LEVEL=DEBUG`` sets it, and the request log on (the suite quiets
    it). The loggers the settings keep at INFO whatever the level (their DEBUG
    records carry secrets) stay so: that is what is tested."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    quieted = [logging.getLogger(name) for name in ("portal.request", "portal.security")]
    levels = [(logger, logger.level) for logger in [root, *quieted]]
    for logger, _level in levels:
        logger.setLevel(logging.DEBUG)
    root.addHandler(handler)
    yield buffer
    root.removeHandler(handler)
    for logger, level in levels:
        logger.setLevel(level)


def records(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def leaks(text: str, secret: str) -> bool:
    """``secret`` appears in ``text`` as a token of its own (a 6-digit code inside a
    longer run of letters and digits, such as a request id, is not it)."""
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text) is not None


class Secrets:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, name: str, value: str | None) -> None:
        assert value, f"{name} is empty: the test would prove nothing"
        self.values[f"{name}#{len(self.values)}"] = value

    def cookies(self, client: Client) -> None:
        for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
            morsel = client.cookies.get(name)
            if morsel is not None and morsel.value:
                self.add(name, morsel.value)


def test_a_whole_journey_logs_no_secret(captured: io.StringIO, user: User) -> None:
    secrets = Secrets()
    secrets.add("password", PASSWORD)
    device = TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    client = Client()

    # Sign in: password, then the authenticator app.
    assert client.get(reverse("account_login")).status_code == 200
    secrets.cookies(client)
    response = client.post(reverse("account_login"), {"login": "alice", "password": PASSWORD})
    assert response["Location"] == reverse("two_factor_verify")
    code = totp_code(device)
    secrets.add("totp", code)
    response = client.post(reverse("two_factor_verify"), {"method": "totp", "code": code})
    assert response.status_code == 302
    secrets.cookies(client)

    # A wrong password somewhere is logged as a refusal, never as the password.
    assert (
        Client()
        .post(reverse("account_login"), {"login": "alice", "password": "wrong-Pa55word-xyz"})
        .status_code
        == 200
    )
    secrets.add("wrong password", "wrong-Pa55word-xyz")

    # Change the email address with the emailed code.
    assert client.post(reverse("account_reauthenticate"), {"password": PASSWORD}).status_code == 302
    assert client.post(reverse("email"), {"email": "new@example.org"}).status_code == 302
    code = code_from_last_email("new@example.org")
    secrets.add("email code", code)
    assert client.post(reverse("email_confirm"), {"code": code}).status_code == 302

    # Change the phone number with the texted code.
    assert client.post(reverse("phone"), {"phone": "06 12 34 56 78"}).status_code == 302
    code = code_from_sms("+33612345678")
    secrets.add("sms code", code)
    assert client.post(reverse("phone_confirm"), {"code": code}).status_code == 302
    secrets.cookies(client)

    # A personal access token, used on the Account API.
    response = client.post(
        reverse("token_create"),
        {
            "name": "Backup",
            "scopes": ["account:read"],
            "expires_at": (timezone.localdate() + timedelta(days=30)).isoformat(),
        },
    )
    assert response.status_code == 302
    shown = unescape(client.get(reverse("tokens_new")).content.decode())
    token = re.search(r'value="(pat_[^"]+)"', shown)
    assert token is not None
    secrets.add("personal access token", token.group(1))
    assert ApiClient(token.group(1)).get("/api/my-account").status_code == 200

    # An OAuth machine client's token (client credentials) on the Management API.
    machine = register_machine(scopes=["users:read"], permissions=["accounts.view_user"])
    secrets.add("client secret", machine.secret)
    reply = machine_token(machine, "users:read")
    assert reply.status_code == 200
    access_token = reply.json()["access_token"]
    secrets.add("oauth access token", access_token)
    assert ApiClient(access_token).get("/api/management/users").status_code == 200

    # Sign out.
    assert client.post(reverse("account_logout")).status_code == 302

    # Password reset by the emailed code, then sign in with the new password.
    visitor = Client()
    response = visitor.post(reverse("account_reset_password"), {"email": "new@example.org"})
    assert response.status_code == 302
    code = code_from_last_email("new@example.org")
    secrets.add("reset code", code)
    confirmed = visitor.post(response["Location"], {"code": code})
    assert confirmed.status_code == 302
    secrets.cookies(visitor)
    done = visitor.post(
        confirmed["Location"], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert done.status_code == 302
    secrets.add("new password", NEW_PASSWORD)
    assert mail.outbox

    text = captured.getvalue()
    assert leaks(f'{{"message": "{PASSWORD}"}}', PASSWORD)  # the check can see a leak
    leaked = [name for name, value in secrets.values.items() if leaks(text, value)]
    assert leaked == []

    # Not vacuous: the requests and the security events are there, with request ids.
    lines = records(captured)
    requests = [r for r in lines if r["logger"] == "portal.request"]
    assert len(requests) >= 15
    assert all(re.fullmatch(r"[0-9a-f]{32}", r["request_id"]) for r in requests)
    assert {"two_factor_verify", "email_confirm", "phone_confirm", "account_logout"} <= {
        r["view"] for r in requests
    }
    events = [r for r in lines if r["logger"] == "portal.security"]
    names = [r["event"] for r in events]
    for expected in (
        "signed_in",
        "mfa.sign_in",
        "email.changed",
        "phone.added",
        "token.created",
        "signed_out",
        "password.reset",
    ):
        assert expected in names
    assert all(r["request_id"] for r in events)
    signed_in = next(r for r in events if r["event"] == "signed_in")
    assert (signed_in["actor_id"], signed_in["subject_id"]) == (user.pk, user.pk)
    assert signed_in["surface"] == "web"
    assert signed_in["ip"] == "127.0.0.1"
    # Never the event's details (the addresses).
    assert "new@example.org" not in json.dumps(events)


def test_the_request_line(captured: io.StringIO, auth_client: Client, user: User) -> None:
    response = auth_client.get(
        reverse("token_revoke", args=[12345]) + "?secret=s3cr3t-value",
        HTTP_X_REQUEST_ID="abcdef12-3456",
    )
    assert response.status_code == 405
    line = next(r for r in records(captured) if r["logger"] == "portal.request")
    assert line == {
        "level": "INFO",
        "logger": "portal.request",
        "message": "GET settings/tokens/<int:pk>/revoke/ 405 " + f"{line['duration_ms']}ms",
        "time": line["time"],
        "request_id": "abcdef12-3456",
        "method": "GET",
        "route": "settings/tokens/<int:pk>/revoke/",
        "view": "token_revoke",
        "status": 405,
        "duration_ms": line["duration_ms"],
        "user_id": user.pk,
        "ip": "127.0.0.1",
    }
    text = captured.getvalue()
    assert "12345" not in text
    assert "s3cr3t-value" not in text


def test_health_probes_are_logged_with_their_route(captured: io.StringIO) -> None:
    assert Client().get("/health/live").status_code == 200
    line = next(r for r in records(captured) if r["logger"] == "portal.request")
    assert (line["route"], line["status"]) == ("health/live", 200)


def test_a_path_is_never_logged(captured: io.StringIO) -> None:
    """Django's own "Not Found: <path>" record is written with the route instead."""
    assert Client().get("/accounts/password/reset/key/1-secret-key-abc/?q=x").status_code == 404
    text = captured.getvalue()
    assert "secret-key-abc" not in text
    not_found = next(r for r in records(captured) if r["logger"] == "django.request")
    assert not_found["message"] == "Not Found: <unresolved>"
    assert re.fullmatch(r"[0-9a-f]{32}", not_found["request_id"])


# --- X-Request-ID ------------------------------------------------------------------------


def test_a_valid_request_id_is_kept() -> None:
    response = Client().get(reverse("account_login"), HTTP_X_REQUEST_ID="Trace-0123456789")
    assert response["X-Request-ID"] == "Trace-0123456789"


@pytest.mark.parametrize(
    "given",
    ["short", "x" * 65, "has space 123", "inject\\nline", "semi;colon12", "ünïcode-1234", ""],
)
def test_an_unsafe_request_id_is_replaced(given: str) -> None:
    response = Client().get(reverse("account_login"), HTTP_X_REQUEST_ID=given)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_every_response_gets_a_fresh_id() -> None:
    first = Client().get(reverse("account_login"))["X-Request-ID"]
    second = Client().get("/no-such-page")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert re.fullmatch(r"[0-9a-f]{32}", second)
    assert first != second


# --- The task worker -------------------------------------------------------------------------


def run_queued_tasks() -> None:
    """What ``manage.py db_worker`` does with each task waiting in the database."""
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    worker = Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    )
    for result in DBTaskResult.objects.ready():
        result.claim(worker.worker_id)
        worker.run_task(result)


def test_a_task_logs_with_the_request_id_that_scheduled_it(
    captured: io.StringIO, settings: Any, auth_client: Client
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.SMS_BACKEND = f"{BrokenSmsBackend.__module__}.BrokenSmsBackend"
    assert (
        auth_client.post(reverse("account_reauthenticate"), {"password": PASSWORD}).status_code
        == 302
    )
    response = auth_client.post(
        reverse("phone"), {"phone": "06 12 34 56 78"}, HTTP_X_REQUEST_ID="phone-request-42"
    )
    assert response.status_code == 302
    # Waiting in the queue: nothing ran during the request.
    assert not [r for r in records(captured) if r["logger"] == "accounts.tasks"]

    run_queued_tasks()
    lines = records(captured)
    failed = [r for r in lines if r["logger"] == "accounts.tasks"]
    assert [(r["message"], r["request_id"]) for r in failed] == [
        ("could not send a text message (attempt 1)", "phone-request-42")
    ]
    finished = [r for r in lines if r["logger"] == "django.tasks" and "SUCCESSFUL" in r["message"]]
    assert finished
    assert {r["request_id"] for r in finished} == {"phone-request-42"}
    # The next attempt carries it too.
    from django_tasks_db.models import DBTaskResult

    retry = DBTaskResult.objects.get(status="READY")
    assert retry.args_kwargs["kwargs"]["request_id"] == "phone-request-42"
    # And the worker is back to no request once the task is over.
    logging.getLogger("accounts.tasks").warning("after")
    assert records(captured)[-1]["request_id"] == ""
