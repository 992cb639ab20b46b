"""Sessions and devices: the account's signed-in web sessions; end one, or every
other one. Policy field ``sessions``.

A call with an access token runs in no session: no session is ``current`` and
``end-others`` ends every web session of the account (the token keeps working;
revoke it under ``/api/my-account/tokens``). Sessions opened by staff
impersonating the user are not the user's devices: they are neither listed nor
ended here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from accounts.api.auth import ACCOUNT_AUTH, api_ctx
from accounts.api.forms import door
from accounts.api.schemas import COMMON_ERRORS, Done, Error
from accounts.flows import sessions as flows
from accounts.models import User
from accounts.policy import get_policy, require_readable
from accounts.selectors.sessions import user_sessions_list

router = Router(tags=["sessions"], auth=ACCOUNT_AUTH)


class Session(Schema):
    """``device`` describes ``user_agent`` ("Firefox on Windows"); ``current`` is
    the session making this request (never, with an access token)."""

    id: int
    ip: str
    user_agent: str
    device: str
    created_at: datetime
    last_seen_at: datetime
    current: bool


def _current_key(request: HttpRequest) -> str | None:
    if getattr(request, "api_scopes", None) is not None:
        return None
    session = getattr(request, "session", None)
    return session.session_key if session is not None else None


@router.get("/sessions", response={200: list[Session], **COMMON_ERRORS})
def sessions(request: HttpRequest) -> Any:
    """The account's live sessions, most recently active first."""
    api_ctx(request)
    require_readable(get_policy(request), "sessions")
    user: User = request.user  # type: ignore[assignment]
    return [
        {
            "id": row.pk,
            "ip": row.ip,
            "user_agent": row.user_agent,
            "device": row.device,
            "created_at": row.signed_in,
            "last_seen_at": row.last_seen,
            "current": row.current,
        }
        for row in user_sessions_list(user=user, current_key=_current_key(request))
    ]


class Ended(Schema):
    ended: int


# Before ``/sessions/{session_id}``, which would take "end-others" for an id.
@router.post("/sessions/end-others", response={200: Ended, **COMMON_ERRORS})
def sessions_end_others(request: HttpRequest) -> Any:
    """Signs out every session but the one making the request; with an access
    token (no session), every web session of the account. Returns how many were
    ended. Needs a verification."""
    ctx = api_ctx(request)
    door(request, ctx, field="sessions", reauth=True, sensitive=True)
    return {"ended": flows.sessions_end_others(ctx=ctx)}


@router.delete("/sessions/{session_id}", response={200: Done, **COMMON_ERRORS, 409: Error})
def session_end(request: HttpRequest, session_id: int) -> Any:
    """Signs one session out at once (409 ``session.current`` for the session
    making the request: sign out instead). Needs a verification."""
    ctx = api_ctx(request)
    door(request, ctx, field="sessions", reauth=True, sensitive=True)
    flows.session_end(ctx=ctx, pk=session_id)
    return {"ok": True}
