"""Bad input of any shape is answered 4xx (or ignored), never with a server error."""

from __future__ import annotations

from typing import Any

import pytest
from allauth.socialaccount.providers import registry
from django.test import Client
from django.urls import reverse

from accounts.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

BAD_NEXT = "http://["


# --- Social providers installed without credentials --------------------------


def _provider_urls() -> list[tuple[str, str]]:
    """The login and callback URL of every installed provider that needs an app."""
    urls = []
    for provider_class in registry.get_class_list():
        if not provider_class.uses_apps:
            continue
        kwargs = {"provider_id": "oidc"} if provider_class.id == "openid_connect" else {}
        for kind in ("login", "callback"):
            name = f"{provider_class.id}_{kind}"
            urls.append((name, reverse(name, kwargs=kwargs)))
    return urls


def test_every_installed_provider_is_checked() -> None:
    assert {name for name, _url in _provider_urls()} == {
        f"{provider}_{kind}"
        for provider in ("github", "google", "microsoft", "openid_connect")
        for kind in ("login", "callback")
    }


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize(("name", "url"), _provider_urls())
def test_a_provider_without_credentials_is_not_found(method: str, name: str, url: str) -> None:
    client = Client(raise_request_exception=False)
    response = getattr(client, method)(url, {"code": "x", "state": "y"})
    assert response.status_code == 404, name


# --- ?next=http://[ on allauth's pages ---------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("account_login", {"login": "nobody", "password": "wrong-password-1234"}, 200),
        ("account_signup", {"email": "new@example.org"}, 200),
        ("account_reset_password", {"email": "nobody@example.org"}, 302),
        ("account_logout", {}, 302),
    ],
)
def test_an_unparsable_next_is_ignored_on_anonymous_pages(
    name: str, data: dict[str, str], status: int
) -> None:
    url = reverse(name)
    plain = Client()
    expected_get = plain.get(url)
    expected_post = plain.post(url, data)
    assert expected_post.status_code == status

    client = Client(raise_request_exception=False)
    response = client.get(url, {"next": BAD_NEXT})
    assert response.status_code == expected_get.status_code
    response = client.post(f"{url}?next=http://%5B", {**data, "next": BAD_NEXT})
    assert response.status_code == status
    if status == 302:
        assert response["Location"] == expected_post["Location"]


def test_an_unparsable_next_after_signing_in_goes_to_the_default_page(user: User) -> None:
    client = Client(raise_request_exception=False)
    response = client.post(
        f"{reverse('account_login')}?next=http://%5B",
        {"login": user.username, "password": PASSWORD, "next": BAD_NEXT},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("settings_home")


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_unparsable_next_on_logout_when_signed_in(auth_client: Client, method: str) -> None:
    auth_client.raise_request_exception = False
    response = getattr(auth_client, method)(reverse("account_logout"), {"next": BAD_NEXT})
    if method == "get":
        assert response.status_code == 200
    else:
        assert response.status_code == 302
        assert response["Location"] == reverse("account_login")


def test_an_unparsable_next_on_reauthentication(auth_client: Client) -> None:
    auth_client.raise_request_exception = False
    url = reverse("account_reauthenticate")
    assert auth_client.get(url, {"next": BAD_NEXT}).status_code == 200
    response = auth_client.post(f"{url}?next=http://%5B", {"password": PASSWORD, "next": BAD_NEXT})
    assert response.status_code == 302
    assert response["Location"] == reverse("settings_home")


def test_an_unparsable_htmx_current_url_returns_to_the_request_path(auth_client: Client) -> None:
    """The portal's own re-authentication redirect for htmx reads HX-Current-URL."""
    auth_client.raise_request_exception = False
    response = auth_client.get(
        reverse("profile_username_edit"), headers={"HX-Request": "true", "HX-Current-URL": BAD_NEXT}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"].endswith("?next=%2Fsettings%2Fprofile%2Fusername%2Fedit%2F")


# --- Forms posted in a charset other than UTF-8 --------------------------------


def _post_sign_in(client: Client, body: bytes, content_type: str) -> Any:
    return client.generic("POST", reverse("account_login"), body, content_type=content_type)


def _csrf_client() -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.get(reverse("account_login"))
    return client, client.cookies["csrftoken"].value


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded; charset=latin-1",
        "application/x-www-form-urlencoded; charset=foo",
        "multipart/form-data; boundary=xx; charset=latin-1",
    ],
)
def test_a_form_in_another_charset_is_a_bad_request(user: User, content_type: str) -> None:
    client, token = _csrf_client()
    if content_type.startswith("multipart"):
        body = (
            b'--xx\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n'
            + token.encode()
            + b'\r\n--xx\r\nContent-Disposition: form-data; name="login"\r\n\r\n\xe9\r\n--xx--\r\n'
        )
    else:
        body = b"csrfmiddlewaretoken=" + token.encode() + b"&login=\xe9&password=x"
    response = _post_sign_in(client, body, content_type)
    assert response.status_code == 400
    assert b"<h1>Bad request</h1>" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=UTF-8",
        "application/x-www-form-urlencoded; charset=utf8",
        "application/x-www-form-urlencoded; charset=us-ascii",
    ],
)
def test_a_form_in_utf8_signs_in(user: User, content_type: str) -> None:
    client, token = _csrf_client()
    body = f"csrfmiddlewaretoken={token}&login={user.username}&password={PASSWORD}".encode()
    response = _post_sign_in(client, body, content_type)
    assert response.status_code == 302
    assert response["Location"] == reverse("settings_home")
    assert client.session["_auth_user_id"] == str(user.pk)


# --- Requests Django cannot build -------------------------------------------------------


def _environ(query: str, content_type: str) -> dict[str, Any]:
    import io

    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/accounts/login/",
        "QUERY_STRING": query,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": "0",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
    }


@pytest.mark.parametrize(
    ("query", "content_type"),
    [
        ("&".join(["a=1"] * 1001), "text/plain; charset=utf-8"),
        ("", "text/plain; " + "x" * 10_001),
    ],
    ids=["too many query fields", "huge content type"],
)
def test_a_request_django_cannot_build_is_a_400(db: Any, query: str, content_type: str) -> None:
    from portal.wsgi import application

    statuses: list[str] = []
    body = b"".join(
        application(_environ(query, content_type), lambda status, headers: statuses.append(status))
    )

    assert statuses == ["400 Bad Request"]
    assert b"<html" in body


def test_the_test_client_builds_the_same_requests(client: Any, db: Any) -> None:
    response = client.post(
        "/accounts/login/?" + "&".join(["a=1"] * 1001),
        data="x",
        content_type="text/plain; charset=utf-8",
    )

    assert response.status_code == 400
