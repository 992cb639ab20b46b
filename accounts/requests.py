"""The request class the portal's WSGI handler builds (``portal/wsgi.py``).

Django reads the query string while it is still building the request: setting the
encoding from the Content-Type's charset checks ``hasattr(self, "GET")``, which
parses ``QUERY_STRING``. A query string of more fields than
``DATA_UPLOAD_MAX_NUMBER_FIELDS`` (``TooManyFieldsSent``) or an unreadable
Content-Type header (``BadRequest``) then raises before any middleware runs, and the
client gets an empty 500. Such a request is built again without its query string
and body, and marked ``malformed``; ``FormCharsetMiddleware`` answers it with a 400.
"""

from __future__ import annotations

import io
from typing import Any

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest


class PortalWSGIRequest(WSGIRequest):
    malformed = False

    def __init__(self, environ: dict[str, Any]) -> None:
        try:
            super().__init__(environ)
        except (BadRequest, SuspiciousOperation):
            bare = {
                **environ,
                "QUERY_STRING": "",
                "CONTENT_TYPE": "",
                "CONTENT_LENGTH": "0",
                "wsgi.input": io.BytesIO(),
            }
            super().__init__(bare)
            self.malformed = True


class PortalWSGIHandler(WSGIHandler):
    request_class = PortalWSGIRequest
