"""Run an ASGI app with uvicorn inside the current event loop (the lab owns signals, not uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator
from dataclasses import dataclass

import uvicorn


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class RunningServer:
    server: uvicorn.Server
    task: asyncio.Task
    host: str
    port: int

    async def stop(self) -> None:
        """Stop like a killed process: stop listening and cut every open connection (clients see a reset)."""
        self.server.should_exit = True
        self.server.force_exit = True
        for conn in list(self.server.server_state.connections):
            transport = getattr(conn, "transport", None)
            if transport is not None:
                transport.abort()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self.task, timeout=5)
        if not self.task.done():
            self.task.cancel()


async def start_server(app, host: str, port: int, *, name: str, startup_timeout: float = 10.0) -> RunningServer:
    """Bind ``host:port`` (0 = any free port) and return once it accepts connections; raise if it cannot."""
    config = uvicorn.Config(app, host=host, port=port, log_level="error", access_log=False, lifespan="off",
                            timeout_keep_alive=30)
    server = _Server(config)
    task = asyncio.create_task(server.serve(), name=name)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + startup_timeout
    while not server.started:
        if task.done():
            exc = task.exception() if not task.cancelled() else None
            raise OSError(f"{name}: could not listen on {host}:{port}" + (f": {exc}" if exc else "")) from exc
        if loop.time() > deadline:
            task.cancel()
            raise TimeoutError(f"{name}: did not start listening on {host}:{port} within {startup_timeout}s")
        await asyncio.sleep(0.005)
    bound = port
    for srv in server.servers:
        for sock in srv.sockets:
            bound = sock.getsockname()[1]
            break
    return RunningServer(server, task, host, bound)
