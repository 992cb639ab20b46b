"""Impersonation: staff viewing an account as its owner, under guard rails.

Who may start it (``impersonation_check``), and the audit events of its start and
end, whatever ended it: the staff member, the time limit, signing out, or the
staff member losing their access (suspended, deleted, no longer staff).
Switching the session's identity is django-hijack's (``accounts.impersonation``).

Links: a staff member may ask, through the Management API, for a single-use link
(``impersonation_link_create``) that starts the same impersonation in their own
browser. The rules are checked when the link is made, and again when it is opened
and used (``impersonation_link_check`` / ``impersonation_link_use``): the account
may have been suspended, or the staff member lost the permission, since.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from accounts.access import access_user_for_staff
from accounts.actor import Actor
from accounts.flows.errors import AccessDenied, FlowError
from accounts.models import ImpersonationTicket, User
from accounts.services import impersonation as tickets
from accounts.services.audit import Action, audit_record

PERMISSION = "accounts.impersonate_user"


def can_impersonate(*, hijacker: User | None, hijacked: User | None) -> bool:
    """The rule: an active staff member with the permission, on an active account
    that is neither theirs, nor staff, nor a superuser's, nor a machine client's
    service account (staff already; checked in words too)."""
    if hijacked is None or hijacker is None or hijacker.pk == hijacked.pk:
        return False
    return bool(
        hijacker.is_active
        and hijacker.is_staff
        and hijacker.has_perm(PERMISSION)
        and hijacked.is_active
        and getattr(hijacked, "state", "active") == "active"
        and not hijacked.is_staff
        and not hijacked.is_superuser
        and not getattr(hijacked, "is_service_account", False)
    )


def impersonation_check(*, ctx: Actor, user_pk: object, second_factor_verified: bool) -> User:
    """The account staff may start impersonating, or a refusal: 403 without the
    permission or a verified second factor, 404 for no such account."""
    target = access_user_for_staff(ctx, user_pk, PERMISSION)
    if not second_factor_verified:
        raise AccessDenied(_("Verify your second factor first."), staff=True)
    if not can_impersonate(hijacker=ctx.user, hijacked=target):
        raise AccessDenied(_("You may not impersonate this account."), staff=True)
    return target


def active_staff(pk: object) -> User | None:
    """The staff member behind an impersonation, if they may still act as staff."""
    try:
        staff_pk = int(pk)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return User.objects.filter(pk=staff_pk, is_active=True, is_staff=True).first()


def impersonation_started(
    *, ctx: Actor, staff: User, user: User, reason: str, link: int | None = None
) -> None:
    """``link``: the id of the link it started from (``impersonation_link_use``)."""
    data: dict[str, object] = {"reason": reason, "staff": staff.username}
    if link is not None:
        data["link"] = link
    audit_record(
        ctx=ctx,
        action=Action.IMPERSONATION_STARTED,
        subject=user,
        actor=staff,
        data=data,
    )


def impersonation_ended(
    *,
    ctx: Actor,
    user: User,
    staff_id: int | None,
    reason: str,
    expired: bool = False,
    signed_out: bool = False,
    staff_gone: bool = False,
) -> None:
    """Records the end. ``staff_gone``: the staff member was deleted or lost their
    access, and the session was signed out."""
    staff = User.objects.filter(pk=staff_id).first() if staff_id is not None else None
    data: dict[str, object] = {
        "staff": staff.username if staff else "",
        "expired": expired,
        "reason": reason,
    }
    if signed_out:
        data["signed_out"] = True
    if staff_gone:
        data["staff_gone"] = True
    with transaction.atomic():
        audit_record(
            ctx=ctx,
            action=Action.IMPERSONATION_ENDED,
            subject=user,
            actor=staff,
            impersonator_id=staff.pk if staff else None,
            data=data,
        )


# --- Links --------------------------------------------------------------------------


class LinkGone(FlowError):
    """The staff member's own link, used already or expired."""

    code = "impersonation.link_gone"
    status = 410

    def __init__(self) -> None:
        super().__init__(
            _("This impersonation link was used already or has expired. Ask for a new one.")
        )


MACHINE_NO_LINK = _(
    "A machine client cannot ask for an impersonation link: the link works only in the "
    "back-office browser of the staff member who asks for it, and a service account never "
    "signs in. Ask with a staff member's own management token."
)


@transaction.atomic
def impersonation_link_create(*, ctx: Actor, user_pk: object, reason: str) -> tickets.NewTicket:
    """A single-use link, valid ``TICKET_LIFETIME``, that starts impersonating the
    account in ``ctx.user``'s back-office browser; audited with the reason.

    The rules are the back-office's, checked now. The second factor: a Management
    API caller holds a token only staff with a second factor may make and use; the
    browser that opens the link must have verified it in its own session. A machine
    client (its service account) has no browser to open it in: refused (403)."""
    if ctx.user is not None and ctx.user.is_service_account:
        raise AccessDenied(MACHINE_NO_LINK, staff=True)
    target = impersonation_check(ctx=ctx, user_pk=user_pk, second_factor_verified=True)
    staff = ctx.user
    assert staff is not None  # impersonation_check refuses an anonymous actor
    new = tickets.ticket_create(staff=staff, target=target, reason=reason)
    audit_record(
        ctx=ctx,
        action=Action.IMPERSONATION_LINK_CREATED,
        subject=target,
        data={
            "reason": reason,
            "staff": staff.username,
            "link": new.ticket.pk,
            "expires_at": new.ticket.expires_at.isoformat(),
        },
    )
    return new


def impersonation_link_check(
    *, ctx: Actor, token: str, second_factor_verified: bool
) -> tuple[ImpersonationTicket, User]:
    """The link and its account, if ``ctx.user`` may start it now. Someone else's
    link is as unknown as a made-up one (404: it tells them nothing, not even that
    it exists); the member's own used or expired link is ``LinkGone`` (410); then
    every rule of ``impersonation_check`` (403) as at the link's creation."""
    ticket = tickets.ticket_find(token)
    if ticket is None or ctx.user is None or ticket.staff_id != ctx.user.pk:
        raise AccessDenied()
    if not tickets.ticket_live(ticket):
        raise LinkGone()
    target = impersonation_check(
        ctx=ctx, user_pk=ticket.target_id, second_factor_verified=second_factor_verified
    )
    return ticket, target


def impersonation_link_use(
    *, ctx: Actor, token: str, second_factor_verified: bool
) -> tuple[ImpersonationTicket, User]:
    """``impersonation_link_check``, then the link is used up (once: a second use,
    even racing this one, is ``LinkGone``). Call it in the transaction that starts
    the impersonation, so a start that fails leaves the link unused."""
    ticket, target = impersonation_link_check(
        ctx=ctx, token=token, second_factor_verified=second_factor_verified
    )
    if not tickets.ticket_use(ticket):
        raise LinkGone()
    return ticket, target
