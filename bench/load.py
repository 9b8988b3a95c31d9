"""Load benchmark: full OTP flows against the production server, beside the seed.

    .venv/bin/python bench/load.py                      # 0 and 200 ms upstream, 64 and 256 clients
    .venv/bin/python bench/load.py --seed               # the same against the Express seed too
    .venv/bin/python bench/load.py --seed --repeat 3    # every cell 3 times, app and seed alternately; medians
    .venv/bin/python bench/load.py --server 2x64,3x64,3x96 --latency-ms 200 --clients 256
    .venv/bin/python bench/load.py --seed --floor --latency-ms 0   # ... and the framework floors (bench/floorsite)

It creates its own PostgreSQL database (``--database``, dropped at the end),
flushes one Redis DB number, migrates, starts the Infobip emulator (its own
send and verify limits off) and gunicorn exactly as in production
(``otpsite/gunicorn.conf.py`` on PostgreSQL + Redis), with every app limit
raised far out of reach (``--limits raised``, so the checks still run) or
switched off (``--limits off``). Closed-loop virtual users then each run
flows back to back: POST /send-otp, read the PIN from the emulator's control
API, POST /verify-otp, each flow on a new valid US mobile number.

For every server configuration, upstream latency and client count it prints
flows/s, requests/s, send and verify latency percentiles, errors by status and
timeouts, CPU seconds per flow of the server (gunicorn master + workers) and of
PostgreSQL (this database's backends + WAL writer, bgwriter, checkpointer),
and the server's peak memory. With ``--seed`` each cell also runs against the
seed (``node server.js``, RATE_LIMIT=off) on the same emulator and the
comparison gets ratios. With ``--floor`` the 0 ms cells also run servers that
answer both endpoints with no OTP work (gunicorn alone, a Django view, a DRF
view) and the app's CPU per flow is split into those layers and its own work.
Every child process is stopped on exit, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h  # noqa: E402

# Area codes of large US cities: every flow gets a new (area code, exchange)
# prefix before any prefix is reused, so per-prefix limits never bind.
AREA_CODES = (
    201,
    202,
    203,
    205,
    206,
    207,
    208,
    212,
    213,
    214,
    215,
    216,
    217,
    218,
    224,
    225,
    303,
    305,
    310,
    312,
    313,
    314,
    315,
    317,
    347,
    404,
    407,
    408,
    410,
    412,
    415,
    469,
    503,
    512,
    602,
    617,
    646,
    702,
    713,
    718,
)

# Central office codes 200-999 without N11 (service codes) and 555.
EXCHANGES = tuple(x for x in range(200, 1000) if x % 100 != 11 and x != 555)

# Limits far above anything a run reaches: every check still runs (the
# production cost), none refuses.
RAISED_LIMITS = {
    "OTP_IP_SEND_RATE": "100000000/h",
    "OTP_IP_VERIFY_RATE": "100000000/h",
    "OTP_MAX_SENDS_PER_PREFIX_PER_HOUR": "100000000",
    "OTP_MAX_SENDS_PER_COUNTRY_PER_HOUR": "100000000",
    "OTP_MAX_SENDS_PER_HOUR": "100000000",
    "OTP_MAX_SENDS_PER_DAY": "100000000",
}
OFF_LIMITS = dict.fromkeys(
    (
        "OTP_IP_SEND_RATE",
        "OTP_IP_VERIFY_RATE",
        "OTP_MAX_SENDS_PER_PHONE_PER_DAY",
        "OTP_MAX_FAILURES_PER_PHONE",
        "OTP_MAX_SENDS_PER_PREFIX_PER_HOUR",
        "OTP_MAX_SENDS_PER_COUNTRY_PER_HOUR",
        "OTP_MAX_SENDS_PER_HOUR",
        "OTP_MAX_SENDS_PER_DAY",
    ),
    "off",
)


#: The framework floors of --floor (bench/floorsite): the view (FLOOR_VIEW) and the WSGI application serving it.
FLOORS = (("bare", "floorsite.bare"), ("django", "otpsite.wsgi"), ("drf", "otpsite.wsgi"))
#: The floors take any PIN, so their users skip the look-up.
FLOOR_PIN = b"000000"


class Phones:
    """Unique valid US numbers: +1 NPA NXX XXXX, the prefix (NPA NXX) changing on every draw."""

    def __init__(self, start: int = 0) -> None:
        self.n = start

    def next(self) -> str:
        n, self.n = self.n, self.n + 1
        area = AREA_CODES[n % len(AREA_CODES)]
        n //= len(AREA_CODES)
        exchange = EXCHANGES[n % len(EXCHANGES)]
        line = 1000 + (n // len(EXCHANGES)) % 9000
        return f"+1{area}{exchange}{line}"


@dataclass
class Cell:
    target: str  # "app WxT" or "seed"
    latency_ms: int
    clients: int
    seconds: float = 0.0
    flows: int = 0
    requests: int = 0
    send: dict[str, float] = field(default_factory=dict)
    verify: dict[str, float] = field(default_factory=dict)
    pin: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    server_cpu: float = 0.0
    postgres_cpu: float = 0.0
    emulator_cpu: float = 0.0
    driver_cpu: float = 0.0
    peak_rss_mb: float = 0.0
    peak_pss_mb: float = 0.0
    #: flows/s of every repetition of this cell, when --repeat runs it more than once
    runs: list[float] = field(default_factory=list)

    @property
    def flows_per_s(self) -> float:
        return self.flows / self.seconds if self.seconds else 0.0

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def per_flow_ms(self, cpu: float) -> float:
        return cpu / self.flows * 1000 if self.flows else float("nan")

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


async def _timed(
    conn: h.Connection, kind: str, method: str, path: str, body: bytes | None, rec: h.Recorder
) -> bytes | None:
    """The answer's body if it is a 200, after recording latency, status or failure under ``kind``."""
    clock = asyncio.get_running_loop().time
    started = clock()
    try:
        status, answer = await conn.request(method, path, body)
    except h.RequestTimeout:
        rec.error(kind, "timeout")
        return None
    except h.ConnectionFailed:
        rec.error(kind, "connection")
        await asyncio.sleep(0.05)
        return None
    # The PIN look-up is the driver's own business: timed, not counted as a site request.
    rec.request(kind, clock() - started, status, counted=kind != "pin")
    return answer if status == 200 else None


async def _virtual_user(
    server: h.Connection,
    control: h.Connection,
    phones: Phones,
    rec: h.Recorder,
    stop: asyncio.Event,
    pin_lookup: bool = True,
) -> None:
    while not stop.is_set():
        phone = phones.next().encode()
        if await _timed(server, "send", "POST", "/send-otp", b'{"phoneNumber":"%s"}' % phone, rec) is None:
            continue
        pin = FLOOR_PIN
        if pin_lookup:
            answer = await _timed(control, "pin", "GET", f"/_emulator/pins/last?to={phone[1:].decode()}", None, rec)
            if answer is None:
                continue
            pin = json.loads(answer)["pin"].encode()
        body = b'{"phoneNumber":"%s","pin":"%s"}' % (phone, pin)
        if await _timed(server, "verify", "POST", "/verify-otp", body, rec) is not None:
            rec.flow()


async def _drive(
    server_port: int,
    emulator_port: int,
    clients: int,
    warmup: float,
    duration: float,
    timeout: float,
    phones: Phones,
    meter: h.ProcMeter,
    cell: Cell,
    pin_lookup: bool = True,
) -> None:
    rec = h.Recorder()
    stop = asyncio.Event()
    servers = [h.Connection("127.0.0.1", server_port, timeout=timeout) for _ in range(clients)]
    controls = [h.Connection("127.0.0.1", emulator_port, timeout=timeout) for _ in range(clients)]
    tasks = [
        asyncio.create_task(_virtual_user(s, c, phones, rec, stop, pin_lookup))
        for s, c in zip(servers, controls, strict=True)
    ]
    try:
        await asyncio.sleep(warmup)
        meter.reset_memory()
        before = meter.snapshot()
        rec.active = True
        deadline = before.at + duration
        tick = 0
        while time.monotonic() < deadline:
            # PSS (smaps_rollup) costs more to read; sample it every other second.
            meter.sample_memory(with_pss=tick % 4 == 0)
            tick += 1
            await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        rec.active = False
        after = meter.snapshot()
        meter.sample_memory(with_pss=True)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in servers + controls:
            conn.close()
    cell.seconds = after.at - before.at
    cell.flows, cell.requests = rec.flows, rec.requests
    for kind in ("send", "verify", "pin"):
        setattr(cell, kind, rec.latency.get(kind, h.Latencies()).summary())
    cell.errors = dict(rec.errors)
    cell.server_cpu = after.server - before.server
    cell.postgres_cpu = after.postgres - before.postgres
    cell.emulator_cpu = after.emulator - before.emulator
    cell.driver_cpu = after.driver - before.driver
    cell.peak_rss_mb = meter.peak_rss / 2**20
    cell.peak_pss_mb = meter.peak_pss / 2**20


def run_cell(
    target: str,
    server_pid: int,
    server_port: int,
    emulator_pid: int,
    emulator_port: int,
    database: str | None,
    latency_ms: int,
    clients: int,
    args: argparse.Namespace,
    phones: Phones,
    pin_lookup: bool = True,
) -> Cell:
    h.reset_emulator(emulator_port, latency_ms)
    cell = Cell(target, latency_ms, clients)
    meter = h.ProcMeter(server_pid, emulator_pid, database)
    asyncio.run(
        _drive(
            server_port,
            emulator_port,
            clients,
            args.warmup,
            args.duration,
            args.timeout,
            phones,
            meter,
            cell,
            pin_lookup,
        )
    )
    print_cell(cell)
    time.sleep(1.0)  # let abandoned in-flight requests drain before the next cell
    return cell


def median_runs(cells: list[Cell]) -> list[Cell]:
    """Of every repeated cell, the run with the median flows/s (the lower one of an even count), in first-run order.

    One whole run stands for the cell, so its figures belong together; the
    flows/s of all its runs are kept in ``runs``.
    """
    groups: dict[tuple[str, int, int], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.target, cell.latency_ms, cell.clients), []).append(cell)
    out = []
    for runs in groups.values():
        ranked = sorted(runs, key=lambda c: c.flows_per_s)
        median = ranked[(len(ranked) - 1) // 2]
        median.runs = [round(c.flows_per_s, 1) for c in runs]
        out.append(median)
    return out


def print_cell(c: Cell) -> None:
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(c.errors.items())) or "none"
    h.log(
        f"  {c.target:>10} {c.latency_ms:>4} ms {c.clients:>4} clients: {c.flows_per_s:7.1f} flows/s "
        f"{c.requests_per_s:7.1f} req/s | send p50/p99 {h.fmt_ms(c.send.get('p50', float('nan')))}/"
        f"{h.fmt_ms(c.send.get('p99', float('nan')))} ms, verify p50/p99 "
        f"{h.fmt_ms(c.verify.get('p50', float('nan')))}/{h.fmt_ms(c.verify.get('p99', float('nan')))} ms | "
        f"CPU/flow server {c.per_flow_ms(c.server_cpu):.2f} ms, pg {c.per_flow_ms(c.postgres_cpu):.2f} ms | "
        f"RSS {c.peak_rss_mb:.0f} MB | driver {c.driver_cpu / c.seconds * 100 if c.seconds else 0:.0f}% CPU "
        f"| errors: {errors}"
    )


def report(cells: list[Cell], args: argparse.Namespace) -> str:
    out = []
    header = [
        "server",
        "upstream",
        "clients",
        "flows/s",
        "req/s",
        "send p50/p90/p99/max ms",
        "verify p50/p90/p99/max ms",
        "errors",
        "server CPU/flow ms",
        "pg CPU/flow ms",
        "peak RSS MB",
        "peak PSS MB",
    ]
    repeated = any(c.runs for c in cells)
    if repeated:
        header.append("flows/s of each run")
    rows = []
    for c in cells:

        def lat(d: dict[str, float]) -> str:
            return "/".join(h.fmt_ms(d.get(k, float("nan"))) for k in ("p50", "p90", "p99", "max"))

        errors = ", ".join(f"{k} ×{v}" for k, v in sorted(c.errors.items())) or "0"
        rows.append(
            [
                c.target,
                f"{c.latency_ms} ms",
                str(c.clients),
                f"{c.flows_per_s:.1f}",
                f"{c.requests_per_s:.1f}",
                lat(c.send),
                lat(c.verify),
                errors,
                f"{c.per_flow_ms(c.server_cpu):.2f}",
                "-" if c.target == "seed" or is_floor(c) else f"{c.per_flow_ms(c.postgres_cpu):.2f}",
                f"{c.peak_rss_mb:.0f}",
                f"{c.peak_pss_mb:.0f}",
            ]
            + ([", ".join(f"{r:.1f}" for r in c.runs)] if repeated else [])
        )
    out.append(h.table(rows, header))
    seeds = {(c.latency_ms, c.clients): c for c in cells if c.target == "seed"}
    floors = floor_breakdown(cells, seeds)
    if floors:
        out.append("")
        out.append("Server CPU per flow (ms) at 0 ms upstream, layer by layer: the floors, then the app's own work")
        out.append(floors)
    apps = [c for c in cells if c.target != "seed"]
    if seeds:
        header = [
            "server",
            "upstream",
            "clients",
            "flows/s app / seed",
            "ratio",
            "server CPU/flow ms app / seed",
            "ratio",
            "app + pg CPU/flow ratio",
        ]
        rows = []
        for c in apps:
            s = seeds.get((c.latency_ms, c.clients))
            if s is None or not s.flows:
                continue
            app_cpu, seed_cpu = c.per_flow_ms(c.server_cpu), s.per_flow_ms(s.server_cpu)
            rows.append(
                [
                    c.target,
                    f"{c.latency_ms} ms",
                    str(c.clients),
                    f"{c.flows_per_s:.1f} / {s.flows_per_s:.1f}",
                    f"{c.flows_per_s / s.flows_per_s:.2f}×",
                    f"{app_cpu:.2f} / {seed_cpu:.2f}",
                    f"{app_cpu / seed_cpu:.2f}×",
                    f"{(app_cpu + c.per_flow_ms(c.postgres_cpu)) / seed_cpu:.2f}×",
                ]
            )
        out.append("")
        out.append(h.table(rows, header))
        out.append("")
        out.append("Targets:")
        for c in apps:
            if is_floor(c):
                continue
            s = seeds.get((c.latency_ms, c.clients))
            if s is None or not s.flows:
                continue
            ratio = c.flows_per_s / s.flows_per_s
            cpu_ratio = c.per_flow_ms(c.server_cpu) / s.per_flow_ms(s.server_cpu)
            if c.latency_ms == 200 and c.clients == 64:
                ok = ratio >= 0.9 and c.error_count == 0
                out.append(
                    f"  [{'PASS' if ok else 'FAIL'}] {c.target} 200 ms / 64 clients: flows/s {ratio:.2f}× "
                    f"seed (≥ 0.9×), errors {c.error_count} (0)"
                )
            if c.latency_ms == 200 and c.clients == 256:
                ok = c.error_count == 0
                out.append(
                    f"  [{'PASS' if ok else 'FAIL'}] {c.target} 200 ms / 256 clients: errors+timeouts "
                    f"{c.error_count} (0); flows/s {ratio:.2f}× seed (aim ≥ 0.5×); "
                    f"peak RSS {c.peak_rss_mb:.0f} MB (< 400)"
                )
            if c.latency_ms == 0 and c.clients == 64:
                ok = cpu_ratio <= 4
                out.append(
                    f"  [{'PASS' if ok else 'FAIL'}] {c.target} 0 ms / 64 clients: server CPU/flow "
                    f"{cpu_ratio:.2f}× seed (≤ 4×)"
                )
    return "\n".join(out)


def is_floor(cell: Cell) -> bool:
    return cell.target.startswith("floor ")


def floor_breakdown(cells: list[Cell], seeds: dict[tuple[int, int], Cell]) -> str:
    """The app's 0 ms server CPU per flow in layers: gunicorn, Django, DRF, the app's own work; "" without floors."""
    by_target = {(c.target, c.latency_ms, c.clients): c for c in cells}
    header = [
        "server",
        "clients",
        "bare gunicorn",
        "+ Django and the site's middleware",
        "+ DRF",
        "+ the app's own work",
        "app",
        "DRF floor / seed",
    ]
    rows = []
    for c in cells:
        if c.latency_ms != 0 or c.target == "seed" or is_floor(c):
            continue
        layout = c.target.split()[-1]
        floors = [by_target.get((f"floor {kind} {layout}", 0, c.clients)) for kind, _ in FLOORS]
        if not all(f is not None and f.flows for f in floors):
            continue
        bare, django, drf = (f.per_flow_ms(f.server_cpu) for f in floors if f is not None)
        app = c.per_flow_ms(c.server_cpu)
        seed = seeds.get((0, c.clients))
        seed_cpu = seed.per_flow_ms(seed.server_cpu) if seed and seed.flows else None
        rows.append(
            [
                c.target,
                str(c.clients),
                f"{bare:.2f}",
                f"{django - bare:+.2f}",
                f"{drf - django:+.2f}",
                f"{app - drf:+.2f}",
                f"{app:.2f}",
                f"{drf:.2f} / {seed_cpu:.2f} = {drf / seed_cpu:.2f}×" if seed_cpu else "-",
            ]
        )
    return h.table(rows, header) if rows else ""


def parse_servers(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        workers, _, threads = item.strip().lower().partition("x")
        out.append((int(workers), int(threads)))
    return out


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency-ms", type=ints, default=[0, 200], help="upstream latencies (default 0,200)")
    parser.add_argument("--clients", type=ints, default=[64, 256], help="virtual users (default 64,256)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per cell (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each cell (default 3)")
    parser.add_argument("--timeout", type=float, default=10.0, help="client timeout per request, s (default 10)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every cell this many times, the app's and the seed's alternately, and report the median run "
        "(by flows/s) of each (default 1)",
    )
    parser.add_argument(
        "--server",
        type=parse_servers,
        default=None,
        metavar="WxT[,WxT...]",
        help="gunicorn workers x threads to measure (default: --workers x --threads)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=h.PRODUCTION_WORKERS,
        help=f"gunicorn workers (default: production's, otpsite/gunicorn.conf.py: {h.PRODUCTION_WORKERS})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=h.PRODUCTION_THREADS,
        help=f"gunicorn threads per worker (default: production's, {h.PRODUCTION_THREADS})",
    )
    parser.add_argument(
        "--limits",
        choices=("raised", "off"),
        default="raised",
        help="app limits far out of reach but checked (default) or switched off",
    )
    parser.add_argument("--seed", action="store_true", help="also run the Express seed under the same driver")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also run the framework floors (bench/floorsite: bare gunicorn, a Django view, a DRF view, "
        "each doing no OTP work) in the 0 ms cells",
    )
    parser.add_argument(
        "--seed-dir",
        type=Path,
        default=Path("/work/shared/peers/express-seed"),
        help="the seed's sources (copied to a temporary directory for npm ci)",
    )
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server to create the database on (env BENCH_POSTGRES_URL)",
    )
    parser.add_argument(
        "--database", default="otp_loadbench", help="database created and dropped (default otp_loadbench)"
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        help="Redis DB flushed and used by the site (default redis://127.0.0.1:6379/13)",
    )
    parser.add_argument("--log-level", default="INFO", help="the site's LOG_LEVEL (default INFO, as in production)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the site (repeatable), e.g. DATABASE_POOL_MAX_SIZE=20",
    )
    parser.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="record every gunicorn worker with py-spy for this long during the first cell "
        "(needs py-spy on PATH or in BENCH_PY_SPY)",
    )
    parser.add_argument("--json", type=Path, help="also write the cells as JSON here")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "otp-bench",
        help="logs and the seed's copy (default /tmp/otp-bench)",
    )
    args = parser.parse_args()
    servers = args.server or [(args.workers, args.threads)]
    extra = dict(RAISED_LIMITS if args.limits == "raised" else OFF_LIMITS)
    extra["LOG_LEVEL"] = args.log_level
    for item in args.env:
        name, _, value = item.partition("=")
        extra[name] = value

    total = (len(servers) + args.seed) * len(args.latency_ms) * len(args.clients) * args.repeat
    if args.floor and 0 in args.latency_ms:
        total += len(FLOORS) * len(args.clients) * args.repeat
    h.log(f"{total} cells of {args.warmup:.0f}+{args.duration:.0f} s; logs in {args.work_dir}")
    seed_dir = h.prepare_seed(args.seed_dir, args.work_dir) if args.seed else None
    cells: list[Cell] = []
    phones = Phones()
    run_dir = args.work_dir / time.strftime("load-%Y%m%d-%H%M%S")
    with h.Stack(run_dir, args.admin_url, args.database) as stack:
        db_url = stack.create_database()
        h.flush_redis(args.redis_url)
        emulator_port, site_port, seed_port = h.free_port(), h.free_port(), h.free_port()
        emulator = h.start_emulator(stack, emulator_port)
        env = h.site_env(database_url=db_url, redis_url=args.redis_url, emulator_port=emulator_port, extra=extra)
        h.migrate(env)
        seed = h.start_seed(stack, seed_dir, seed_port, emulator_port) if seed_dir else None
        floors = start_floors(stack, env, servers[0], args) if args.floor else []
        for index, (workers, threads) in enumerate(servers):
            name = f"app {workers}x{threads}"
            h.log(f"{name}: gunicorn {workers} workers x {threads} threads on PostgreSQL + Redis, limits {args.limits}")
            site = h.start_gunicorn(stack, env, site_port, workers, threads, name=f"gunicorn-{workers}x{threads}")
            for latency, clients, _ in itertools.product(args.latency_ms, args.clients, range(args.repeat)):
                profiler = None
                if args.profile and not cells:
                    profiler = start_profiler(stack, site.pid, args.profile, run_dir)
                cells.append(
                    run_cell(
                        name,
                        site.pid,
                        site_port,
                        emulator.pid,
                        emulator_port,
                        args.database,
                        latency,
                        clients,
                        args,
                        phones,
                    )
                )
                if profiler:
                    finish_profiler(profiler, run_dir)
                if seed is not None and index == 0:
                    cells.append(
                        run_cell(
                            "seed",
                            seed.pid,
                            seed_port,
                            emulator.pid,
                            emulator_port,
                            None,
                            latency,
                            clients,
                            args,
                            phones,
                        )
                    )
                if index == 0 and latency == 0:
                    # Right after the app's cell: the VM's speed drifts, and the
                    # layers are differences between these figures.
                    for floor_name, floor, floor_port in floors:
                        cells.append(
                            run_cell(
                                floor_name,
                                floor.pid,
                                floor_port,
                                emulator.pid,
                                emulator_port,
                                None,
                                0,
                                clients,
                                args,
                                phones,
                                False,
                            )
                        )
            stack.stop(site)
            h.flush_redis(args.redis_url)
    if stack.interrupted:
        return 130
    h.log("")
    h.log(
        time.strftime("Results %Y-%m-%d %H:%M %Z, ") + f"{os.cpu_count()} CPUs, "
        f"{args.duration:.0f} s per cell, limits {args.limits}, log level {args.log_level}"
        + (f"; each cell the median of {args.repeat} runs by flows/s" if args.repeat > 1 else "")
    )
    h.log(report(median_runs(cells) if args.repeat > 1 else cells, args))
    if args.json:
        args.json.write_text(json.dumps([asdict(c) for c in cells], indent=2))
    return 0


def start_floors(
    stack: h.Stack, env: dict[str, str], server: tuple[int, int], args: argparse.Namespace
) -> list[tuple[str, Any, int]]:
    """Start every floor of ``bench/floorsite`` under the app's first gunicorn layout: (name, process, port).

    They run in the 0 ms cells only (they call no upstream), each right after
    the app's cell of the same client count.
    """
    if 0 not in args.latency_ms:
        h.log("floors: skipped, they run only in the 0 ms cells")
        return []
    workers, threads = server
    floor_env = env | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(h.ROOT / "bench"), env.get("PYTHONPATH")])),
        "DJANGO_SETTINGS_MODULE": "floorsite.settings",
    }
    floors = []
    for kind, app in FLOORS:
        name, port = f"floor {kind} {workers}x{threads}", h.free_port()
        h.log(f"{name}: the same gunicorn answering both endpoints with no OTP work (bench/floorsite)")
        proc = h.start_gunicorn(
            stack, floor_env | {"FLOOR_VIEW": kind}, port, workers, threads, name=f"floor-{kind}", app=app
        )
        floors.append((name, proc, port))
    return floors


# -- profiling ------------------------------------------------------------------------


def start_profiler(stack: h.Stack, master_pid: int, seconds: float, run_dir: Path) -> list[Any]:
    spy = os.environ.get("BENCH_PY_SPY") or "py-spy"
    workers = [pid for pid in h.process_tree(master_pid) if pid != master_pid]
    procs = []
    for pid in workers:
        out = run_dir / f"profile-{pid}.txt"
        procs.append(
            (
                stack.start(
                    f"py-spy-{pid}",
                    [
                        spy,
                        "record",
                        "--pid",
                        str(pid),
                        "--duration",
                        str(int(seconds)),
                        "--rate",
                        "200",
                        "--gil",
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--output",
                        str(out),
                    ],
                    dict(os.environ),
                ),
                out,
            )
        )
    return procs


def finish_profiler(procs: list[Any], run_dir: Path) -> None:
    stacks: dict[str, int] = {}
    for proc, out in procs:
        try:
            proc.wait(60)
        except Exception:  # noqa: BLE001
            proc.kill()
        if out.exists():
            for line in out.read_text().splitlines():
                frames, _, count = line.rpartition(" ")
                if frames and count.isdigit():
                    stacks[frames] = stacks.get(frames, 0) + int(count)
    if not stacks:
        h.log(f"  no profile recorded (see {run_dir}/py-spy-*.log)")
        return
    h.log(summarize_profile(stacks))


def summarize_profile(stacks: dict[str, int], top: int = 25) -> str:
    """Self and inclusive shares per function from py-spy's collapsed stacks, idle threads left out."""
    idle_leaves = (
        "wait (threading.py",
        "select (selectors.py",
        "_worker (concurrent/futures/thread.py",
        "acquire (",
        "sleep (",
        "poll (selectors.py",
    )
    busy: dict[str, int] = {}
    for frames, count in stacks.items():
        leaf = frames.split(";")[-1]
        if any(leaf.startswith(idle) or idle in leaf for idle in idle_leaves):
            continue
        busy[frames] = count
    total = sum(busy.values()) or 1
    self_time: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    for frames, count in busy.items():
        parts = frames.split(";")
        self_time[parts[-1]] = self_time.get(parts[-1], 0) + count
        for part in set(parts):
            inclusive[part] = inclusive.get(part, 0) + count
    lines = [f"  profile: {total} busy samples over all workers (idle waits left out)", "  top self time:"]
    for name, count in sorted(self_time.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"    {count / total * 100:5.1f}%  {name}")
    lines.append("  top inclusive time:")
    for name, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[: top * 2]:
        lines.append(f"    {count / total * 100:5.1f}%  {name}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
