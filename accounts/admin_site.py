"""The back-office: Django's admin behind django-otp's verified-second-factor rule.

Staff sign in through the portal's sign-in (with its second step); the admin's own
login page only sends them where they need to go.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp import user_has_device
from django_otp.admin import OTPAdminSite

# The libraries' own admin pages that would change a user's identity or credentials
# without the portal's services (no proof, no audit, no notification): not shown.
# The user's page in the back-office shows these facts, and its actions change them.
HIDDEN_MODELS = frozenset(
    {
        "account.emailaddress",
        "socialaccount.socialaccount",
        "socialaccount.socialtoken",
        "otp_totp.totpdevice",
        "django_otp_webauthn.webauthncredential",
        "django_otp_webauthn.webauthnattestation",
        "django_otp_webauthn.webauthnuserhandle",
        "usersessions.usersession",
    }
)


class PortalAdminSite(OTPAdminSite):
    site_header = gettext_lazy("Account portal back-office")
    site_title = gettext_lazy("Back-office")
    index_title = gettext_lazy("Back-office")

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        models = (
            model_or_iterable
            if isinstance(model_or_iterable, list | tuple)
            else [model_or_iterable]
        )
        kept = [m for m in models if m._meta.label_lower not in HIDDEN_MODELS]
        if kept:
            super().register(kept, admin_class, **options)

    def password_change(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        """Staff change their password like everyone (audited, other sessions end)."""
        return redirect("account_change_password")

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        next_url = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index")
        user = request.user
        if not user.is_authenticated:
            return redirect(
                f"{reverse('account_login')}?{urlencode({REDIRECT_FIELD_NAME: next_url})}"
            )
        if not (user.is_active and user.is_staff):
            messages.error(request, _("The back-office is for staff only."))
            return redirect("settings_home")
        if not user_has_device(user, confirmed=True):
            messages.warning(
                request,
                _(
                    "The back-office needs two-step verification: set up an authenticator "
                    "app or a security key first."
                ),
            )
            return redirect("two_factor")
        # A second factor exists but this session has not used it (for example after
        # leaving an impersonation): verify it again.
        return redirect(
            f"{reverse('reauthenticate_two_factor')}?{urlencode({REDIRECT_FIELD_NAME: next_url})}"
        )
