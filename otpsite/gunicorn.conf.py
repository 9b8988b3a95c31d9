"""gunicorn settings for production: threaded workers sized for a slow upstream.

Waiting on Infobip (100-300 ms) is I/O, so each worker runs many threads:
a thread parked on the provider costs memory, not a CPU. The psycopg pool
(DATABASE_POOL_MAX_SIZE per worker) keeps the database connections few, and
the app's bulkhead (OTP_PROVIDER_MAX_CONCURRENCY per worker) keeps some
threads free for the rest of the site when the upstream slows down.
Every value can be set from the environment.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "64"))
# Idle keep-alive connections are held by the main loop, not by a thread.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "30"))
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
backlog = int(os.environ.get("GUNICORN_BACKLOG", "2048"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None  # the site logs its own access records
errorlog = "-"
# Import the app before forking: workers share its memory pages.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") == "1"
# Several instances may run on one host (and in the tests); none needs the
# control socket, whose default path is shared.
control_socket_disable = True
