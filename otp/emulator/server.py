"""The asyncio HTTP server around :class:`~otp.emulator.api.Api`.

One event loop, asyncio streams and keep-alive: enough for hundreds of
concurrent clients on a small machine. Transport-level faults (latency, hang,
connection reset) are applied here; everything else is in ``api``/``faults``.
It binds to loopback addresses only.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from otp.emulator.api import Answer, Api, Request
from otp.emulator.errors import ApiError
from otp.emulator.faults import BEFORE, Fault, FaultPlan, corrupt, replacement
from otp.emulator.net import check_loopback
from otp.emulator.state import Emulator
from otp.emulator.wire import MAX_HEAD_BYTES, HttpError, encode, parse_head

_DRAIN_ABOVE = 64 * 1024


class EmulatorServer:
    """Serves one :class:`Emulator` over HTTP until :meth:`stop`.

    ``hang_seconds`` bounds the ``hang`` fault: the connection is dropped then,
    or when the server stops, whichever is first.
    """

    def __init__(
        self,
        emulator: Emulator | None = None,
        *,
        api_keys: Iterable[str],
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
        hang_seconds: float = 300.0,
    ) -> None:
        self.host = check_loopback(host)
        self.port = port
        self.emulator = emulator or Emulator()
        self.faults = faults or FaultPlan()
        self.api = Api(self.emulator, self.faults, api_keys)
        self.hang_seconds = hang_seconds
        self._connections: dict[asyncio.BaseTransport, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- life cycle ------------------------------------------------------------

    async def serve(self, on_started: Callable[[EmulatorServer], Any] | None = None) -> None:
        """Listen, call ``on_started``, and serve until :meth:`stop`."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._client, self.host, self.port,
                                            limit=MAX_HEAD_BYTES, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        if on_started is not None:
            on_started(self)
        try:
            await self._stopping.wait()
        finally:
            server.close()
            tasks = list(self._connections.values())
            for transport in list(self._connections):
                transport.abort()
            # Let every connection end on its own rather than be cancelled by asyncio.run().
            if tasks:
                await asyncio.wait(tasks, timeout=5)
            await server.wait_closed()

    def stop(self) -> None:
        """Stop serving; safe from any thread and before the server started."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)

    @contextmanager
    def running(self, timeout: float = 5.0) -> Iterator[EmulatorServer]:
        """Serve from a background thread for the ``with`` block (tests)."""
        errors: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve())
            except BaseException as err:  # surfaced in the caller's thread
                errors.append(err)
                self._started.set()

        thread = threading.Thread(target=run, name="infobip-emulator", daemon=True)
        thread.start()
        if not self._started.wait(timeout) or errors:
            self.stop()
            raise RuntimeError(f"the emulator did not start: {errors[0] if errors else 'timeout'}")
        try:
            yield self
        finally:
            self.stop()
            thread.join(timeout)

    # -- connections -----------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = writer.transport
        task = asyncio.current_task()
        assert task is not None
        self._connections[transport] = task
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                try:
                    request, length, keep_alive = parse_head(head)
                except HttpError as err:
                    writer.write(encode(Answer.from_error(ApiError(err.status, str(err))), keep_alive=False))
                    return
                if length:
                    request.body = await reader.readexactly(length)
                answer, fault = await self._answer(request)
                if fault is not None and fault.kind == "hang":
                    await self._hang()
                    return
                if fault is not None and fault.kind == "reset":
                    _reset(writer)
                    return
                writer.write(encode(answer, keep_alive=keep_alive))
                if not keep_alive:
                    return
                if transport.get_write_buffer_size() > _DRAIN_ABOVE:
                    await writer.drain()
        except asyncio.LimitOverrunError:
            writer.write(encode(Answer.from_error(ApiError(400, "request head too large")), keep_alive=False))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        finally:
            self._connections.pop(transport, None)
            writer.close()

    async def _answer(self, request: Request) -> tuple[Answer, Fault | None]:
        try:
            group, handler, params = self.api.resolve(request.method, request.path)
        except ApiError:
            return self.api.handle(request), None
        if group == "control":
            return self.api.run(group, handler, params, request), None
        delay = self.faults.latency(group)
        if delay:
            await asyncio.sleep(delay)
        fault = self.faults.take(group)
        if fault is not None and fault.kind in BEFORE:
            substitute = replacement(fault)
            if isinstance(substitute, ApiError):
                return Answer.from_error(substitute), fault
            status, headers, body = substitute
            return Answer(status, headers=headers, body=body), fault
        answer = self.api.run(group, handler, params, request)
        if fault is not None and fault.kind not in ("hang", "reset"):
            answer.content_type, answer.body = corrupt(fault, answer.data)
        return answer, fault

    async def _hang(self) -> None:
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), self.hang_seconds)
        except TimeoutError:
            pass


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST instead of a FIN (SO_LINGER with a zero timeout)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
