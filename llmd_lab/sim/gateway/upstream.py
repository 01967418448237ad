"""Keep-alive HTTP/1.1 connections from the gateway to one upstream (a pod or a Service's cluster IP).

Why not httpx: the gateway shares one event loop with every simulated pod, and the relay runs once per
streamed token. httpx's layers (httpcore, anyio timeouts, one h11 event and one ASGI send per SSE event)
cost the gateway more than the rest of its work (measured with ``llmd-lab bench gateway``). Here an
``asyncio.Protocol`` hands on everything that arrived in one socket read as one chunk (the relay never
waits for more data, so nothing is buffered, but it writes once per read rather than once per event).
The response head (status line, headers, 1xx skipped) is parsed by h11; the body framing (chunked,
Content-Length, or until close: RFC 9112 §6.3) here with ``bytes.find``, once per read rather than per event.
Anything else is a protocol error that ends the exchange. The request head is written directly: its
headers come from a request uvicorn already parsed and from the EPP, and are checked for line breaks.
"""

from __future__ import annotations

import asyncio
import collections
import ssl as _ssl
from collections.abc import AsyncIterator
from typing import cast

import h11

from llmd_lab.sim.keepalive import POD_CLIENT_KEEPALIVE_EXPIRY_S

MAX_BUFFERED = 1 << 20  # stop reading from the upstream socket while this much is waiting for the client
MAX_CHUNK_LINE = 4096
MAX_HEAD = 65536


class ResponseHead:
    """Status line and headers of a response (header names lower-cased, as h11 and httpx give them)."""

    __slots__ = ("headers", "http_version", "status_code")

    def __init__(self, http_version: bytes, status_code: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.http_version = http_version
        self.status_code = status_code
        self.headers = headers


def parse_head(data: bytes, method: str = "GET") -> tuple[ResponseHead | None, int]:
    """The first response head in ``data`` and where it ends, or (None, 0) while it is incomplete.

    h11 parses it (status line, header names and values, obs-fold, the framing headers' syntax): a
    maintained parser for the part that is parsed once per response. The body is framed here instead,
    because an h11 event per streamed chunk costs more than the rest of the relay (``bench gateway``)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if len(data) > MAX_HEAD:
            raise ValueError("response head too long")
        return None, 0
    parser = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    parser.send(h11.Request(method=method, target="/", headers=[("host", "upstream")]))
    parser.receive_data(data[:end + 4])
    try:
        event = parser.next_event()
    except h11.RemoteProtocolError as exc:
        raise ValueError(f"bad status line or header ({exc}) in {data[:min(end, 80)]!r}") from None
    if not isinstance(event, h11.Response | h11.InformationalResponse):
        raise ValueError(f"bad status line {data[:min(end, 80)]!r}")
    return ResponseHead(b"HTTP/" + event.http_version, event.status_code, list(event.headers)), end + 4


class UpstreamError(ConnectionError):
    """The upstream could not be reached, or closed or broke the connection."""

    def __init__(self, message: str, *, before_response: bool) -> None:
        super().__init__(message)
        self.before_response = before_response


def request_head(method: str, target: str, headers: list[tuple[str, str]]) -> bytes:
    """``METHOD target HTTP/1.1`` and the header lines; refuses values that would split the head."""
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers:
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise ValueError(f"header {name!r} cannot be forwarded: it contains a line break or colon")
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


class _Connection(asyncio.Protocol):
    """One TCP connection; serves one request at a time."""

    def __init__(self) -> None:
        # Typed by what it can do, not its class: uvloop's TLS transport is not an ``asyncio.Transport``.
        self.transport: asyncio.Transport | None = None
        self.method = "GET"
        self.head: asyncio.Future[ResponseHead] | None = None
        self.head_buffer = b""
        self.framing = ""  # "", then "chunked", "length", "close" or "none" once the head is in
        self.remaining = 0  # bytes left in the body (length) or in the current chunk (chunked)
        self.chunk_state = "size"  # chunked: size line → data → CRLF → … → trailer
        self.pending = b""  # chunked: an incomplete size line, CRLF or trailer
        self.keep_alive = True
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.wakeup = asyncio.Event()
        self.complete = False
        self.error: UpstreamError | None = None
        self.closed = False
        self.in_use = False
        self.got_bytes = False
        self.idle_since = 0.0

    # -- asyncio.Protocol -----------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            if self.framing:
                self._body(data)
            elif self.in_use:
                self._head(self.head_buffer + data if self.head_buffer else data)
            else:
                raise ValueError("data from the upstream while no request was waiting")
        except ValueError as exc:
            self._fail(f"invalid HTTP from upstream: {exc}")
            self.abort()
        if self.chunks or self.complete:
            self.wakeup.set()

    def eof_received(self) -> bool | None:
        if self.framing == "close":
            self._finish()
            self.keep_alive = False
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.in_use and not self.complete:
            self._fail("upstream closed the connection" + (f": {exc}" if exc else ""))

    # -- parsing --------------------------------------------------------------------------------------------
    def _head(self, data: bytes) -> None:
        assert self.head is not None
        while True:
            event, used = parse_head(data, self.method)
            if event is None:
                self.head_buffer = data
                return
            data = data[used:]
            if not 100 <= event.status_code < 200:
                break  # 1xx (100 Continue, 103 Early Hints) are followed by the real head
        self.head_buffer = b""
        headers = dict(event.headers)
        self.keep_alive = event.http_version == b"HTTP/1.1" and b"close" not in headers.get(b"connection", b"").lower()
        status = event.status_code
        if self.method == "HEAD" or status in (204, 304):
            self.framing = "none"
        elif b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            self.framing = "chunked"
        elif b"content-length" in headers:
            self.framing = "length"
            self.remaining = int(headers[b"content-length"])
        else:
            self.framing = "close"
            self.keep_alive = False
        if not self.head.done():
            self.head.set_result(event)
        if self.framing == "none" or (self.framing == "length" and self.remaining == 0):
            self._finish()
        if data:
            self._body(data)

    def _emit(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > MAX_BUFFERED and self.transport is not None:
            self.transport.pause_reading()

    def _finish(self) -> None:
        self.complete = True
        self.wakeup.set()

    def _body(self, data: bytes) -> None:
        if self.complete:
            raise ValueError("bytes after the end of the response")
        if self.framing == "close":
            self._emit(data)
        elif self.framing == "length":
            if len(data) > self.remaining:
                raise ValueError("more body than Content-Length announced")
            self.remaining -= len(data)
            self._emit(data)
            if self.remaining == 0:
                self._finish()
        else:
            self._chunked(data)

    def _chunked(self, data: bytes) -> None:
        """Decode Transfer-Encoding: chunked; hand on the data of every complete or partial chunk.

        One loop over the read with the state in locals: it runs once per relayed read, and a read holds a
        few SSE events (one chunk each), so a method call per state cost more than the rest of the decode."""
        if self.pending:
            data, self.pending = self.pending + data, b""
        pos, end = 0, len(data)
        out: list[bytes] = []
        state, remaining = self.chunk_state, self.remaining
        try:
            while pos < end:
                if state == "data":
                    take = remaining if remaining < end - pos else end - pos
                    out.append(data[pos:pos + take])
                    remaining -= take
                    pos += take
                    if remaining == 0:
                        state = "crlf"
                elif state == "crlf":
                    if end - pos < 2:
                        self.pending = data[pos:]
                        break
                    if data[pos:pos + 2] != b"\r\n":
                        raise ValueError("chunk data not followed by CRLF")
                    state = "size"
                    pos += 2
                elif state == "size":
                    eol = self._line_end(data, pos, end, "chunk size line")
                    if eol is None:
                        break
                    size = int(data[pos:eol].split(b";", 1)[0].strip(), 16)
                    remaining, state = size, ("data" if size else "trailer")
                    pos = eol + 2
                else:
                    after = self._chunk_trailer(data, pos, end)
                    if after is None:  # needs more bytes (kept in self.pending) or the response ended
                        break
                    pos = after
        finally:
            self.chunk_state, self.remaining = state, remaining
        if out:
            self._emit(out[0] if len(out) == 1 else b"".join(out))

    def _line_end(self, data: bytes, pos: int, end: int, what: str) -> int | None:
        """The CRLF ending the line at ``pos``; None (bytes kept pending) while the line is incomplete."""
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            if end - pos > MAX_CHUNK_LINE:
                raise ValueError(f"{what} too long")
            self.pending = data[pos:]
        return eol if eol >= 0 else None

    def _chunk_trailer(self, data: bytes, pos: int, end: int) -> int | None:
        """Trailer section: header lines, ended by an empty line (the end of the response)."""
        if data.startswith(b"\r\n", pos):
            self._finish()
            if pos + 2 < end:
                raise ValueError("bytes after the end of the response")
            return None
        eol = self._line_end(data, pos, end, "trailer line")
        return None if eol is None else eol + 2

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
        head = request_head(method, target, headers)
        self.method = method
        self.head = asyncio.get_running_loop().create_future()
        self.in_use = True
        self.got_bytes = False
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)

    def reusable(self) -> bool:
        """The response was read to its end and the upstream keeps the connection open."""
        return not self.closed and self.error is None and self.complete and self.keep_alive

    def idle(self) -> bool:
        return not self.closed and self.error is None and not self.in_use

    def reset_for_next(self) -> None:
        self.in_use = False
        self.head = None
        self.head_buffer = b""
        self.framing = ""
        self.chunk_state = "size"
        self.pending = b""
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

    def __init__(self, pool: UpstreamPool, conn: _Connection, head: ResponseHead) -> None:
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
    """Keep-alive connections to one ``host:port`` (over TLS when given a context), at most
    ``max_connections`` at a time."""

    def __init__(self, host: str, port: int, *, max_connections: int = 1024, connect_timeout: float = 30.0,
                 pool_timeout: float = 30.0, keepalive_expiry: float = POD_CLIENT_KEEPALIVE_EXPIRY_S,
                 ssl: _ssl.SSLContext | None = None) -> None:
        self.host = host
        self.port = port
        self.ssl = ssl  # TLS origination (KServe's DestinationRules: SIMPLE, insecureSkipVerify)
        self.connect_timeout = connect_timeout
        self.pool_timeout = pool_timeout
        self.keepalive_expiry = keepalive_expiry
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._all: set[_Connection] = set()
        self.opened = 0  # connections made (each a TCP, and with ``ssl`` a TLS, handshake)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            # asyncio.timeout, not wait_for: on 3.11 a wait_for cancelled just as the connection is made loses
            # it, open and untracked (3.12 rewrote wait_for on asyncio.timeout to fix that)
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(_Connection, self.host, self.port, ssl=self.ssl)
        except (TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError: a failed handshake
            raise UpstreamError(f"connect to {self.host}:{self.port} failed: {type(exc).__name__}",
                                before_response=True) from exc
        self._all.add(conn)
        self.opened += 1
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
        if self._slots.locked():  # wait for a slot, bounded; wait_for runs the wait in a task of its own
            try:
                await asyncio.wait_for(self._slots.acquire(), self.pool_timeout)
            except TimeoutError:
                raise TimeoutError(f"no connection to {self.host}:{self.port} became free") from None
        else:  # a free slot is taken without suspending (no task, no trip round the event loop)
            await self._slots.acquire()
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
        if conn.reusable():
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
