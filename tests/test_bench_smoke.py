"""Smoke runs of bench/load.py, bench/attack.py and bench/flow_cpu.py: a few seconds each, real processes.

They prove the benchmarks still start the stack, drive it and report; the
figures mean nothing at this size. They need PostgreSQL and Redis on
127.0.0.1 (skipped otherwise, like tests/e2e) and run in about 10-15 s each;
``BENCH_SMOKE=0`` skips them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
# Redis DB 3 is claimed by nobody else (tests/e2e: 4-12, test_multi_process: 14,
# bench/load.py: 13, bench/attack.py: 15).
REDIS = "redis://127.0.0.1:6379/3"

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _services() -> None:
    if os.environ.get("BENCH_SMOKE") == "0":
        pytest.skip("BENCH_SMOKE=0")
    if not (_reachable(5432) and _reachable(6379)):
        pytest.skip("needs PostgreSQL and Redis on 127.0.0.1")


def _run(script: str, *args: str, database: str, timeout: float = 60) -> str:
    """Run a benchmark on its own database and the smoke tests' Redis DB; its stdout."""
    args = (*args, "--database", database, "--redis-url", REDIS, "--admin-url", POSTGRES)
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _load_smoke(tmp_path: Path, *args: str, database: str, timeout: float = 60) -> str:
    """bench/load.py at 0 ms, 4 clients for 2 s, on one worker of 8 threads."""
    common = ("--latency-ms", "0", "--clients", "4", "--duration", "2", "--warmup", "0.5", "--server", "1x8")
    return _run("load.py", *common, *args, "--work-dir", str(tmp_path), database=database, timeout=timeout)


def test_load_smoke(tmp_path: Path) -> None:
    out = _load_smoke(tmp_path, "--repeat", "2", database="otp_loadbench_smoke")
    assert "| app 1x8 " in out
    row = next(line for line in out.splitlines() if line.startswith("| app 1x8 "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[3]) > 0, row  # flows/s
    assert cells[7] == "0", row  # no errors
    runs = [float(r) for r in cells[-1].split(",")]
    assert len(runs) == 2 and float(cells[3]) == min(runs), row  # the lower middle of two runs


def test_load_floor_smoke(tmp_path: Path) -> None:
    """--floor serves both endpoints from each floor with no error and splits the app's CPU into its layers."""
    out = _load_smoke(tmp_path, "--floor", database="otp_loadbench_floor_smoke", timeout=120)
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) > 8 and cells[1] == "0 ms":
            rows[cells[0]] = cells
    assert set(rows) == {"app 1x8", "floor bare 1x8", "floor django 1x8", "floor drf 1x8"}, out
    for name, cells in rows.items():
        assert float(cells[3]) > 0 and cells[7] == "0", (name, cells)  # flows/s, no errors
    layers = next(line for line in out.splitlines() if line.startswith("| app 1x8 ") and "+" in line)
    cells = [c.strip() for c in layers.strip("|").split("|")]
    floor_drf = float(rows["floor drf 1x8"][8])
    app = float(rows["app 1x8"][8])
    # bare + Django + DRF adds up to the DRF floor, and the app's own work is the rest.
    assert abs(float(cells[2]) + float(cells[3]) + float(cells[4]) - floor_drf) < 0.02, layers
    assert abs(float(cells[5]) - (app - floor_drf)) < 0.02, layers
    assert float(cells[6]) == app, layers


def test_attack_smoke(tmp_path: Path) -> None:
    out = _run(
        "attack.py",
        "--sends",
        "80",
        "--source-ips",
        "20",
        "--guess-ips",
        "10",
        "--guesses-per-ip",
        "2",
        "--resend-every",
        "0",
        "--guess-seconds",
        "0",
        "--max-seconds",
        "20",
        "--workers",
        "1",
        "--threads",
        "8",
        "--work-dir",
        str(tmp_path),
        database="otp_attackbench_smoke",
    )
    assert "SMS sent (emulator smsSent):" in out
    sent = int(out.split("SMS sent (emulator smsSent):")[1].split()[0])
    # 20 numbers per sendable group at most: per-IP (5 each from 20 addresses) and per-prefix limits bind.
    assert 0 < sent <= 60, out
    reached = int(out.split("(emulator verifyRequests):")[1].split()[0])
    assert reached <= 5, out  # one PIN, five attempts


def test_attack_timing_smoke(tmp_path: Path) -> None:
    out = _run(
        "attack.py",
        "--phases",
        "timing",
        "--timing-samples",
        "6",
        "--timing-warmup",
        "1",
        "--latency-ms",
        "50",
        "--workers",
        "1",
        "--threads",
        "8",
        "--work-dir",
        str(tmp_path),
        database="otp_attackbench_smoke",
    )
    assert "medians within 10%" in out and "SMS sent" not in out, out
    assert "with code: 401 invalid_or_expired" in out and "without code: 401 invalid_or_expired" in out, out


def test_flow_cpu_smoke() -> None:
    out = _run(
        "flow_cpu.py",
        "--flows",
        "20",
        "--warmup",
        "3",
        "--attribute",
        database="otp_flowcpu_smoke",
    )
    line = next(line for line in out.splitlines() if line.startswith("20 flows, CPU in this thread"))
    assert float(line.rsplit("flow ", 1)[1].split()[0]) > 0, line
    # Every flow sent and verified: 3 statements for the send and 2 for the verify, 2 Infobip calls.
    parts = {row[:42].strip(): row[42:].split() for row in out.splitlines()[2:]}
    assert parts["SQL statements"][1] == "5.0", out
    assert parts["Infobip call (request, answer)"][1] == "2.0", out
    assert parts["Infobip call (urllib3, socket)"][1] == "2.0", out  # through requests' own adapter


def test_flow_cpu_floor_smoke() -> None:
    """The floor loop runs against the DRF no-op: no SQL, no Infobip call, every answer a 200."""
    out = _run("flow_cpu.py", "--floor", "--flows", "10", "--warmup", "2", "--attribute", database="otp_floorcpu_smoke")
    assert any(line.startswith("10 flows, CPU in this thread") for line in out.splitlines()), out
    parts = {row[:42].strip(): row[42:].split() for row in out.splitlines()[2:]}
    assert parts["Django + DRF + middleware (the rest)"][1] == "2.0", out  # both requests answered
    assert not any(part.startswith(("SQL", "Infobip", "Redis")) for part in parts), out
