from __future__ import annotations

import re
import time
from types import SimpleNamespace
from typing import Any

from django.core import mail

_CODE_LINE = re.compile(r"^\s*([A-Z0-9]{3,8}(?:-[A-Z0-9]{3,8})*)\s*$", re.MULTILINE)


def code_from_last_email(to: str) -> str:
    """The one-time code in the newest message sent to ``to``."""
    for message in reversed(mail.outbox):
        if to in message.to:
            found = _CODE_LINE.findall(message.body)
            assert found, f"no code in the email to {to}: {message.body!r}"
            return found[-1]
    raise AssertionError(f"no email was sent to {to}")


class BrokenEmailBackend:
    """A mail server that is down."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def send_messages(self, messages: object) -> int:
        raise ConnectionRefusedError("mail server down")


class BrokenSmsBackend:
    """An SMS provider that refuses every message."""

    def send(self, message: object) -> None:
        from accounts.sms import SmsError

        raise SmsError("provider down", status=503)


class LimiterClock:
    """allauth's rate limiter (and the portal's site-wide caps) reading a clock
    that the test moves forward, so hourly and daily limits run in no time."""

    def __init__(self, monkeypatch: Any) -> None:
        self.now = time.time()
        fake = SimpleNamespace(time=lambda: self.now, monotonic=time.monotonic, sleep=time.sleep)
        monkeypatch.setattr("allauth.core.internal.ratelimit.time", fake)
        monkeypatch.setattr("accounts.limits.time", fake)

    def advance(self, seconds: float) -> None:
        self.now += seconds
