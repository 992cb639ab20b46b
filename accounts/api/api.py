"""The API application: one ``NinjaAPI``, one OpenAPI document at
``/api/openapi.json``, its documentation page at ``/api/docs`` (served from the
portal's own static files; the page's script is a file, so the site's CSP holds)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, URLResolver
from ninja import NinjaAPI, Swagger
from ninja.operation import PathView
from ninja.parser import Parser
from ninja.utils import normalize_path, replace_path_param_notation

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


class PortalParser(Parser):
    """JSON bodies as django-ninja reads them, refusing text that is not Unicode:
    JSON may escape half of a surrogate pair (``"\\udbc9"``), which Python keeps in a
    string that no database (nor UTF-8) can store. django-ninja answers a body its
    parser refuses with a 400 (``bad_request``)."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        data = super().parse_body(request)
        # Encoding the whole body once finds a lone surrogate anywhere in it.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
        return data


class PortalNinjaAPI(NinjaAPI):
    """django-ninja's API, where several routers may serve the same path with
    different methods (``GET /users/{id}`` in one module, ``PATCH`` in another).

    django-ninja gives each router's path its own URL pattern, so Django would
    send every method to the first router and the others would answer 405: the
    operations of one path are put behind one view instead (the OpenAPI document
    already merges them)."""

    def _get_urls(self) -> list[URLResolver | URLPattern]:
        urls = super()._get_urls()
        views: dict[str, list[PathView]] = {}
        for bound in self._get_bound_routers():
            prefix = replace_path_param_notation(bound.prefix)
            for path, path_view in bound.path_operations.items():
                route = "/".join(p for p in (prefix, replace_path_param_notation(path)) if p)
                views.setdefault(normalize_path(route).lstrip("/"), []).append(path_view)
        merged = {}
        for route, path_views in views.items():
            if len(path_views) > 1:
                one = PathView()
                one.operations = [op for view in path_views for op in view.operations]
                one.is_async = any(view.is_async for view in path_views)
                merged[route] = one.get_view()
        for url in urls:
            if isinstance(url, URLPattern) and str(url.pattern) in merged:
                url.callback = merged[str(url.pattern)]
        return urls


api = PortalNinjaAPI(
    title="Account portal API",
    version="1.0",
    description=(
        "The Account API: a signed-in user's own settings, under the same field policy "
        "as the settings pages. Errors are `{code, message, details}` with stable codes; "
        "sensitive changes need an `X-Verification-Id` from `/api/verifications`."
    ),
    urls_namespace="api",
    docs=PortalSwagger(),
    parser=PortalParser(),
    docs_url="/docs",
    openapi_url="/openapi.json",
)
errors.install(api)


def _register() -> None:
    from accounts.api.routers import ROUTERS

    for prefix, router in ROUTERS:
        api.add_router(prefix, router)


_register()
