"""Shared pieces of the benchmarks in ``bench/``: processes, databases, /proc, HTTP.

Nothing here imports Django: the benchmarks drive the site from the outside,
as a client would, and start every server as a child process.

- :class:`Stack` starts child processes in their own process groups and stops
  every one of them on exit, on an error and on Ctrl-C/SIGTERM.
- :func:`create_database` / :func:`drop_database` / :func:`flush_redis` give a
  run its own PostgreSQL database and Redis DB number.
- :class:`ProcMeter` reads CPU time and memory of process trees from /proc.
- :class:`Connection` is a small HTTP/1.1 keep-alive client on asyncio
  protocols: a load driver that shares the machine with the server under test
  must spend as little CPU per request as it can (a few tens of
  microseconds here, several times less than aiohttp or requests).
"""

from __future__ import annotations

import asyncio
import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
GUNICORN = str(VENV_BIN / "gunicorn") if (VENV_BIN / "gunicorn").exists() else "gunicorn"
MANAGE = str(ROOT / "manage.py")
#: gunicorn's workers and threads as production runs them: otpsite/gunicorn.conf.py's
#: values (cores + 1 and 64, unless GUNICORN_WORKERS or GUNICORN_THREADS is set).
_GUNICORN_DEFAULTS = runpy.run_path(str(ROOT / "otpsite" / "gunicorn.conf.py"))
PRODUCTION_WORKERS: int = _GUNICORN_DEFAULTS["workers"]
PRODUCTION_THREADS: int = _GUNICORN_DEFAULTS["threads"]

EMULATOR_KEY = "bench-emulator-key"
EMULATOR_APP_ID = "BENCHAPP1"
EMULATOR_MSG_ID = "BENCHMSG1"

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def log(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- child processes -------------------------------------------------------------


class Stack:
    """Child processes that are all stopped when the ``with`` block ends, however it ends.

    Each child runs in its own session (process group), so a stop reaches the
    gunicorn workers and node's helpers too. SIGINT and SIGTERM raise
    ``KeyboardInterrupt`` in the main thread, which unwinds through ``__exit__``.
    """

    def __init__(self, log_dir: Path, admin_url: str | None = None, database: str | None = None) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._previous: dict[int, Any] = {}
        self.admin_url, self.database = admin_url, database
        self.interrupted = False

    def create_database(self) -> str:
        """The run's own database, created empty now and dropped when the block ends."""
        assert self.admin_url and self.database
        return create_database(self.admin_url, self.database)

    def __enter__(self) -> Stack:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._interrupt)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        # A second Ctrl-C while stopping must not leave children behind.
        for signum in self._previous:
            signal.signal(signum, signal.SIG_IGN)
        try:
            if exc_type is KeyboardInterrupt:
                log("interrupted; stopping everything")
                self.interrupted = True
            self.stop_all()
            if self.admin_url and self.database:
                try:
                    drop_database(self.admin_url, self.database)
                except Exception as err:  # noqa: BLE001 (reported, not fatal)
                    log(f"could not drop database {self.database}: {err}")
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
        return self.interrupted

    @staticmethod
    def _interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def start(self, name: str, argv: Sequence[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen[bytes]:
        logfile = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (kept open by the child)
        proc = subprocess.Popen(
            list(argv),
            env=env,
            cwd=str(cwd),
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        logfile.close()
        self.procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (a worker that ignored SIGTERM, say).
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

    def stop_all(self) -> None:
        for _name, proc in reversed(list(self.procs)):
            self.stop(proc)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def http_get(url: str, timeout: float = 2.0, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,  # noqa: S310 (loopback only)
        headers={"Content-Type": "application/json"} if data else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback only)
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw


def wait_serving(stack: Stack, name: str, proc: subprocess.Popen[bytes], url: str, timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers (any status below 500), or fail with the child's log."""
    deadline = time.monotonic() + timeout
    last: Exception | str = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{stack.log_tail(name)}")
        try:
            status, _ = http_get(url, timeout=2.0)
            if status < 500:
                return
            last = f"status {status}"
        except OSError as err:
            last = err
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not serve {url} within {timeout:.0f} s ({last}):\n{stack.log_tail(name)}")


# -- the emulator, the site, the seed --------------------------------------------------


def start_emulator(
    stack: Stack, port: int, latency_ms: int = 0, *, send_limits: bool = False, verify_limit: bool = False
) -> subprocess.Popen[bytes]:
    argv = [
        PYTHON,
        MANAGE,
        "otp_emulator",
        "--port",
        str(port),
        "--api-key",
        EMULATOR_KEY,
        "--app-id",
        EMULATOR_APP_ID,
        "--msg-id",
        EMULATOR_MSG_ID,
    ]
    if not send_limits:
        argv.append("--no-send-limits")
    if not verify_limit:
        argv.append("--no-verify-limit")
    if latency_ms:
        argv += ["--latency-ms", str(latency_ms)]
    env = clean_env() | {"DEBUG": "1", "DATABASE_URL": "sqlite:///:memory:", "REDIS_URL": ""}
    proc = stack.start("emulator", argv, env)
    wait_serving(stack, "emulator", proc, f"http://127.0.0.1:{port}/_emulator/health")
    return proc


def emulator_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def set_emulator_latency(port: int, ms: int) -> None:
    status, body = http_get(f"{emulator_url(port)}/_emulator/latency", method="PUT", body={"ms": ms})
    if status != 200:
        raise RuntimeError(f"cannot set the emulator's latency: {status} {body}")


def reset_emulator(port: int, latency_ms: int = 0) -> None:
    """Forget PINs and counters (the reset also clears latency, so set it again)."""
    http_get(f"{emulator_url(port)}/_emulator/reset", method="POST", body={})
    set_emulator_latency(port, latency_ms)


def emulator_stats(port: int) -> dict[str, int]:
    status, body = http_get(f"{emulator_url(port)}/_emulator/stats")
    if status != 200:
        raise RuntimeError(f"emulator stats: {status} {body}")
    return body


def clean_env() -> dict[str, str]:
    """The caller's environment minus every variable the site reads (no .env surprises)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTP_", "INFOBIP_", "GUNICORN_", "DATABASE_", "SECURE_"))
        and k not in ("SECRET_KEY", "DEBUG", "REDIS_URL", "ALLOWED_HOSTS", "LOG_LEVEL", "LOG_FORMAT")
    }
    # An empty file: the site must not read a developer's .env beside manage.py.
    env["OTPSITE_ENV_FILE"] = os.devnull
    return env


def site_env(
    *, database_url: str, redis_url: str, emulator_port: int, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = clean_env() | {
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + "k" * 50,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # gunicorn serves plain http on loopback, with no TLS proxy in front.
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "INFOBIP_API_KEY": EMULATOR_KEY,
        "INFOBIP_BASE_URL": emulator_url(emulator_port),
        "INFOBIP_2FA_APP_ID": EMULATOR_APP_ID,
        "INFOBIP_2FA_MSG_ID": EMULATOR_MSG_ID,
    }
    return env | (extra or {})


def migrate(env: dict[str, str]) -> None:
    result = subprocess.run(
        [PYTHON, MANAGE, "migrate", "--no-input", "-v", "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode:
        raise RuntimeError(f"migrate failed:\n{result.stdout}\n{result.stderr}")


def start_gunicorn(
    stack: Stack,
    env: dict[str, str],
    port: int,
    workers: int,
    threads: int,
    name: str = "gunicorn",
    extra_argv: Sequence[str] = (),
    app: str = "otpsite.wsgi",
) -> subprocess.Popen[bytes]:
    env = env | {
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": str(threads),
    }
    argv = [GUNICORN, "-c", str(ROOT / "otpsite" / "gunicorn.conf.py"), *extra_argv, app]
    proc = stack.start(name, argv, env)
    wait_serving(stack, name, proc, f"http://127.0.0.1:{port}/healthz")
    # Every worker must be up before a measurement: wait for the full count.
    deadline = time.monotonic() + 30
    while len(process_tree(proc.pid)) < workers + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    return proc


def start_seed(stack: Stack, seed_dir: Path, port: int, emulator_port: int) -> subprocess.Popen[bytes]:
    env = clean_env() | {
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "INFOBIP_BASE_URL": emulator_url(emulator_port),
        "INFOBIP_API_KEY": EMULATOR_KEY,
        "INFOBIP_APP_ID": EMULATOR_APP_ID,
        "INFOBIP_MESSAGE_ID": EMULATOR_MSG_ID,
        "RATE_LIMIT": "off",
        "NODE_ENV": "production",
    }
    proc = stack.start("seed", ["node", "server.js"], env, cwd=seed_dir)
    # Any answer will do: Express has no GET route and says 404.
    wait_serving(stack, "seed", proc, f"http://127.0.0.1:{port}/")
    return proc


def prepare_seed(source: Path, work: Path) -> Path:
    """A writable copy of the seed with its node_modules (``npm ci``), reused across runs."""
    target = work / "express-seed"
    stamp = target / "node_modules" / ".package-lock.json"
    lock = source / "package-lock.json"
    if (
        stamp.exists()
        and (target / "package-lock.json").read_bytes() == lock.read_bytes()
        and (target / "server.js").read_bytes() == (source / "server.js").read_bytes()
    ):
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json", "server.js"):
        (target / name).write_bytes((source / name).read_bytes())
        os.chmod(target / name, 0o644)
    log(f"npm ci in {target} ...")
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--omit=dev"], cwd=target, capture_output=True, text=True, timeout=600
    )
    if result.returncode:
        raise RuntimeError(f"npm ci failed:\n{result.stdout}\n{result.stderr}")
    return target


# -- PostgreSQL and Redis ------------------------------------------------------------------


def _admin_connection(admin_url: str) -> Any:
    import psycopg

    return psycopg.connect(admin_url, autocommit=True, connect_timeout=10)


def database_url(admin_url: str, name: str) -> str:
    """``admin_url`` (postgres://user@host:port/db) with its database replaced by ``name``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def create_database(admin_url: str, name: str) -> str:
    if name in ("postgres", "template0", "template1", "test") or not name.replace("_", "").isalnum():
        raise ValueError(f"refusing to use database {name!r}")
    from psycopg import sql

    drop_database(admin_url, name)
    with _admin_connection(admin_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    from psycopg import sql

    with _admin_connection(admin_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


# -- /proc ---------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        fields = _stat(pid)
        if fields:
            children.setdefault(int(fields[1]), []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid == root and _stat(root) is None:
            return []
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: Iterable[int], *, reaped_children: bool = False) -> float:
    """User + system CPU of ``pids`` (and of their waited-for children if asked)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
            if reaped_children:
                total += int(fields[13]) + int(fields[14])
    return total / CLK_TCK


def rss_bytes(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            pass
    return total


def pss_bytes(pids: Iterable[int]) -> int:
    """Proportional set size: shared pages (preloaded app code) counted once overall."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except (OSError, ValueError):
            pass
    return total


def postgres_pids(database: str) -> list[int]:
    """Backends connected to ``database``, plus the WAL writer, background writer and checkpointer.

    Backends of other databases (other people's tests on the same server) are left out.
    """
    pids = []
    for pid in _all_pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if not cmdline.startswith("postgres:"):
            continue
        words = cmdline.split()
        if database in words[2:5] or any(aux in cmdline for aux in ("walwriter", "background writer", "checkpointer")):
            pids.append(pid)
    return pids


@dataclass
class CpuSnapshot:
    at: float
    server: float
    postgres: float
    emulator: float
    driver: float


class ProcMeter:
    """CPU time of the server tree, the database's backends, the emulator and this driver."""

    def __init__(self, server_pid: int, emulator_pid: int | None, database: str | None) -> None:
        self.server_pid = server_pid
        self.emulator_pid = emulator_pid
        self.database = database
        self.peak_rss = 0
        self.peak_pss = 0

    def server_pids(self) -> list[int]:
        return process_tree(self.server_pid)

    def snapshot(self) -> CpuSnapshot:
        # A gunicorn worker that died and was replaced is in the master's
        # reaped-children times; count them so no CPU goes missing.
        server = (
            cpu_seconds(self.server_pids())
            + cpu_seconds([self.server_pid], reaped_children=True)
            - cpu_seconds([self.server_pid])
        )
        postgres = cpu_seconds(postgres_pids(self.database)) if self.database else 0.0
        emulator = cpu_seconds(process_tree(self.emulator_pid)) if self.emulator_pid else 0.0
        times = os.times()
        return CpuSnapshot(time.monotonic(), server, postgres, emulator, times.user + times.system)

    def sample_memory(self, with_pss: bool = False) -> None:
        pids = self.server_pids()
        self.peak_rss = max(self.peak_rss, rss_bytes(pids))
        if with_pss:
            self.peak_pss = max(self.peak_pss, pss_bytes(pids))

    def reset_memory(self) -> None:
        self.peak_rss = self.peak_pss = 0


# -- a small HTTP/1.1 client -------------------------------------------------------------


class RequestTimeout(Exception):
    pass


class ConnectionFailed(Exception):
    pass


class _Protocol(asyncio.Protocol):
    """One keep-alive connection; one request at a time; Content-Length or chunked bodies."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.head: tuple[int, int | None, bool, bool, int] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if self.head is not None and self.head[1] is None and not self.head[2]:
                # A body delimited by the end of the connection.
                waiter.set_result((self.head[0], bytes(self.buf[self.head[4] :]), True))
            else:
                waiter.set_exception(ConnectionFailed(str(exc or "connection closed")))
        self.waiter = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is not None:
            self._parse()

    def _parse(self) -> None:
        buf = self.buf
        if self.head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length, chunked, close = None, False, lines[0].startswith("HTTP/1.0")
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding":
                    chunked = "chunked" in value.lower()
                elif name == "connection":
                    close = "close" in value.lower()
            self.head = (status, length, chunked, close, end + 4)
        status, length, chunked, close, start = self.head
        if chunked:
            body = bytearray()
            pos = start
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return
                size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
                if size == 0:
                    # The last chunk, then optional trailers and an empty line.
                    end = buf.find(b"\r\n\r\n", eol)
                    if end < 0:
                        return
                    end += 4
                    break
                if len(buf) < eol + 2 + size + 2:
                    return
                body += buf[eol + 2 : eol + 2 + size]
                pos = eol + 2 + size + 2
            payload = bytes(body)
        elif length is not None:
            end = start + length
            if len(buf) < end:
                return
            payload = bytes(buf[start:end])
        else:
            return  # read to the end of the connection
        del buf[:end]
        self.head = None
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, payload, close))


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(RequestTimeout())


class Connection:
    """A persistent connection to ``host:port`` (reopened after an error), optionally from ``source`` IP."""

    def __init__(self, host: str, port: int, *, source: str | None = None, timeout: float = 10.0) -> None:
        self.host, self.port, self.source, self.timeout = host, port, source, timeout
        self.host_header = f"{host}:{port}".encode()
        self.proto: _Protocol | None = None
        self.connects = 0

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(
                    _Protocol, self.host, self.port, local_addr=(self.source, 0) if self.source else None
                ),
                self.timeout,
            )
        except TimeoutError as err:
            raise RequestTimeout() from err
        except OSError as err:
            raise ConnectionFailed(str(err)) from err
        self.connects += 1
        return proto

    async def request(
        self, method: str, path: str, body: bytes | None = None, headers: bytes = b""
    ) -> tuple[int, bytes]:
        proto = self.proto
        if proto is None or proto.lost:
            proto = self.proto = await self._connect()
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        proto.waiter = waiter
        head = b"%s %s HTTP/1.1\r\nHost: %s\r\n%s" % (method.encode(), path.encode(), self.host_header, headers)
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        assert proto.transport is not None
        proto.transport.write(head + b"\r\n" + (body or b""))
        timer = loop.call_later(self.timeout, _expire, waiter)
        try:
            status, payload, close = await waiter
        except BaseException:
            self.close()
            raise
        finally:
            timer.cancel()
        if close:
            self.close()
        return status, payload

    def close(self) -> None:
        if self.proto is not None and self.proto.transport is not None:
            self.proto.transport.abort()
        self.proto = None


# -- statistics ----------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


@dataclass
class Latencies:
    values: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.values)
        return {
            "n": len(ordered),
            "p50": percentile(ordered, 50),
            "p90": percentile(ordered, 90),
            "p99": percentile(ordered, 99),
            "max": ordered[-1] if ordered else float("nan"),
        }


@dataclass
class Recorder:
    """Latencies and outcomes, recorded only while ``active`` (not during warm-up)."""

    active: bool = False
    flows: int = 0
    requests: int = 0
    latency: dict[str, Latencies] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def request(self, kind: str, seconds: float, status: int, *, counted: bool = True) -> None:
        if not self.active:
            return
        self.requests += counted
        self.latency.setdefault(kind, Latencies()).values.append(seconds)
        self.statuses[f"{kind} {status}"] += 1
        if status != 200:
            self.errors[f"{kind} {status}"] += 1

    def error(self, kind: str, what: str) -> None:
        if self.active:
            self.errors[f"{kind} {what}"] += 1

    def flow(self) -> None:
        if self.active:
            self.flows += 1


def fmt_ms(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "-"
    return f"{seconds * 1000:.0f}" if seconds >= 0.1 else f"{seconds * 1000:.1f}"


def table(rows: list[list[str]], header: list[str]) -> str:
    """A GitHub-flavoured Markdown table, aligned for reading in a terminal too."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])
