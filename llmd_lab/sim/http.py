"""One way to serve HTTP in the lab: uvicorn inside the current event loop, plus HTTP facts written once.

Every simulated server (vLLM replicas, the EPP's listeners, the gateway, the routing sidecar) and the lab's
API server start through :func:`start_server`: the lab owns signals (uvicorn's handlers are switched off),
the port is bound before it returns (0 = any free port), TLS comes from a certificate and key in memory or
on disk, and :meth:`RunningServer.stop` either cuts every connection like a killed process or drains them
like uvicorn's graceful shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import uvicorn


class BindError(OSError):
    """The server could not listen on the address it was given."""


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None] | None) -> None:
        super().__init__(config)
        self.on_shutdown = on_shutdown

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.on_shutdown is not None:
            self.on_shutdown()  # e.g. end open watches first, or uvicorn waits out its graceful timeout
        await super().shutdown(sockets)


@dataclass
class RunningServer:
    server: uvicorn.Server
    task: asyncio.Task
    host: str
    port: int
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    async def stop(self, *, graceful: bool = False) -> None:
        """``graceful=False``: stop like a killed process (stop listening, cut every open connection: clients
        see a reset). ``graceful=True``: uvicorn's shutdown, waiting for open responses up to its timeout."""
        self.server.should_exit = True
        self.close_listeners()
        if not graceful:
            self.server.force_exit = True
            for conn in list(self.server.server_state.connections):
                transport = getattr(conn, "transport", None)
                if transport is not None:
                    transport.abort()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(self.task), timeout=None if graceful else 5)
        if not self.task.done():
            self.task.cancel()

    def close_listeners(self) -> None:
        """Stop accepting now, as a stopping process does before anything else: the address is free to bind
        again even if the shutdown that follows is cut short (cancelled, or past its timeout)."""
        for srv in getattr(self.server, "servers", []):
            srv.close()


async def start_server(app: Any, host: str, port: int, *, name: str,
                       ssl_context: ssl.SSLContext | None = None, sockets: list[socket.socket] | None = None,
                       graceful_shutdown_s: float | None = 1.0, on_shutdown: Callable[[], None] | None = None,
                       log_level: str = "error", keep_alive_s: float = 30) -> RunningServer:
    """Listen on ``host:port`` (or the given bound ``sockets``) and return once it accepts connections.

    ``keep_alive_s``: how long an idle keep-alive connection stays open (a client reusing it just as it
    closes sees its request cut). Raises :class:`BindError` when the address cannot be bound (uvicorn would ``sys.exit(1)``). Start-up runs
    in the caller's task (not under ``wait_for``, which would run it in another task: uvicorn's connections
    then missed client disconnects)."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="off",
                            timeout_keep_alive=keep_alive_s, timeout_graceful_shutdown=graceful_shutdown_s)
    config.load()
    config.ssl = ssl_context  # uvicorn takes files only; a context lets a pod's mounted Secret stay in memory
    server = _Server(config, on_shutdown)
    server.lifespan = config.lifespan_class(config)
    try:
        await server.startup(sockets=sockets)  # binding is immediate: no timeout needed
    except SystemExit as exc:  # uvicorn logs the OSError and exits when it cannot bind
        raise BindError(f"{name}: could not listen on {host}:{port}: address already in use or not "
                        "available") from exc
    except BaseException:  # cancelled part-way through start-up: leave no listener behind
        for srv in getattr(server, "servers", []):
            srv.close()
        raise

    async def run() -> None:
        await server.main_loop()
        await server.shutdown(sockets=sockets)

    task = asyncio.get_running_loop().create_task(run(), name=name)
    bound = port
    for srv in server.servers:
        for sock in srv.sockets:
            bound = sock.getsockname()[1]
            break
    return RunningServer(server, task, host, bound, "https" if ssl_context is not None else "http")
