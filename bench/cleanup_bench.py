"""Benchmark: purge a million expired OTP attempts while verifies run beside it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/cleanup_bench.py

``DATABASE_URL`` names the PostgreSQL server; the benchmark creates its own
database there (``otp_bench`` unless ``--database``), and drops it when done.
It fills ``--expired`` attempts that expired 40+ days ago with one
``INSERT ... SELECT generate_series``, sends ``--live`` real codes through the
service layer (locmem provider), times the admin changelist on the full table,
then runs ``purge_expired`` while ``--threads`` threads keep verifying live
codes (two wrong guesses, then the right PIN) and reports the cleanup's wall
time, rows deleted, the process's peak memory, and verify latency before and
during the cleanup. It stops by itself once the cleanup is done.
"""

from __future__ import annotations

import argparse
import os
import queue
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import environ  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

FILL_EXPIRED = """
INSERT INTO otp_otpattempt (phone, pin_id, status, channel, purpose, provider, failed_verifies, resends,
                            created_at, expires_at, verified_at)
SELECT '+1' || (2000000000 + mod(g, 5000000))::text, 'BENCH' || g,
       (ARRAY['verified', 'expired', 'superseded', 'exhausted', 'failed', 'pending'])[1 + mod(g, 6)],
       'sms', 'default', 'locmem', mod(g, 3), 0, t.created, t.created + interval '5 minutes',
       CASE WHEN mod(g, 6) = 0 THEN t.created + interval '1 minute' END
FROM generate_series(1, %s) AS g,
     LATERAL (SELECT now() - interval '40 days' - g * interval '1 second' AS created) AS t
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--expired", type=int, default=1_000_000, help="expired attempts to purge")
    parser.add_argument("--live", type=int, default=10_000, help="live codes sent before the purge")
    parser.add_argument("--threads", type=int, default=4, help="verifying threads")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--baseline-seconds", type=float, default=3.0, help="verifies timed before the purge")
    parser.add_argument("--database", default="otp_bench", help="database created and dropped by the benchmark")
    args = parser.parse_args()
    if min(args.expired, args.live, args.threads) < 0 or args.threads < 1:
        parser.error("--expired and --live must be >= 0, --threads >= 1")
    return args


def server_connection(base: dict[str, Any]) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=base["HOST"] or None,
        port=base["PORT"] or None,
        user=base["USER"] or None,
        password=base["PASSWORD"] or None,
        dbname=base["NAME"],
        autocommit=True,
    )


def configure_django(database: dict[str, Any]) -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="bench-only",
        DEBUG=False,
        USE_TZ=True,
        TIME_ZONE="UTC",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "rest_framework",
            "otp",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        ROOT_URLCONF="tests.urls",
        DATABASES={"default": database},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        # The live codes go to thousands of numbers in a few prefixes at once:
        # the send limits would refuse most of them.
        OTP={
            "PROVIDER": "otp.providers.locmem.LocmemProvider",
            "RESEND_COOLDOWN_SECONDS": 0,
            **dict.fromkeys(
                (
                    "MAX_SENDS_PER_PHONE_PER_DAY",
                    "MAX_SENDS_PER_PREFIX_PER_HOUR",
                    "MAX_SENDS_PER_COUNTRY_PER_HOUR",
                    "MAX_SENDS_PER_HOUR",
                    "MAX_SENDS_PER_DAY",
                ),
                None,
            ),
        },
    )
    django.setup()


def live_phone(i: int) -> str:
    return f"+1415{555 + i // 10_000:03d}{i % 10_000:04d}"


def timed(label: str, action: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = action()
    print(f"  {label}: {time.perf_counter() - started:.1f} s")
    return result


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_line(label: str, samples: list[float]) -> str:
    if not samples:
        return f"  {label}: no verifies"
    ms = [s * 1000 for s in samples]
    return (
        f"  {label}: {len(ms)} verifies, p50 {percentile(ms, 0.50):.2f} ms, "
        f"p99 {percentile(ms, 0.99):.2f} ms, max {max(ms):.2f} ms"
    )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Verifiers:
    """Threads verifying live codes through the service layer until stopped."""

    def __init__(self, codes: list[tuple[str, str]], threads: int) -> None:
        self.codes: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        for code in codes:
            self.codes.put(code)
        self.samples: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def take_samples(self) -> list[float]:
        taken, self.samples = self.samples, []
        return taken

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _next_code(self, n: int) -> tuple[str, str]:
        from otp.providers import locmem
        from otp.services import send_code

        try:
            return self.codes.get_nowait()
        except queue.Empty:  # every live code used: keep the traffic up with fresh ones
            phone = live_phone(50_000 + n)
            send_code(phone)
            return phone, next(m.pin for m in reversed(locmem.outbox) if m.phone == phone)

    def _run(self, n: int) -> None:
        from django.db import connection

        from otp.exceptions import VerificationFailed
        from otp.services import verify_code

        try:
            while not self.stop.is_set():
                phone, pin = self._next_code(n)
                wrong = f"{pin[:-1]}{(int(pin[-1]) + 1) % 10}"
                for guess, should_pass in ((wrong, False), (wrong, False), (pin, True)):
                    started = time.perf_counter()
                    try:
                        verify_code(phone, guess)
                        passed = True
                    except VerificationFailed:
                        passed = False
                    self.samples.append(time.perf_counter() - started)
                    if passed != should_pass:
                        self.errors.append(f"{phone}: {'passed' if passed else 'failed'} unexpectedly")
        except Exception as err:  # reported, not swallowed: the run is then invalid
            self.errors.append(repr(err))
        finally:
            connection.close()


def send_live_codes(count: int, threads: int) -> list[tuple[str, str]]:
    from django.db import connection

    from otp.providers import locmem
    from otp.services import send_code

    def send_range(start: int) -> None:
        try:
            for i in range(start, count, threads):
                send_code(live_phone(i))
        finally:
            connection.close()

    workers = [threading.Thread(target=send_range, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [(m.phone, m.pin) for m in locmem.outbox]


def time_admin() -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(get_user_model().objects.create_superuser("bench", "bench@example.com", None))
    for label, query in (
        ("changelist", {}),
        ("changelist page 50", {"p": "50"}),
        ("filtered by status", {"status__exact": "verified"}),
        ("search +1 415 555 0042", {"q": "+1 415 555 0042"}),
    ):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            status = client.get("/admin/otp/otpattempt/", query).status_code
            elapsed = time.perf_counter() - started
        slowest = max(queries.captured_queries, key=lambda q: float(q["time"]))
        print(
            f"  admin {label}: HTTP {status}, {elapsed * 1000:.0f} ms, {len(queries)} queries, "
            f"slowest {float(slowest['time']) * 1000:.0f} ms: {slowest['sql'][:70]}…"
        )


def run(args: argparse.Namespace) -> None:
    from django.core.management import call_command
    from django.db import connection

    from otp.models import OtpAttempt
    from otp.retention import purge_expired

    print(f"Setting up {args.expired:,} expired and {args.live:,} live attempts")
    timed("migrate", lambda: call_command("migrate", verbosity=0))
    with connection.cursor() as cursor:
        timed("fill expired", lambda: cursor.execute(FILL_EXPIRED, [args.expired]))
    codes = timed("send live codes", lambda: send_live_codes(args.live, args.threads))
    with connection.cursor() as cursor:
        timed("analyze", lambda: cursor.execute("ANALYZE otp_otpattempt"))
    time_admin()

    verifiers = Verifiers(codes, args.threads)
    verifiers.start()
    time.sleep(args.baseline_seconds)
    baseline = verifiers.take_samples()
    rss_before = peak_rss_mib()
    started = time.perf_counter()
    result = purge_expired(30, batch_size=args.batch_size)
    wall = time.perf_counter() - started
    during = verifiers.take_samples()
    verifiers.join()

    expired_left = OtpAttempt.objects.filter(provider="locmem", pin_id__startswith="BENCH").count()
    print("Results")
    print(f"  cleanup wall time: {wall:.1f} s ({result.deleted / wall:,.0f} rows/s)")
    print(
        f"  rows deleted: {result.deleted:,} in {result.batches:,} batches of {args.batch_size}; "
        f"expired rows left: {expired_left}; rows left: {OtpAttempt.objects.count():,}"
    )
    print(f"  peak RSS: {rss_before:.0f} MiB before the cleanup, {peak_rss_mib():.0f} MiB after")
    print(latency_line("verify latency before the cleanup", baseline))
    print(latency_line("verify latency during the cleanup", during))
    print(
        f"  verify errors: {len(verifiers.errors)}" + (f" (first: {verifiers.errors[0]})" if verifiers.errors else "")
    )


def main() -> None:
    args = parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL to a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/test")
    base = environ.Env.db_url_config(url)
    if args.database == base["NAME"]:
        sys.exit(f"--database must not be {base['NAME']!r}, the database DATABASE_URL names: it is dropped")
    name = sql.Identifier(args.database)
    with server_connection(base) as server:
        server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        server.execute(sql.SQL("CREATE DATABASE {}").format(name))
    try:
        configure_django({**base, "NAME": args.database})
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        with server_connection(base) as server:
            server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


if __name__ == "__main__":
    main()
