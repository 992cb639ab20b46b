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
from dataclasses import dataclass
from typing import Any

from allauth import app_settings as allauth_settings
from allauth.core import ratelimit
from allauth.core.internal import ratelimit as _ratelimit
from django.core.cache import cache
from django.http import HttpRequest

from accounts.actor import Actor
from accounts.flows.errors import RateLimited
from accounts.metrics import rate_limit_counted

_APP = "allauth.account"


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
            rate_limit_counted(limit.action)
            raise RateLimited(
                retry_after=_retry_after(request, action=limit.action, key=limit.key, user=user)
            )
    for limit in limits:
        # Only a concurrent request using the last allowance can refuse here.
        if not ratelimit.consume(request, action=limit.action, user=user, key=limit.key):
            rate_limit_counted(limit.action)
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
        rate_limit_counted(f"site_cap_{name}")
        raise RateLimited(retry_after=int((slot + 1) * window - now) + 1)


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
        rate_limit_counted(action)
        raise RateLimited(retry_after=_retry_after(request, action=action, key=key, user=user))
    return usage.rollback


# allauth's own pages refuse through its ``rate_limit`` decorator or
# ``consume_or_429``, which answer with the root URLconf's ``handler429``: the view
# tells which of its limits it was.
ALLAUTH_VIEW_LIMITS = {
    "account_login": "login",
    "account_signup": "signup",
    "account_reset_password": "reset_password",
    "account_reset_password_from_key": "reset_password_from_key",
    "account_confirm_password_reset_code": "reset_password_from_key",
    "account_change_password": "change_password",
    "account_set_password": "change_password",
    "account_email_verification_sent": "confirm_email",
    "account_reauthenticate": "reauthenticate",
}


def allauth_refusal_counted(view_name: str | None) -> None:
    """A refusal by one of allauth's limits on its pages, named after the view."""
    rate_limit_counted(ALLAUTH_VIEW_LIMITS.get(view_name or "", "allauth"))


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
