"""The OAuth provider's authorize and token steps, as allauth serves them with the
portal's stricter rules around them (``accounts.oauth`` for the rest).

Authorize (``/identity/o/authorize``):
- the redirect URI must be one the app registered, character for character
  (allauth also accepts extra query parameters and any port on a loopback
  address); anything else is an error page, never a redirect;
- the code flow only (OAuth 2.1): any other ``response_type`` (the implicit
  grant's ``token``, hybrid ones) goes back to the app with
  ``unsupported_response_type``, whatever the app was registered with;
- only clients with the authorization code grant, and only the scopes of an app
  acting for a user (``USER_SCOPES``): otherwise back to the app with
  ``unauthorized_client`` or ``invalid_scope``, before any consent page;
- PKCE with S256 for every app (OAuth 2.1): a request without a
  ``code_challenge``, or with ``plain``, goes back to the app with
  ``invalid_request``;
- the user must be allowed to connect apps (policy field ``connected_apps``
  editable, settings on) and may not be impersonated by staff;
- ``prompt=none`` answers without the consent page only for scopes the user
  already gave this very app (allauth counts the user's tokens of every app),
  otherwise it goes back with ``consent_required``.

Token (``/identity/o/api/token``): only the grants the discovery document names
(authorization code, refresh token, client credentials; never the password or
device grants); client credentials for confidential clients only, with machine
scopes only (``MACHINE_SCOPES``). An authorization code works once; a second use
is refused and revokes every token the app holds for that user (RFC 6749 section
4.1.2). A user's tokens record the app among their connected apps
(``accounts.flows.connected_apps.app_connect``): the first time, the user is told,
with the address and device they allowed the app from (kept with the code when
they allowed it), not those of the app's server.

Token, revocation and introspection: a client's id and secret sent with HTTP Basic
are read the way RFC 6749 (section 2.3.1) sends them, form-urlencoded first, as
well as raw. allauth reads them raw only, so a conforming client (openid-client,
Authlib) whose secret holds any of ``-_.!~*'()`` or more was refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

from allauth.core.internal import httpkit
from allauth.idp.oidc.internal.clientkit import lookup_client
from allauth.idp.oidc.internal.oauthlib import authorization_codes
from allauth.idp.oidc.internal.oauthlib.utils import respond_html_error
from allauth.idp.oidc.models import Client, Token
from allauth.idp.oidc.views import AuthorizationView, IntrospectView, RevokeView, TokenView
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from oauthlib.oauth2.rfc6749 import errors

from accounts.actor import Actor
from accounts.flows.connected_apps import app_connect
from accounts.impersonation import is_impersonating
from accounts.models import User
from accounts.oauth import MACHINE_SCOPES, USER_SCOPES, app_tokens_revoke
from accounts.policy import get_policy
from accounts.selectors.connected_apps import SCOPE_ORDER, app_name
from accounts.web import actor_from_request, client_ip

# How long a redeemed code is remembered, to catch its replay.
USED_CODE_SECONDS = 600
# The grants the token endpoint serves (those the discovery document names).
OFFERED_GRANT_TYPES = frozenset(
    {
        Client.GrantType.AUTHORIZATION_CODE.value,
        Client.GrantType.REFRESH_TOKEN.value,
        Client.GrantType.CLIENT_CREDENTIALS.value,
    }
)


class PortalError(errors.FatalClientError):
    """An error shown on the portal's page (never sent to a redirect URI)."""

    error = "invalid_request"

    def __init__(self, description: str) -> None:
        super().__init__(description=description)


def _add_query(uri: str, params: dict[str, str]) -> str:
    return f"{uri}{'&' if '?' in uri else '?'}{urlencode(params)}"


def _redirect_error(
    redirect_uri: str, params: QueryDict, error: str, description: str
) -> HttpResponse:
    """Back to the app's (registered, exactly matched) redirect URI with an error."""
    reply = {"error": error, "error_description": description}
    state = params.get("state")
    if state:
        reply["state"] = str(state)
    response = HttpResponse(status=302)
    response["Location"] = _add_query(redirect_uri, reply)
    return response


class PortalAuthorizationView(AuthorizationView):
    template_name = "idp/oidc/authorization_form.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refused = (
            self._refuse_request(request, request.GET)
            or self._refuse_user(request)
            or self._refuse_silent(request, request.GET)
        )
        if refused is not None:
            return refused
        response = super().get(request, *args, **kwargs)
        _remember_consent(request, response)  # an app that skips the consent page
        return response

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.POST.get("request"):
            # allauth sends a POSTed authorization request back as a GET (checked there).
            return super().post(request, *args, **kwargs)
        refused = self._refuse_user(request)
        if refused is not None:
            return refused
        response = super().post(request, *args, **kwargs)
        _remember_consent(request, response)
        return response

    def get_form(self, form_class: Any = None) -> Any:
        form = super().get_form(form_class)
        # In the provider's order (allauth sorts them by their words).
        field = form.fields["scopes"]
        field.choices = sorted(
            field.choices, key=lambda choice: SCOPE_ORDER.get(choice[0], len(SCOPE_ORDER))
        )
        return form

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["app_name"] = app_name(context["client"])
        # Where the user goes back to, named on the consent page.
        redirect_uri = str(self._request_info.get("redirect_uri") or "")
        context["redirect_host"] = urlsplit(redirect_uri).netloc or redirect_uri
        return context

    def _refuse_request(self, request: HttpRequest, params: QueryDict) -> HttpResponse | None:
        client_id = params.get("client_id") or ""
        redirect_uri = params.get("redirect_uri") or ""
        client = lookup_client(client_id) if client_id and len(client_id) <= 100 else None
        if client is None:
            return None  # allauth's page says the client is unknown
        if redirect_uri not in client.get_redirect_uris():
            return respond_html_error(
                request,
                error=PortalError(
                    _(
                        "The app sent a redirect address it has not registered: nothing "
                        "was sent to it."
                    )
                ),
            )
        response_type = params.get("response_type") or ""
        if response_type != "code":
            return _redirect_error(
                redirect_uri,
                params,
                "unsupported_response_type" if response_type else "invalid_request",
                "Only the authorization code flow (response_type=code) is offered.",
            )
        if Client.GrantType.AUTHORIZATION_CODE not in client.get_grant_types():
            return _redirect_error(
                redirect_uri,
                params,
                "unauthorized_client",
                "This client may not act for a user (no authorization_code grant).",
            )
        if set((params.get("scope") or "").split()) - set(USER_SCOPES):
            return _redirect_error(
                redirect_uri,
                params,
                "invalid_scope",
                "An app acting for a user may ask only for: " + " ".join(USER_SCOPES) + ".",
            )
        challenge = params.get("code_challenge") or ""
        method = params.get("code_challenge_method") or ""
        if not challenge or method != "S256":
            return _redirect_error(
                redirect_uri,
                params,
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256.",
            )
        return None

    def _refuse_silent(self, request: HttpRequest, params: QueryDict) -> HttpResponse | None:
        """``prompt=none`` skips the consent page: only for what the user already
        allowed this app (allauth would count what they allowed any app)."""
        if "none" not in (params.get("prompt") or "").split():
            return None
        if not request.user.is_authenticated:
            return None  # allauth answers login_required
        client = lookup_client(params.get("client_id") or "")
        if client is None:
            return None
        requested = set((params.get("scope") or "").split()) or set(client.get_default_scopes())
        granted: set[str] = set()
        for token in Token.objects.valid().filter(
            user=request.user,
            client=client,
            type__in=[Token.Type.ACCESS_TOKEN, Token.Type.REFRESH_TOKEN],
        ):
            granted.update(token.get_scopes())
        if requested <= granted:
            return None
        return _redirect_error(
            params.get("redirect_uri") or "",
            params,
            "consent_required",
            "The user has not allowed this app these scopes yet.",
        )

    def _refuse_user(self, request: HttpRequest) -> HttpResponse | None:
        if not request.user.is_authenticated:
            return None  # allauth asks the visitor to sign in first
        if is_impersonating(request):
            return respond_html_error(
                request,
                error=PortalError(
                    _("Staff impersonating a user cannot allow apps to act for that user.")
                ),
            )
        if not get_policy(request).editable("connected_apps"):
            return respond_html_error(
                request,
                error=PortalError(_("Connecting apps to your account is turned off here.")),
            )
        return None


def _code_key(code: str) -> str:
    return "accounts:oauth:used-code:" + hashlib.sha256(code.encode()).hexdigest()


def _consent_key(code: str) -> str:
    return "accounts:oauth:consent:" + hashlib.sha256(code.encode()).hexdigest()


def _remember_consent(request: HttpRequest, response: HttpResponse) -> None:
    """Keeps, with the code the user's browser takes to the app, where they allowed
    it from: the app's first tokens are recorded in the user's name from there."""
    if response.status_code != 302 or not request.user.is_authenticated:
        return
    codes = parse_qs(urlsplit(response.get("Location", "")).query).get("code")
    if not codes:
        return
    ctx = actor_from_request(request)
    cache.set(
        _consent_key(codes[0]),
        {"ip": ctx.ip, "user_agent": ctx.user_agent, "language": ctx.language},
        USED_CODE_SECONDS,
    )


def _json_error(error: str, description: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": error, "error_description": description}, status=status)


def _read_form_encoded_client_credentials(request: HttpRequest) -> None:
    """HTTP Basic client credentials are form-urlencoded before they are joined
    (RFC 6749 section 2.3.1): ``-`` arrives as ``%2D``, a space as ``+``. allauth
    compares them as sent. When the credentials as sent are not a client's and
    their decoded form is, hand allauth the decoded form. The raw form is tried
    first, so a client that does not encode (``curl -u``) keeps working."""
    client_id, secret = httpkit.extract_basic_auth(request.headers)
    if not client_id or not secret:
        return
    decoded_id, decoded_secret = unquote_plus(client_id), unquote_plus(secret)
    if (decoded_id, decoded_secret) == (client_id, secret) or ":" in decoded_id:
        return
    if len(client_id) <= 100:
        client = lookup_client(client_id)
        if client is not None and client.check_secret(secret):
            return
    client = lookup_client(decoded_id) if len(decoded_id) <= 100 else None
    if client is None or not client.check_secret(decoded_secret):
        return
    raw = f"{decoded_id}:{decoded_secret}".encode()
    request.META["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(raw).decode()
    request.__dict__.pop("headers", None)  # Django caches the parsed headers


class PortalTokenView(TokenView):
    def post(self, request: HttpRequest) -> HttpResponse:
        _read_form_encoded_client_credentials(request)
        grant_type = request.POST.get("grant_type")
        if grant_type and grant_type not in OFFERED_GRANT_TYPES:
            return _json_error("unsupported_grant_type", "This grant type is not offered.")
        if grant_type == Client.GrantType.CLIENT_CREDENTIALS:
            refused = self._refuse_client_credentials(request)
            if refused is not None:
                return refused
        if grant_type == Client.GrantType.AUTHORIZATION_CODE:
            return self._code_grant(request)
        response = super().post(request)
        if grant_type == Client.GrantType.REFRESH_TOKEN and response.status_code == 200:
            self._record(request, response)
        return response

    def _refuse_client_credentials(self, request: HttpRequest) -> HttpResponse | None:
        client_id = self._client_id(request)
        client = lookup_client(client_id) if 0 < len(client_id) <= 100 else None
        if client is None:
            return None  # allauth answers invalid_client
        if client.type == Client.Type.PUBLIC:
            # RFC 6749 section 4.4: confidential clients only (allauth checks the
            # secret a public client may still have been given).
            return _json_error(
                "unauthorized_client",
                "Only a confidential client may use the client credentials grant.",
            )
        asked = set((request.POST.get("scope") or "").split())
        if Client.GrantType.CLIENT_CREDENTIALS in client.get_grant_types() and (
            asked - set(MACHINE_SCOPES)
        ):
            return _json_error(
                "invalid_scope",
                "A machine client may ask only for: " + " ".join(MACHINE_SCOPES) + ".",
            )
        return None  # allauth checks the secret, the grant type and the client's scopes

    def _code_grant(self, request: HttpRequest) -> HttpResponse:
        code = request.POST.get("code") or ""
        key = _code_key(code)
        client_id = self._client_id(request)
        pending = authorization_codes.lookup(client_id, code) if code and client_id else None
        if pending is None or not cache.add(key, {"pending": True}, USED_CODE_SECONDS):
            used = cache.get(key) if code else None
            if used and used.get("user") and used.get("client"):
                # A code used twice: whoever holds it now may have stolen it.
                user = User.objects.filter(pk=used["user"]).first()
                if user is not None:
                    app_tokens_revoke(user=user, client=used["client"])
            if used:
                return _json_error("invalid_grant", "This authorization code was already used.")
            return super().post(request)
        response = super().post(request)
        if response.status_code == 200:
            consent = cache.get(_consent_key(code))
            cache.delete(_consent_key(code))
            token = self._record(request, response, consent=consent)
            if token is not None:
                cache.set(
                    key, {"user": token.user_id, "client": token.client_id}, USED_CODE_SECONDS
                )
        return response

    @staticmethod
    def _client_id(request: HttpRequest) -> str:
        client_id, _secret = httpkit.extract_basic_auth(request.headers)
        return client_id or request.POST.get("client_id") or ""

    @staticmethod
    def _record(
        request: HttpRequest, response: HttpResponse, *, consent: dict[str, Any] | None = None
    ) -> Token | None:
        """Records the grant of the user the new tokens are for: in their name, from
        where they allowed the app (``consent``), else from the app's request."""
        try:
            access = json.loads(response.content)["access_token"]
        except (ValueError, KeyError, TypeError):
            return None
        token = (
            Token.objects.by_value(access)
            .filter(type=Token.Type.ACCESS_TOKEN)
            .select_related("user", "client")
            .first()
        )
        if token is not None and token.user is not None and token.client is not None:
            if consent:
                ctx = Actor(
                    user=token.user,
                    ip=consent.get("ip"),
                    user_agent=consent.get("user_agent") or "",
                    language=consent.get("language") or "",
                    surface="web",
                )
            else:
                ctx = Actor(
                    user=token.user,
                    ip=client_ip(request),
                    user_agent=request.headers.get("User-Agent", "")[:300],
                    surface="app",
                )
            app_connect(ctx=ctx, client=token.client, scopes=token.get_scopes())
        return token


class PortalRevokeView(RevokeView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        _read_form_encoded_client_credentials(request)
        return super().post(request, *args, **kwargs)


class PortalIntrospectView(IntrospectView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        _read_form_encoded_client_credentials(request)
        return super().post(request, *args, **kwargs)


authorization = PortalAuthorizationView.as_view()
token = PortalTokenView.as_view()
revoke = PortalRevokeView.as_view()
introspect = PortalIntrospectView.as_view()
