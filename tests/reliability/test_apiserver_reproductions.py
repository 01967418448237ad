"""Issue 17's API-side reproductions, replayed against a real lab (``llmd-lab up``) over HTTPS on 127.0.0.1,
the way its curl commands sent them: every one now gets kube-apiserver's answer, nothing of it is stored,
and the lab keeps answering.

Bounded: one lab, a fixed list of requests, the largest body 1.1 MB; the watch-history case writes 80
updates of one ~1 MB ConfigMap to pass the byte bound.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from labhelpers import Lab, running_lab

NS = "probe"
CM = f"/api/v1/namespaces/{NS}/configmaps"
PODS = f"/api/v1/namespaces/{NS}/pods"
DEPLOY = f"/apis/apps/v1/namespaces/{NS}/deployments"
LLMISVC = f"/apis/serving.kserve.io/v1alpha1/namespaces/{NS}/llminferenceservices"
JSON_CT = {"Content-Type": "application/json"}


def body(obj: dict) -> bytes:
    return json.dumps(obj).encode()


def deploy(replicas: str) -> bytes:
    """The issue's Deployment, its replicas as the literal digits the user typed."""
    template = body({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "runaway"},
                     "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "r"}},
                              "template": {"metadata": {"labels": {"app": "r"}},
                                           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
    return template.replace(b'"replicas": 0', b'"replicas": ' + replicas.encode())


def pod(**container) -> bytes:
    return body({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe-pod"},
                 "spec": {"containers": [{"name": "main", "image": "busybox", **container}]}})


@dataclass
class Repro:
    id: str  # issue 17 section and case
    path: str
    payload: bytes
    status: int
    says: str
    name: str
    headers: dict = field(default_factory=lambda: dict(JSON_CT))


REPRODUCTIONS = [
    Repro("s1-replicas-1e23", DEPLOY, deploy("99999999999999999999999"), 400,
          "cannot unmarshal number 99999999999999999999999 into Go struct field DeploymentSpec.spec.replicas of "
          "type int32", "runaway"),
    Repro("s1-replicas-negative", DEPLOY, deploy("-3"), 422, "Invalid value: -3: must be greater than or equal to 0",
          "runaway"),
    Repro("s1-replicas-2^31", DEPLOY, deploy(str(2**31)), 400, "of type int32", "runaway"),
    Repro("s1-llmisvc-replicas-2^40", LLMISVC,
          body({"apiVersion": "serving.kserve.io/v1alpha1", "kind": "LLMInferenceService",
                "metadata": {"name": "huge"}, "spec": {"replicas": 2**40, "model": {"uri": "hf://x/y"}}}),
          422, "Checked value must be of type integer with format int32 in spec.replicas", "huge"),
    Repro("s2-cpu-abc", PODS, pod(resources={"requests": {"cpu": "abc"}}), 400, "quantities must match", "probe-pod"),
    Repro("s2-service-port-70000", f"/api/v1/namespaces/{NS}/services",
          body({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "wide"},
                "spec": {"selector": {"app": "x"}, "ports": [{"port": 70000}]}}),
          422, "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive", "wide"),
    Repro("s7-json-50000-deep", CM, b"[" * 50_000 + b"]" * 50_000, 400, "levels deep", "deep"),
    Repro("s7-object-900-deep", CM, b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"x":'
          + b'{"a":' * 900 + b"1" + b"}" * 901, 400, "levels deep", "deep"),
    Repro("s8-configmap-over-1MiB", CM, body({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
                                              "data": {"k": "x" * (1024 * 1024 + 10)}}),
          422, "Too long: must have at most 1048576 bytes", "big"),
    Repro("s8-annotations-300KB", CM, body({"apiVersion": "v1", "kind": "ConfigMap",
                                            "metadata": {"name": "noted", "annotations": {"a": "x" * 300_000}}}),
          422, "metadata.annotations: Too long: must have at most 262144 bytes", "noted"),
    Repro("s8-configmap-key", CM, body({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keys"},
                                        "data": {"a b": "v"}}), 422, 'data[a b]: Invalid value: "a b"', "keys"),
    Repro("s8-secret-not-base64", f"/api/v1/namespaces/{NS}/secrets",
          body({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"}, "data": {"k": "%%%"}}),
          400, "illegal base64 data at input byte 0", "sec"),
    Repro("s8-finalizer", CM, body({"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "fin", "finalizers": ["bad finalizer"]}}),
          422, 'metadata.finalizers[0]: Invalid value: "bad finalizer"', "fin"),
    Repro("s8-duplicate-keys-strict", CM + "?fieldValidation=Strict",
          b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"a":"1","a":"2"}}',
          400, 'strict decoding error: duplicate field "data.a"', "dup"),
    Repro("s8-custom-resource-without-kind", LLMISVC, body({"metadata": {"name": "kindless"}}), 400,
          "Object 'Kind' is missing", "kindless"),
    Repro("s8-text-plain", CM, body({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain"}}), 415,
          "the body of the request was in an unknown format", "plain", {"Content-Type": "text/plain"}),
    Repro("s8-cpu-negative", PODS, pod(resources={"requests": {"cpu": "-1"}}), 422,
          'requests[cpu]: Invalid value: "-1": must be greater than or equal to 0', "probe-pod"),
    Repro("s8-container-name", PODS, pod(name="Bad_Name"), 422, 'containers[0].name: Invalid value: "Bad_Name"',
          "probe-pod"),
    Repro("s8-empty-image", PODS, pod(image=""), 422, "spec.containers[0].image: Required value", "probe-pod"),
    Repro("s8-container-port-0", PODS, pod(ports=[{"containerPort": 0}]), 422,
          "spec.containers[0].ports[0].containerPort: Required value", "probe-pod"),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("probe-lab"), "--time-scale", "50") as running:
        yield running


@pytest.fixture(scope="module")
def api(lab: Lab) -> Iterator[httpx.Client]:
    token = (lab.home / "token").read_text().strip()
    with httpx.Client(base_url=lab.url, verify=lab.ssl_context(), timeout=30.0,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        assert client.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
        yield client


@pytest.mark.parametrize("repro", REPRODUCTIONS, ids=[r.id for r in REPRODUCTIONS])
def test_reproduction_gets_the_cluster_answer(api: httpx.Client, repro: Repro):
    r = api.post(repro.path, content=repro.payload, headers=repro.headers)
    assert r.status_code == repro.status, r.text[:500]
    assert repro.says in r.json()["message"], r.json()["message"][:500]
    plural_path = repro.path.split("?")[0]
    assert api.get(f"{plural_path}/{repro.name}").status_code == 404
    assert api.get("/healthz").status_code == 200


def test_s7_proxy_to_an_impossible_port_is_a_clean_refusal(api: httpx.Client):
    ok = api.post(PODS, content=pod(), headers=JSON_CT)
    assert ok.status_code == 201, ok.text
    r = api.get(f"{PODS}/probe-pod:99999/proxy/")
    assert r.status_code == 503 and "invalid port" in r.json()["message"], r.text
    assert api.delete(f"{PODS}/probe-pod?gracePeriodSeconds=0").status_code in (200, 202)


def test_s8_secret_string_data_is_merged(api: httpx.Client):
    r = api.post(f"/api/v1/namespaces/{NS}/secrets", json={"apiVersion": "v1", "kind": "Secret",
                                                          "metadata": {"name": "merged"}, "stringData": {"k": "v"}})
    assert r.status_code == 201 and r.json()["data"] == {"k": "dg=="} and "stringData" not in r.json()


def test_s8_exact_resource_version_that_is_gone_is_410(api: httpx.Client):
    first = api.post(CM, json={"metadata": {"name": "v1"}}).json()["metadata"]["resourceVersion"]
    assert api.post(CM, json={"metadata": {"name": "v2"}}).status_code == 201
    r = api.get(f"{CM}?resourceVersion={first}&resourceVersionMatch=Exact")
    assert r.status_code == 410 and r.json()["reason"] == "Expired", r.text


def test_s6_watch_history_is_bounded_by_bytes(api: httpx.Client):
    """80 updates of a ~1 MB ConfigMap pass the 64 MiB byte bound long before the 10,000-event count bound:
    a watch resuming from before them is told to re-list (410 in an ERROR event), not replayed."""
    created = api.post(CM, json={"metadata": {"name": "churn"}, "data": {"k": "0"}})
    assert created.status_code == 201
    since = created.json()["metadata"]["resourceVersion"]
    for n in range(80):
        r = api.put(f"{CM}/churn", json={"metadata": {"name": "churn"}, "data": {"k": "x" * 900_000 + str(n)}})
        assert r.status_code == 200, r.text[:300]
    with api.stream("GET", f"{CM}?watch=1&resourceVersion={since}&timeoutSeconds=5") as stream:
        first_line = next(stream.iter_lines())
    event = json.loads(first_line)
    assert event["type"] == "ERROR" and event["object"]["code"] == 410, first_line[:300]
