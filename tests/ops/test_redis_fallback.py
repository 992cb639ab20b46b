"""Redis down, the site keeps serving (accounts.cache.FallbackRedisCache): the cache
is served from the process's memory, pages and sign-in work, rate limits still
refuse (per process), one warning is logged for the whole outage, and Redis is used
again once it is back."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts import cache as fallback
from accounts.models import User
from accounts.policy import CACHE_KEY, get_policy
from tests.conftest import PASSWORD
from tests.ops.servers import CuttableProxy, PrivateRedis, free_port, private_redis

pytestmark = pytest.mark.django_db

LOCKED = {"__all__": ["Too many failed login attempts. Try again later."]}
WRONG = "not-the-password-at-all"


def use_redis(settings: Any, url: str, **options: Any) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "accounts.cache.FallbackRedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "portal-test",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5, **options},
        }
    }


@pytest.fixture(autouse=True)
def _fresh_states() -> Iterator[None]:
    fallback._states.clear()
    yield
    fallback._states.clear()


def warnings_of(caplog: Any) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "accounts.cache" and r.levelno == logging.WARNING
    ]


def sign_in(client: Client, login: str, password: str) -> Any:
    return client.post(reverse("account_login"), {"login": login, "password": password})


# --- Redis that never answers (a closed port) -------------------------------------------


def test_the_cache_is_served_from_memory(settings: Any, caplog: Any) -> None:
    use_redis(settings, f"redis://127.0.0.1:{free_port()}/0")
    with caplog.at_level(logging.INFO, logger="accounts.cache"):
        cache.set("a", 1)
        assert cache.get("a") == 1
        assert cache.add("a", 2) is False
        assert cache.incr("a") == 2
        assert cache.get_many(["a", "b"]) == {"a": 2}
        cache.delete("a")
        assert cache.get("a", "gone") == "gone"
        assert cache.get_or_set("c", 3) == 3
    assert cache.serving_locally
    (warning,) = warnings_of(caplog)
    assert warning.startswith("Redis cache unreachable (Error 111 connecting to 127.0.0.1:")


def test_pages_sign_in_and_rate_limits_work_with_one_warning(
    settings: Any, caplog: Any, user_factory: Callable[..., User]
) -> None:
    use_redis(settings, f"redis://127.0.0.1:{free_port()}/0")
    user_factory(username="carol")
    with caplog.at_level(logging.INFO, logger="accounts.cache"):
        for _ in range(10):
            assert Client().get(reverse("account_login")).status_code == 200
        browser = Client()
        assert sign_in(browser, "carol", PASSWORD).status_code == 302
        assert browser.get(reverse("settings_home")).status_code == 200
        assert get_policy().enabled
        # The failed sign-ins of an account are counted in the process's memory.
        for _ in range(5):
            response = sign_in(Client(), "carol", WRONG)
            assert response.context["form"].errors == {
                "__all__": ["The username and/or password you specified are not correct."]
            }
        locked = sign_in(Client(), "carol", PASSWORD)
        assert locked.context["form"].errors == LOCKED
        assert SESSION_KEY not in locked.wsgi_request.session
    assert len(warnings_of(caplog)) == 1


def test_a_policy_kept_in_memory_expires_after_a_few_seconds(settings: Any) -> None:
    """Another process cannot replace the copy in this one's memory: it is kept for
    LOCAL_MAX_SECONDS, not for ever as in Redis."""
    use_redis(settings, f"redis://127.0.0.1:{free_port()}/0", LOCAL_MAX_SECONDS=7)
    get_policy()
    local = cache._local  # type: ignore[attr-defined]
    key = local.make_and_validate_key(CACHE_KEY)
    expires_at = local._expire_info[key]
    import time

    assert 6 < expires_at - time.time() <= 7


# --- A private redis-server, stopped and started again ------------------------------------


@pytest.fixture
def private(tmp_path: Path) -> Iterator[PrivateRedis]:
    with private_redis(tmp_path) as server:
        yield server


def notes_of(caplog: Any) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "accounts.cache" and r.levelno == logging.INFO
    ]


def test_redis_stopped_and_started_again(
    settings: Any, caplog: Any, private: PrivateRedis, user_factory: Callable[..., User]
) -> None:
    use_redis(settings, private.url, RETRY_SECONDS=0)
    direct = redis.Redis.from_url(private.url)
    user_factory(username="carol")
    with caplog.at_level(logging.INFO, logger="accounts.cache"):
        cache.set("first", 1)
        assert direct.get("portal-test:1:first") == b"1"

        private.stop()
        for _ in range(5):
            assert Client().get(reverse("account_login")).status_code == 200
        for _ in range(5):
            sign_in(Client(), "carol", WRONG)
        assert sign_in(Client(), "carol", PASSWORD).context["form"].errors == LOCKED
        assert cache.serving_locally
        assert len(warnings_of(caplog)) == 1

        private.start()  # empty: it keeps nothing on disk
        cache.set("second", 2)
        assert not cache.serving_locally
        assert direct.get("portal-test:1:second") == b"2"
        # The counts made in memory during the outage went with it.
        browser = Client()
        assert sign_in(browser, "carol", PASSWORD).status_code == 302
        assert browser.get(reverse("settings_home")).status_code == 200
    assert len(notes_of(caplog)) == 1
    assert notes_of(caplog)[0].startswith("Redis cache reachable again after ")
    assert len(warnings_of(caplog)) == 1


def test_what_is_deleted_during_an_outage_is_deleted_from_redis_when_back(
    settings: Any, private: PrivateRedis
) -> None:
    """A policy saved while Redis is unreachable forgets its cached copy in memory;
    the copy in Redis, from before, must not come back with Redis."""
    with CuttableProxy(target_port=private.port) as proxy:
        use_redis(settings, f"redis://127.0.0.1:{proxy.port}/0", RETRY_SECONDS=0)
        direct = redis.Redis.from_url(private.url)
        get_policy()
        cache.set("kept", "in redis")
        assert direct.exists(f"portal-test:1:{CACHE_KEY}")

        proxy.cut()
        cache.delete(CACHE_KEY)  # what saving the policy does
        assert cache.serving_locally

        proxy.restore()
        assert cache.get("kept") == "in redis"
        assert not cache.serving_locally
        assert not direct.exists(f"portal-test:1:{CACHE_KEY}")


def test_redis_is_not_tried_on_every_call_while_down(settings: Any, monkeypatch: Any) -> None:
    use_redis(settings, f"redis://127.0.0.1:{free_port()}/0", RETRY_SECONDS=60)
    tries = []
    original = redis.connection.Connection.connect

    def counting(self: Any) -> Any:
        tries.append(1)
        return original(self)

    monkeypatch.setattr(redis.connection.Connection, "connect", counting)
    for n in range(20):
        cache.set(f"k{n}", n)
        assert cache.get(f"k{n}") == n
    assert len(tries) == 1
