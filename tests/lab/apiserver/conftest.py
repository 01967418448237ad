"""Fixtures: ``api_server`` (module scope, see labserver.py), ``api_client``, a fresh ``namespace``, and an
in-memory ``store`` (with ``anyio_backend``) for tests that drive the Store directly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import kubernetes
import pytest
from labserver import ApiServer, start_api_server

from llmd_lab.lab.apiserver.store import Store


@pytest.fixture(scope="module")
def api_server() -> Iterator[ApiServer]:
    server = start_api_server(bookmark_interval=0.3)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_client(api_server: ApiServer) -> Iterator[kubernetes.client.ApiClient]:
    client = api_server.client()
    yield client
    client.close()


@pytest.fixture
def namespace(api_client: kubernetes.client.ApiClient) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    kubernetes.client.CoreV1Api(api_client).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(":memory:")
    yield s
    s.close()
