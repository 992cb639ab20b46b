"""Two app servers (gunicorn, production settings) sharing one PostgreSQL database
and one Redis, as behind a load balancer: a session made on one works on the other,
a policy change made on one is in force on the other at once, rate limits are
counted across both, and a suspension made on one ends the user's requests on the
other.

Redis is the shared one (127.0.0.1:6379) under a key prefix of this test's own;
only those keys are deleted at the end."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.policy import FIELDS
from tests.api.conftest import make_token
from tests.conftest import PASSWORD
from tests.ops.servers import (
    SECRET_KEY,
    Browser,
    Server,
    database_url_for,
    gunicorn,
    require_postgresql,
    server_password,
)

pytestmark = pytest.mark.django_db(transaction=True)

REDIS = "redis://127.0.0.1:6379/0"
LOCKED = "Too many failed login attempts. Try again later."
WRONG = "not-the-password-at-all"


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379 (the CI script starts one)")
    prefix = f"portal-ops-test-{uuid.uuid4().hex}"
    yield prefix
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


@pytest.fixture
def servers(tmp_path: Path, redis_prefix: str) -> Iterator[tuple[Server, Server]]:
    require_postgresql("several app servers share one database")
    env = {"DATABASE_URL": database_url_for(), "REDIS_URL": REDIS, "REDIS_KEY_PREFIX": redis_prefix}
    with gunicorn(tmp_path, **env) as a, gunicorn(tmp_path, **env) as b:
        yield a, b


def api(server: Server, method: str, path: str, token: str, body: object) -> tuple[int, object]:
    response = Browser().request(
        server,
        method,
        path,
        body=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    return response.status, response.json()


def test_two_servers_share_sessions_policy_limits_and_suspensions(
    servers: tuple[Server, Server], user_factory: Callable[..., User], settings: Any
) -> None:
    a, b = servers
    settings.SECRET_KEY = SECRET_KEY  # the token is keyed with the site's secret
    alice = user_factory(username="alice")
    server_password(alice, PASSWORD)
    server_password(user_factory(username="carol"), PASSWORD)
    operator = user_factory(username="op", is_staff=True, is_superuser=True)
    TOTPDevice.objects.create(user=operator, name="Staff app", confirmed=True)
    token = make_token(operator, ["management"])

    # A session made on A works on B.
    browser = Browser()
    assert browser.sign_in(a, "alice", PASSWORD).status == 302
    page = browser.get(b, "/settings/")
    assert page.status == 200
    assert "Sign out" in page.body
    assert browser.get(b, "/settings/email/").status == 200

    # A policy change made on A is in force on B at once.
    policy = {"enabled": True, **dict.fromkeys(FIELDS, "edit"), "email": "off"}
    status, body = api(a, "PUT", "/api/management/account-policy", token, policy)
    assert status == 200, body
    assert browser.get(b, "/settings/email/").status == 404
    assert browser.get(a, "/settings/email/").status == 404

    # Failed sign-ins are counted across both: 3 on A and 2 on B lock the account.
    for server in (a, a, a, b, b):
        assert "are not correct" in Browser().sign_in(server, "carol", WRONG).body
    for server in (a, b):
        locked = Browser().sign_in(server, "carol", PASSWORD)
        assert locked.status == 200
        assert LOCKED in locked.body

    # A suspension made on A ends alice's requests on B.
    status, body = api(
        a, "POST", f"/api/management/users/{alice.pk}/suspension", token, {"reason": "Spam"}
    )
    assert status == 200, body
    after = browser.get(b, "/settings/")
    assert after.status == 302
    assert after.headers["location"] == "/accounts/login/?next=/settings/"
