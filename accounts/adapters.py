from __future__ import annotations

from typing import Any, ClassVar

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.emails import email_key, normalize_email
from accounts.prepared import prepared
from accounts.usernames import normalize_username, validate_username


class AccountAdapter(DefaultAccountAdapter):
    """The portal's hooks into allauth's sign-up and sign-in flows."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return bool(settings.PORTAL_SIGNUP_OPEN)

    def is_safe_url(self, url: str) -> bool:
        """allauth's check, with a ``next`` that is not even a URL (``http://[``
        makes ``urlparse`` raise) treated as unsafe, so as no ``next`` at all."""
        try:
            return bool(super().is_safe_url(url))
        except ValueError:
            return False

    def clean_username(self, username: str, shallow: bool = False) -> str:
        """The portal's username rules (``accounts.usernames``) before allauth's own
        checks (length, uniqueness regardless of case)."""
        username = normalize_username(username)
        validate_username(username)
        return super().clean_username(username, shallow=shallow)

    def clean_email(self, email: str) -> str:
        """Stored in normal form. An address that only looks different from one an
        account already has (a dotless ı, full-width letters) is taken to be that
        address, so allauth's enumeration-safe "already exists" path handles it."""
        from accounts.models import User

        email = normalize_email(email)
        existing = (
            User.objects.filter(email_key=email_key(email)).values_list("email", flat=True).first()
        )
        return existing or email

    def pre_login(self, request: HttpRequest, user: Any, **kwargs: Any) -> HttpResponse | None:
        """An account scheduled for deletion may finish signing in (every stage,
        the second step included) to cancel it; a suspended one may not. A machine
        client's service account never signs in, whatever the way (password, code,
        linked account): it has no password, address or link to begin with, and
        this is the last door."""
        if getattr(user, "is_service_account", False):
            from allauth.account.internal.stagekit import clear_login

            clear_login(request)
            return self.respond_user_inactive(request, user)
        state = getattr(user, "state", "")
        if state == "pending_deletion":
            return None
        if state == "suspended" and user.suspended_until is not None:
            from django.utils import timezone

            if user.suspended_until <= timezone.now():
                # A timed suspension that is over ends at sign-in (and by cron).
                from accounts.flows.moderation import lift_expired_suspension
                from accounts.web import actor_from_request

                user = lift_expired_suspension(ctx=actor_from_request(request), user=user)
        return super().pre_login(request, user, **kwargs)

    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        """Failed sign-ins count against the account, not the string typed, with a
        bucket of its own for a browser the owner signed in from
        (``accounts.signin_lockout``)."""
        from accounts.signin_lockout import login_failures_key

        login = credentials.get("email") or credentials.get("username") or ""
        return login_failures_key(request, str(login))

    def _delete_login_attempts_cached_email(self, request: HttpRequest, **credentials: Any) -> None:
        """A password reset unlocks the account everywhere, not only in this browser."""
        from allauth.core import ratelimit

        from accounts.signin_lockout import account_for, account_key

        super()._delete_login_attempts_cached_email(request, **credentials)
        user = account_for(str(credentials.get("email") or ""))
        if user is not None:
            ratelimit.clear(request, action="login_failed", key=account_key(user))

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        """allauth's lockout (``login_failed``) refuses before the password is
        checked: counted as a rate-limit refusal."""
        from django.core.exceptions import ValidationError

        from accounts.metrics import rate_limit_counted

        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            rate_limit_counted("login_failed")
            raise

    def authentication_failed(self, request: HttpRequest, **credentials: Any) -> None:
        """A wrong password at sign-in (re-authentication does not come here)."""
        from accounts.flows.sessions import sign_in_refused

        super().authentication_failed(request, **credentials)
        sign_in_refused()

    # allauth's own one-time codes, by the email that carries them.
    _CODE_MAILS: ClassVar[dict[str, str]] = {
        "account/email/email_confirmation": "email_verification",
        "account/email/email_confirmation_signup": "email_verification",
        "account/email/password_reset_code": "password_reset",
        "account/email/login_code": "sign_in",
    }

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        super().send_mail(template_prefix, email, context)
        purpose = self._CODE_MAILS.get(template_prefix)
        if purpose is not None and context.get("code"):
            from accounts.metrics import code_sent_counted

            code_sent_counted(channel="email", purpose=purpose)

    def reauthenticate(self, user: AbstractBaseUser, password: str) -> bool:
        """The password check at re-authentication, outside allauth's count of
        failed sign-ins: wrong passwords there have their own limit (per user, then
        the session is signed out: ``accounts.views.reauth``), and must not also
        keep the user from signing in again."""
        from allauth.core import context
        from django.contrib.auth import authenticate

        found = authenticate(context.request, username=user.get_username(), password=password)
        return found is not None and found.pk == user.pk

    def post_login(self, request: HttpRequest, user: Any, **kwargs: Any) -> HttpResponseBase:
        """A successful sign-in makes this browser known for the account, and
        restarts the count of wrong passwords at re-authentication (over that
        limit the session was signed out: signing in again is the way back)."""
        from allauth.core import ratelimit

        from accounts.signin_lockout import device_remember

        response = super().post_login(request, user, **kwargs)
        device_remember(request, response, user)
        ratelimit.clear(request, action="reauthenticate", user=user)
        return response

    def get_login_stages(self) -> list[str]:
        """allauth's stages, then the portal's second step (before login() runs)."""
        return [*super().get_login_stages(), "accounts.stages.SecondFactorStage"]

    def get_reauthentication_methods(self, user: AbstractBaseUser | AnonymousUser) -> list[dict]:
        """The password, a second factor (django-otp devices); a user with neither
        re-authenticates with a code sent to their verified primary email."""
        methods = super().get_reauthentication_methods(user)
        if user.is_authenticated:
            from django_otp import user_has_device

            if user_has_device(user, confirmed=True):
                methods.append(
                    {
                        "id": "two_factor",
                        "description": _(
                            "Use your authenticator app, a security key or a backup code"
                        ),
                        "url": reverse("reauthenticate_two_factor"),
                    }
                )
        if user.is_authenticated and not methods:
            methods.append(
                {
                    "id": "email_code",
                    "description": _("Use a code sent to your email"),
                    "url": reverse("reauthenticate_email"),
                }
            )
        return methods


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """allauth's social adapter with the portal's clearer refusal messages."""

    def pre_social_login(self, request: HttpRequest, sociallogin: Any) -> None:
        """A link begun before the policy changed is checked again when the
        provider sends the user back (the return carries no "process" parameter)."""
        if sociallogin.state.get("process") == "connect":
            from accounts.policy import get_policy, require_editable

            require_editable(get_policy(request), "social")
        super().pre_social_login(request, sociallogin)

    def list_apps(
        self, request: HttpRequest, provider: str | None = None, client_id: str | None = None
    ) -> list[Any]:
        """allauth's list, read once per request (``_site_and_settings_apps``): the
        linked accounts page asks for the apps of every provider and of each linked
        account's (one query each otherwise). A provider's or client's apps are
        picked from it as allauth's query picks them (provider or provider id,
        client id)."""
        if request is None:
            return super().list_apps(request, provider=provider, client_id=client_id)
        apps = request.__dict__.get("_portal_social_apps")
        if apps is None:
            apps = request.__dict__["_portal_social_apps"] = _site_and_settings_apps(request)
        return [
            app
            for app in apps
            if (not provider or provider in (app.provider, app.provider_id))
            and (not client_id or app.client_id == client_id)
        ]

    def get_app(self, request: HttpRequest, provider: str, client_id: str | None = None) -> Any:
        """A provider that is installed but has no credentials (no social application)
        does not exist for visitors: its login and callback URLs answer 404."""
        from allauth.socialaccount.models import SocialApp

        try:
            return super().get_app(request, provider, client_id=client_id)
        except SocialApp.DoesNotExist as exc:
            raise Http404 from exc

    error_messages: ClassVar[dict[str, Any]] = {
        **DefaultSocialAccountAdapter.error_messages,
        "no_password": _(
            "This linked account is your only way to sign in: your account has no password. "
            "Set a password first, then unlink it."
        ),
        "no_verified_email": _(
            "Unlinking this account would leave you no way to sign in or recover your account: "
            "verify an email address and set a password first."
        ),
        "disconnect_last": _(
            "This linked account is your only way to sign in, so it cannot be unlinked."
        ),
    }


def _site_and_settings_apps(request: HttpRequest) -> list[Any]:
    """What allauth's ``list_apps(request)`` gives — the site's social apps from the
    database, grouped by provider, then those of ``SOCIALACCOUNT_PROVIDERS`` — with
    the database's read prepared (``accounts.prepared``): every page listing
    providers reads it, and the ORM's building of that join cost more than the
    rest of the linked accounts page. A test compares both lists."""
    from allauth import app_settings as allauth_settings
    from allauth.socialaccount.adapter import _build_apps_from_settings
    from django.contrib.sites.shortcuts import get_current_site

    if allauth_settings.SITES_ENABLED:
        database = _site_apps(get_current_site(request).pk)  # type: ignore[union-attr]
    else:
        database = _all_apps()
    by_provider: dict[str, list[Any]] = {}
    for app in database:
        by_provider.setdefault(app.provider, []).append(app)
    for provider, apps in _build_apps_from_settings().items():
        by_provider.setdefault(provider, []).extend(apps)
    return [app for apps in by_provider.values() for app in apps]


@prepared
def _site_apps(site_id: int) -> QuerySet[Any]:
    from allauth.socialaccount.models import SocialApp

    return SocialApp.objects.filter(sites__id=site_id).order_by("pk")


def _all_apps() -> list[Any]:
    from allauth.socialaccount.models import SocialApp

    return list(SocialApp.objects.order_by("pk"))
