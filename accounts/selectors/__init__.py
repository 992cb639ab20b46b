"""Reads shared by views, the back-office and later the API."""

from __future__ import annotations

from accounts.models import AuditEvent, User

RECENT_EVENTS = 20


def user_backoffice_overview(*, user: User) -> dict[str, object]:
    """Everything staff read on a user's page, in a fixed number of queries whatever
    the number of sessions or events (lists are bounded)."""
    from allauth.account.models import EmailAddress
    from allauth.socialaccount.models import SocialAccount
    from allauth.usersessions.models import UserSession
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from django_otp_webauthn.models import WebAuthnCredential

    from accounts.devices import describe_device
    from accounts.models import BackupCodeDevice
    from accounts.services.audit import Action

    sessions = list(UserSession.objects.filter(user=user).order_by("-last_seen_at")[:50])
    events = list(
        AuditEvent.objects.filter(subject=user)
        .select_related("actor", "impersonator")
        .order_by("-created_at", "-id")[:RECENT_EVENTS]
    )
    backup = BackupCodeDevice.objects.filter(user=user).first()
    return {
        "emails": list(EmailAddress.objects.filter(user=user).order_by("-primary", "email")),
        "linked": list(SocialAccount.objects.filter(user=user).order_by("date_joined")),
        "totp": list(TOTPDevice.objects.filter(user=user, confirmed=True)),
        "keys": list(WebAuthnCredential.objects.filter(user=user, confirmed=True)),
        "backup_remaining": (
            backup.codes.filter(used_at__isnull=True).count() if backup is not None else None
        ),
        "sessions": [
            {
                "device": describe_device(s.user_agent),
                "ip": s.ip,
                "signed_in": s.created_at,
                "last_seen": s.last_seen_at,
                "impersonation": bool((s.data or {}).get("impersonated_by")),
            }
            for s in sessions
        ],
        "events": [
            {
                "when": e.created_at,
                "label": Action.LABELS.get(e.action, e.action),
                "actor": e.actor.username if e.actor else "",
                "impersonator": e.impersonator.username if e.impersonator else "",
                "ip": e.ip_address or "",
            }
            for e in events
        ],
    }
