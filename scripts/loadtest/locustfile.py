"""The virtual users of the load test (run by ``scripts/loadtest``, or by hand with
``locust -f scripts/loadtest/locustfile.py`` and the LOADTEST_* variables below).

Each virtual user has its own account (``<prefix>001``…, made beforehand by
``manage.py loadtest_users``) and loops: read a few settings pages, save a new
display name, read the profile page back; now and then sign out and in again.
Every request is recorded (start time, latency, outcome) and every display name
it tried to save (acknowledged or not) for the write check; both are written as
JSON to LOADTEST_OUT when locust quits.

Variables: LOADTEST_OUT (file), LOADTEST_PASSWORD, LOADTEST_PREFIX (``loadtest-``),
LOADTEST_RUN (a tag made unique per run, part of every saved value),
LOADTEST_WAIT (think time between two requests, ``0.5-1.5`` seconds),
LOADTEST_RELOGIN (chance per loop to sign out and in again, ``0.1``),
LOADTEST_TIMEOUT (seconds before a request counts as timed out, ``30``).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import time
from typing import Any
from urllib.parse import urlsplit

from locust import HttpUser, between, events, task
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import Timeout

OUT = os.environ.get("LOADTEST_OUT", "loadtest-records.json")
PASSWORD = os.environ.get("LOADTEST_PASSWORD", "")
PREFIX = os.environ.get("LOADTEST_PREFIX", "loadtest-")
RUN = os.environ.get("LOADTEST_RUN", "run")
WAIT = [float(v) for v in os.environ.get("LOADTEST_WAIT", "0.5-1.5").split("-", 1)]
RELOGIN = float(os.environ.get("LOADTEST_RELOGIN", "0.1"))
TIMEOUT = float(os.environ.get("LOADTEST_TIMEOUT", "30"))

LOGIN = "/accounts/login/"
LOGOUT = "/accounts/logout/"
PROFILE = "/settings/profile/"
NAME_EDIT = "/settings/profile/name/edit/"
PAGES = [
    "/settings/",
    PROFILE,
    "/settings/email/",
    "/settings/security/",
    "/settings/sessions/",
    "/settings/two-factor/",
    "/settings/tokens/",
]
READS_PER_LOOP = 3
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

# What the run saw, written at the end: [start (epoch s), latency (ms), name, outcome].
RECORDS: list[list[Any]] = []
# Per account, every value it tried to save, in order, and whether it was acknowledged.
WRITES: dict[str, list[dict[str, Any]]] = {}
STALE_READS: list[str] = []
_numbers = itertools.count(1)


def outcome(response: Any, expected: int, location: str | None = None) -> str:
    """``ok``, or what went wrong: ``timeout``, ``connection error``, ``http 503``,
    ``signed out`` (sent to the sign-in page), ``unexpected 200``…"""
    error = getattr(response, "error", None)
    if response.status_code == 0 or response.status_code is None:
        if isinstance(error, Timeout):
            return "timeout"
        if isinstance(error, RequestsConnectionError):
            return "connection error"
        return f"client error {type(error).__name__}"
    status = response.status_code
    if status >= 400:
        return f"http {status}"
    target = response.headers.get("Location", "") if 300 <= status < 400 else ""
    if expected != 302 and target and urlsplit(target).path.startswith(LOGIN):
        return "signed out"
    if status != expected:
        return f"unexpected {status}"
    if location is not None and urlsplit(target).path != location:
        return f"unexpected redirect to {urlsplit(target).path}"
    return "ok"


class AccountUser(HttpUser):
    wait_time = between(WAIT[0], WAIT[-1])

    def on_start(self) -> None:
        self.number = next(_numbers)
        self.username = f"{PREFIX}{self.number:03d}"
        self.saves = 0
        self.signed_in = False
        self.loopback = (urlsplit(self.host).hostname or "") in LOOPBACK
        WRITES.setdefault(self.username, [])

    # --- one request -------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        name: str,
        expected: int,
        location: str | None = None,
        data: dict[str, str] | None = None,
    ) -> tuple[str, Any]:
        if self.loopback:
            # A local run of the production settings has no TLS in front of it: send
            # the Secure cookies back over plain HTTP, as browsers do for localhost.
            for cookie in self.client.cookies:
                cookie.secure = False
        headers = {"Accept-Language": "en"}
        if method == "POST":
            # What a browser sends with a form: Django checks them over HTTPS.
            origin = (self.host or "").rstrip("/")
            headers["Origin"] = origin
            headers["Referer"] = origin + url
        with self.client.request(
            method,
            url,
            name=name,
            data=data,
            headers=headers,
            allow_redirects=False,
            timeout=TIMEOUT,
            catch_response=True,
        ) as response:
            result = outcome(response, expected, location)
            meta = getattr(response, "request_meta", None) or {}
            started = meta.get("start_time", time.time())
            latency = meta.get("response_time", 0.0)
            RECORDS.append([started, round(latency, 2), name, result])
            if result == "ok":
                response.success()
            else:
                response.failure(result)
        if result == "signed out":
            self.signed_in = False
        return result, response

    def _csrf(self, response: Any = None) -> str:
        token = self.client.cookies.get("csrftoken")
        if not token and response is not None:
            found = CSRF_INPUT.search(getattr(response, "text", "") or "")
            token = found.group(1) if found else ""
        return token or ""

    # --- what a user does ------------------------------------------------------------

    def sign_in(self) -> None:
        result, page = self._send("GET", LOGIN, name="sign-in page", expected=200)
        if result != "ok":
            return
        self.wait()
        result, _ = self._send(
            "POST",
            LOGIN,
            name="sign in",
            expected=302,
            data={
                "login": self.username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": self._csrf(page),
            },
        )
        self.signed_in = result == "ok"

    def sign_out(self) -> None:
        self._send(
            "POST",
            LOGOUT,
            name="sign out",
            expected=302,
            data={"csrfmiddlewaretoken": self._csrf()},
        )
        self.signed_in = False

    def save_name(self) -> None:
        self.saves += 1
        value = f"lt-{RUN}-{self.number:03d}-{self.saves}"
        write = {"value": value, "acked": False}
        # Recorded before sending: a request cut off by the end of the run or a
        # fault still counts as tried.
        WRITES[self.username].append(write)
        result, _ = self._send(
            "POST",
            NAME_EDIT,
            name="save display name",
            expected=302,
            location=PROFILE,
            data={"display_name": value, "csrfmiddlewaretoken": self._csrf()},
        )
        if result != "ok":
            return
        write["acked"] = True
        self.wait()
        result, page = self._send("GET", PROFILE, name="profile (after save)", expected=200)
        if result == "ok" and value not in page.text:
            STALE_READS.append(f"{self.username}: {value}")

    @task
    def loop(self) -> None:
        if not self.signed_in:
            self.sign_in()
            self.wait()
            if not self.signed_in:
                return
        for url in random.sample(PAGES, READS_PER_LOOP):
            self._send("GET", url, name=url, expected=200)
            self.wait()
            if not self.signed_in:
                return
        self.save_name()
        if random.random() < RELOGIN:  # noqa: S311 - not a secret
            self.wait()
            self.sign_out()


@events.quitting.add_listener
def _write_records(**kwargs: Any) -> None:
    with open(OUT, "w", encoding="utf-8") as out:
        json.dump({"records": RECORDS, "writes": WRITES, "stale_reads": STALE_READS}, out)
