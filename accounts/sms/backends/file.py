from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from accounts.sms import SmsMessage
from accounts.sms.backends.base import BaseSmsBackend


class SmsBackend(BaseSmsBackend):
    """Writes each message to a new file in ``SMS_FILE_PATH`` (default ``BASE_DIR/var/sms``)."""

    def __init__(self, *, file_path: str | Path | None = None) -> None:
        path = file_path or settings.SMS_FILE_PATH
        if not path:
            path = Path(settings.BASE_DIR) / "var" / "sms"
        self.file_path = Path(path)
        if self.file_path.exists() and not self.file_path.is_dir():
            raise ImproperlyConfigured(f"SMS_FILE_PATH {self.file_path} is not a directory.")
        try:
            self.file_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImproperlyConfigured(
                f"Could not create the SMS_FILE_PATH directory {self.file_path}: {exc}"
            ) from exc

    def send(self, message: SmsMessage) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
        name = f"{stamp}-{secrets.token_hex(4)}.txt"
        # "x" never overwrites an earlier message.
        with (self.file_path / name).open("x", encoding="utf-8") as fh:
            fh.write(f"To: {message.to}\n\n{message.body}\n")
