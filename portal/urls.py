import re

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import include, path, re_path
from django.views.generic import RedirectView, TemplateView
from django.views.i18n import JavaScriptCatalog
from django.views.static import serve

from accounts.api.api import api
from accounts.views import oauth, reauth, two_factor
from accounts.views.home import root
from accounts.views.impersonation import stop_impersonating


def serve_avatar(request: HttpRequest, path: str) -> HttpResponseBase:
    return serve(request, path, document_root=str(settings.MEDIA_ROOT))


urlpatterns = [
    path("", root, name="root"),
    path("settings/", include("accounts.urls")),
    # The portal's email page replaces allauth's (one address, changed by code).
    path(
        "accounts/email/",
        RedirectView.as_view(pattern_name="email", permanent=False),
        name="account_email",
    ),
    # The second step of sign-in (an allauth login stage).
    path("accounts/2fa/", two_factor.verify, name="two_factor_verify"),
    path(
        "accounts/2fa/webauthn/begin/",
        two_factor.StageBeginAuthentication.as_view(),
        name="two_factor_webauthn_begin",
    ),
    path(
        "accounts/2fa/webauthn/complete/",
        two_factor.StageCompleteAuthentication.as_view(),
        name="two_factor_webauthn_complete",
    ),
    path(
        "accounts/2fa/help/",
        TemplateView.as_view(template_name="accounts/two_factor_help.html"),
        name="two_factor_help",
    ),
    path(
        "webauthn/jsi18n/",
        JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
        name="webauthn_jsi18n",
    ),
    # The portal's sessions page replaces allauth's (impersonation hidden, end all).
    path(
        "accounts/sessions/",
        RedirectView.as_view(pattern_name="sessions", permanent=False),
        name="usersessions_list",
    ),
    # allauth's password re-authentication, signing out after too many wrong passwords.
    path(
        "accounts/reauthenticate/",
        reauth.PasswordReauthenticateView.as_view(),
        name="account_reauthenticate",
    ),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    # Only django-hijack's release: impersonation starts from the back-office (reason,
    # verified second factor), never from hijack's own acquire URL.
    path("hijack/", include(([path("release/", stop_impersonating, name="release")], "hijack"))),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    # The OAuth 2 / OpenID Connect provider (allauth.idp.oidc): its authorize, token,
    # revocation and introspection steps with the portal's rules
    # (accounts.views.oauth), the rest as is.
    path("identity/o/authorize", oauth.authorization),
    path("identity/o/api/token", oauth.token),
    path("identity/o/api/revoke", oauth.revoke),
    *(
        [path("identity/o/api/introspect", oauth.introspect)]
        if settings.IDP_OIDC_INTROSPECTION_ENABLED
        else []
    ),
    path("", include("allauth.idp.urls")),
]

handler403 = "accounts.views.errors.permission_denied"
# allauth's rate limits answer with this (allauth.core.ratelimit.respond_429).
handler429 = "accounts.views.errors.too_many_requests"

if settings.SERVE_MEDIA:
    _media_prefix = re.escape(settings.MEDIA_URL.lstrip("/"))
    # Avatars are files we wrote ourselves (re-encoded WebP). Production may serve
    # MEDIA_ROOT from the web server instead and turn this off.
    urlpatterns += [
        re_path(
            rf"^{_media_prefix}(?P<path>avatars/[0-9a-f]{{32}}\.webp)$",
            serve_avatar,
        )
    ]
