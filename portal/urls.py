import re

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from django.views.static import serve

from accounts.views.home import root


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
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

handler403 = "accounts.views.errors.permission_denied"

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
