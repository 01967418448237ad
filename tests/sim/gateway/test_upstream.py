"""The gateway's upstream HTTP/1.1 client against scripted servers: body framing, reuse and failures."""

from __future__ import annotations

import asyncio
import random

import pytest

from llmd_lab.sim.gateway.upstream import UpstreamError, UpstreamPool

pytestmark = pytest.mark.anyio

CHUNKED = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
           b"8\r\ndata: 1\n\r\n" b"9;ext=1\r\ndata: 22\n\r\n" b"0\r\nx-trailer: t\r\n\r\n")
CUT = b"<cut the connection here>"


@pytest.fixture
def anyio_backend():
    return "asyncio"


class Scripted:
    """A loopback server that answers each request (read up to the blank line) with the next script, written
    in the given pieces with a pause between them; ``None`` closes the connection instead, and a ``CUT`` piece
    closes it mid-response."""

    def __init__(self, scripts: list[list[bytes] | None]) -> None:
        self.scripts = list(scripts)
        self.connections = 0
        self.requests: list[bytes] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.scripts:
                self.requests.append(await reader.readuntil(b"\r\n\r\n"))
                script = self.scripts.pop(0)
                if script is None:
                    break
                for piece in script:
                    if piece == CUT:
                        return
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.001)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> tuple[str, int]:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return "127.0.0.1", self.server.sockets[0].getsockname()[1]

    async def __aexit__(self, *exc) -> None:
        self.server.close()


async def _fetch(pool: UpstreamPool, method: str = "GET") -> tuple[int, dict, bytes, list[bytes]]:
    response = await pool.request(method, "/v1/x", [("x-request-id", "r1")], b"")
    pieces = [chunk async for chunk in response.chunks()]
    await response.aclose()
    return response.status_code, dict(response.headers), b"".join(pieces), pieces


@pytest.mark.parametrize("seed", range(5))
async def test_chunked_body_split_anywhere_is_decoded_and_the_connection_reused(seed):
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(CHUNKED)), 8))
    pieces = [CHUNKED[a:b] for a, b in zip([0, *cuts], [*cuts, len(CHUNKED)], strict=True)]
    server = Scripted([pieces, [CHUNKED]])
    async with server as (host, port):
        pool = UpstreamPool(host, port)
        for _ in range(2):
            status, headers, body, _ = await _fetch(pool)
            assert status == 200 and headers["content-type"] == "text/event-stream"
            assert body == b"data: 1\n" b"data: 22\n"
        assert server.connections == 1
        assert server.requests[0].startswith(b"GET /v1/x HTTP/1.1\r\n") and b"x-request-id: r1\r\n" in server.requests[0]
        await pool.aclose()


async def test_each_read_is_handed_on_as_it_arrives():
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    server = Scripted([[head, b"3\r\none\r\n", b"3\r\ntwo\r\n", b"0\r\n\r\n"]])
    async with server as (host, port):
        pool = UpstreamPool(host, port)
        _, _, body, pieces = await _fetch(pool)
        assert body == b"onetwo" and pieces == [b"one", b"two"]  # not held back until the end
        await pool.aclose()


async def test_content_length_close_delimited_and_bodyless_responses():
    server = Scripted([
        [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel", b"lo"],
        [b"HTTP/1.1 204 No Content\r\n\r\n"],
        [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"],
        [b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n"],  # HEAD: the length is not followed by a body
        [b"HTTP/1.1 200 OK\r\n\r\nuntil ", b"close"],
    ])
    async with server as (host, port):
        pool = UpstreamPool(host, port)
        assert (await _fetch(pool))[2] == b"hello"
        assert (await _fetch(pool))[:3:2] == (204, b"")
        assert (await _fetch(pool))[:3:2] == (200, b"ok")
        assert (await _fetch(pool, "HEAD"))[2] == b""
        assert (await _fetch(pool))[2] == b"until close"
        assert server.connections == 1
        await pool.aclose()


async def test_connection_close_and_a_reset_before_the_head():
    server = Scripted([[b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\na"], None,
                       [b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb"]])
    async with server as (host, port):
        pool = UpstreamPool(host, port)
        assert (await _fetch(pool))[2] == b"a"
        with pytest.raises(UpstreamError) as err:  # a fresh connection (the last said close), then a reset
            await _fetch(pool)
        assert err.value.before_response
        assert (await _fetch(pool))[2] == b"b"
        assert server.connections == 3
        await pool.aclose()


async def test_a_break_mid_body_and_garbage_are_errors_not_hangs():
    server = Scripted([[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel", CUT]])
    async with server as (host, port):
        pool = UpstreamPool(host, port)
        response = await pool.request("GET", "/", [], b"")
        with pytest.raises(UpstreamError):
            async for _ in response.chunks():
                pass
        await response.aclose()
        await pool.aclose()
    server = Scripted([[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"],
                       [b"SSH-2.0-OpenSSH\r\n\r\n"]])
    async with server as (host, port):
        pool = UpstreamPool(host, port)
        response = await pool.request("GET", "/", [], b"")
        with pytest.raises(UpstreamError, match="invalid HTTP"):
            async for _ in response.chunks():
                pass
        await response.aclose()
        with pytest.raises(UpstreamError, match="bad status line"):
            await pool.request("GET", "/", [], b"")
        await pool.aclose()


async def test_header_values_with_line_breaks_are_refused():
    async with Scripted([]) as (host, port):
        pool = UpstreamPool(host, port)
        with pytest.raises(ValueError, match="line break"):
            await pool.request("GET", "/", [("x-evil", "a\r\nx-injected: 1")], b"")
        await pool.aclose()


@pytest.mark.parametrize("head", [b"HTTP/1.1 200 OK\r\nx bad: 1\r\ncontent-length: 0\r\n\r\n",  # space in a name
                                  b"HTTP/1.1 200 OK\r\ncontent-length: 1x\r\n\r\n",  # not a length
                                  b"HTTP/1.1 2000 OK\r\n\r\n"])  # four-digit status
async def test_response_heads_are_parsed_by_h11_and_malformed_ones_refused(head):
    async with Scripted([[head]]) as (host, port):
        pool = UpstreamPool(host, port)
        with pytest.raises(UpstreamError, match="bad status line or header"):
            await pool.request("GET", "/", [], b"")
        await pool.aclose()


async def test_a_full_pool_waits_for_a_slot_up_to_its_timeout_and_a_free_one_needs_no_wait():
    server = Scripted([[CHUNKED], [CHUNKED]])
    async with server as (host, port):
        pool = UpstreamPool(host, port, max_connections=1, pool_timeout=0.05)
        held = await pool.request("GET", "/v1/x", [], b"")  # the only slot, not yet released
        with pytest.raises(TimeoutError, match="became free"):
            await pool.request("GET", "/v1/x", [], b"")
        pool.pool_timeout = 30  # a busy machine must not time the next one out
        waiting = asyncio.ensure_future(pool.request("GET", "/v1/x", [], b""))
        await asyncio.sleep(0)
        assert not waiting.done()
        [_ async for _ in held.chunks()]
        await held.aclose()  # frees the slot: the waiting request goes ahead on the same connection
        second = await asyncio.wait_for(waiting, 5)
        assert b"".join([c async for c in second.chunks()]) == b"data: 1\ndata: 22\n"
        await second.aclose()
        assert server.connections == 1
        await pool.aclose()


def test_the_chunked_decoder_gives_the_same_body_for_every_split_of_a_read():
    from llmd_lab.sim.gateway.upstream import _Connection

    body = CHUNKED[CHUNKED.index(b"\r\n\r\n") + 4:]
    for a in range(len(body) + 1):
        for b in range(a, len(body) + 1):
            conn = _Connection()
            conn.in_use, conn.framing = True, "chunked"
            for piece in (body[:a], body[a:b], body[b:]):
                if piece:
                    conn.data_received(piece)
            assert (b"".join(conn.chunks), conn.complete, conn.error) == (b"data: 1\ndata: 22\n", True, None), (a, b)
    conn = _Connection()
    conn.in_use, conn.framing = True, "chunked"
    conn.data_received(b"3\r\nabcXY")  # no CRLF after the chunk's data
    assert conn.error is not None and "CRLF" in str(conn.error)
