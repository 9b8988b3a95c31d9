"""Health endpoints cheap enough to poll every few seconds.

* :func:`liveness`: the process serves requests. Always 200 while it runs; it
  touches neither the database nor the cache, so an outage of either does not
  make an orchestrator restart a process that would come back to the same.
* :func:`readiness`: the instance can serve codes, so send it traffic. 200 when
  the database and the shared cache answer, else 503. The provider circuit is
  reported but does not fail readiness: an Infobip outage affects every
  instance alike, and the site already answers 503 fast while it lasts.

Bodies say ``ok`` or ``error`` per part, never why: the reason goes to the log.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache import caches
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from otp.conf import otp_settings
from otp.providers import circuit

logger = logging.getLogger(__name__)
OK, ERROR = "ok", "error"


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as err:
        logger.warning("readiness: the database does not answer (%s)", type(err).__name__)
        return ERROR
    return OK


def _cache() -> str:
    try:
        cache = caches[otp_settings.CIRCUIT_CACHE]
        cache.set("otp:health", "1", timeout=10)
        kept = cache.get("otp:health") == "1"
    except Exception as err:
        logger.warning("readiness: the cache does not answer (%s)", type(err).__name__)
        return ERROR
    if not kept:
        logger.warning("readiness: the cache does not keep a value")
        return ERROR
    return OK


@never_cache
@require_GET
def liveness(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": OK})


@never_cache
@require_GET
def readiness(request: HttpRequest) -> JsonResponse:
    started = time.perf_counter()
    report: dict[str, Any] = {"database": _database(), "cache": _cache()}
    # The circuit's state lives in the cache: unknown when that is down.
    report["provider_circuit"] = circuit.state() if report["cache"] == OK else "unknown"
    ready = report["database"] == OK and report["cache"] == OK
    if not ready:
        report["status"] = "unavailable"
    else:
        report["status"] = OK if report["provider_circuit"] != circuit.OPEN else "degraded"
    report["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return JsonResponse(report, status=200 if ready else 503)


# The original endpoint: a readiness check.
healthz = readiness
