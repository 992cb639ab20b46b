"""A real app server (gunicorn, production settings) whose PostgreSQL goes away for a
few seconds: its requests get the 503 page meanwhile, and once the database is back
the same server process serves them again, without a restart.

The outage is a TCP proxy in front of PostgreSQL that closes every connection and
refuses new ones (the shared PostgreSQL itself is never stopped)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from accounts.models import User
from tests.conftest import PASSWORD
from tests.ops.servers import (
    Browser,
    CuttableProxy,
    database_url_for,
    gunicorn,
    require_postgresql,
    server_password,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_outage_is_503_and_the_server_recovers_by_itself(
    user_factory: Callable[..., User], tmp_path: Path
) -> None:
    require_postgresql("the outage is cut between the app server and PostgreSQL's pool")
    server_password(user_factory(username="alice"), PASSWORD)
    with (
        CuttableProxy(target_port=5432) as proxy,
        gunicorn(
            tmp_path,
            DATABASE_URL=database_url_for(proxy.port),
            # A request waits this long for a connection before its 503.
            DATABASE_POOL_TIMEOUT="2",
        ) as server,
    ):
        browser = Browser()
        assert browser.sign_in(server, "alice", PASSWORD).status == 302
        assert browser.get(server, "/settings/").status == 200
        workers = server.worker_pids()

        proxy.cut()
        # The session is read in a middleware; the page of the sign-in form needs
        # no session but reads the policy and the site from the database.
        for path in ("/settings/", "/accounts/login/"):
            response = browser.get(server, path)
            assert response.status == 503, (path, response.body[:300])
            assert response.headers["retry-after"] == "5"
            assert "<h1>Briefly unavailable</h1>" in response.body
        api = browser.get(server, "/api/my-account", Accept="application/json")
        assert api.status == 503
        assert api.json()["code"] == "service_unavailable"

        proxy.restore()
        # The pool reconnects in the background (with its back-off): the first
        # answer that is not a 503 is the page, and every one after it.
        deadline = time.monotonic() + 60
        while (response := browser.get(server, "/settings/")).status == 503:
            assert time.monotonic() < deadline, "the server did not recover within 60 s"
            time.sleep(0.5)
        assert response.status == 200, response.body[:300]
        assert "Sign out" in response.body  # the same session, still signed in
        for _ in range(5):
            assert browser.get(server, "/settings/").status == 200
        assert server.worker_pids() == workers  # no worker was restarted
    log = server.output()
    # Each 503 is one line, before the URL is resolved (it names no route, and never
    # the path); Django's own error line for it, with the traceback, is left out.
    assert log.count("Database unavailable, answered 503 to GET <unresolved>") >= 1
    assert "Internal Server Error" not in log
    assert "Traceback" not in log
    assert "/settings/" not in log
