"""A real API server for tests: uvicorn on 127.0.0.1 (free port) in a background thread over a Store.

``start_api_server()`` returns an :class:`ApiServer` with ``url``, ``token``, ``store``, ``request()`` for
raw HTTP and ``client()`` for a configured ``kubernetes.client.ApiClient``; ``stop()`` shuts it down.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from dataclasses import dataclass, field

import httpx
import kubernetes
import uvicorn

from llmd_lab.lab.apiserver.app import create_app
from llmd_lab.lab.apiserver.hooks import ApiHooks
from llmd_lab.lab.apiserver.store import Store

READY_DEADLINE_S = 20.0


@dataclass
class ApiServer:
    url: str
    token: str
    store: Store
    server: uvicorn.Server
    thread: threading.Thread
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=10.0)

    def request(self, method: str, path: str, *, token: str | None = "default", **kwargs) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if token == "default":
            token = self.token
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        return self.http.request(method, path, headers=headers, **kwargs)

    def client(self) -> kubernetes.client.ApiClient:
        config = kubernetes.client.Configuration()
        config.host = self.url
        config.api_key = {"authorization": self.token}
        config.api_key_prefix = {"authorization": "Bearer"}
        return kubernetes.client.ApiClient(config)

    def stop(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.store.close()


def start_api_server(store: Store | None = None, *, hooks: ApiHooks | None = None, **app_kwargs) -> ApiServer:
    """Start uvicorn on a free 127.0.0.1 port and return once ``/readyz`` answers (deadline, no sleeps)."""
    store = store or Store(":memory:")
    token = secrets.token_urlsafe(24)
    app = create_app(store, token=token, hooks=hooks, **app_kwargs)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio sets TCP_NODELAY only then
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="apiserver")
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_DEADLINE_S
    while True:
        try:
            if httpx.get(url + "/readyz", timeout=1.0).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"the test API server did not become ready on {url}")
        threading.Event().wait(0.02)  # poll interval while waiting for readiness (bounded by the deadline)
    return ApiServer(url, token, store, server, thread)
