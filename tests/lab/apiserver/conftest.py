"""Fixtures: ``api_server`` (module scope, see labserver.py), ``api_client``, and a fresh ``namespace``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import kubernetes
import pytest
from labserver import ApiServer, start_api_server


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
