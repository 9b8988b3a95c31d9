"""SMS-pumping and PIN-guessing attacks replayed against the real site, emulator upstream.

    .venv/bin/python bench/attack.py

The site runs as in production (gunicorn, PostgreSQL, Redis) with the DEFAULT
limits: the only variable set beside the connection settings is
``OTP_TRUSTED_PROXY_COUNT=0`` (the default), so the spoofed X-Forwarded-For
headers below are ignored. The emulator's own send and verify limits are off,
so everything it counts is what the site let through.

1. Pumping: ``--sends`` (10,000) POST /send-otp over sequential numbers in four
   groups, round-robin: a UK premium-rate range (+44 909 879 xxxx), a UK
   mobile range walked one number at a time (+44 7400 00x xxx), UK mobiles
   walked one prefix at a time (+44 74xx xx0000, a new prefix each) and the
   US fictional range +1 415 555 0100-0199. Each request comes from one of
   ``--source-ips`` real loopback addresses (127.1.x.y, bound as the source
   of a fresh connection, rotating) and carries a random X-Forwarded-For.
2. Guessing: one phone gets a real code, then ``--guess-ips`` (1,000)
   addresses (127.2.x.y) each send ``--guesses-per-ip`` wrong PINs; every
   ``--resend-every`` seconds the attacker also asks for a fresh code.
3. Timing (``--phases timing``, run first when chosen): one request at a
   time, a wrong PIN for a number with a live code (the site asks the
   provider) and a PIN for a number with none (it does not), alternately,
   ``--timing-samples`` of each after ``--timing-warmup`` unmeasured pairs,
   each from its own address (127.4.x.y). Their medians should match: a
   client must not tell a pending code from none by the answer's time.

It prints the SMS the emulator sent against what the limits allow, refusals
by status and by the reason the site logged, and the verifies that reached
the provider against the per-PIN and per-phone caps. It stops by itself
(``--max-seconds`` bounds each phase) and stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h  # noqa: E402

sys.path.insert(0, str(h.ROOT))

# What the run may let through follows from the app's defaults (docs/security.md, "Limits").
from otp.conf import DEFAULTS  # noqa: E402

# Outside every prefix the pumping phase walks (those end up blocked for 12 h).
VICTIM = "+16465552671"
# The timing phase's numbers, outside those prefixes too: a new prefix for
# each code (so the prefix limit never binds) and numbers that never get one.
TIMING_WITH_CODE = "+1212{exchange}{line:04d}"
TIMING_WITHOUT_CODE = "+1718{exchange}{line:04d}"
# Wrong guesses per code: one fewer than the attempts a PIN allows, so every
# guess reaches the provider and the code stays pending.
TIMING_GUESSES_PER_CODE = DEFAULTS["MAX_VERIFY_ATTEMPTS"] - 1
#: How far apart the two medians may be.
TIMING_TOLERANCE = 0.10


def pumping_numbers(count: int) -> list[tuple[str, str]]:
    """(group, number) for ``count`` sends, the groups taking turns."""
    groups = ("premium", "uk-mobile-seq", "uk-mobile-prefixes", "us-555-01xx")
    out = []
    for i in range(count):
        group, n = groups[i % 4], i // 4
        if group == "premium":
            number = f"+44909879{n % 10000:04d}"
        elif group == "uk-mobile-seq":
            number = f"+447400{n % 1000000:06d}"
        elif group == "uk-mobile-prefixes":
            number = f"+4474{(n * 10000) % 100000000:08d}"
        else:
            number = f"+14155550{100 + n % 100:03d}"
        out.append((group, number))
    return out


def source_ips(second_octet: int, count: int) -> list[str]:
    return [f"127.{second_octet}.{1 + i // 250}.{1 + i % 250}" for i in range(count)]


def spoofed_xff(rng: random.Random) -> bytes:
    return b"X-Forwarded-For: %d.%d.%d.%d\r\n" % (
        rng.randint(1, 223),
        rng.randint(0, 255),
        rng.randint(0, 255),
        rng.randint(1, 254),
    )


def error_code(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return "?"
    return str(data.get("code") or data.get("error") or "") if isinstance(data, dict) else "?"


async def _one(
    port: int, source: str, path: str, payload: dict[str, str], headers: bytes, timeout: float
) -> tuple[int | str, bytes]:
    conn = h.Connection("127.0.0.1", port, source=source, timeout=timeout)
    try:
        return await conn.request("POST", path, json.dumps(payload).encode(), headers + b"Connection: close\r\n")
    except h.RequestTimeout:
        return "timeout", b""
    except h.ConnectionFailed:
        return "connection error", b""
    finally:
        conn.close()


async def pump(
    port: int, sends: int, ips: list[str], concurrency: int, max_seconds: float, timeout: float, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    work = list(enumerate(pumping_numbers(sends)))
    statuses: Counter[str] = Counter()
    by_group: dict[str, Counter[str]] = {}
    deadline = time.monotonic() + max_seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while work and time.monotonic() < deadline:
            i, (group, number) = work.pop(0)
            status, body = await _one(
                port, ips[i % len(ips)], "/send-otp", {"phoneNumber": number}, spoofed_xff(rng), timeout
            )
            key = f"{status} {error_code(body)}" if isinstance(status, int) and status != 200 else str(status)
            statuses[key] += 1
            by_group.setdefault(group, Counter())[key] += 1
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {
        "requests": done,
        "seconds": time.monotonic() - started,
        "statuses": statuses,
        "by_group": by_group,
        "stopped_early": bool(work),
    }


async def guess(
    port: int,
    emulator_port: int,
    ips: list[str],
    per_ip: int,
    concurrency: int,
    resend_every: float,
    spread: float,
    max_seconds: float,
    timeout: float,
    seed: int,
) -> dict[str, Any]:
    rng = random.Random(seed + 1)
    statuses: Counter[str] = Counter()
    sends: Counter[str] = Counter()
    # The victim asks for a code, from an address of their own.
    status, body = await _one(port, "127.0.0.9", "/send-otp", {"phoneNumber": VICTIM}, b"", timeout)
    sends[str(status) if status == 200 else f"{status} {error_code(body)}"] += 1
    known_pins: set[str] = set()

    def refresh_known() -> None:
        status, pin = h.http_get(f"{h.emulator_url(emulator_port)}/_emulator/pins/last?to={VICTIM[1:]}")
        if status == 200 and isinstance(pin, dict):
            known_pins.add(pin["pin"])

    refresh_known()
    work = [(ip, k) for k in range(per_ip) for ip in ips]
    deadline = time.monotonic() + max_seconds
    next_resend = time.monotonic() + resend_every
    resend_ips = iter(source_ips(3, 1000))
    done = 0
    total = len(work)
    started = time.monotonic()

    async def worker() -> None:
        nonlocal done, next_resend
        while work and time.monotonic() < deadline:
            # Guesses are spread evenly over ``spread`` seconds, so fresh codes come in between.
            slot = started + (total - len(work)) * spread / total
            if slot > time.monotonic():
                await asyncio.sleep(slot - time.monotonic())
                if not work:
                    break
            if resend_every and time.monotonic() >= next_resend:
                next_resend = time.monotonic() + resend_every
                status, body = await _one(
                    port, next(resend_ips), "/send-otp", {"phoneNumber": VICTIM}, spoofed_xff(rng), timeout
                )
                sends[str(status) if status == 200 else f"{status} {error_code(body)}"] += 1
                refresh_known()
            ip, _ = work.pop(0)
            pin = f"{rng.randrange(10**6):06d}"
            while pin in known_pins:
                pin = f"{rng.randrange(10**6):06d}"
            status, body = await _one(
                port, ip, "/verify-otp", {"phoneNumber": VICTIM, "pin": pin}, spoofed_xff(rng), timeout
            )
            statuses[
                str(status) if status in (200, "timeout", "connection error") else f"{status} {error_code(body)}"
            ] += 1
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {
        "guesses": done,
        "seconds": time.monotonic() - started,
        "statuses": statuses,
        "sends": sends,
        "pins_issued": len(known_pins),
        "stopped_early": bool(work),
    }


async def timing(port: int, emulator_port: int, samples: int, warmup: int, timeout: float, seed: int) -> dict[str, Any]:
    """Seconds of each failed verify, by kind: ``with code`` (a wrong PIN) and ``without code``."""
    rng = random.Random(seed + 2)
    ips = iter(source_ips(4, 2 * (samples + warmup) + (samples + warmup) // TIMING_GUESSES_PER_CODE + 2))
    seconds: dict[str, list[float]] = {"with code": [], "without code": []}
    statuses: Counter[str] = Counter()
    live: tuple[str, str] | None = None  # (number, its PIN)
    guesses = 0
    codes = 0

    async def timed(kind: str, number: str, pin: str, measured: bool) -> None:
        started = time.monotonic()
        status, body = await _one(port, next(ips), "/verify-otp", {"phoneNumber": number, "pin": pin}, b"", timeout)
        elapsed = time.monotonic() - started
        statuses[f"{kind}: {status} {error_code(body)}" if status != 200 else f"{kind}: 200"] += 1
        if measured and status == 401:
            seconds[kind].append(elapsed)

    for i in range(warmup + samples):
        measured = i >= warmup
        if live is None or guesses == TIMING_GUESSES_PER_CODE:
            number = TIMING_WITH_CODE.format(exchange=200 + codes, line=rng.randrange(10000))
            codes += 1
            status, body = await _one(port, next(ips), "/send-otp", {"phoneNumber": number}, b"", timeout)
            if status != 200:
                raise SystemExit(f"timing: the send for a fresh code answered {status} {error_code(body)}")
            _, pin = h.http_get(f"{h.emulator_url(emulator_port)}/_emulator/pins/last?to={number[1:]}")
            live, guesses = (number, pin["pin"]), 0
        number, pin = live
        wrong = f"{(int(pin) + 1 + rng.randrange(10**6 - 1)) % 10**6:06d}"
        guesses += 1
        await timed("with code", number, wrong, measured)
        nobody = TIMING_WITHOUT_CODE.format(exchange=200 + i % 600, line=rng.randrange(10000))
        await timed("without code", nobody, f"{rng.randrange(10**6):06d}", measured)
    return {"seconds": seconds, "statuses": statuses, "codes": codes}


def logged_reasons(log_text: str, since: int) -> Counter[str]:
    """Security events the site logged after offset ``since``, by event and reason (or scope)."""
    wanted = {
        "otp_send_blocked",
        "excess_rate_limit_exceeded",
        "input_validation_fail",
        "authn_otp_fail",
        "authn_login_lock",
        "otp_budget_alert",
        "otp_provider_error",
    }
    events: Counter[str] = Counter()
    for line in log_text[since:].splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        event = record.get("event")
        if event in wanted:
            detail = record.get("reason") or record.get("scope") or record.get("percent") or ""
            events[f"{event} {detail}".strip()] += 1
    return events


def _counter_lines(counter: Counter[str], indent: str = "    ") -> list[str]:
    return [f"{indent}{v:6d}  {k}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1])]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sends", type=int, default=10000, help="pumping requests (default 10000)")
    parser.add_argument(
        "--source-ips", type=int, default=2000, help="distinct loopback source addresses for pumping (default 2000)"
    )
    parser.add_argument("--guess-ips", type=int, default=1000, help="source addresses for guessing (default 1000)")
    parser.add_argument("--guesses-per-ip", type=int, default=3, help="wrong PINs per guessing address (default 3)")
    parser.add_argument(
        "--resend-every",
        type=float,
        default=20.0,
        help="seconds between the attacker's requests for a fresh code (default 20; 0: never)",
    )
    parser.add_argument(
        "--guess-seconds",
        type=float,
        default=150.0,
        help="spread the guesses evenly over this long (default 150; 0: as fast as possible)",
    )
    parser.add_argument(
        "--phases",
        default="pumping,guessing",
        help="comma-separated phases among pumping, guessing, timing (default pumping,guessing)",
    )
    parser.add_argument(
        "--timing-samples", type=int, default=200, help="measured verifies of each kind in timing (default 200)"
    )
    parser.add_argument(
        "--timing-warmup", type=int, default=30, help="unmeasured pairs first, so each worker has answers (default 30)"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--max-seconds", type=float, default=180.0, help="bound of each phase (default 180)")
    parser.add_argument("--timeout", type=float, default=10.0, help="client timeout per request, s")
    parser.add_argument(
        "--workers",
        type=int,
        default=h.PRODUCTION_WORKERS,
        help=f"gunicorn workers (default: production's, {h.PRODUCTION_WORKERS})",
    )
    parser.add_argument(
        "--threads", type=int, default=h.PRODUCTION_THREADS, help="gunicorn threads per worker (default 64)"
    )
    parser.add_argument("--latency-ms", type=int, default=0, help="emulator latency (default 0)")
    parser.add_argument("--random-seed", type=int, default=1, help="seed of the spoofed addresses and guesses")
    parser.add_argument(
        "--admin-url", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--database", default="otp_attackbench", help="database created and dropped")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
        help="Redis DB flushed and used by the site (default redis://127.0.0.1:6379/15)",
    )
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "otp-bench")
    args = parser.parse_args()
    phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    if not phases or phases - {"pumping", "guessing", "timing"}:
        parser.error("--phases: choose among pumping, guessing, timing")

    run_dir = args.work_dir / time.strftime("attack-%Y%m%d-%H%M%S")
    out: list[str] = []
    with h.Stack(run_dir, args.admin_url, args.database) as stack:
        db_url = stack.create_database()
        h.flush_redis(args.redis_url)
        emulator_port, site_port = h.free_port(), h.free_port()
        emulator = h.start_emulator(stack, emulator_port, args.latency_ms)
        env = h.site_env(
            database_url=db_url,
            redis_url=args.redis_url,
            emulator_port=emulator_port,
            extra={"OTP_TRUSTED_PROXY_COUNT": "0"},
        )
        h.migrate(env)
        site = h.start_gunicorn(stack, env, site_port, args.workers, args.threads)
        site_log = run_dir / "gunicorn.log"
        del emulator, site

        if "timing" in phases:
            h.log(f"timing: {args.timing_samples} failed verifies of each kind, one at a time ...")
            measured = asyncio.run(
                timing(
                    site_port,
                    emulator_port,
                    args.timing_samples,
                    args.timing_warmup,
                    args.timeout,
                    args.random_seed,
                )
            )
            with_code, without_code = measured["seconds"]["with code"], measured["seconds"]["without code"]
            if not with_code or not without_code:
                raise SystemExit(f"timing: no 401 measured ({dict(measured['statuses'])})")
            medians = {kind: statistics.median(values) for kind, values in measured["seconds"].items()}
            gap = abs(medians["without code"] - medians["with code"]) / medians["with code"]
            out += [
                "",
                f"## Timing: failed verifies with and without a live code, {args.timing_samples} of each, "
                f"one at a time, emulator latency {args.latency_ms} ms",
                "",
                f"[{'PASS' if gap <= TIMING_TOLERANCE else 'FAIL'}] medians within {TIMING_TOLERANCE:.0%}: "
                f"without code {medians['without code'] * 1000:.0f} ms, with code (wrong PIN) "
                f"{medians['with code'] * 1000:.0f} ms, apart by {gap:.1%}",
                "",
            ]
            out.append(
                h.table(
                    [
                        [
                            kind,
                            str(len(values)),
                            *(f"{h.percentile(sorted(values), q) * 1000:.0f}" for q in (10, 50, 90)),
                            f"{min(values) * 1000:.0f}",
                            f"{max(values) * 1000:.0f}",
                        ]
                        for kind, values in measured["seconds"].items()
                    ],
                    ["verify", "401s measured", "p10 ms", "p50 ms", "p90 ms", "min ms", "max ms"],
                )
            )
            out += ["", f"codes sent: {measured['codes']}", "statuses:", *_counter_lines(measured["statuses"])]
        if "pumping" in phases:
            h.log(f"pumping: {args.sends} sends from {args.source_ips} source addresses ...")
            before = h.emulator_stats(emulator_port)
            offset = len(site_log.read_text(errors="replace"))
            result = asyncio.run(
                pump(
                    site_port,
                    args.sends,
                    source_ips(1, args.source_ips),
                    args.concurrency,
                    args.max_seconds,
                    args.timeout,
                    args.random_seed,
                )
            )
            after = h.emulator_stats(emulator_port)
            time.sleep(0.5)
            blocked = logged_reasons(site_log.read_text(errors="replace"), offset)
            sent = after["smsSent"] - before["smsSent"]
            groups = dict(result["by_group"])
            sendable = [g for g in groups if g != "premium"]
            prefixes = {
                g: len(
                    {n[: -DEFAULTS["PREFIX_STRIP_DIGITS"]] for gg, n in pumping_numbers(result["requests"]) if gg == g}
                )
                for g in sendable
            }
            phones = {g: len({n for gg, n in pumping_numbers(result["requests"]) if gg == g}) for g in sendable}
            allowed_by_prefix = {
                g: min(
                    prefixes[g] * DEFAULTS["MAX_SENDS_PER_PREFIX_PER_HOUR"],
                    phones[g] * DEFAULTS["MAX_SENDS_PER_PHONE_PER_DAY"],
                )
                for g in sendable
            }
            uk = sum(v for g, v in allowed_by_prefix.items() if g.startswith("uk"))
            us = sum(v for g, v in allowed_by_prefix.items() if g.startswith("us"))
            budget = min(
                min(uk, DEFAULTS["MAX_SENDS_PER_COUNTRY_PER_HOUR"])
                + min(us, DEFAULTS["MAX_SENDS_PER_COUNTRY_PER_HOUR"]),
                DEFAULTS["MAX_SENDS_PER_HOUR"],
            )
            out += [
                "",
                f"## Pumping: {result['requests']} send requests in {result['seconds']:.1f} s "
                f"({result['requests'] / result['seconds']:.0f}/s), {args.source_ips} source addresses, "
                f"spoofed X-Forwarded-For",
                "",
                f"[{'PASS' if sent <= budget else 'FAIL'}] "
                f"SMS sent (emulator smsSent): {sent}    allowed by the default limits: at most {budget} "
                f"(per prefix {DEFAULTS['MAX_SENDS_PER_PREFIX_PER_HOUR']}/h, per phone "
                f"{DEFAULTS['MAX_SENDS_PER_PHONE_PER_DAY']}/day, per country "
                f"{DEFAULTS['MAX_SENDS_PER_COUNTRY_PER_HOUR']}/h, site {DEFAULTS['MAX_SENDS_PER_HOUR']}/h; "
                f"premium-rate numbers 0)",
                "",
                "status, by number group:",
            ]
            rows = []
            for g, counter in sorted(groups.items()):
                ok = counter.get("200", 0)
                rows.append(
                    [
                        g,
                        str(sum(counter.values())),
                        str(ok),
                        str(prefixes.get(g, "-")),
                        str(allowed_by_prefix.get(g, 0)),
                        ", ".join(f"{k} ×{v}" for k, v in sorted(counter.items()) if k != "200") or "-",
                    ]
                )
            out.append(
                h.table(
                    rows,
                    ["group", "requests", "200 (sent)", "prefixes", "limit allows", "refused (status code ×count)"],
                )
            )
            out += [
                "",
                "status totals:",
                *_counter_lines(result["statuses"]),
                "security events the site logged (event reason):",
                *_counter_lines(blocked),
            ]
            if result["stopped_early"]:
                out.append(f"(stopped at --max-seconds {args.max_seconds:.0f})")

        if "guessing" in phases:
            h.log(f"guessing: {args.guess_ips} addresses x {args.guesses_per_ip} wrong PINs on one phone ...")
            before = h.emulator_stats(emulator_port)
            offset = len(site_log.read_text(errors="replace"))
            result = asyncio.run(
                guess(
                    site_port,
                    emulator_port,
                    source_ips(2, args.guess_ips),
                    args.guesses_per_ip,
                    args.concurrency,
                    args.resend_every,
                    args.guess_seconds,
                    args.max_seconds,
                    args.timeout,
                    args.random_seed,
                )
            )
            after = h.emulator_stats(emulator_port)
            time.sleep(0.5)
            failed = logged_reasons(site_log.read_text(errors="replace"), offset)
            reached = after["verifyRequests"] - before["verifyRequests"]
            pins = result["pins_issued"]
            per_pin = pins * DEFAULTS["MAX_VERIFY_ATTEMPTS"]
            out += [
                "",
                f"## Guessing: {result['guesses']} wrong PINs for one phone in {result['seconds']:.1f} s "
                f"from {args.guess_ips} source addresses, a fresh code asked every {args.resend_every:.0f} s",
                "",
                f"[{'PASS' if reached <= min(per_pin, DEFAULTS['MAX_FAILURES_PER_PHONE']) else 'FAIL'}] "
                f"verifies that reached the provider (emulator verifyRequests): {reached}",
                f"  caps: per PIN {DEFAULTS['MAX_VERIFY_ATTEMPTS']} x {pins} PIN(s) issued = {per_pin}; "
                f"per phone {DEFAULTS['MAX_FAILURES_PER_PHONE']} consecutive failures, then backoff "
                f"→ at most {min(per_pin, DEFAULTS['MAX_FAILURES_PER_PHONE'])} for this run",
                f"  SMS sent for the victim's phone: {after['smsSent'] - before['smsSent']} "
                f"(requests: {dict(result['sends'])})",
                "",
                "verify status totals:",
                *_counter_lines(result["statuses"]),
                "security events the site logged (event reason):",
                *_counter_lines(failed),
            ]
            if result["stopped_early"]:
                out.append(f"(stopped at --max-seconds {args.max_seconds:.0f})")
    if stack.interrupted:
        return 130
    h.log(
        time.strftime("\nAttack replay %Y-%m-%d %H:%M %Z, ") + f"{os.cpu_count()} CPUs, default limits, "
        f"gunicorn {args.workers}x{args.threads}, emulator latency {args.latency_ms} ms, phases {args.phases}"
    )
    h.log("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
