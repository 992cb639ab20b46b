from __future__ import annotations

from accounts.sms import SmsMessage
from accounts.sms.backends.base import BaseSmsBackend

# Every message sent through this backend, oldest first; tests empty it.
outbox: list[SmsMessage] = []


class SmsBackend(BaseSmsBackend):
    def send(self, message: SmsMessage) -> None:
        outbox.append(message)
