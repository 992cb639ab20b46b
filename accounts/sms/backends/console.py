from __future__ import annotations

import sys
from typing import TextIO

from accounts.sms import SmsMessage
from accounts.sms.backends.base import BaseSmsBackend


class SmsBackend(BaseSmsBackend):
    def __init__(self, *, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, message: SmsMessage) -> None:
        # sys.stdout is looked up at send time so that a redirected stdout is honoured.
        stream = self.stream or sys.stdout
        stream.write(f"SMS to {message.to}: {message.body}\n")
        stream.flush()
