"""Sending text messages through a pluggable backend, like Django's email backends.

The backend class is named by the ``SMS_BACKEND`` setting (a dotted path); see
``accounts.sms.backends`` for the ones provided.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from accounts.sms.backends.base import BaseSmsBackend

__all__ = ["DEFAULT_SMS_BACKEND", "SmsError", "SmsMessage", "get_backend", "send_sms"]

DEFAULT_SMS_BACKEND = "accounts.sms.backends.console.SmsBackend"


@dataclass(frozen=True, slots=True)
class SmsMessage:
    to: str
    body: str


class SmsError(Exception):
    """The message was not sent: the provider refused it or could not be reached.

    ``status`` is the HTTP status and ``code`` the provider's error code, when known.
    The message never contains credentials.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


def get_backend(backend: str | None = None) -> BaseSmsBackend:
    """Returns a new instance of ``backend`` (a dotted path), by default ``SMS_BACKEND``."""
    path: str = backend or settings.SMS_BACKEND
    klass: type[BaseSmsBackend] = import_string(path)
    return klass()


def send_sms(to: str, body: str) -> None:
    get_backend().send(SmsMessage(to=to, body=body))
