"""Fixtures of the end-to-end suite: real processes on 127.0.0.1.

* ``e2e_database``: a PostgreSQL database of its own (unique name per session),
  migrated once and dropped at the end; each test starts from empty tables.
* ``redis_url``: a Redis database number claimed for the session, emptied
  before each test (IP buckets, circuit breaker).
* ``emulator``: the Infobip 2FA emulator, in this process, seeded with one
  application; its fault plan counts every upstream request per route.
* ``pg_proxy``: a loopback TCP proxy in front of PostgreSQL that a test can
  cut and restore, so the shared server is never touched.
* ``droppable_link``: a veth link into a network namespace of its own that a
  test can take down, every packet lost with no reset (root only; skips
  otherwise); a ``TcpProxy`` listens on its far end.
* ``start_site``: the site under gunicorn (``otpsite/gunicorn.conf.py``),
  configured from the environment like production, logging JSON to a file.

Without PostgreSQL or Redis the tests skip; with ``OTP_TESTS_REQUIRE_POSTGRES=1``
a missing PostgreSQL fails them instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
import psycopg
import pytest
import redis
import requests

from otp.emulator import EmulatorServer, FaultPlan
from otp.emulator.formats import parse_duration
from otp.emulator.state import Emulator

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "e2e-site-key-0123456789abcdef"
UNAVAILABLE = "The verification service is temporarily unavailable. Please try again later."
# Redis database numbers the suite may claim: 14 belongs to tests/test_multi_process.py and 13 to
# bench/load.py, which both flush theirs.
_REDIS_CANDIDATES = (11, 10, 9, 8, 7, 6, 5, 4, 12)
_REDIS_CLAIM_KEY = "otp-e2e:claim"
OTP_TABLES = ("otp_otpattempt", "otp_phonestate", "otp_ratecounter")
E2E_DIR = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``e2e``, so that ``-m "not e2e"`` leaves the real processes out."""
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)


# -- phone numbers -----------------------------------------------------------------


class PhoneBook:
    """Distinct valid US numbers (+1 415 ...), never the same twice in a session."""

    def __init__(self) -> None:
        self._next = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        while True:
            with self._lock:
                index = self._next
                self._next += 1
            exchange, line = 200 + (index // 9000) % 700, 1000 + index % 9000
            phone = f"+1415{exchange:03d}{line:04d}"
            if phonenumbers.is_valid_number(phonenumbers.parse(phone)):
                return phone

    def many(self, count: int) -> list[str]:
        return [self() for _ in range(count)]


phone_book = PhoneBook()


@pytest.fixture
def new_phone() -> PhoneBook:
    return phone_book


# -- PostgreSQL ----------------------------------------------------------------------


def _postgres_server() -> dict[str, Any]:
    """Where the e2e databases live: OTP_E2E_POSTGRES_URL, a PostgreSQL DATABASE_URL, or the local default."""
    url = os.environ.get("OTP_E2E_POSTGRES_URL") or os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        url = "postgres://postgres@127.0.0.1:5432/postgres"
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "password": parts.password or "",
    }


def _unavailable(what: str, required: bool) -> None:
    if required:
        pytest.fail(f"{what} is not reachable and OTP_TESTS_REQUIRE_POSTGRES=1")
    pytest.skip(f"needs {what}")


class Database:
    """The session's PostgreSQL database, for the tests' own queries."""

    def __init__(self, server: dict[str, Any], name: str) -> None:
        self.server = server
        self.name = name

    def url(self, port: int | None = None, host: str | None = None) -> str:
        auth = self.server["user"] + (f":{self.server['password']}" if self.server["password"] else "")
        return f"postgres://{auth}@{host or self.server['host']}:{port or self.server['port']}/{self.name}"

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=self.server["host"],
            port=self.server["port"],
            user=self.server["user"],
            password=self.server["password"] or None,
            dbname=self.name,
            connect_timeout=3,
            **kwargs,
        )

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.connect(autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def attempts(self, phone: str) -> list[dict[str, Any]]:
        """The phone's attempt rows, oldest first."""
        with self.connect(autocommit=True) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
            cursor.execute(
                "SELECT id, phone, status, pin_id, verified_at, failed_verifies "
                "FROM otp_otpattempt WHERE phone = %s ORDER BY id",
                [phone],
            )
            return cursor.fetchall()

    @contextlib.contextmanager
    def phone_row_locked(self, phone: str) -> Iterator[None]:
        """Create the phone's limit row, then hold it ``FOR UPDATE`` in a transaction until the block ends."""
        with self.connect() as holder:
            holder.execute(
                "INSERT INTO otp_phonestate (phone, recent_sends, consecutive_failures, locked_until) "
                "VALUES (%s, '', 0, 0)",
                [phone],
            )
            holder.commit()
            holder.execute("SELECT * FROM otp_phonestate WHERE phone = %s FOR UPDATE", [phone])
            try:
                yield
            finally:
                holder.rollback()

    def truncate(self) -> None:
        with self.connect(autocommit=True) as conn:
            conn.execute(f"TRUNCATE {', '.join(OTP_TABLES)} RESTART IDENTITY")


@pytest.fixture(scope="session")
def e2e_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    required = os.environ.get("OTP_TESTS_REQUIRE_POSTGRES") == "1"
    server = _postgres_server()
    try:
        admin = psycopg.connect(
            host=server["host"],
            port=server["port"],
            user=server["user"],
            password=server["password"] or None,
            dbname="postgres",
            autocommit=True,
            connect_timeout=2,
        )
    except psycopg.OperationalError:
        _unavailable(f"PostgreSQL on {server['host']}:{server['port']}", required)
    name = f"otp_e2e_{os.getpid()}_{secrets.token_hex(4)}"
    database = Database(server, name)
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        env = _site_env(
            tmp_path_factory.mktemp("migrate"),
            DATABASE_URL=database.url(),
            INFOBIP_BASE_URL="http://127.0.0.1:9",
            INFOBIP_2FA_APP_ID="A",
            INFOBIP_2FA_MSG_ID="M",
        )
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0", "--skip-checks"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        yield database
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


# -- Redis ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis database number no other run holds, claimed with a key that expires."""
    token = secrets.token_hex(8)
    for number in _REDIS_CANDIDATES:
        url = f"redis://127.0.0.1:6379/{number}"
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        try:
            if client.dbsize() == 0 and client.set(_REDIS_CLAIM_KEY, token, nx=True, ex=900):
                break
        except redis.RedisError:
            pytest.skip("needs Redis on 127.0.0.1:6379")
    else:
        pytest.skip("no free Redis database number for the e2e suite")
    try:
        yield url
    finally:
        if client.get(_REDIS_CLAIM_KEY) == token.encode():
            client.flushdb()
        client.close()


def clear_redis(url: str) -> None:
    """Forget IP buckets and the circuit breaker; keep the claim."""
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        keys = [key for key in client.scan_iter(count=1000) if key != _REDIS_CLAIM_KEY.encode()]
        if keys:
            client.delete(*keys)
        client.expire(_REDIS_CLAIM_KEY, 900)
    finally:
        client.close()


# -- the emulator --------------------------------------------------------------------


class CountingFaultPlan(FaultPlan):
    """A fault plan that also counts every upstream request per route group.

    The emulator consults its plan once per request to an Infobip route, before
    any fault or latency applies, so the counts are the requests that reached
    "Infobip", answered or not.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    def take(self, group: str) -> Any:
        with self._count_lock:
            self.calls[group] += 1
        return super().take(group)

    def reset_counts(self) -> None:
        with self._count_lock:
            self.calls.clear()


class EmulatorHandle:
    """The running emulator and its control API (``/_emulator/``) over HTTP."""

    def __init__(self, server: EmulatorServer, plan: CountingFaultPlan, app_id: str, msg_id: str) -> None:
        self.server = server
        self.plan = plan
        self.app_id = app_id
        self.msg_id = msg_id
        self.base_url = server.base_url

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(method, f"{self.base_url}/_emulator/{path}", json=body, timeout=5)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Forget PINs, counters, faults and latency."""
        self.control("POST", "reset")
        self.plan.reset_counts()

    def fault(self, kind: str, **fields: Any) -> None:
        self.control("POST", "faults", {"kind": kind, **fields})

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def latency(self, ms: int, route: str = "all") -> None:
        self.control("PUT", "latency", {"route": route, "ms": ms})

    def pin(self, phone: str) -> str:
        return self.control("GET", f"pins/last?to={phone.lstrip('+')}")["pin"]

    def stats(self) -> dict[str, int]:
        return self.control("GET", "stats")

    def calls(self, group: str) -> int:
        """Requests to the ``send``/``resend``/``verify`` routes since the last reset."""
        return self.plan.calls[group]


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorHandle]:
    # Provider-side limits are off, so only the site's own limits apply.
    state = Emulator(send_limits=False, verify_limit=False)
    app_id, msg_id = state.seed(
        configuration={"pinAttempts": 10, "pinTimeToLive": parse_duration("10m"), "allowMultiplePinVerifications": True}
    )
    plan = CountingFaultPlan()
    server = EmulatorServer(state, api_keys=[API_KEY], faults=plan, hang_seconds=4.0)
    with server.running():
        yield EmulatorHandle(server, plan, app_id, msg_id)


# -- a per-test clean slate ----------------------------------------------------------


def clean_state(database: Database, redis_url: str, emulator: EmulatorHandle) -> None:
    """Empty OTP tables, an empty Redis database, and an emulator with no PINs, faults or latency."""
    database.truncate()
    clear_redis(redis_url)
    emulator.reset()


@pytest.fixture(autouse=True)
def _clean_state(e2e_database: Database, redis_url: str, emulator: EmulatorHandle) -> None:
    clean_state(e2e_database, redis_url, emulator)


# -- a TCP proxy in front of PostgreSQL ----------------------------------------------


def _reset_socket(sock: socket.socket) -> None:
    """Close with a TCP RST: the peer sees the connection die, as on a network fault."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Wakes the pump thread blocked reading it: until that read returns,
        # the kernel keeps the socket open and the peer hears nothing.
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class TcpProxy:
    """A TCP proxy that a test can cut (every connection reset, new ones refused) and restore.

    It listens on loopback, or on ``listener`` (a socket of a :class:`DroppableLink`).
    """

    def __init__(self, target: tuple[str, int], listener: socket.socket | None = None) -> None:
        self.target = target
        self.listener = listener or socket.create_server(("127.0.0.1", 0), backlog=256)
        self.host, self.port = self.listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._cut = False
        self._closed = False
        self.accepted = 0
        threading.Thread(target=self._accept_loop, name="pg-proxy", daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                cut = self._cut
            if cut:
                _reset_socket(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=3)
                upstream.settimeout(None)
            except OSError:
                _reset_socket(client)
                continue
            pair = (client, upstream)
            with self._lock:
                self._pairs.add(pair)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(pair, source, sink), daemon=True).start()

    def _pump(self, pair: tuple[socket.socket, socket.socket], source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        self._drop(pair)

    def _drop(self, pair: tuple[socket.socket, socket.socket]) -> None:
        with self._lock:
            if pair not in self._pairs:
                return
            self._pairs.discard(pair)
        for sock in pair:
            _reset_socket(sock)

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def cut(self) -> None:
        """Reset every open connection and refuse new ones until :meth:`restore`."""
        with self._lock:
            self._cut = True
            pairs = list(self._pairs)
        for pair in pairs:
            self._drop(pair)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()


@pytest.fixture
def pg_proxy(e2e_database: Database) -> Iterator[TcpProxy]:
    proxy = TcpProxy((e2e_database.server["host"], e2e_database.server["port"]))
    try:
        yield proxy
    finally:
        proxy.close()


# -- a network link that can silently drop every packet -------------------------------

_CLONE_NEWNET = 0x40000000
_link_count = 0


class DroppableLink:
    """A veth pair into a network namespace of its own: the host's end ``10.x.y.1``, the far end ``.2``.

    A socket from :meth:`listen` lives in the namespace, so connections to it
    cross the link. :meth:`drop` takes the far end down: from then on every
    packet on the link is lost, with no reset and no error, as when a host
    vanishes or the network partitions. :meth:`restore` brings it back.
    Needs root (CAP_NET_ADMIN) and iproute2.
    """

    def __init__(self) -> None:
        global _link_count
        _link_count += 1
        tag = f"{os.getpid() % 1_000_000:06d}{_link_count % 10}"
        self.namespace = f"otp-e2e-{tag}"
        self.host_end, self.far_end = f"otpl{tag}h", f"otpl{tag}n"
        # A /30 of 10.231.0.0/16 per link, apart from those of a parallel run.
        base = (os.getpid() * 8 + _link_count) % 16384 * 4
        self.host_address = f"10.231.{base // 256}.{base % 256 + 1}"
        self.address = f"10.231.{base // 256}.{base % 256 + 2}"
        try:
            self._run("ip", "netns", "add", self.namespace)
            self._run("ip", "link", "add", self.host_end, "type", "veth", "peer", "name", self.far_end)
            self._run("ip", "link", "set", self.far_end, "netns", self.namespace)
            self._run("ip", "addr", "add", f"{self.host_address}/30", "dev", self.host_end)
            self._run("ip", "link", "set", self.host_end, "up")
            self._run("ip", "-n", self.namespace, "addr", "add", f"{self.address}/30", "dev", self.far_end)
            self.restore()
        except (OSError, subprocess.SubprocessError):
            self.close()
            raise

    @staticmethod
    def _run(*command: str) -> None:
        subprocess.run(command, check=True, capture_output=True, timeout=10)

    def listen(self) -> socket.socket:
        """A listening socket on the far end, made by a thread that joins the namespace for it."""
        made: dict[str, Any] = {}

        def make() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/run/netns/{self.namespace}") as namespace:
                if libc.setns(namespace.fileno(), _CLONE_NEWNET) != 0:
                    made["error"] = OSError(ctypes.get_errno(), "setns")
                    return
            made["socket"] = socket.create_server((self.address, 0), backlog=256)

        thread = threading.Thread(target=make)  # the namespace goes with the thread
        thread.start()
        thread.join()
        if "error" in made:
            raise made["error"]
        return made["socket"]

    def drop(self) -> None:
        self._run("ip", "-n", self.namespace, "link", "set", self.far_end, "down")

    def restore(self) -> None:
        self._run("ip", "-n", self.namespace, "link", "set", self.far_end, "up")

    def close(self) -> None:
        """Delete the namespace, and with it both ends of the link."""
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", self.host_end], capture_output=True, timeout=10)


@pytest.fixture
def droppable_link() -> Iterator[DroppableLink]:
    try:
        link = DroppableLink()
    except (OSError, subprocess.SubprocessError) as err:
        pytest.skip(f"needs root and iproute2 for a network namespace: {err}")
    try:
        yield link
    finally:
        link.close()


# -- a listener that records whether anything connected ------------------------------


class Trap:
    """A loopback port that accepts and counts connections (a redirect target)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def trap() -> Iterator[Trap]:
    listener = Trap()
    yield listener
    listener.close()


# -- the site under gunicorn ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The site's limits, all off unless a test turns one on.
RELAXED = {
    "OTP_IP_SEND_RATE": "off",
    "OTP_IP_VERIFY_RATE": "off",
    "OTP_RESEND_COOLDOWN_SECONDS": "0",
    "OTP_MAX_SENDS_PER_PHONE_PER_DAY": "off",
    "OTP_MAX_FAILURES_PER_PHONE": "off",
    "OTP_MAX_SENDS_PER_PREFIX_PER_HOUR": "off",
    "OTP_MAX_SENDS_PER_COUNTRY_PER_HOUR": "off",
    "OTP_MAX_SENDS_PER_HOUR": "off",
    "OTP_MAX_SENDS_PER_DAY": "off",
}


def _site_env(tmp_path: Path, **values: str) -> dict[str, str]:
    prefixes = ("INFOBIP_", "OTP_", "DJANGO_", "DATABASE_", "REDIS_", "GUNICORN_", "SECURE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    for name in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "LOG_LEVEL", "LOG_FORMAT"):
        env.pop(name, None)
    env.update(
        {
            "OTPSITE_ENV_FILE": str(tmp_path / "none.env"),
            "DEBUG": "0",
            "SECRET_KEY": "e2e-" + "s" * 60,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # gunicorn serves plain http on loopback, with no TLS proxy in front.
            "SECURE_SSL_REDIRECT": "0",
            "INFOBIP_API_KEY": API_KEY,
            "INFOBIP_CONNECT_TIMEOUT": "1",
            "INFOBIP_READ_TIMEOUT": "1",
            "DATABASE_POOL_TIMEOUT": "2",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **RELAXED,
        }
    )
    env.update(values)
    return env


class Site:
    """One gunicorn instance of otpsite; stderr (JSON log lines) goes to ``log_path``."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.port = int(env["GUNICORN_BIND"].rsplit(":", 1)[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "otpsite/gunicorn.conf.py", "otpsite.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    # -- life cycle --

    def wait_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                if requests.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.base} did not become healthy:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        """Kill the master, then its workers: a test has nothing to drain."""
        if self.process.poll() is None:
            workers = self.workers()
            self.process.kill()
            self.process.wait(timeout=10)
            for pid in workers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._log.close()

    def workers(self) -> list[int]:
        """PIDs of the master's worker processes."""
        pid = self.process.pid
        try:
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def wait_workers(self, count: int, exclude: Collection[int] = (), seconds: float = 15) -> list[int]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pids = [p for p in self.workers() if p not in exclude]
            if len(pids) >= count:
                return pids
            time.sleep(0.05)
        raise AssertionError(f"gunicorn has workers {self.workers()}, expected {count} new ones")

    # -- HTTP --

    def post(
        self,
        path: str,
        body: Any,
        *,
        request_id: str | None = None,
        timeout: float = 15,
        session: requests.Session | None = None,
    ) -> requests.Response:
        headers = {"X-Request-ID": request_id} if request_id else {}
        return (session or requests).post(self.base + path, json=body, headers=headers, timeout=timeout)

    def send(self, phone: str, **kwargs: Any) -> requests.Response:
        return self.post("/send-otp", {"phoneNumber": phone}, **kwargs)

    def verify(self, phone: str, pin: str, **kwargs: Any) -> requests.Response:
        return self.post("/verify-otp", {"phoneNumber": phone, "pin": pin}, **kwargs)

    def get(self, path: str, timeout: float = 10, **kwargs: Any) -> requests.Response:
        return requests.get(self.base + path, timeout=timeout, **kwargs)

    def health(self) -> dict[str, Any]:
        return self.get("/healthz").json()

    # -- logs --

    def records(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (gunicorn's own text lines are skipped)."""
        self._log.flush()
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def events(self, request_id: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("request_id") == request_id]

    def wait_for_record(self, predicate: Callable[[dict[str, Any]], bool], seconds: float = 5) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            found = [r for r in self.records() if predicate(r)]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError("no such log record")
            time.sleep(0.05)


def launch_sites(
    log_dir: Path,
    database: Database,
    redis_url: str,
    emulator: EmulatorHandle,
    count: int = 1,
    db_port: int | None = None,
    **values: str,
) -> list[Site]:
    """Start ``count`` instances on free ports, in parallel, and wait until each is healthy.

    ``db_port`` reaches PostgreSQL through a proxy; ``values`` override the environment.
    """
    sites = []
    for _ in range(count):
        port = free_port()
        env = _site_env(
            log_dir,
            **{
                "DATABASE_URL": database.url(db_port),
                "REDIS_URL": redis_url,
                "INFOBIP_BASE_URL": emulator.base_url,
                "INFOBIP_2FA_APP_ID": emulator.app_id,
                "INFOBIP_2FA_MSG_ID": emulator.msg_id,
                "GUNICORN_BIND": f"127.0.0.1:{port}",
                "GUNICORN_WORKERS": "1",
                "GUNICORN_THREADS": "8",
                "GUNICORN_GRACEFUL_TIMEOUT": "3",
                "GUNICORN_TIMEOUT": "30",
                **values,
            },
        )
        sites.append(Site(env, log_dir / f"site-{port}.log"))
    try:
        for site in sites:
            site.wait_ready()
    except BaseException:
        for site in sites:
            site.stop()
        raise
    return sites


def launch_site(
    log_dir: Path,
    database: Database,
    redis_url: str,
    emulator: EmulatorHandle,
    db_port: int | None = None,
    **values: str,
) -> Site:
    (site,) = launch_sites(log_dir, database, redis_url, emulator, 1, db_port, **values)
    return site


@pytest.fixture
def start_site(
    tmp_path: Path, e2e_database: Database, redis_url: str, emulator: EmulatorHandle
) -> Iterator[Callable[..., Site]]:
    """``start_site(db_port=None, count=1, **env)`` -> a healthy :class:`Site` (a list if count > 1).

    Every site is stopped after the test.
    """
    sites: list[Site] = []

    def start(db_port: int | None = None, count: int = 1, **values: str) -> Any:
        started = launch_sites(tmp_path, e2e_database, redis_url, emulator, count, db_port, **values)
        sites.extend(started)
        return started[0] if count == 1 else started

    try:
        yield start
    finally:
        for site in sites:
            site.stop()


@pytest.fixture
def measure(request: pytest.FixtureRequest) -> Callable[[str, float], None]:
    """Record a measured value; with OTP_E2E_METRICS=<file> they are appended there as JSON lines."""
    path = os.environ.get("OTP_E2E_METRICS")

    def record(name: str, value: float) -> None:
        if path:
            with open(path, "a") as out:
                out.write(json.dumps({"test": request.node.nodeid, "name": name, "value": value}) + "\n")

    return record


@pytest.fixture(scope="session")
def launch(
    tmp_path_factory: pytest.TempPathFactory, e2e_database: Database, redis_url: str, emulator: EmulatorHandle
) -> Callable[..., Site]:
    """``launch(name, **env)``: a site for a module-scoped fixture, which stops it; state is cleaned first."""

    def start(name: str, **values: str) -> Site:
        clean_state(e2e_database, redis_url, emulator)
        return launch_site(tmp_path_factory.mktemp(name), e2e_database, redis_url, emulator, db_port=None, **values)

    return start


def assert_unavailable(response: requests.Response, code: str = "provider_unavailable") -> None:
    """A 503 with the app's JSON error body and nothing else in it."""
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"error": UNAVAILABLE, "code": code}
    assert "Traceback" not in response.text


def wait_until_serving(site, new_phone, seconds: float = 15) -> list[str]:
    """Send until one succeeds; returns the database errors of those that failed first."""
    deadline = time.monotonic() + seconds
    failed: list[str] = []
    while True:
        request_id = f"e2e-restored-{time.monotonic_ns()}"
        response = site.send(new_phone(), request_id=request_id)
        if response.status_code == 200:
            return [
                event["error"]
                for failed_id in failed
                for event in site.events(failed_id)
                if event.get("event") == "otp_database_error"
            ]
        assert response.status_code == 503, response.text  # never a 500
        failed.append(request_id)
        assert time.monotonic() < deadline, f"the site still fails after {len(failed)} requests"
        time.sleep(0.05)


def assert_no_dead_connection_used(errors: list[str]) -> None:
    """A request may wait out the pool's reconnect backoff, but none fails on a dead pooled connection."""
    assert set(errors) <= {"PoolTimeout"}, errors
