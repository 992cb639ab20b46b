"""Reading uploads sent with PUT (the API's avatar): Django reads a multipart body
only for POST (https://code.djangoproject.com/ticket/12635). django-ninja's own
fix reads every non-JSON PUT, PATCH and DELETE of the whole site and lets a broken
body raise; this one reads only the API's PUT uploads and answers a body it cannot
read with a 400."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.deprecation import MiddlewareMixin

from accounts.api.errors import API_PREFIX, error_response


class ApiUploadsMiddleware(MiddlewareMixin):
    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        if (
            request.method != "PUT"
            or not request.path_info.startswith(API_PREFIX)
            or not (request.content_type or "").startswith("multipart/")
        ):
            return None
        request.method = "POST"
        request.META["REQUEST_METHOD"] = "POST"
        try:
            request._load_post_and_files()
        except (MultiPartParserError, ValueError, UnicodeDecodeError):
            from django.utils.translation import gettext as _

            return error_response(400, "bad_request", _("The request could not be read."))
        finally:
            request.META["REQUEST_METHOD"] = "PUT"
            request.method = "PUT"
        return None
