"""Junk requests for the fuzzing test (``test_fuzz.py``): what Hypothesis draws, how
it goes on the wire, and one fixed request of every kind that is always tried.

Bodies and query strings are built as bytes, not through the test client's
encoders, so they can hold what a browser never sends: bytes that are not UTF-8,
lone surrogates, a multipart body cut short or without its boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_from_bytes

from hypothesis import strategies as st

LONG = 100_000
# Values that broke or could break something: parsers (URLs, dates, numbers, regular
# expressions), databases (NUL), encoders (lone surrogates), templates.
SPECIAL_VALUES = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",  # a lone surrogate: no UTF-8 for it, sent as its surrogatepass bytes
    "x" * LONG,
    "é" * LONG,
    "(",
    "[",
    "*",
    "http://[",
    "//evil.example",
    "javascript:alert(1)",
    "-1",
    "0",
    "9" * 40,
    "1e309",
    "NaN",
    "2024-02-30",
    "%00",
    "%",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "{{7*7}}",
    "\r\n",
    "\u202e",
]
INVALID_UTF8 = [
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xe9t\xe9",
    b"\x80abc",
    b"\xf8\x88\x80\x80\x80",
]


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


any_text = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
    max_size=30,
)
values = st.one_of(
    st.sampled_from(SPECIAL_VALUES).map(_utf8),
    st.sampled_from(INVALID_UTF8),
    any_text.map(_utf8),
    st.binary(max_size=30),
    st.builds(lambda text: _utf8(text or "x") * (LONG // max(1, len(text))), any_text),
)


def _urlencode(pairs: list[tuple[bytes, bytes]], *, raw: bool = False) -> bytes:
    if raw:  # the bytes as they came on the wire, not percent-encoded
        return b"&".join(k + b"=" + v for k, v in pairs)
    return "&".join(f"{quote_from_bytes(k)}={quote_from_bytes(v)}" for k, v in pairs).encode()


BOUNDARY = "fuzzBoundary"


def _multipart(pairs: list[tuple[bytes, bytes]], *, files: bool = False) -> bytes:
    boundary = BOUNDARY.encode()
    parts = []
    for key, value in pairs:
        disposition = b'Content-Disposition: form-data; name="' + key + b'"'
        if files:
            disposition += b'; filename="' + value[:20] + b'.png"\r\nContent-Type: image/png'
        parts.append(b"--" + boundary + b"\r\n" + disposition + b"\r\n\r\n" + value + b"\r\n")
    return b"".join(parts) + b"--" + boundary + b"--\r\n"


FORM = "application/x-www-form-urlencoded"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@dataclass(frozen=True, repr=False)
class Junk:
    method: str
    query: bytes  # the query string's bytes as sent
    content_type: str = ""
    body: bytes = b""
    htmx: bool = False
    csrf_token: bool = True  # sent as a browser would, so the junk reaches the form

    def __repr__(self) -> str:
        # Hypothesis prints the failing example: the first bytes say enough.
        return (
            f"{self.method} ?{self.query[:300]!r} Content-Type: {self.content_type!r} "
            f"body ({len(self.body)} bytes): {self.body[:300]!r} "
            f"htmx={self.htmx} csrf_token={self.csrf_token}"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis's printer shows a dataclass field by field, bodies in full.
        printer.text(repr(self))


BODY_KINDS = (
    "none",
    "form",
    "form-raw",
    "multipart",
    "multipart-files",
    "no-boundary",
    "bad-boundary",
    "truncated",
    "json",
    "octets",
)
FORM_METHODS = ("GET", "POST", "POST", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")
# A list is read with GET; its bulk actions are a POST.
LIST_METHODS = ("GET", "GET", "GET", "GET", "POST", "POST", "HEAD", "PUT", "DELETE")
CHARSETS = ("", "; charset=utf-8", "; charset=latin-1", "; charset=utf-16", "; charset=nope")
BAD_BOUNDARIES = ("", '"', "x" * 200, "\x00", "a b", "é", "--")
BAD_JSON = (b"{", b"[]", b"null", b'{"id": "\\u0000"}', b"\xff", b"1" * LONG, b"[" * LONG)


@st.composite
def junk_requests(
    draw: Any,
    query_keys: list[str],
    body_keys: list[str],
    methods: tuple[str, ...] = FORM_METHODS,
) -> Junk:
    """A request with junk in the query string and, in some shape, in the body: every
    field of the form gets a junk value, and some keys come again."""

    def pairs(keys: list[str], every: bool, max_size: int) -> list[tuple[bytes, bytes]]:
        key = st.one_of(st.sampled_from(keys).map(str.encode), values.filter(lambda v: len(v) < 99))
        listed = [(k.encode(), draw(values)) for k in keys] if every else []
        return listed + draw(st.lists(st.tuples(key, values), max_size=max_size))

    query = _urlencode(pairs(query_keys, every=False, max_size=3), raw=draw(st.booleans()))
    fields = pairs(body_keys, every=True, max_size=3)
    kind = draw(st.sampled_from(BODY_KINDS))
    if kind == "none":
        content_type, body = "", b""
    elif kind in ("form", "form-raw"):
        content_type = FORM + draw(st.sampled_from(CHARSETS))
        body = _urlencode(fields, raw=kind == "form-raw")
    elif kind in ("multipart", "multipart-files"):
        content_type = MULTIPART + draw(st.sampled_from(CHARSETS))
        body = _multipart(fields, files=kind == "multipart-files")
    elif kind == "no-boundary":
        content_type, body = "multipart/form-data", _multipart(fields)
    elif kind == "bad-boundary":
        content_type = "multipart/form-data; boundary=" + draw(st.sampled_from(BAD_BOUNDARIES))
        body = _multipart(fields)
    elif kind == "truncated":
        content_type = MULTIPART
        whole = _multipart(fields or [(b"a", b"b")], files=draw(st.booleans()))
        body = whole[: draw(st.integers(min_value=1, max_value=len(whole) - 1))]
    elif kind == "json":
        content_type, body = "application/json", draw(st.sampled_from(BAD_JSON))
    else:
        content_type, body = "application/octet-stream", draw(st.binary(max_size=100))
    return Junk(
        draw(st.sampled_from(methods)),
        query,
        content_type,
        body,
        htmx=draw(st.booleans()),
        # Mostly with the token, so that the junk gets past the CSRF check to the form.
        csrf_token=draw(st.sampled_from([True, True, False])),
    )


def form_examples(keys: list[str]) -> list[Junk]:
    """One request of every kind, always tried, whatever Hypothesis draws: each field
    of the page's forms gets the junk, and ``next`` a URL that does not parse."""
    bad_next = (b"next", b"http://[")

    def every(value: bytes) -> list[tuple[bytes, bytes]]:
        return [(key.encode(), value) for key in keys if key != "next"]

    repeated = every(b"x" * LONG) + every(_utf8("\ud800")) + every(b"")
    return [
        Junk("POST", _urlencode([bad_next]), FORM, _urlencode([*every(b"a\x00b"), bad_next])),
        Junk("POST", b"", FORM + "; charset=latin-1", _urlencode(every(b"\xe9t\xe9"), raw=True)),
        Junk("POST", b"", MULTIPART, _multipart(repeated), htmx=True),
        Junk("POST", b"", "multipart/form-data", _multipart(every(b"x"))),
        Junk("POST", b"", MULTIPART, _multipart(every(b"x"), files=True)[:-30]),
        Junk("GET", _urlencode([bad_next, *every(b"\xff"), *every(_utf8("\ud800"))], raw=True)),
        Junk("PUT", b"", FORM, _urlencode(every(b"1" * 40))),
        Junk("POST", b"", "application/json", b"1" * LONG),
    ]


LIST_PARAMETERS = ["q", "o", "p", "e", "all", "_popup", "_to_field", "_changelist_filters"]
BULK_ACTION_FIELDS = ["action", "_selected_action", "index", "select_across"]


def list_examples(filters: list[str], lookups: list[str], actions: list[str]) -> list[Junk]:
    """A NUL in each filter and parameter of the list, a regular expression that does
    not compile on each text field, each bulk action on an id that is not one."""
    return [
        *(Junk("GET", _urlencode([(key.encode(), b"\x00")])) for key in filters),
        *(Junk("GET", _urlencode([(key.encode(), b"(")])) for key in lookups if "__regex" in key),
        *(
            Junk(
                "POST",
                b"",
                FORM,
                _urlencode([(b"action", action.encode()), (b"_selected_action", b"abc")]),
            )
            for action in actions
        ),
    ]
