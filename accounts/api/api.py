"""The API application: one ``NinjaAPI``, one OpenAPI document at
``/api/openapi.json``, its documentation page at ``/api/docs`` (served from the
portal's own static files; the page's script is a file, so the site's CSP holds)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from ninja import NinjaAPI, Swagger

from accounts.api import errors


class PortalSwagger(Swagger):
    """django-ninja's Swagger UI page, whose "Try it out" always sends the
    session's CSRF token: the API's authentication is declared on its routers,
    where django-ninja's own check for the page does not look."""

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        swagger_settings = {**self.settings, "url": self.get_openapi_url(api, kwargs)}
        context = {
            "swagger_settings": json.dumps(swagger_settings, indent=1),
            "api": api,
            "add_csrf": True,
        }
        return render(request, self.template, context)


api = NinjaAPI(
    title="Account portal API",
    version="1.0",
    description=(
        "The Account API: a signed-in user's own settings, under the same field policy "
        "as the settings pages. Errors are `{code, message, details}` with stable codes; "
        "sensitive changes need an `X-Verification-Id` from `/api/verifications`."
    ),
    urls_namespace="api",
    docs=PortalSwagger(),
    docs_url="/docs",
    openapi_url="/openapi.json",
)
errors.install(api)


def _register() -> None:
    from accounts.api.routers import ROUTERS

    for prefix, router in ROUTERS:
        api.add_router(prefix, router)


_register()
