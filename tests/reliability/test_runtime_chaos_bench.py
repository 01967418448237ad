"""``llmd-lab bench chaos`` counts each streamed request exactly as a client experiences it: a stream that ends
cleanly without ``[DONE]`` is a truncation passed off as complete, never an answer; a reset is a clean
failure; no end in time is a hang."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from llmd_lab.bench.chaos import one_request

pytestmark = pytest.mark.anyio

DONE = b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\ndata: [DONE]\n\n'
CUT = b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n'
ERROR = b'data: {"error": {"message": "engine died"}}\n\ndata: [DONE]\n\n'


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class _Body(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes], *, reset: bool = False, stall: bool = False) -> None:
        self.chunks, self.reset, self.stall = chunks, reset, stall

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.stall:
            await asyncio.Event().wait()
        if self.reset:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def _client(status: int, body: _Body) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(status, stream=body)))


@pytest.mark.parametrize(("status", "body", "outcome"), [
    (200, _Body([DONE]), "answered"),
    (200, _Body([CUT]), "truncated"),
    (200, _Body([CUT], reset=True), "failed"),
    (200, _Body([ERROR]), "failed"),
    (503, _Body([b"no healthy upstream"]), "failed"),
    (200, _Body([CUT], stall=True), "hung"),
])
async def test_each_request_is_counted_as_the_client_saw_it(status: int, body: _Body, outcome: str) -> None:
    async with _client(status, body) as client:
        got, why = await one_request(client, "http://127.0.0.1:1/v1/chat/completions", {}, timeout=0.5)
    assert got == outcome, why
