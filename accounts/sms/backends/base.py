from __future__ import annotations

import abc

from accounts.sms import SmsMessage


class BaseSmsBackend(abc.ABC):
    """A backend is built for each send and reads its settings in ``__init__``.

    Subclasses raise ``ImproperlyConfigured`` from ``__init__`` when a setting is
    missing, and ``SmsError`` from ``send`` when the message was not sent.
    """

    @abc.abstractmethod
    def send(self, message: SmsMessage) -> None: ...
