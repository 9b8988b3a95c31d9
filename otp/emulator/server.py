"""The asyncio HTTP server around :class:`~otp.emulator.api.Api`.

One event loop and one :class:`asyncio.Protocol` per connection, with
keep-alive and pipelining: a request is parsed and answered inside
``data_received`` without a task switch, which keeps a hundreds-of-clients
benchmark from waiting on the emulator. Only delayed or hanging answers go
through a task. Transport faults (latency, hang, connection reset) are applied
here; everything else lives in ``api`` and ``faults``. It binds to loopback only.
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

_HEAD_END = b"\r\n\r\n"


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
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
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
        server = await self._loop.create_server(lambda: _Connection(self), self.host, self.port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        if on_started is not None:
            on_started(self)
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for connection in list(self.connections):
                connection.transport.abort()
            for task in list(self.tasks):
                task.cancel()
            if self.tasks:
                await asyncio.wait(list(self.tasks), timeout=5)
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

    # -- one request -----------------------------------------------------------

    def prepare(self, request: Request) -> tuple[float, Fault | None, Callable[[], Answer]]:
        """(seconds to wait, fault that fired, how to make the answer) for ``request``."""
        try:
            group, handler, params = self.api.resolve(request.method, request.path)
        except ApiError:
            return 0.0, None, lambda: self.api.handle(request)
        if group == "control":
            return 0.0, None, lambda: self.api.run(group, handler, params, request)
        fault = self.faults.take(group)

        def answer() -> Answer:
            if fault is not None and fault.kind in BEFORE:
                substitute = replacement(fault)
                if isinstance(substitute, ApiError):
                    return Answer.from_error(substitute)
                status, headers, body = substitute
                return Answer(status, headers=headers, body=body)
            real = self.api.run(group, handler, params, request)
            if fault is not None and fault.kind not in ("hang", "reset"):
                real.content_type, real.body = corrupt(fault, real.data)
            return real

        return self.faults.latency(group), fault, answer

    async def hang(self) -> None:
        """Wait until the server stops or ``hang_seconds`` pass."""
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), self.hang_seconds)
        except TimeoutError:
            pass


class _Connection(asyncio.Protocol):
    """One client connection: parse, answer, repeat while keep-alive holds."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.busy = False  # a delayed answer is pending; later requests wait in the buffer
        self.transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self.process()

    def process(self) -> None:
        """Answer every complete request in the buffer, in order."""
        while not self.transport.is_closing():
            end = self.buffer.find(_HEAD_END, 0, MAX_HEAD_BYTES)
            if end < 0:
                if len(self.buffer) >= MAX_HEAD_BYTES:
                    self.refuse(HttpError(400, "request head too large"))
                return
            try:
                request, length, keep_alive = parse_head(bytes(self.buffer[: end + 4]))
            except HttpError as err:
                self.refuse(err)
                return
            start = end + 4
            if len(self.buffer) < start + length:
                return  # the body is still on its way
            request.body = bytes(self.buffer[start : start + length])
            del self.buffer[: start + length]
            delay, fault, answer = self.server.prepare(request)
            if delay or (fault is not None and fault.kind == "hang"):
                self.busy = True
                task = asyncio.get_running_loop().create_task(self.later(delay, fault, answer, keep_alive))
                self.server.tasks.add(task)
                task.add_done_callback(self.server.tasks.discard)
                return
            self.finish(fault, answer, keep_alive)

    async def later(self, delay: float, fault: Fault | None, answer: Callable[[], Answer], keep_alive: bool) -> None:
        if delay:
            await asyncio.sleep(delay)
        if fault is not None and fault.kind == "hang":
            answer()  # handled upstream; the answer never comes back
            await self.server.hang()
            self.transport.abort()
            return
        self.busy = False
        self.finish(fault, answer, keep_alive)
        self.process()

    def finish(self, fault: Fault | None, answer: Callable[[], Answer], keep_alive: bool) -> None:
        result = answer()
        if self.transport.is_closing():  # the client left while the answer was delayed
            return
        if fault is not None and fault.kind == "reset":
            _reset(self.transport)
            return
        self.transport.write(encode(result, keep_alive=keep_alive))
        if not keep_alive:
            self.transport.close()

    def refuse(self, error: HttpError) -> None:
        self.transport.write(encode(Answer.from_error(ApiError(error.status, str(error))), keep_alive=False))
        self.transport.close()


def _reset(transport: asyncio.Transport) -> None:
    """Close with a TCP RST instead of a FIN (SO_LINGER with a zero timeout)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
