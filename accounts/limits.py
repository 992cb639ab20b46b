"""Rate limits inside flows, keyed by the acting user (or a key) and the IP of the
``Actor``, through allauth's limiter: the same cache, the same counters and the same
configuration (``ACCOUNT_RATE_LIMITS``) as allauth's own actions and the pages.

allauth's limiter reads the client address and the user from a request. A flow has
no request, so it is handed a bare one carrying only what the limiter reads.
"""

from __future__ import annotations

from typing import Any

from allauth.core import ratelimit
from django.http import HttpRequest

from accounts.actor import Actor
from accounts.flows.errors import RateLimited


def _request_for(ctx: Actor, user: Any) -> HttpRequest:
    request = HttpRequest()
    request.method = "POST"
    request.META["REMOTE_ADDR"] = ctx.ip or "0.0.0.0"  # noqa: S104 - a key, not a bind
    request.user = user
    return request


def limit_consume(ctx: Actor, *, action: str, key: str | None = None) -> None:
    """Counts one use of ``action``; raises ``RateLimited`` when over the limit."""
    user = ctx.target
    if not ratelimit.consume(_request_for(ctx, user), action=action, user=user, key=key):
        raise RateLimited()
