"""The API application: one ``NinjaAPI``, one OpenAPI document at
``/api/openapi.json``, its documentation page at ``/api/docs`` (served from the
portal's own static files; the page's script is a file, so the site's CSP holds)."""

from __future__ import annotations

from ninja import NinjaAPI

from accounts.api import errors

api = NinjaAPI(
    title="Account portal API",
    version="1.0",
    description=(
        "The Account API: a signed-in user's own settings, under the same field policy "
        "as the settings pages. Errors are `{code, message, details}` with stable codes; "
        "sensitive changes need an `X-Verification-Id` from `/api/verifications`."
    ),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)
errors.install(api)


def _register() -> None:
    from accounts.api.routers import ROUTERS

    for prefix, router in ROUTERS:
        api.add_router(prefix, router)


_register()
