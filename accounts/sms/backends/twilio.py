"""Twilio's Messages API over HTTPS, with the standard library only.

Settings: ``SMS_TWILIO_ACCOUNT_SID``, ``SMS_TWILIO_AUTH_TOKEN``, and ``SMS_TWILIO_FROM``
and/or ``SMS_TWILIO_MESSAGING_SERVICE_SID`` (Twilio accepts either or both);
``SMS_TWILIO_API_BASE`` (default ``https://api.twilio.com``) and ``SMS_TIMEOUT``
(seconds, default 10).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import urllib.request
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from accounts.sms import SmsError, SmsMessage
from accounts.sms.backends.base import BaseSmsBackend

logger = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.twilio.com"
E164 = re.compile(r"\+[1-9][0-9]{7,14}")
# Twilio's error bodies are small; never read an unbounded answer into memory.
MAX_RESPONSE_BYTES = 64 * 1024
MAX_PROVIDER_MESSAGE = 500


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would replay the Authorization header to wherever a redirect points;
    # Twilio's API never redirects, so a 3xx is treated as an error instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class SmsBackend(BaseSmsBackend):
    def __init__(self) -> None:
        self.account_sid: str = settings.SMS_TWILIO_ACCOUNT_SID
        self.auth_token: str = settings.SMS_TWILIO_AUTH_TOKEN
        self.from_: str = settings.SMS_TWILIO_FROM
        self.messaging_service_sid: str = settings.SMS_TWILIO_MESSAGING_SERVICE_SID
        api_base: str = settings.SMS_TWILIO_API_BASE or DEFAULT_API_BASE
        timeout = settings.SMS_TIMEOUT

        missing = [
            name
            for name, value in (
                ("SMS_TWILIO_ACCOUNT_SID", self.account_sid),
                ("SMS_TWILIO_AUTH_TOKEN", self.auth_token),
            )
            if not value
        ]
        if missing:
            raise ImproperlyConfigured(f"The Twilio SMS backend needs {', '.join(missing)}.")
        if not (self.from_ or self.messaging_service_sid):
            raise ImproperlyConfigured(
                "The Twilio SMS backend needs SMS_TWILIO_FROM or SMS_TWILIO_MESSAGING_SERVICE_SID."
            )
        parts = urlsplit(api_base)
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            raise ImproperlyConfigured("SMS_TWILIO_API_BASE must be an http(s) URL.")
        try:
            self.timeout = float(timeout)
        except (TypeError, ValueError):
            self.timeout = 0.0
        if self.timeout <= 0:
            raise ImproperlyConfigured("SMS_TIMEOUT must be a positive number of seconds.")

        self.url = (
            f"{api_base.rstrip('/')}/2010-04-01/Accounts/"
            f"{quote(self.account_sid, safe='')}/Messages.json"
        )

    def __repr__(self) -> str:
        # Never show the token, even in a debugger or a traceback with locals.
        return f"<{type(self).__module__}.SmsBackend account_sid={self.account_sid!r}>"

    def send(self, message: SmsMessage) -> None:
        if not E164.fullmatch(message.to):
            raise SmsError(
                f"{message.to!r} is not a phone number in E.164 format (+ then 8 to 15 digits)."
            )
        fields = {"To": message.to, "Body": message.body}
        if self.from_:
            fields["From"] = self.from_
        if self.messaging_service_sid:
            fields["MessagingServiceSid"] = self.messaging_service_sid
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url,
            data=urlencode(fields).encode("utf-8"),
            method="POST",
            headers={
                "Authorization": f"Basic {self._credentials()}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=self.timeout) as response:
                answer = response.read(MAX_RESPONSE_BYTES)
        except HTTPError as exc:
            # The SmsError says all there is; urllib's exception would only add noise.
            raise self._refused(exc) from None
        except (URLError, OSError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, URLError) else exc
            raise SmsError(
                self._redact(f"Could not reach Twilio: {reason or type(exc).__name__}")
            ) from None
        logger.info("SMS accepted by Twilio (sid=%s)", _json(answer).get("sid", "?"))

    def _credentials(self) -> str:
        raw = f"{self.account_sid}:{self.auth_token}".encode()
        return base64.b64encode(raw).decode("ascii")

    def _redact(self, text: str) -> str:
        for secret in (self.auth_token, self._credentials()):
            text = text.replace(secret, "[redacted]")
        return text

    def _refused(self, exc: HTTPError) -> SmsError:
        try:
            payload = _json(exc.read(MAX_RESPONSE_BYTES))
        except (OSError, http.client.HTTPException):
            payload = {}
        finally:
            exc.close()
        code = payload.get("code")
        detail = str(payload.get("message") or exc.reason or "no detail")[:MAX_PROVIDER_MESSAGE]
        text = f"Twilio refused the message (HTTP {exc.code}"
        text += f", error {code}): " if code is not None else "): "
        return SmsError(
            self._redact(text + detail),
            status=exc.code,
            code=str(code) if code is not None else None,
        )


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
