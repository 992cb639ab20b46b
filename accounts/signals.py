"""Bridges from the libraries' events into our services. No logic of its own."""

from __future__ import annotations

from typing import Any

from allauth.account import signals as allauth_signals
from allauth.socialaccount import signals as social_signals
from django.dispatch import receiver
from django.tasks import signals as task_signals
from hijack import signals as hijack_signals

from accounts.flows.impersonation import impersonation_ended, impersonation_started
from accounts.flows.password import password_changed
from accounts.flows.sessions import signed_in, signed_out
from accounts.flows.social import social_linked, social_unlinked
from accounts.impersonation import REASON_KEY
from accounts.services.audit import Action
from accounts.web import actor_from_request
from portal.logs import task_finished_unbind, task_started_bind


@receiver(allauth_signals.password_changed)
def _on_password_changed(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    password_changed(ctx=actor_from_request(request), user=user, action=Action.PASSWORD_CHANGED)


@receiver(allauth_signals.password_set)
def _on_password_set(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    password_changed(ctx=actor_from_request(request), user=user, action=Action.PASSWORD_SET)


@receiver(allauth_signals.password_reset)
def _on_password_reset(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    password_changed(ctx=actor_from_request(request), user=user, action=Action.PASSWORD_RESET)


@receiver(allauth_signals.user_logged_in)
def _on_signed_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    signed_in(ctx=actor_from_request(request), user=user)


@receiver(allauth_signals.user_logged_out)
def _on_signed_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    ctx = actor_from_request(request)
    signed_out(ctx=ctx, user=user)
    if ctx.impersonating:
        # Signing out ends an impersonation too.
        impersonation_ended(
            ctx=ctx,
            user=user,
            staff_id=ctx.impersonator_id,
            reason=request.session.get(REASON_KEY, ""),
            signed_out=True,
            staff_gone=bool(getattr(request, "portal_impersonation_staff_gone", False)),
        )


@receiver(social_signals.social_account_added)
def _on_social_added(sender: Any, request: Any, sociallogin: Any, **kwargs: Any) -> None:
    social_linked(
        ctx=actor_from_request(request), user=sociallogin.user, account=sociallogin.account
    )


@receiver(social_signals.social_account_removed)
def _on_social_removed(sender: Any, request: Any, socialaccount: Any, **kwargs: Any) -> None:
    social_unlinked(ctx=actor_from_request(request), user=request.user, account=socialaccount)


@receiver(hijack_signals.hijack_started)
def _on_impersonation_started(
    sender: Any, request: Any, hijacker: Any, hijacked: Any, **kwargs: Any
) -> None:
    impersonation_started(
        ctx=actor_from_request(request, surface="admin"),
        staff=hijacker,
        user=hijacked,
        # Set by ``accounts.views.impersonation.start_impersonation``, the only way in.
        reason=getattr(request, "portal_impersonation_reason", ""),
        link=getattr(request, "portal_impersonation_link", None),
    )


@receiver(hijack_signals.hijack_ended)
def _on_impersonation_ended(
    sender: Any, request: Any, hijacker: Any, hijacked: Any, **kwargs: Any
) -> None:
    impersonation_ended(
        ctx=actor_from_request(request, surface="admin"),
        user=hijacked,
        staff_id=hijacker.pk,
        reason=getattr(request, "portal_impersonation_reason", ""),
        expired=bool(getattr(request, "portal_impersonation_expired", False)),
    )


@receiver(task_signals.task_started)
def _on_task_started(sender: Any, task_result: Any, **kwargs: Any) -> None:
    # The task's log lines carry the id of the request that scheduled it.
    task_started_bind(task_result)


@receiver(task_signals.task_finished)
def _on_task_finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
    task_finished_unbind(task_result)
