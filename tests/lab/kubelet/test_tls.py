"""TLS where KServe puts it, as the kubelet makes it happen: the workload certificate Secret becomes files in
the container (kubernetes ``pkg/volume/secret/secret.go``), vLLM serves HTTPS from them, ``scheme: HTTPS``
probes skip verification (``pkg/probe/http/http.go``), and plain HTTP to the pod's 8000 gets no answer."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import httpx
import pytest
from test_kubelet import vllm_pod  # the same plain pod, given KServe's certificate below

from llmd_lab.lab.controller.testing import events_for, eventually, make_ctx
from llmd_lab.lab.kubelet import volumes
from llmd_lab.lab.kubelet.kubelet import Kubelet
from llmd_lab.lab.profiles import load_profile
from llmd_lab.lab.scheduler.scheduler import KubeScheduler
from llmd_lab.lab.server import LabPaths, install_profile
from llmd_lab.sim.tls import insecure_client_context, self_signed_pem

pytestmark = pytest.mark.anyio
CERTS = "/var/run/kserve/tls"


def tls_pod(name: str, secret: str, *, probe_scheme: str = "HTTPS", ssl_args: bool = True) -> dict:
    """A vLLM pod as KServe's preset renders it: unnamed 8000, the certificate Secret at /var/run/kserve/tls."""
    pod = vllm_pod(name, "Qwen/Qwen3-0.6B", extra="--max-model-len=4096")
    main = pod["spec"]["containers"][0]
    if ssl_args:
        main["args"][0] += f" --ssl-certfile {CERTS}/tls.crt --ssl-keyfile {CERTS}/tls.key"
    main["readinessProbe"]["httpGet"]["scheme"] = probe_scheme
    main["volumeMounts"] = [{"name": "tls-certs", "mountPath": CERTS, "readOnly": True}]
    pod["spec"]["volumes"] = [{"name": "tls-certs", "secret": {"secretName": secret}}]
    return pod


def cert_secret(name: str) -> dict:
    cert, key = self_signed_pem()
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": "default"},
            "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()}}


@pytest.fixture
async def node_env(tmp_path: Path):
    profile = load_profile("rhoai-3.0")
    ctx = make_ctx(tmp_path, profile, time_scale=200.0)
    await install_profile(ctx.store, profile, LabPaths(tmp_path))
    parts = [KubeScheduler(interval=0.05), Kubelet(ctx.network)]
    for p in parts:
        await p.start(ctx)
    yield ctx
    for p in reversed(parts):
        await p.stop()


async def _ready(store, name: str) -> dict | None:
    pod = await store.get("v1", "Pod", name, "default")
    conds = {c["type"]: c["status"] for c in (pod.get("status") or {}).get("conditions", [])}
    return pod if conds.get("Ready") == "True" else None


async def test_vllm_serves_https_from_the_mounted_secret_and_refuses_plain_http(node_env) -> None:
    store = node_env.store
    await store.create(cert_secret("qwen-kserve-self-signed-certs"))
    await store.create(tls_pod("qwen", "qwen-kserve-self-signed-certs"))
    pod = await eventually(lambda: _ready(store, "qwen"), what="pod Ready through its HTTPS probe")
    ip = pod["status"]["podIP"]
    async with httpx.AsyncClient(verify=insecure_client_context()) as client:
        r = await client.get(f"https://{ip}:8000/v1/models")
        assert r.status_code == 200 and r.json()["data"][0]["id"] == "Qwen/Qwen3-0.6B"
        with pytest.raises(httpx.HTTPError):  # uvicorn with TLS drops a plaintext request: no HTTP answer at all
            await client.get(f"http://{ip}:8000/v1/models")
    async with httpx.AsyncClient() as verifying:  # the certificate has no SANs: it verifies against nothing
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await verifying.get(f"https://{ip}:8000/v1/models")


async def test_missing_secret_holds_the_pod_with_failed_mount_until_it_exists(node_env) -> None:
    store = node_env.store
    await store.create(tls_pod("late", "late-certs"))

    async def failed_mount() -> list[str]:
        return [e["message"] for e in await events_for(store, "late", "default") if e["reason"] == "FailedMount"]

    messages = await eventually(failed_mount, what="a FailedMount event")
    assert messages[0] == 'MountVolume.SetUp failed for volume "tls-certs" : secret "late-certs" not found'
    pod = await store.get("v1", "Pod", "late", "default")
    assert all("running" not in s["state"] for s in pod["status"].get("containerStatuses", []))
    await store.create(cert_secret("late-certs"))
    await eventually(lambda: _ready(store, "late"), what="pod Ready once its Secret exists")


async def test_https_probe_against_a_plain_http_server_fails_like_go(node_env) -> None:
    store = node_env.store
    await store.create(cert_secret("plain-certs"))
    await store.create(tls_pod("plain", "plain-certs", ssl_args=False))  # serves HTTP, probed with HTTPS

    async def probe_failed() -> list[str]:  # once vLLM listens (before: connection refused)
        return [e["message"] for e in await events_for(store, "plain", "default") if e["reason"] == "Unhealthy"
                and "http: server gave HTTP response to HTTPS client" in e["message"]]

    messages = await eventually(probe_failed, what="a failed readiness probe against the listening server")
    assert messages[0].startswith('Readiness probe failed: Get "https://')
    assert await _ready(store, "plain") is None


def test_secret_and_configmap_files_follow_items_and_subpath() -> None:
    import asyncio

    class Store:
        async def get(self, api: str, kind: str, name: str, ns: str) -> dict:
            if kind == "Secret":
                return {"data": {"tls.crt": base64.b64encode(b"CERT").decode(), "tls.key": "S0VZ"}}
            return {"data": {"config.yaml": "a: 1"}, "binaryData": {"blob": base64.b64encode(b"\x00").decode()}}

    pod = {"metadata": {"namespace": "ns"}, "spec": {"volumes": [
        {"name": "certs", "secret": {"secretName": "s", "items": [{"key": "tls.crt", "path": "server.crt"}]}},
        {"name": "cfg", "configMap": {"name": "c"}}]}}
    container = {"volumeMounts": [{"name": "certs", "mountPath": "/tls"},
                                  {"name": "cfg", "mountPath": "/etc/app/config.yaml", "subPath": "config.yaml"},
                                  {"name": "cfg", "mountPath": "/cfg/"}]}
    files = asyncio.run(volumes.container_files(Store(), pod, container))
    assert files == {"/tls/server.crt": b"CERT", "/etc/app/config.yaml": b"a: 1", "/cfg/config.yaml": b"a: 1",
                     "/cfg/blob": b"\x00"}
    read = volumes.reader(files)
    assert read("/tls/server.crt") == b"CERT"
    with pytest.raises(FileNotFoundError):
        read("/tls/tls.key")  # not among the Secret's items


def test_insecure_client_context_is_what_skip_verify_means() -> None:
    ctx = insecure_client_context()
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname
