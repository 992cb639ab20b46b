"""The OpenAPI document and the documentation page (the browser test is in
``tests/e2e/test_api_docs.py``)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_document_is_openapi_3_1_with_every_way_in() -> None:
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.1")
    schemes = document["components"]["securitySchemes"]
    # Personal access tokens, OAuth apps' access tokens and the management
    # credentials are all HTTP bearer schemes (allauth's own class would publish an
    # apiKey without a name, which is not valid OpenAPI).
    for name in ("TokenAuth", "OAuthAppToken", "ManagementTokenAuth"):
        assert schemes[name]["type"] == "http", name
        assert schemes[name]["scheme"] == "bearer", name
        assert schemes[name]["description"], name
    assert schemes["SessionAuth"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": settings.SESSION_COOKIE_NAME,
    }


def test_every_operation_is_signed_in_and_declares_its_errors() -> None:
    document = Client().get("/api/openapi.json").json()
    operations = [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    assert operations
    for label, operation in operations:
        if " /api/management/" in label:
            # Staff management tokens only: a session is refused there.
            assert operation["security"] == [{"ManagementTokenAuth": []}], label
            assert operation["tags"] == ["management"], label
        else:
            assert {"TokenAuth": []} in operation["security"], label
            assert {"OAuthAppToken": []} in operation["security"], label
            assert {"SessionAuth": []} in operation["security"], label
        for status in ("400", "401", "403", "422", "429"):
            assert status in operation["responses"], (label, status)
        for status, answer in operation["responses"].items():
            if int(status) >= 400:
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (label, status)


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            if found.get("src"):
                self.urls.append(found["src"] or "")
            elif found.get("type") != "application/json":
                self.inline_scripts += 1
        elif tag in {"link", "img", "iframe"}:
            url = found.get("href") or found.get("src")
            if url:
                self.urls.append(url)
        if "style" in found:
            self.inline_scripts += 1


def test_the_docs_page_needs_no_cdn(client: Client) -> None:
    response = client.get("/api/docs")
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    assert "script-src 'self'" in csp
    page = _Assets()
    page.feed(response.content.decode())
    assert page.inline_scripts == 0
    scripts = [url for url in page.urls if url.endswith(".js")]
    assert any("swagger-ui-bundle" in url for url in scripts)
    for url in page.urls:
        assert url.startswith(settings.STATIC_URL), url
        assert finders.find(url.removeprefix(settings.STATIC_URL)), url


def test_the_docs_page_is_the_same_for_a_signed_in_user(auth_client: Client, user: Any) -> None:
    # Its "Try it out" sends the CSRF token of the session (read from the page).
    response = auth_client.get("/api/docs")
    assert response.status_code == 200
    assert b'data-api-csrf="true"' in response.content
    assert b'data-csrf-token=""' not in response.content
