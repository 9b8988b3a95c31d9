"""CPU time per flow in one thread, with no server and no other client: where the app's work goes.

    .venv/bin/python bench/flow_cpu.py                  # CPU per send, verify and flow
    .venv/bin/python bench/flow_cpu.py --attribute      # ... and by part (SQL, HTTP, Redis, logging...)
    .venv/bin/python bench/flow_cpu.py --profile cumulative
    .venv/bin/python bench/flow_cpu.py --floor          # the same loop against the DRF no-op floor

The site as ``bench/load.py`` runs it (PostgreSQL, Redis, the emulator as
Infobip, every limit raised, JSON logs at INFO to /dev/null), but the WSGI
application is called directly in this process, one request at a time, and
only the thread's own CPU time (``time.thread_time``) inside those calls is
counted. Without gunicorn, other threads or other processes competing for the
two cores, the figure is much steadier than the load benchmark's and shows the
app's own cost; ``bench/load.py`` shows what a real server adds under load.

``--attribute`` wraps the main parts of the request path and charges each its
CPU time without the parts nested in it (the wrapping itself costs a few
percent). ``--profile KEY`` runs the measured flows under cProfile (several
times slower; the shares are what count). ``--floor`` runs the same loop
against ``bench/floorsite``'s DRF no-op under the site's settings and
middleware (as ``bench/load.py --floor``): the app's own work is the
difference. Under ``valgrind --tool=callgrind``, two runs with different
``--flows`` give an instruction count per flow that does not drift with the
machine's speed (docs/performance.md).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import importlib
import io
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h  # noqa: E402
from load import RAISED_LIMITS, Phones  # noqa: E402

# (module, attribute path, label): the parts --attribute charges.
PARTS = (
    ("django.core.handlers.wsgi", "WSGIHandler.__call__", "Django + DRF + middleware (the rest)"),
    ("otp.api.views", "OtpAPIView.validated", "input and IP limit glue"),
    ("rest_framework.serializers", "Serializer.is_valid", "serializer"),
    ("otp.cache", "RedisCache.count", "Redis: IP limit count"),
    ("otp.providers.circuit", "before_call", "circuit breaker check"),
    ("otp.api.views", "SendCodeView.post", "send view and service (the rest)"),
    ("otp.api.views", "VerifyCodeView.post", "verify view and service (the rest)"),
    ("django.db.backends.utils", "CursorWrapper.execute", "SQL statements"),
    ("django.db.backends.base.base", "BaseDatabaseWrapper.commit", "SQL commit"),
    ("django.db.backends.base.base", "BaseDatabaseWrapper.connect", "pool check-out"),
    ("django.db.backends.base.base", "BaseDatabaseWrapper.close", "pool check-in"),
    ("otp.providers.infobip", "request_json", "Infobip call (request, answer)"),
    ("requests.adapters", "HTTPAdapter.send", "Infobip call (urllib3, socket)"),
    ("logging", "Logger._log", "logging"),
    ("otp.tokens", "make_token", "verification token"),
)


class Attribution:
    """CPU time per wrapped function, exclusive of the wrapped functions it calls."""

    def __init__(self) -> None:
        self.cpu: collections.defaultdict[str, float] = collections.defaultdict(float)
        self.calls: collections.Counter[str] = collections.Counter()
        self._nested: list[float] = []

    def wrap(self, module: str, path: str, label: str) -> None:
        owner: Any = importlib.import_module(module)
        *parents, name = path.split(".")
        for part in parents:
            owner = getattr(owner, part)
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            self._nested.append(0.0)
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.thread_time() - started
                self.cpu[label] += elapsed - self._nested.pop()
                self.calls[label] += 1
                if self._nested:
                    self._nested[-1] += elapsed

        setattr(owner, name, timed)

    def reset(self) -> None:
        self.cpu.clear()
        self.calls.clear()

    def report(self, flows: int) -> str:
        lines = [f"  {'part':40} {'ms/flow':>8} {'calls/flow':>10}"]
        for label, seconds in sorted(self.cpu.items(), key=lambda item: -item[1]):
            lines.append(f"  {label:40} {seconds / flows * 1000:8.2f} {self.calls[label] / flows:10.1f}")
        return "\n".join(lines)


def wsgi_caller(application: Callable[..., Any]) -> Callable[[str, dict[str, Any]], tuple[str, bytes]]:
    def call(path: str, body: dict[str, Any]) -> tuple[str, bytes]:
        raw = json.dumps(body).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(raw)),
            "wsgi.input": io.BytesIO(raw),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        status: list[str] = []
        content = b"".join(application(environ, lambda s, headers, exc_info=None: status.append(s)))
        return status[0], content

    return call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=1000, help="measured flows (default 1000)")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured flows first (default 100)")
    parser.add_argument("--attribute", action="store_true", help="also charge CPU to the parts of the path")
    parser.add_argument("--profile", metavar="SORT", help="cProfile the measured flows, sorted by SORT")
    parser.add_argument("--floor", action="store_true", help="run the flows against the DRF no-op floor instead")
    parser.add_argument(
        "--admin-url", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--database", default="otp_flowcpu")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2"))
    args = parser.parse_args()

    run_dir = Path(tempfile.gettempdir()) / "otp-bench" / time.strftime("flowcpu-%Y%m%d-%H%M%S")
    with h.Stack(run_dir, args.admin_url, args.database) as stack:
        database_url = stack.create_database()
        h.flush_redis(args.redis_url)
        emulator_port = h.free_port()
        h.start_emulator(stack, emulator_port)
        env = h.site_env(
            database_url=database_url,
            redis_url=args.redis_url,
            emulator_port=emulator_port,
            extra=dict(RAISED_LIMITS, LOG_LEVEL="INFO"),
        )
        h.migrate(env)
        os.environ.clear()
        if args.floor:
            os.environ.update(env, DJANGO_SETTINGS_MODULE="floorsite.settings", FLOOR_VIEW="drf")
            sys.path.insert(0, str(h.ROOT / "bench"))
        else:
            os.environ.update(env, DJANGO_SETTINGS_MODULE="otpsite.settings")
        sys.path.insert(0, str(h.ROOT))
        # The site's log handler takes sys.stderr when the site loads: its
        # records are formatted and written as in production, to /dev/null.
        stderr, sys.stderr = sys.stderr, open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
        try:
            from otpsite.wsgi import application
        finally:
            sys.stderr = stderr
        attribution = Attribution() if args.attribute else None
        if attribution:
            for module, path, label in PARTS:
                attribution.wrap(module, path, label)

        call = wsgi_caller(application)
        phones = Phones()
        cpu = {"send": 0.0, "verify": 0.0}

        def flow() -> None:
            phone = phones.next()
            started = time.thread_time()
            status, content = call("/send-otp", {"phoneNumber": phone})
            cpu["send"] += time.thread_time() - started
            if not status.startswith("200"):
                raise RuntimeError(f"send answered {status}: {content[:200]!r}")
            # The floor sends nothing, so its look-up finds no PIN (and costs what the app's does).
            _, pin = h.http_get(f"{h.emulator_url(emulator_port)}/_emulator/pins/last?to={phone[1:]}")
            started = time.thread_time()
            status, content = call("/verify-otp", {"phoneNumber": phone, "pin": (pin or {}).get("pin", "000000")})
            cpu["verify"] += time.thread_time() - started
            if not status.startswith("200"):
                raise RuntimeError(f"verify answered {status}: {content[:200]!r}")

        for _ in range(args.warmup):
            flow()
        cpu = dict.fromkeys(cpu, 0.0)
        if attribution:
            attribution.reset()
        profiler = cProfile.Profile(time.thread_time) if args.profile else None
        if profiler:
            profiler.enable()
        for _ in range(args.flows):
            flow()
        if profiler:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stdout).sort_stats(args.profile).print_stats(40)
        n = args.flows
        print(
            f"{n} flows, CPU in this thread: send {cpu['send'] / n * 1000:.2f} ms, "
            f"verify {cpu['verify'] / n * 1000:.2f} ms, flow {(cpu['send'] + cpu['verify']) / n * 1000:.2f} ms"
        )
        if attribution:
            print(attribution.report(n))
    return 130 if stack.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
