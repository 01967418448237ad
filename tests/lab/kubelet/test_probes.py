"""The prober as the kubelet runs it: a probe in flight is finished, not abandoned, when the container stops."""

from __future__ import annotations

import asyncio

import pytest

from llmd_lab.lab.kubelet import probes
from llmd_lab.sim.tls import self_signed_pem, ssl_context_from_pem

pytestmark = pytest.mark.anyio


async def test_a_probe_in_flight_is_answered_and_its_connection_closed_when_the_container_stops() -> None:
    release, asked = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    async def pod(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        seen.append(request.split(b"\r\n")[0].decode())
        asked.set()
        await release.wait()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        seen.append("answered")
        seen.append("closed by the prober" if await reader.read() == b"" else "data")
        writer.close()

    server = await asyncio.start_server(pod, "127.0.0.1", 0, ssl=ssl_context_from_pem(*self_signed_pem()))
    port = server.sockets[0].getsockname()[1]
    probe = {"httpGet": {"path": "/health", "port": port, "scheme": "HTTPS"}, "timeoutSeconds": 5}
    async with server:

        async def worker() -> tuple[bool, str]:
            async with probes.probe_client(probe) as client:
                return await probes.probe_to_completion(client, "127.0.0.1", {"name": "main"}, probe)

        task = asyncio.create_task(worker())
        await asyncio.wait_for(asked.wait(), 30)
        task.cancel()  # the container stops while the probe waits for its answer
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(_until(lambda: len(seen) == 3), 30)
    assert seen == ["GET /health HTTP/1.1", "answered", "closed by the prober"]


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.01)
