"""A real API server for tests: uvicorn on 127.0.0.1 (free port) in a background thread over a Store.

``start_api_server()`` returns an :class:`ApiServer` with ``url``, ``token``, ``store``, ``request()`` for
raw HTTP and ``client()`` for a configured ``kubernetes.client.ApiClient``; ``stop()`` shuts it down.
"""

from __future__ import annotations

import secrets
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

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
    ca: Path | None = None
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=10.0, verify=_verify(self.ca))

    def kubeconfig(self, path: Path) -> Path:
        """Write a kubeconfig for this server (token + CA) to ``path``."""
        import base64

        import yaml

        assert self.ca is not None, "kubectl needs TLS: start the server with tls_dir"
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "lab", "cluster": {
                "server": self.url, "certificate-authority-data": base64.b64encode(self.ca.read_bytes()).decode()}}],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "admin", "namespace": "default"}}],
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

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
        if self.ca:
            config.ssl_ca_cert = str(self.ca)
        return kubernetes.client.ApiClient(config)

    def stop(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.store.close()


def _verify(ca: Path | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=str(ca)) if ca else True


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (kubectl sends bearer tokens only over TLS)."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def start_api_server(store: Store | None = None, *, hooks: ApiHooks | None = None, tls_dir: Path | None = None,
                     **app_kwargs) -> ApiServer:
    """Start uvicorn on a free 127.0.0.1 port and return once ``/readyz`` answers (deadline, no sleeps).

    With ``tls_dir`` it serves HTTPS with a self-signed certificate written there (``ApiServer.ca``)."""
    store = store or Store(":memory:")
    token = secrets.token_urlsafe(24)
    app = create_app(store, token=token, hooks=hooks, **app_kwargs)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio sets TCP_NODELAY only then
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    tls: dict = {}
    ca = None
    if tls_dir is not None:
        ca, key = self_signed_cert(tls_dir)
        tls = {"ssl_certfile": str(ca), "ssl_keyfile": str(key)}
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1, **tls)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="apiserver")
    thread.start()
    url = f"{'https' if ca else 'http'}://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_DEADLINE_S
    while True:
        try:
            if httpx.get(url + "/readyz", timeout=1.0, verify=_verify(ca)).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"the test API server did not become ready on {url}")
        threading.Event().wait(0.02)  # poll interval while waiting for readiness (bounded by the deadline)
    return ApiServer(url, token, store, server, thread, ca)
