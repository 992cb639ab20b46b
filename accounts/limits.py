"""Rate limits inside flows, keyed by the acting user (or a key) and the IP of the
``Actor``, through allauth's limiter: the same cache, the same counters and the same
configuration (``ACCOUNT_RATE_LIMITS``) as allauth's own actions and the pages.

allauth's limiter reads the client address and the user from a request. A flow has
no request, so it is handed a bare one carrying only what the limiter reads.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from allauth.core import ratelimit
from allauth.core.internal import ratelimit as _ratelimit
from django.core.cache import cache
from django.http import HttpRequest

from accounts.actor import Actor
from accounts.flows.errors import RateLimited

_APP = "allauth.account"


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


def limit_attempt(ctx: Actor, *, action: str, key: str | None = None) -> Callable[[], None]:
    """Counts one attempt at ``action`` and returns what takes it back, for
    attempts that count only when they fail (a right password). Raises
    ``RateLimited`` with ``retry_after`` (seconds until an attempt is free again)
    when over the limit."""
    user = ctx.target
    request = _request_for(ctx, user)
    # allauth's public ``consume`` drops the usage that can be rolled back.
    usage = _ratelimit.consume(request, app=_APP, action=action, key=key, user=user)
    if not usage:
        raise RateLimited(retry_after=_retry_after(request, action=action, key=key, user=user))
    return usage.rollback


def _retry_after(request: HttpRequest, *, action: str, key: str | None, user: Any) -> int:
    """Seconds until every exhausted rate of ``action`` has a free slot, from the
    limiter's history (newest attempt first)."""
    now = time.time()
    wait = 0.0
    for rate in _ratelimit.get_rates(app=_APP, action=action):
        cache_key = _ratelimit.get_cache_key(
            request, app=_APP, action=action, rate=rate, key=key, user=user
        )
        history = [ts for ts in cache.get(cache_key, []) if ts > now - rate.duration]
        if len(history) >= rate.amount:
            wait = max(wait, history[rate.amount - 1] + rate.duration - now)
    return max(1, math.ceil(wait))
