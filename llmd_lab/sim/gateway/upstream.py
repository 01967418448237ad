"""Keep-alive HTTP/1.1 connections from the gateway to one upstream (a pod or a Service's cluster IP).

Why not httpx: the gateway shares one event loop with every simulated pod, and the relay runs once per
streamed token. httpx's layers (httpcore, anyio timeouts, one h11 event and one ASGI send per SSE event)
cost the gateway more than the rest of its work. Here h11 still does all the HTTP parsing, on an
``asyncio.Protocol``: the bytes that arrive in one socket read are handed on as one chunk, so the relay
never waits for more data (no buffering of a stream) but does one write per read, not per event.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator

import h11

MAX_BUFFERED = 1 << 20  # stop reading from the upstream socket while this much is waiting for the client


class UpstreamError(ConnectionError):
    """The upstream could not be reached, or closed or broke the connection."""

    def __init__(self, message: str, *, before_response: bool) -> None:
        super().__init__(message)
        self.before_response = before_response


class _Connection(asyncio.Protocol):
    """One TCP connection and its h11 state machine; serves one request at a time."""

    def __init__(self) -> None:
        self.h11 = h11.Connection(h11.CLIENT)
        self.transport: asyncio.Transport | None = None
        self.head: asyncio.Future[h11.Response] | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.wakeup = asyncio.Event()
        self.complete = False
        self.error: UpstreamError | None = None
        self.closed = False
        self.got_bytes = False
        self.idle_since = 0.0

    # -- asyncio.Protocol -----------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.h11.receive_data(data)
            self._pump()
        except h11.RemoteProtocolError as exc:
            self._fail(f"invalid HTTP from upstream: {exc}")
            self.abort()

    def eof_received(self) -> bool | None:
        with contextlib.suppress(h11.RemoteProtocolError):
            self.h11.receive_data(b"")
            self._pump()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete:
            self._fail("upstream closed the connection" + (f": {exc}" if exc else ""))

    # -- parsing --------------------------------------------------------------------------------------------
    def _pump(self) -> None:
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                break
            if isinstance(event, h11.Response):
                if self.head is not None and not self.head.done():
                    self.head.set_result(event)
            elif isinstance(event, h11.Data):
                self.chunks.append(bytes(event.data))
                self.buffered += len(event.data)
                if self.buffered > MAX_BUFFERED and self.transport is not None:
                    self.transport.pause_reading()
            elif isinstance(event, h11.EndOfMessage):
                self.complete = True
                self.wakeup.set()
                break
            elif isinstance(event, h11.ConnectionClosed):
                self._fail("upstream closed the connection mid-response")
                break
            # InformationalResponse (1xx): skip
        if self.chunks:
            self.wakeup.set()

    def _fail(self, message: str) -> None:
        if self.error is None:
            before = self.head is None or not self.head.done()
            self.error = UpstreamError(message, before_response=before)
        if self.head is not None and not self.head.done():
            self.head.set_exception(self.error)
        self.wakeup.set()

    # -- request cycle --------------------------------------------------------------------------------------
    def send_request(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> None:
        assert self.transport is not None
        self.head = asyncio.get_running_loop().create_future()
        self.got_bytes = False
        out = self.h11.send(h11.Request(method=method, target=target, headers=headers)) or b""
        if body:
            out += self.h11.send(h11.Data(data=body)) or b""
        out += self.h11.send(h11.EndOfMessage()) or b""
        self.transport.write(out)

    def reusable(self) -> bool:
        """The response was read to its end and both sides may go on with another request."""
        return (not self.closed and self.error is None and self.h11.our_state is h11.DONE
                and self.h11.their_state is h11.DONE)

    def idle(self) -> bool:
        return not self.closed and self.error is None and self.h11.our_state is h11.IDLE

    def reset_for_next(self) -> None:
        self.h11.start_next_cycle()
        self.head = None
        self.complete = False
        self.wakeup.clear()
        self.chunks.clear()
        self.buffered = 0

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class UpstreamResponse:
    """Status and headers of an upstream response; ``chunks()`` streams the body, ``aclose()`` releases it."""

    def __init__(self, pool: UpstreamPool, conn: _Connection, head: h11.Response) -> None:
        self._pool = pool
        self._conn = conn
        self.status_code = head.status_code
        self.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in head.headers]
        self._released = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """Everything that has arrived since the last chunk, as soon as anything has; ends with the body.
        Raises :class:`UpstreamError` if the connection breaks mid-body."""
        conn = self._conn
        while True:
            if conn.chunks:
                data = conn.chunks[0] if len(conn.chunks) == 1 else b"".join(conn.chunks)
                conn.chunks.clear()
                if conn.buffered > MAX_BUFFERED and conn.transport is not None and not conn.closed:
                    conn.transport.resume_reading()
                conn.buffered = 0
                yield data
                continue
            if conn.complete:
                return
            if conn.error is not None:
                raise conn.error
            conn.wakeup.clear()
            await conn.wakeup.wait()

    def abort(self) -> None:
        """Cut the connection now (the client went away): the upstream sees a reset."""
        self._conn.abort()
        self._conn._fail("the client went away")

    async def aclose(self) -> None:
        """Back to the pool when the body was read to the end; otherwise the connection is cut (the pod sees
        the client go away, as behind Envoy)."""
        if self._released:
            return
        self._released = True
        self._pool.release(self._conn)


class UpstreamPool:
    """Keep-alive connections to one ``host:port``, at most ``max_connections`` at a time."""

    def __init__(self, host: str, port: int, *, max_connections: int = 1024, connect_timeout: float = 30.0,
                 pool_timeout: float = 30.0, keepalive_expiry: float = 4.0) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.pool_timeout = pool_timeout
        self.keepalive_expiry = keepalive_expiry
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._all: set[_Connection] = set()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(_Connection, self.host, self.port),
                                             self.connect_timeout)
        except (TimeoutError, OSError) as exc:
            raise UpstreamError(f"connect to {self.host}:{self.port} failed: {type(exc).__name__}",
                                before_response=True) from exc
        self._all.add(conn)
        return conn

    def _take_idle(self) -> _Connection | None:
        now = asyncio.get_running_loop().time()
        while self._idle:
            conn = self._idle.pop()
            if conn.idle() and now - conn.idle_since < self.keepalive_expiry:
                return conn
            self._discard(conn)
        return None

    def _discard(self, conn: _Connection) -> None:
        conn.abort()
        self._all.discard(conn)

    async def request(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
                      ) -> UpstreamResponse:
        """Send one request and wait for the response head. Raises :class:`TimeoutError` when no connection
        slot frees up within ``pool_timeout`` and :class:`UpstreamError` when the upstream fails."""
        try:
            await asyncio.wait_for(self._slots.acquire(), self.pool_timeout)
        except TimeoutError:
            raise TimeoutError(f"no connection to {self.host}:{self.port} became free") from None
        conn: _Connection | None = None
        try:
            conn = self._take_idle()
            reused = conn is not None
            if conn is None:
                conn = await self._connect()
            while True:
                conn.send_request(method, target, headers, body)
                assert conn.head is not None
                try:
                    head = await conn.head
                except UpstreamError:
                    self._discard(conn)
                    # a kept-alive connection the upstream closed while idle: try once on a new one
                    if reused and not conn.got_bytes:
                        reused = False
                        conn = await self._connect()
                        continue
                    raise
                return UpstreamResponse(self, conn, head)
        except BaseException:
            if conn is not None:
                self._discard(conn)
            self._slots.release()
            raise

    def release(self, conn: _Connection) -> None:
        self._slots.release()
        if conn.complete and conn.reusable():
            conn.reset_for_next()
            conn.idle_since = asyncio.get_running_loop().time()
            self._idle.append(conn)
        else:
            self._discard(conn)

    async def aclose(self) -> None:
        for conn in list(self._all):
            conn.abort()
        self._all.clear()
        self._idle.clear()
