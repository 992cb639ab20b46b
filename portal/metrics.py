"""Prometheus metrics at ``/metrics``: django-prometheus's request metrics, the
portal's own counters (``accounts.metrics``) and the task queue read from the
database at scrape time.

The page exists only for a scraper that knows ``METRICS_TOKEN`` and sends it as
``Authorization: Bearer <token>`` (``MetricsMiddleware``, before the session and the
HTTPS redirect); anyone else, and everyone while the setting is empty, gets what any
unknown address gets. It reads no session and sets no cookie.

With several server processes (gunicorn workers), ``PROMETHEUS_MULTIPROC_DIR`` names
a directory the processes share: each writes its values there and the page adds
them up (prometheus_client's multiprocess mode). The directory must be emptied when
the server starts, and a worker that exits is marked dead
(``prometheus_client.multiprocess.mark_process_dead``).
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import prometheus_client
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django_prometheus.middleware import PrometheusAfterMiddleware
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)


def _authorised(request: HttpRequest) -> bool:
    expected = str(getattr(settings, "METRICS_TOKEN", "") or "")
    if not expected:
        return False
    scheme, _sep, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


class TaskQueueCollector(Collector):
    """The task queue as the database holds it (django-tasks-db's table), read at
    each scrape: tasks waiting (due now, or deferred until a retry time), running,
    and failed results kept in the table."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django_tasks_db.compat import TaskResultStatus
        from django_tasks_db.models import DBTaskResult

        waiting = GaugeMetricFamily(
            "portal_task_queue_depth",
            "Tasks in the queue, by queue and state: due (ready to run now), deferred "
            "(waiting for their run time, such as a retry) and running.",
            labels=["queue", "state"],
        )
        failed = GaugeMetricFamily(
            "portal_task_results_failed",
            "Failed task results kept in the database, by queue.",
            labels=["queue"],
        )
        try:
            by_status = list(
                DBTaskResult.objects.values_list("queue_name", "status")
                .annotate(n=Count("pk"))
                .order_by()
            )
            due = dict(
                DBTaskResult.objects.ready()
                .values_list("queue_name")
                .annotate(n=Count("pk"))
                .order_by()
            )
        except DatabaseError:
            logger.warning("could not read the task queue for the metrics")
            return
        ready: dict[str, int] = {}
        for queue, status, count in by_status:
            if status == TaskResultStatus.READY:
                ready[queue] = ready.get(queue, 0) + count
            elif status == TaskResultStatus.RUNNING:
                waiting.add_metric([queue, "running"], count)
            elif status == TaskResultStatus.FAILED:
                failed.add_metric([queue], count)
        for queue, count in ready.items():
            now = due.get(queue, 0)
            waiting.add_metric([queue, "due"], now)
            waiting.add_metric([queue, "deferred"], count - now)
        yield waiting
        yield failed


class _Registry(Collector):
    """The process's (or every process's) metrics, then the task queue."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        yield from self.source.collect()
        yield from TaskQueueCollector().collect()


def _registry() -> prometheus_client.CollectorRegistry:
    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        source = prometheus_client.CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(source)
    else:
        source = prometheus_client.REGISTRY
    registry.register(_Registry(source))
    return registry


PATH = "/metrics"


class MetricsMiddleware:
    """Answers a scraper that shows the token, before the session, CSRF, the user or
    the HTTPS redirect are looked at: the page reads no session and sets no cookie,
    and plain HTTP on the private network is served. Any other request for the path
    goes on like a request for any unknown address (the same 404, or the same
    redirect to HTTPS), so nothing tells the page exists."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == PATH and _authorised(request):
            request.portal_route = "metrics"  # type: ignore[attr-defined]
            return _page(request)
        return self.get_response(request)


def _page(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    page = prometheus_client.generate_latest(_registry())
    response = HttpResponse(page, content_type=prometheus_client.CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


class PortalPrometheusAfterMiddleware(PrometheusAfterMiddleware):
    """django-prometheus's middleware with the method label always one of the HTTP
    methods: its latency histogram takes ``request.method`` as sent, so made-up
    methods would each open a new series."""

    def label_metric(self, metric: Any, request: Any, response: Any = None, **labels: Any) -> Any:
        if "method" in labels:
            labels["method"] = self._method(request)
        return super().label_metric(metric, request, response=response, **labels)
