"""Everything the portal holds about a user, as one JSON document (no secrets)."""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from allauth.usersessions.models import UserSession
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.devices import describe_device
from accounts.models import AuditEvent, BackupCodeDevice, PersonalAccessToken, User
from accounts.selectors.connected_apps import user_connected_apps
from accounts.selectors.mfa import passkeys_for
from accounts.services.audit import Action
from accounts.services.impersonation import SUPPORT_EVENTS

# Keys a provider may put in a linked account's data that are credentials, not facts.
_SECRET_KEYS = {"access_token", "refresh_token", "id_token", "token", "secret", "code"}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def _clean(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _clean(v) for k, v in data.items() if k.lower() not in _SECRET_KEYS}
    if isinstance(data, list):
        return [_clean(v) for v in data]
    return data


def user_data(*, user: User) -> dict[str, Any]:
    backup = BackupCodeDevice.objects.filter(user=user).first()
    return {
        "exported_at": timezone.now().isoformat(),
        "profile": {
            "username": user.username,
            "display_name": user.display_name,
            "given_name": user.first_name,
            "family_name": user.last_name,
            "language": user.language,
            "time_zone": user.time_zone,
            "has_avatar": bool(user.avatar),
            "date_joined": _iso(user.date_joined),
            "last_login": _iso(user.last_login),
            "state": user.state,
        },
        "emails": [
            {"email": e.email, "verified": e.verified, "primary": e.primary}
            for e in EmailAddress.objects.filter(user=user).order_by("-primary", "email")
        ],
        "phone": {"number": user.phone, "verified": user.phone_verified} if user.phone else None,
        "linked_accounts": [
            {
                "provider": a.provider,
                "uid": a.uid,
                "date_joined": _iso(a.date_joined),
                "last_login": _iso(a.last_login),
                "data": _clean(a.extra_data),
            }
            for a in SocialAccount.objects.filter(user=user).order_by("date_joined")
        ],
        "second_factors": {
            "authenticator_apps": [
                {"name": d.name, "added": _iso(d.created_at), "last_used": _iso(d.last_used_at)}
                for d in TOTPDevice.objects.filter(user=user, confirmed=True)
            ],
            "security_keys": [
                {"name": k.name, "added": _iso(k.created_at), "last_used": _iso(k.last_used_at)}
                for k in passkeys_for(user)
            ],
            "backup_codes": {
                "created": _iso(backup.created_at) if backup else None,
                "unused": backup.codes.filter(used_at__isnull=True).count() if backup else 0,
            },
        },
        "sessions": [
            {
                "device": describe_device(s.user_agent),
                "ip_address": s.ip,
                "signed_in": _iso(s.created_at),
                "last_seen": _iso(s.last_seen_at),
            }
            for s in UserSession.objects.filter(user=user).order_by("-last_seen_at")
            if not (s.data or {}).get("impersonated_by")
        ],
        # Names and dates only: a token's secret is never stored, its hash never shown.
        "api_tokens": [
            {
                "name": t.name,
                "prefix": t.prefix,
                "scopes": t.scopes,
                "created": _iso(t.created_at),
                "expires": _iso(t.expires_at),
                "last_used": _iso(t.last_used_at),
                "revoked": _iso(t.revoked_at),
            }
            for t in PersonalAccessToken.objects.filter(user=user).order_by("-created_at")
        ],
        # The apps the user allowed: what they may do and when; never their tokens.
        "connected_apps": [
            {
                "name": str(app.name),
                "client_id": app.client_id,
                "scopes": [shown.scope for shown in app.scopes],
                "permissions": [str(shown.label) for shown in app.scopes],
                "first_used": _iso(app.first_used_at),
                "last_used": _iso(app.last_used_at),
            }
            for app in user_connected_apps(user=user)
        ],
        "security_activity": [
            {
                "time": _iso(e.created_at),
                "action": e.action,
                "description": str(Action.LABELS.get(e.action, e.action)),
                # Support's own address and device are not the user's data.
                "ip_address": None if e.action in SUPPORT_EVENTS else e.ip_address,
                "device": _("Support")
                if e.action in SUPPORT_EVENTS
                else (describe_device(e.user_agent) if e.user_agent else ""),
            }
            for e in AuditEvent.objects.filter(subject=user).order_by("-created_at", "-id")
        ],
    }
