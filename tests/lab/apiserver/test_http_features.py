"""Discovery, Tables, auth, deletion semantics, logs and proxy hooks, protobuf bodies, over real HTTP."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import uvicorn
from labserver import start_api_server
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.hooks import ApiHooks
from llmd_lab.lab.apiserver.protobuf import MAGIC

TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
AGGREGATED = {"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"}


def test_health_is_anonymous_and_everything_else_needs_the_token(api_server):
    for path in ("/healthz", "/readyz", "/livez"):
        assert api_server.request("GET", path, token=None).status_code == 200
    for path in ("/version", "/api", "/apis", "/api/v1/namespaces", "/openapi/v3"):
        r = api_server.request("GET", path, token=None)
        assert r.status_code == 401 and r.json()["reason"] == "Unauthorized"


def test_version_and_legacy_discovery(api_server):
    assert api_server.request("GET", "/version").json()["gitVersion"] == "v1.32.0-llmd-lab"
    assert api_server.request("GET", "/api").json()["versions"] == ["v1"]
    groups = {g["name"]: g for g in api_server.request("GET", "/apis").json()["groups"]}
    assert groups["apps"]["preferredVersion"]["groupVersion"] == "apps/v1"
    resources = {r["name"]: r for r in api_server.request("GET", "/apis/apps/v1").json()["resources"]}
    deploy = resources["deployments"]
    assert deploy["namespaced"] and deploy["shortNames"] == ["deploy"] and "all" in deploy["categories"]
    assert "watch" in deploy["verbs"] and deploy["storageVersionHash"]
    assert resources["deployments/scale"]["kind"] == "Scale" and resources["deployments/scale"]["group"] == "autoscaling"
    assert api_server.request("GET", "/apis/nope").status_code == 404


def test_aggregated_discovery(api_server):
    r = api_server.request("GET", "/apis", headers=AGGREGATED)
    assert r.headers["content-type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
    items = {g["metadata"]["name"]: g for g in r.json()["items"]}
    apps = items["apps"]["versions"][0]
    deploy = next(x for x in apps["resources"] if x["resource"] == "deployments")
    assert deploy["scope"] == "Namespaced" and deploy["responseKind"]["kind"] == "Deployment"
    assert {s["subresource"] for s in deploy["subresources"]} == {"scale", "status"}
    core = api_server.request("GET", "/api", headers=AGGREGATED).json()["items"]
    assert [g["metadata"]["name"] for g in core] == [""]


def test_tables_for_builtins(api_server, namespace):
    base = f"/api/v1/namespaces/{namespace}"
    api_server.request("POST", f"{base}/pods", json={
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]}})
    api_server.request("PATCH", f"{base}/pods/p/status", content=json.dumps({"status": {
        "phase": "Running", "podIP": "127.1.0.9",
        "containerStatuses": [{"name": "a", "ready": True, "restartCount": 2, "state": {"running": {}}},
                              {"name": "b", "ready": False, "restartCount": 1,
                               "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}).encode(),
        headers={"Content-Type": "application/merge-patch+json"})
    table = api_server.request("GET", f"{base}/pods", headers=TABLE).json()
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names[:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    cells = table["rows"][0]["cells"]
    assert cells[:4] == ["p", "1/2", "CrashLoopBackOff", "3"] and cells[5] == "127.1.0.9"
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    one = api_server.request("GET", f"{base}/pods/p?includeObject=Object", headers=TABLE).json()
    assert one["rows"][0]["object"]["kind"] == "Pod"
    api_server.request("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", json={
        "metadata": {"name": "d"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"a": "b"}},
                                            "template": {"metadata": {"labels": {"a": "b"}},
                                                         "spec": {"containers": [{"name": "c", "image": "img"}]}}}})
    table = api_server.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments", headers=TABLE).json()
    assert [c["name"] for c in table["columnDefinitions"]][:5] == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert table["rows"][0]["cells"][:4] == ["d", "0/3", 0, 0]


def test_finalizer_delete_answers_202_then_object_goes(api_server, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    api_server.request("POST", path, json={"metadata": {"name": "f", "finalizers": ["example.com/x"]}})
    r = api_server.request("DELETE", f"{path}/f")
    assert r.status_code == 202 and r.json()["metadata"]["deletionTimestamp"]
    r = api_server.request("PATCH", f"{path}/f", content=b'{"metadata":{"finalizers":null}}',
                           headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200
    assert api_server.request("GET", f"{path}/f").status_code == 404


def test_dry_run_and_delete_collection(api_server, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    rv = api_server.store.resource_version
    r = api_server.request("POST", f"{path}?dryRun=All", json={"metadata": {"name": "dry"}})
    assert r.status_code == 201 and api_server.store.resource_version == rv
    assert api_server.request("GET", f"{path}/dry").status_code == 404
    for name, tier in (("a", "x"), ("b", "x"), ("c", "y")):
        api_server.request("POST", path, json={"metadata": {"name": name, "labels": {"tier": tier}}})
    r = api_server.request("DELETE", f"{path}?labelSelector=tier%3Dx")
    assert sorted(i["metadata"]["name"] for i in r.json()["items"]) == ["a", "b"]
    assert [i["metadata"]["name"] for i in api_server.request("GET", path).json()["items"]] == ["c"]


def test_foreground_deletion_over_http(api_server, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    owner = api_server.request("POST", path, json={"metadata": {"name": "o"}}).json()
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": owner["metadata"]["uid"]}
    api_server.request("POST", path, json={"metadata": {"name": "dep", "ownerReferences": [ref],
                                                        "finalizers": ["example.com/slow"]}})
    r = api_server.request("DELETE", f"{path}/o", json={"kind": "DeleteOptions", "apiVersion": "v1",
                                                        "propagationPolicy": "Foreground"})
    assert r.status_code == 202 and "foregroundDeletion" in r.json()["metadata"]["finalizers"]
    api_server.request("PATCH", f"{path}/dep", content=b'{"metadata":{"finalizers":null}}',
                       headers={"Content-Type": "application/merge-patch+json"})
    assert api_server.request("GET", f"{path}/o").status_code == 404


def _pb_field(number: int, payload: bytes) -> bytes:
    def varint(n: int) -> bytes:
        out = b""
        while True:
            b, n = n & 0x7F, n >> 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out

    return varint(number << 3 | 2) + varint(len(payload)) + payload


def test_protobuf_body_as_kubectl_create_sends_it(api_server):
    meta = _pb_field(1, b"from-protobuf") + _pb_field(11, _pb_field(1, b"team") + _pb_field(2, b"a"))
    raw = _pb_field(1, meta)  # Namespace.metadata
    envelope = _pb_field(1, _pb_field(1, b"v1") + _pb_field(2, b"Namespace")) + _pb_field(2, raw)
    r = api_server.request("POST", "/api/v1/namespaces", content=MAGIC + envelope,
                           headers={"Content-Type": "application/vnd.kubernetes.protobuf",
                                    "Accept": "application/vnd.kubernetes.protobuf,application/json"})
    assert r.status_code == 201, r.text
    assert r.json()["metadata"]["name"] == "from-protobuf" and r.json()["metadata"]["labels"]["team"] == "a"


@pytest.fixture(scope="module")
def upstream():
    """A tiny HTTP server standing in for a pod's container."""
    async def echo(request: Request):
        return JSONResponse({"path": request.url.path, "query": request.url.query,
                             "auth": request.headers.get("authorization"), "body": (await request.body()).decode(),
                             "headers": sorted({k for k, _ in request.headers.items()})})

    app = Starlette(routes=[Route("/{p:path}", echo, methods=["GET", "POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("upstream did not start")
        threading.Event().wait(0.01)
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(5)


@pytest.fixture(scope="module")
def hooked(upstream):
    async def read_logs(namespace, pod, container, tail_lines, follow, previous):
        if container == "broken":
            raise errors.bad_request(f'container "{container}" in pod "{pod}" is waiting to start: ContainerCreating')
        lines = [f"{pod}/{container} line {n}\n" for n in range(5)]
        for line in lines[-tail_lines:] if tail_lines else lines:
            yield line

    hooks = ApiHooks(read_logs=read_logs,
                     resolve_pod_address=lambda pod, port: ("127.0.0.1", upstream),
                     resolve_service_address=lambda svc, port: ("127.0.0.1", upstream))
    server = start_api_server(hooks=hooks)
    server.request("POST", "/api/v1/namespaces/default/pods", json={"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "main", "image": "i", "ports": [{"containerPort": 8000, "name": "http"}]},
                       {"name": "broken", "image": "i"}]}})
    server.request("POST", "/api/v1/namespaces/default/services", json={
        "metadata": {"name": "svc"}, "spec": {"ports": [{"name": "http", "port": 80}]}})
    yield server
    server.stop()


def test_logs_through_the_hook(hooked):
    base = "/api/v1/namespaces/default/pods/p/log"
    r = hooked.request("GET", f"{base}?container=main&tailLines=2")
    assert r.status_code == 200 and r.text == "p/main line 3\np/main line 4\n"
    r = hooked.request("GET", base)
    assert r.status_code == 400 and "choose one of: [main broken]" in r.json()["message"]
    r = hooked.request("GET", f"{base}?container=broken")
    assert r.status_code == 400 and "waiting to start" in r.json()["message"]
    r = hooked.request("GET", f"{base}?container=nope")
    assert r.status_code == 400 and "container nope is not valid for pod p" in r.json()["message"]


def test_logs_without_a_kubelet_say_so(api_server, namespace):
    api_server.request("POST", f"/api/v1/namespaces/{namespace}/pods",
                       json={"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    r = api_server.request("GET", f"/api/v1/namespaces/{namespace}/pods/p/log")
    assert r.status_code == 404 and "no kubelet" in r.json()["message"]


def test_pod_and_service_proxy(hooked):
    r = hooked.request("POST", "/api/v1/namespaces/default/pods/p:8000/proxy/v1/completions?x=1", content=b"hi")
    assert r.status_code == 200
    assert {k: v for k, v in r.json().items() if k != "headers"} == {
        "path": "/v1/completions", "query": "x=1", "auth": None, "body": "hi"}
    r = hooked.request("GET", "/api/v1/namespaces/default/services/http:svc:http/proxy/metrics")
    assert r.status_code == 200 and r.json()["path"] == "/metrics"
    # the https: prefix really speaks TLS: a plain-HTTP backend fails the handshake (no longer served as HTTP)
    r = hooked.request("GET", "/api/v1/namespaces/default/services/https:svc:http/proxy/metrics")
    assert r.status_code == 503 and "tls: first record does not look like a TLS handshake" in r.json()["message"]
    r = hooked.request("GET", "/api/v1/namespaces/default/pods/ftp:p:8000/proxy/metrics")
    assert r.status_code == 400 and "unsupported proxy scheme 'ftp'" in r.json()["message"]
    r = hooked.request("GET", "/api/v1/namespaces/default/services/svc:9999/proxy/")
    assert r.status_code == 503 and "no port" in r.json()["message"]


def test_proxy_drops_connection_specific_fields_as_go_reverse_proxy_does(hooked):
    """RFC 9110 §7.6.1 and Go's httputil.ReverseProxy: the fixed hop-by-hop set and whatever Connection names."""
    sent = {"Connection": "keep-alive, X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=5", "Proxy-Connection": "x",
            "Trailer": "X-T", "Proxy-Authorization": "Basic eA==", "Upgrade": "h2c", "X-End-To-End": "kept"}
    r = hooked.request("GET", "/api/v1/namespaces/default/pods/p:8000/proxy/echo", headers=sent)
    assert r.status_code == 200
    received = set(r.json()["headers"])
    assert "x-end-to-end" in received
    assert not received & {"x-hop", "keep-alive", "proxy-connection", "trailer", "proxy-authorization", "upgrade"}


def test_proxy_to_a_pod_without_an_ip(api_server, namespace):
    api_server.request("POST", f"/api/v1/namespaces/{namespace}/pods",
                       json={"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    r = api_server.request("GET", f"/api/v1/namespaces/{namespace}/pods/p:8000/proxy/metrics")
    assert r.status_code == 503 and "has no IP address yet" in r.json()["message"]


def test_watches_release_their_subscription(api_server, namespace):
    """A watch that times out, and one whose client hangs up, both stop receiving events server-side."""
    bus = api_server.store.storage.bus
    before = bus.subscriber_count()
    r = api_server.request("GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=1&timeoutSeconds=1")
    assert r.status_code == 200 and r.text == ""
    with api_server.http.stream("GET", f"/api/v1/namespaces/{namespace}/secrets?watch=1",
                                headers={"Authorization": f"Bearer {api_server.token}"}) as stream:
        assert stream.status_code == 200
    deadline = time.monotonic() + 10
    while bus.subscriber_count() > before:
        # a hung-up client is noticed when the server next writes to it or polls for the disconnect
        api_server.request("POST", f"/api/v1/namespaces/{namespace}/secrets",
                           json={"metadata": {"generateName": "s-"}})
        assert time.monotonic() < deadline, "a finished watch still holds its subscription"
        threading.Event().wait(0.05)
