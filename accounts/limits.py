"""Rate limits inside flows, keyed by the acting user (or a key) and the IP of the
``Actor``, through allauth's limiter: the same cache, the same counters and the same
configuration (``ACCOUNT_RATE_LIMITS``) as allauth's own actions and the pages.

allauth's limiter reads the client address and the user from a request. A flow has
no request, so it is handed a bare one carrying only what the limiter reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from allauth import app_settings as allauth_settings
from allauth.core import ratelimit
from django.core.cache import cache
from django.http import HttpRequest

from accounts.actor import Actor
from accounts.flows.errors import RateLimited


def _request_for(ctx: Actor, user: Any) -> HttpRequest:
    request = HttpRequest()
    request.method = "POST"
    ip = ctx.ip or "0.0.0.0"  # noqa: S104 - a key, not a bind
    request.META["REMOTE_ADDR"] = ip
    # allauth reads the address from this header instead when one is configured.
    header = allauth_settings.TRUSTED_CLIENT_IP_HEADER
    if header:
        request.META["HTTP_" + header.upper().replace("-", "_")] = ip
    request.user = user
    return request


def limit_consume(ctx: Actor, *, action: str, key: str | None = None) -> None:
    """Counts one use of ``action``; raises ``RateLimited`` when over the limit."""
    limits_consume(ctx, Limit(action, key))


@dataclass(frozen=True)
class Limit:
    """An action of ``ACCOUNT_RATE_LIMITS``, and the key of its ``key`` rates."""

    action: str
    key: str | None = None


def limits_consume(ctx: Actor, *limits: Limit) -> None:
    """Counts one use of each limit when none is used up; otherwise raises
    ``RateLimited`` and counts none of them (a refusal by one limit does not eat
    the others' allowance)."""
    user = ctx.target
    request = _request_for(ctx, user)
    for limit in limits:
        if not ratelimit.consume(
            request, action=limit.action, user=user, key=limit.key, dry_run=True
        ):
            raise RateLimited()
    for limit in limits:
        # Only a concurrent request using the last allowance can refuse here.
        if not ratelimit.consume(request, action=limit.action, user=user, key=limit.key):
            raise RateLimited()


def site_cap_consume(name: str, *, cap: int, window: int = 3600) -> None:
    """Counts one use of ``name`` for the whole site in the current clock window
    (an hour by default); raises ``RateLimited`` past ``cap`` uses until the next
    window starts. ``cap`` 0 means no cap.

    One atomic counter per window rather than allauth's limiter: that one keeps
    every timestamp of the window in one cache entry, rewritten under a lock on
    each use, which a counter hit by every user would turn into contention (and
    allauth refuses when its lock cannot be taken); its rates are also fixed in
    ``ACCOUNT_RATE_LIMITS``, not read from a setting at the time of use."""
    if cap <= 0:
        return
    now = time.time()
    slot = int(now // window)
    key = f"portal:cap:{name}:{slot}"
    cache.add(key, 0, timeout=window + 60)
    try:
        count = cache.incr(key)
    except ValueError:  # the entry expired between the two calls
        cache.add(key, 1, timeout=window + 60)
        count = 1
    if count > cap:
        raise RateLimited(retry_after=int((slot + 1) * window - now) + 1)
