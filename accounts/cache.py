"""The Redis cache, kept serving while Redis cannot be reached.

Django's ``RedisCache`` raises on every call while Redis is down, so each page that
reads the cache (the field policy on every request, the rate limits on sign-in)
would fail. ``FallbackRedisCache`` serves those calls from this process's memory
instead (a ``LocMemCache``) and tries Redis again after a few seconds:

- a cache miss falls back to the database, as any miss does;
- rate limits (allauth's, which keep their counters in the cache) count per process
  until Redis is back: still refusing, with each process's own allowance;
- entries stored without an end (the field policy) are kept in memory for a few
  seconds only, since no other process can replace them there;
- what a process deletes while Redis is down (a changed policy's cached copy) is
  deleted from Redis too when it is back, then the memory copy is dropped;
- one warning is logged when Redis becomes unreachable and one note when it is
  back, not one per request.

Short socket timeouts (settings) keep a Redis that does not answer from stalling
requests, and between retries no call waits for it at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# Errors that mean "Redis cannot be reached now" (its busy loading is one of them);
# any other Redis error (a wrong command, out of memory) is raised as usual.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
MAX_REPLAYED_DELETES = 10_000


class _State:
    """Whether a Redis location is reachable, shared by the threads of a process
    (Django makes one cache object per thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down_since: float | None = None
        self.retry_at = 0.0
        # Keys deleted from memory while Redis was unreachable: deleted from Redis
        # too once it is back, so a copy from before the outage does not outlive a
        # change made during it (the field policy is forgotten this way).
        self.deleted: set[str] = set()


_states: dict[str, _State] = {}
_states_lock = threading.Lock()


def _state_for(location: str) -> _State:
    with _states_lock:
        return _states.setdefault(location, _State())


class FallbackRedisCache(RedisCache):
    """``RedisCache`` that serves from a per-process ``LocMemCache`` while Redis is
    unreachable. Its own options (in ``OPTIONS``, the rest goes to redis-py):
    ``RETRY_SECONDS`` between two tries of an unreachable Redis (default 5),
    ``LOCAL_MAX_SECONDS`` that an entry stored without an end is kept in memory
    (default 5)."""

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS") or {})
        self.retry_seconds = float(options.pop("RETRY_SECONDS", 5))
        self.local_max_seconds = int(options.pop("LOCAL_MAX_SECONDS", 5))
        super().__init__(server, {**params, "OPTIONS": options})
        location = server if isinstance(server, str) else ",".join(server)
        self._location = location
        self._state = _state_for(location)
        # Same prefix, version and key function as the Redis entries; its memory is
        # shared by every thread of the process (LocMemCache keys it by name).
        self._local = LocMemCache(
            f"redis-fallback:{location}",
            {
                "TIMEOUT": params.get("TIMEOUT", 300),
                "KEY_PREFIX": params.get("KEY_PREFIX", ""),
                "VERSION": params.get("VERSION", 1),
                "KEY_FUNCTION": params.get("KEY_FUNCTION"),
                "OPTIONS": {"MAX_ENTRIES": 10_000},
            },
        )

    # --- Reachability ----------------------------------------------------------------

    @property
    def serving_locally(self) -> bool:
        """Whether calls are served from this process's memory now."""
        return self._state.down_since is not None

    def _redis_worth_trying(self) -> bool:
        state = self._state
        return state.down_since is None or time.monotonic() >= state.retry_at

    def _went_down(self, exc: Exception) -> None:
        state = self._state
        with state.lock:
            now = time.monotonic()
            state.retry_at = now + self.retry_seconds
            if state.down_since is None:
                state.down_since = now
                logger.warning(
                    "Redis cache unreachable (%s): serving the cache from each process's "
                    "memory, rate limits count per process until it is back",
                    exc,
                )

    def _came_back(self) -> None:
        state = self._state
        with state.lock:
            if state.down_since is None:
                return
            if state.deleted:
                try:
                    self._cache.delete_many(sorted(state.deleted))
                except UNREACHABLE:
                    return  # down again: the next try replays them
                state.deleted.clear()
            seconds = time.monotonic() - state.down_since
            state.down_since = None
            self._local.clear()
        logger.info("Redis cache reachable again after %.0f s: using it again", seconds)

    def _call(self, redis_call: Callable[[], Any], local_call: Callable[[], Any]) -> Any:
        if self._redis_worth_trying():
            try:
                result = redis_call()
            except UNREACHABLE as exc:
                self._went_down(exc)
            else:
                if self._state.down_since is not None:
                    self._came_back()
                return result
        return local_call()

    def _forget_in_redis_later(self, keys: Any, version: Any) -> None:
        state = self._state
        with state.lock:
            if len(state.deleted) < MAX_REPLAYED_DELETES:
                state.deleted.update(self.make_and_validate_key(key, version) for key in keys)

    def _local_timeout(self, timeout: Any) -> Any:
        if timeout is None:
            return self.local_max_seconds
        if timeout is DEFAULT_TIMEOUT and self.default_timeout is None:
            return self.local_max_seconds
        return timeout

    # --- The cache API -------------------------------------------------------------------
    # Each method of RedisCache, falling back to the same call on the local cache.

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        return self._call(
            lambda: super(FallbackRedisCache, self).add(key, value, timeout, version),
            lambda: self._local.add(key, value, self._local_timeout(timeout), version),
        )

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        return self._call(
            lambda: super(FallbackRedisCache, self).get(key, default, version),
            lambda: self._local.get(key, default, version),
        )

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> None:
        self._call(
            lambda: super(FallbackRedisCache, self).set(key, value, timeout, version),
            lambda: self._local.set(key, value, self._local_timeout(timeout), version),
        )

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        return self._call(
            lambda: super(FallbackRedisCache, self).touch(key, timeout, version),
            lambda: self._local.touch(key, self._local_timeout(timeout), version),
        )

    def delete(self, key: Any, version: Any = None) -> Any:
        def local() -> bool:
            self._forget_in_redis_later([key], version)
            return self._local.delete(key, version)

        return self._call(lambda: super(FallbackRedisCache, self).delete(key, version), local)

    def get_many(self, keys: Any, version: Any = None) -> Any:
        return self._call(
            lambda: super(FallbackRedisCache, self).get_many(keys, version),
            lambda: self._local.get_many(keys, version),
        )

    def has_key(self, key: Any, version: Any = None) -> Any:
        return self._call(
            lambda: super(FallbackRedisCache, self).has_key(key, version),
            lambda: self._local.has_key(key, version),
        )

    def incr(self, key: Any, delta: int = 1, version: Any = None) -> Any:
        return self._call(
            lambda: super(FallbackRedisCache, self).incr(key, delta, version),
            lambda: self._local.incr(key, delta, version),
        )

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        return self._call(
            lambda: super(FallbackRedisCache, self).set_many(data, timeout, version),
            lambda: self._local.set_many(data, self._local_timeout(timeout), version),
        )

    def delete_many(self, keys: Any, version: Any = None) -> None:
        def local() -> None:
            self._forget_in_redis_later(keys, version)
            self._local.delete_many(keys, version)

        self._call(lambda: super(FallbackRedisCache, self).delete_many(keys, version), local)

    def clear(self) -> Any:
        self._local.clear()
        return self._call(lambda: super(FallbackRedisCache, self).clear(), lambda: True)
