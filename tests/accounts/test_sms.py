from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.sms import DEFAULT_SMS_BACKEND, SmsError, SmsMessage, get_backend, send_sms
from accounts.sms.backends import console, file, locmem, twilio

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
FROM = "+15005550006"
SERVICE_SID = "MG0123456789abcdef0123456789abcdef"
TO = "+33612345678"


@pytest.fixture(autouse=True)
def _empty_outbox() -> Iterator[None]:
    locmem.outbox.clear()
    yield
    locmem.outbox.clear()


# --- Local backends -------------------------------------------------------------------


def test_console_backend_prints_the_message(settings: Any, capsys: Any) -> None:
    settings.SMS_BACKEND = "accounts.sms.backends.console.SmsBackend"

    send_sms(TO, "Your code is 123456")

    assert capsys.readouterr().out == f"SMS to {TO}: Your code is 123456\n"


def test_file_backend_writes_one_new_file_per_message(settings: Any, tmp_path: Path) -> None:
    settings.SMS_BACKEND = "accounts.sms.backends.file.SmsBackend"
    settings.SMS_FILE_PATH = str(tmp_path / "sms")

    send_sms(TO, "first")
    send_sms("+15005550001", "second\nline")

    files = sorted((tmp_path / "sms").iterdir())
    assert len(files) == 2
    contents = {f.read_text(encoding="utf-8") for f in files}
    assert contents == {f"To: {TO}\n\nfirst\n", "To: +15005550001\n\nsecond\nline\n"}


def test_file_backend_defaults_to_var_sms_under_base_dir(settings: Any, tmp_path: Path) -> None:
    settings.BASE_DIR = tmp_path
    settings.SMS_FILE_PATH = ""

    file.SmsBackend().send(SmsMessage(to=TO, body="hello"))

    (written,) = (tmp_path / "var" / "sms").iterdir()
    assert written.read_text(encoding="utf-8") == f"To: {TO}\n\nhello\n"


def test_file_backend_refuses_a_path_that_is_a_file(settings: Any, tmp_path: Path) -> None:
    target = tmp_path / "not-a-dir"
    target.write_text("")
    settings.SMS_FILE_PATH = str(target)

    with pytest.raises(ImproperlyConfigured):
        file.SmsBackend()


def test_locmem_backend_collects_messages_in_order(settings: Any) -> None:
    settings.SMS_BACKEND = "accounts.sms.backends.locmem.SmsBackend"

    send_sms(TO, "one")
    send_sms("+15005550001", "two")

    assert locmem.outbox == [
        SmsMessage(to=TO, body="one"),
        SmsMessage(to="+15005550001", body="two"),
    ]


def test_send_sms_uses_the_backend_named_by_the_setting(settings: Any, capsys: Any) -> None:
    settings.SMS_BACKEND = "accounts.sms.backends.console.SmsBackend"
    send_sms(TO, "to the console")
    settings.SMS_BACKEND = "accounts.sms.backends.locmem.SmsBackend"
    send_sms(TO, "to the outbox")

    assert capsys.readouterr().out == f"SMS to {TO}: to the console\n"
    assert locmem.outbox == [SmsMessage(to=TO, body="to the outbox")]


def test_console_is_the_default_backend(settings: Any) -> None:
    # portal/settings.py declares SMS_BACKEND with the console backend as its default.
    settings.SMS_BACKEND = DEFAULT_SMS_BACKEND

    assert type(get_backend()) is console.SmsBackend


def test_sms_message_is_immutable() -> None:
    message = SmsMessage(to=TO, body="x")

    with pytest.raises(AttributeError):
        message.body = "y"  # type: ignore[misc]


# --- Twilio, against a local fake server ----------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]


@dataclass
class FakeTwilio:
    url: str = ""
    status: int = 201
    payload: Any = field(
        default_factory=lambda: {"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued"}
    )
    extra_headers: dict[str, str] = field(default_factory=dict)
    hang: threading.Event | None = None
    requests: list[Recorded] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8")
        fake.requests.append(
            Recorded(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                form=parse_qs(body, keep_blank_values=True),
            )
        )
        if fake.hang is not None:
            fake.hang.wait(5)
        raw = fake.payload if isinstance(fake.payload, bytes) else json.dumps(fake.payload).encode()
        self.send_response(fake.status)
        for name, value in fake.extra_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST  # a followed redirect would arrive as a GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    fake: FakeTwilio


@pytest.fixture
def fake_twilio(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    # A proxy from the environment would send 127.0.0.1 traffic elsewhere.
    for var in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = FakeTwilio(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield server.fake
    finally:
        if server.fake.hang is not None:
            server.fake.hang.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def twilio_settings(settings: Any, fake_twilio: FakeTwilio) -> Any:
    settings.SMS_BACKEND = "accounts.sms.backends.twilio.SmsBackend"
    settings.SMS_TWILIO_ACCOUNT_SID = SID
    settings.SMS_TWILIO_AUTH_TOKEN = TOKEN
    settings.SMS_TWILIO_FROM = FROM
    settings.SMS_TWILIO_MESSAGING_SERVICE_SID = ""
    settings.SMS_TWILIO_API_BASE = fake_twilio.url
    settings.SMS_TIMEOUT = 5
    return settings


def _assert_no_secret(exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    basic = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    rendered = "".join(traceback.format_exception(exc)) + repr(exc) + caplog.text
    assert TOKEN not in rendered
    assert basic not in rendered


def test_twilio_posts_the_message_with_basic_auth(
    twilio_settings: Any, fake_twilio: FakeTwilio
) -> None:
    send_sms(TO, "Code: 123 456 & ça marche")

    (request,) = fake_twilio.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    scheme, _, encoded = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"{SID}:{TOKEN}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form == {"To": [TO], "From": [FROM], "Body": ["Code: 123 456 & ça marche"]}


def test_twilio_uses_the_messaging_service_instead_of_from(
    twilio_settings: Any, fake_twilio: FakeTwilio
) -> None:
    twilio_settings.SMS_TWILIO_FROM = ""
    twilio_settings.SMS_TWILIO_MESSAGING_SERVICE_SID = SERVICE_SID

    send_sms(TO, "hello")

    (request,) = fake_twilio.requests
    assert request.form == {"To": [TO], "MessagingServiceSid": [SERVICE_SID], "Body": ["hello"]}


def test_twilio_sends_both_sender_fields_when_both_are_set(
    twilio_settings: Any, fake_twilio: FakeTwilio
) -> None:
    twilio_settings.SMS_TWILIO_MESSAGING_SERVICE_SID = SERVICE_SID

    send_sms(TO, "hello")

    (request,) = fake_twilio.requests
    assert request.form["From"] == [FROM]
    assert request.form["MessagingServiceSid"] == [SERVICE_SID]


def test_twilio_accepts_any_2xx(twilio_settings: Any, fake_twilio: FakeTwilio) -> None:
    fake_twilio.status = 200
    fake_twilio.payload = b"not json"

    send_sms(TO, "hello")

    assert len(fake_twilio.requests) == 1


def test_twilio_error_carries_the_provider_code_but_not_the_token(
    twilio_settings: Any, fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_twilio.status = 400
    fake_twilio.payload = {
        "code": 21211,
        "message": "Invalid 'To' Phone Number",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }

    with pytest.raises(SmsError) as excinfo:
        send_sms(TO, "hello")

    assert "21211" in str(excinfo.value)
    assert "Invalid 'To' Phone Number" in str(excinfo.value)
    assert excinfo.value.code == "21211"
    assert excinfo.value.status == 400
    _assert_no_secret(excinfo.value, caplog)


def test_twilio_error_redacts_a_token_echoed_by_the_provider(
    twilio_settings: Any, fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    fake_twilio.status = 401
    fake_twilio.payload = {"code": 20003, "message": f"Authenticate {SID}:{TOKEN}"}

    with pytest.raises(SmsError) as excinfo:
        send_sms(TO, "hello")

    assert "20003" in str(excinfo.value)
    assert "[redacted]" in str(excinfo.value)
    _assert_no_secret(excinfo.value, caplog)


def test_twilio_server_error_without_json_raises(
    twilio_settings: Any, fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    fake_twilio.status = 503
    fake_twilio.payload = b"<html>upstream down</html>"

    with pytest.raises(SmsError) as excinfo:
        send_sms(TO, "hello")

    assert "HTTP 503" in str(excinfo.value)
    assert excinfo.value.code is None
    _assert_no_secret(excinfo.value, caplog)


def test_twilio_does_not_follow_redirects(twilio_settings: Any, fake_twilio: FakeTwilio) -> None:
    # Following would replay the Authorization header to the Location.
    fake_twilio.status = 307
    fake_twilio.extra_headers = {"Location": f"{fake_twilio.url}/elsewhere"}

    with pytest.raises(SmsError, match="HTTP 307"):
        send_sms(TO, "hello")

    assert [r.path for r in fake_twilio.requests] == [f"/2010-04-01/Accounts/{SID}/Messages.json"]


def test_twilio_unreachable_server_raises(
    twilio_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # A bound socket that never listens: connections are refused, and no other
    # process can take the port during the test.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        twilio_settings.SMS_TWILIO_API_BASE = f"http://127.0.0.1:{sock.getsockname()[1]}"

        with pytest.raises(SmsError, match="Could not reach Twilio") as excinfo:
            send_sms(TO, "hello")

    _assert_no_secret(excinfo.value, caplog)


def test_twilio_timeout_raises(twilio_settings: Any, fake_twilio: FakeTwilio) -> None:
    fake_twilio.hang = threading.Event()
    twilio_settings.SMS_TIMEOUT = 0.3

    with pytest.raises(SmsError, match="Could not reach Twilio"):
        send_sms(TO, "hello")

    assert len(fake_twilio.requests) == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SMS_TWILIO_ACCOUNT_SID", ""),
        ("SMS_TWILIO_AUTH_TOKEN", ""),
        ("SMS_TWILIO_API_BASE", "ftp://127.0.0.1/"),
        ("SMS_TIMEOUT", 0),
    ],
)
def test_twilio_missing_or_bad_setting_is_improperly_configured(
    twilio_settings: Any, fake_twilio: FakeTwilio, name: str, value: Any
) -> None:
    setattr(twilio_settings, name, value)

    with pytest.raises(ImproperlyConfigured, match=name) as excinfo:
        send_sms(TO, "hello")

    assert TOKEN not in str(excinfo.value)
    assert fake_twilio.requests == []


def test_twilio_needs_a_sender(twilio_settings: Any, fake_twilio: FakeTwilio) -> None:
    twilio_settings.SMS_TWILIO_FROM = ""
    twilio_settings.SMS_TWILIO_MESSAGING_SERVICE_SID = ""

    with pytest.raises(ImproperlyConfigured, match="SMS_TWILIO_FROM"):
        twilio.SmsBackend()

    assert fake_twilio.requests == []


def test_twilio_repr_hides_the_token(twilio_settings: Any) -> None:
    assert TOKEN not in repr(twilio.SmsBackend())


@pytest.mark.parametrize(
    "to",
    [
        "0612345678",
        "33612345678",
        "+33 6 12 34 56 78",
        "+1234567",
        "+1234567890123456",
        "+0612345678",
        "+٣٣٦١٢٣٤٥٦٧٨",
        f"{TO}\n",
        "",
    ],
)
def test_twilio_rejects_a_non_e164_recipient_without_a_request(
    twilio_settings: Any, fake_twilio: FakeTwilio, to: str
) -> None:
    with pytest.raises(SmsError, match=r"E\.164"):
        send_sms(to, "hello")

    assert fake_twilio.requests == []


@pytest.mark.parametrize("to", ["+12345678", "+123456789012345"])
def test_twilio_accepts_e164_length_bounds(
    twilio_settings: Any, fake_twilio: FakeTwilio, to: str
) -> None:
    send_sms(to, "hello")

    assert [r.form["To"] for r in fake_twilio.requests] == [[to]]
