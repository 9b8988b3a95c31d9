"""gunicorn settings for production: threaded workers sized for a slow upstream.

Waiting on Infobip (100-300 ms) is I/O, so each worker runs many threads:
a thread parked on the provider costs memory, not a CPU. There is one worker
more than cores: each runs Python under its own GIL, and while one worker's
threads wait for theirs (or its running thread is preempted), another can use
the core (measured in docs/performance.md). The psycopg pool
(DATABASE_POOL_MAX_SIZE per worker) keeps the database connections few, and
the app's bulkhead (OTP_PROVIDER_MAX_CONCURRENCY per worker) keeps some
threads free for the rest of the site when the upstream slows down.
Every value can be set from the process environment (gunicorn does not read .env).
"""

import multiprocessing
import os
from typing import Any


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = os.environ.get("GUNICORN_BIND") or "127.0.0.1:8000"
workers = _int("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1)
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 64)
# Idle keep-alive connections are held by the main loop, not by a thread.
keepalive = _int("GUNICORN_KEEPALIVE", 30)
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 1000)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20)
backlog = _int("GUNICORN_BACKLOG", 2048)
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None  # the site logs its own access records
errorlog = "-"
# Import the app before forking: workers share its memory pages.
preload_app = (os.environ.get("GUNICORN_PRELOAD") or "1") == "1"
# Several instances may run on one host (and in the tests); none needs the
# control socket, whose default path is shared.
control_socket_disable = True


# Before reusing a connection, gunicorn discards the body the app left unread
# (an early 413, 404 or 403), but less than 64 KiB of it. Past that it closes
# the connection after an answer that said keep-alive, and a client that has
# already sent its next request on it sees "remote end closed connection".
# Bodies it may not discard get "Connection: close" in the answer instead (the
# app cannot ask for it: gunicorn drops the Connection header an app sets).
KEEPALIVE_MAX_BODY = 64 * 1024 - 1


def pre_request(worker: Any, req: Any) -> None:
    """Announce the close of a connection whose request body may be too long to discard."""
    worker.log.debug("%s %s", req.method, req.path)  # what gunicorn's own hook does
    for name, value in req.headers:
        # gunicorn has validated both: a chunked body's length is unknown in advance.
        if name == "TRANSFER-ENCODING" or (name == "CONTENT-LENGTH" and int(value) > KEEPALIVE_MAX_BODY):
            req.force_close()
            return
