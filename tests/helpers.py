from __future__ import annotations

import re

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
