"""A health endpoint cheap enough to poll every few seconds.

It reports the database, the shared cache and the provider circuit; it answers
503 when the site cannot serve codes (database or cache down, circuit open).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import caches
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from otp import circuit
from otp.conf import otp_settings


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as err:
        return f"error: {type(err).__name__}"
    return "ok"


def _cache() -> str:
    try:
        cache = caches[otp_settings.CIRCUIT_CACHE]
        cache.set("otp:health", "1", timeout=10)
        if cache.get("otp:health") != "1":
            return "error: value not kept"
    except Exception as err:
        return f"error: {type(err).__name__}"
    return "ok"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    started = time.perf_counter()
    report: dict[str, Any] = {
        "database": _database(),
        "cache": _cache(),
        "provider_circuit": circuit.state(),
    }
    healthy = report["database"] == "ok" and report["cache"] == "ok" and report["provider_circuit"] != "open"
    report["status"] = "ok" if healthy else "degraded"
    report["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return JsonResponse(report, status=200 if healthy else 503)
