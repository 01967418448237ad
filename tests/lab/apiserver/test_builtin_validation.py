"""kube-apiserver's built-in validation and typed decoding (issue 11 §10, issue 17 §7/§8): each refused request
gets kube-apiserver's status code and wording and leaves nothing stored.

Upstream (kubernetes@v1.32): pkg/apis/apps/validation/validation.go, pkg/apis/core/validation/validation.go,
pkg/apis/batch/validation/validation.go, pkg/apis/rbac/validation/validation.go,
staging/src/k8s.io/apimachinery/pkg/api/validation/objectmeta.go, .../util/validation/validation.go,
staging/src/k8s.io/apiserver/pkg/endpoints/handlers/rest.go (decode errors),
test/integration/apiserver/field_validation_test.go (strict decoding wording).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import pytest
from labserver import start_api_server

NS = "strict"
CM = f"/api/v1/namespaces/{NS}/configmaps"
SECRETS = f"/api/v1/namespaces/{NS}/secrets"
PODS = f"/api/v1/namespaces/{NS}/pods"
SVC = f"/api/v1/namespaces/{NS}/services"
DEPLOY = f"/apis/apps/v1/namespaces/{NS}/deployments"
JOBS = f"/apis/batch/v1/namespaces/{NS}/jobs"
ROLES = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/roles"
BINDINGS = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/rolebindings"
WIDGETS = f"/apis/example.com/v1/namespaces/{NS}/widgets"
JSON_CT = {"Content-Type": "application/json"}


def dumps(obj: dict) -> bytes:
    return json.dumps(obj).encode()


def pod(name: str = "p", **container) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "vllm", **container}]}}


def deploy(name: str = "d", replicas: object = 1, labels: dict | None = None, selector: dict | None = None) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": selector if selector is not None else {"matchLabels": {"app": "a"}},
                     "template": {"metadata": {"labels": labels or {"app": "a"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}}


def deploy_raw(replicas: str) -> bytes:
    """A body whose replicas is a JSON number Python would not produce (exact digits, as a user types them)."""
    return dumps(deploy("big")).replace(b'"replicas": 1', b'"replicas": ' + replicas.encode())


def cm(name: str = "c", **extra) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **extra}


def service(name: str = "s", port: int = 80) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": "a"}, "ports": [{"port": port}]}}


def nested(depth: int) -> bytes:
    return b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "deep"}, "x": ' \
        + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


@dataclass
class Case:
    id: str
    path: str
    body: bytes
    status: int
    says: list[str]
    name: str = ""  # what must not exist afterwards
    headers: dict = field(default_factory=lambda: dict(JSON_CT))
    query: str = ""


CASES = [
    Case("replicas-negative", DEPLOY, dumps(deploy(replicas=-3)), 422,
         ['Deployment.apps "d" is invalid: spec.replicas: Invalid value: -3: must be greater than or equal to 0'], "d"),
    Case("replicas-10e23", DEPLOY, deploy_raw("99999999999999999999999"), 400,
         ['Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal number '
          "99999999999999999999999 into Go struct field DeploymentSpec.spec.replicas of type int32"], "big"),
    Case("replicas-2^31", DEPLOY, deploy_raw(str(2**31)), 400,
         ["cannot unmarshal number 2147483648 into Go struct field DeploymentSpec.spec.replicas of type int32"], "big"),
    Case("selector-mismatch", DEPLOY, dumps(deploy(labels={"app": "b"})), 422,
         ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"b"}: '
          "`selector` does not match template `labels`"], "d"),
    Case("selector-empty", DEPLOY, dumps(deploy(selector={})), 422,
         ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
          "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"], "d"),
    Case("selector-operator", DEPLOY, dumps(deploy(selector={"matchExpressions": [{"key": "app", "operator": "Is"}]})),
         422, ['spec.selector.matchExpressions[0].operator: Invalid value: "Is": not a valid selector operator'], "d"),
    Case("container-name", PODS, dumps(pod(name="p") | {"spec": {"containers": [{"name": "Bad_Name", "image": "i"}]}}),
         422, ['spec.containers[0].name: Invalid value: "Bad_Name": a lowercase RFC 1123 label must consist of lower '
               "case alphanumeric characters or '-'"], "p"),
    Case("empty-image", PODS, dumps(pod(image="")), 422, ["spec.containers[0].image: Required value"], "p"),
    Case("container-port-0", PODS, dumps(pod(ports=[{"containerPort": 0}])), 422,
         ["spec.containers[0].ports[0].containerPort: Required value"], "p"),
    Case("container-port-70000", PODS, dumps(pod(ports=[{"containerPort": 70000}])), 422,
         ["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"],
         "p"),
    Case("cpu-abc", PODS, dumps(pod(resources={"requests": {"cpu": "abc"}})), 400,
         ['Pod in version "v1" cannot be handled as a Pod: quantities must match the regular expression '
          "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"], "p"),
    Case("cpu-negative", PODS, dumps(pod(resources={"requests": {"cpu": "-1"}})), 422,
         ['spec.containers[0].resources.requests[cpu]: Invalid value: "-1": must be greater than or equal to 0'], "p"),
    Case("request-over-limit", PODS, dumps(pod(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})), 422,
         ['spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1'],
         "p"),
    Case("restart-policy", JOBS, dumps({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                                        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
         422, ['spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", '
               '"Never"'], "j"),
    Case("service-port-70000", SVC, dumps(service(port=70000)), 422,
         ["spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"], "s"),
    Case("service-no-ports", SVC, dumps({**service(), "spec": {"selector": {"app": "a"}}}), 422,
         ["spec.ports: Required value"], "s"),
    Case("service-bad-cluster-ip", SVC, dumps({**service(), "spec": {**service()["spec"], "clusterIP": "abc"}}), 422,
         ['spec.clusterIPs[0]: Invalid value: "abc": must be a valid IP address'], "s"),
    Case("configmap-over-1MiB", CM, dumps(cm(data={"big": "x" * (1024 * 1024 + 1)})), 422,
         ['ConfigMap "c" is invalid: []: Too long: must have at most 1048576 bytes'], "c"),
    Case("configmap-key", CM, dumps(cm(data={"a b": "v"})), 422,
         ['data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters, \'-\', '
          "'_' or '.'"], "c"),
    Case("annotations-300KB", CM, dumps(cm() | {"metadata": {"name": "c", "annotations": {"a": "x" * 300_000}}}), 422,
         ["metadata.annotations: Too long: must have at most 262144 bytes"], "c"),
    Case("finalizer-name", CM, dumps(cm() | {"metadata": {"name": "c", "finalizers": ["not a finalizer!"]}}), 422,
         ['metadata.finalizers[0]: Invalid value: "not a finalizer!": name part must consist of alphanumeric '
          "characters"], "c"),
    Case("secret-not-base64", SECRETS, dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"},
                                              "data": {"k": "not base64!"}}), 400,
         ['Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3'], "sec"),
    Case("secret-over-1MiB", SECRETS, dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"},
                                             "stringData": {"k": "x" * (1024 * 1024 + 1)}}), 422,
         ["data: Too long: must have at most 1048576 bytes"], "sec"),
    Case("role-without-verbs", ROLES, dumps({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                                             "metadata": {"name": "r"}, "rules": [{"resources": ["pods"]}]}), 422,
         ["rules[0].verbs: Required value: verbs must contain at least one value",
          "rules[0].apiGroups: Required value: resource rules must supply at least one api group"], "r"),
    Case("rolebinding-kind", BINDINGS, dumps({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                                              "metadata": {"name": "rb"},
                                              "roleRef": {"kind": "Foo", "name": "r",
                                                          "apiGroup": "rbac.authorization.k8s.io"},
                                              "subjects": [{"kind": "Robot", "name": "x"}]}), 422,
         ['roleRef.kind: Unsupported value: "Foo": supported values: "Role", "ClusterRole"',
          'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"'], "rb"),
    Case("strict-duplicate-keys", CM, b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "name": "c"},'
         b' "data": {"k": "1", "k": "2"}}', 400,
         ['ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field '
          '"metadata.name", duplicate field "data.k"'], "c", query="?fieldValidation=Strict"),
    Case("custom-resource-without-kind", WIDGETS, dumps({"metadata": {"name": "w"}, "spec": {"replicas": 1}}), 400,
         ["Object 'Kind' is missing"], "w"),
    Case("crd-int32-format", WIDGETS, dumps({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                                             "spec": {"replicas": 2**40}}), 422,
         ["spec.replicas: Invalid value: 1099511627776: Checked value must be of type integer with format int32 "
          "in spec.replicas"], "w"),
    Case("text-plain", CM, dumps(cm()), 415,
         ["the body of the request was in an unknown format - accepted media types include: application/json, "
          "application/yaml, application/vnd.kubernetes.protobuf"], "c", headers={"Content-Type": "text/plain"}),
    Case("json-50000-deep", CM, b"[" * 50_000 + b"]" * 50_000, 400, ["levels deep"], "deep"),
    Case("object-900-deep", CM, nested(900), 400, ["levels deep"], "deep"),
]


@pytest.fixture(scope="module")
def server():
    api = start_api_server()
    assert api.request("POST", "/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {"type": "object", "properties": {
                            "replicas": {"type": "integer", "format": "int32"}}}}}}}]}}
    assert api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd).status_code == 201
    yield api
    api.stop()


def test_at_least_thirty_rules():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_with_kube_wording_and_nothing_stored(server, case: Case):
    rv = server.store.resource_version
    r = server.request("POST", case.path + case.query, content=case.body, headers=case.headers)
    assert r.status_code == case.status, r.text
    status = r.json()
    assert status["kind"] == "Status" and status["code"] == case.status
    for text in case.says:
        assert text in status["message"], status["message"]
    assert server.store.resource_version == rv
    assert server.request("GET", f"{case.path}/{case.name}").status_code == 404


def test_kit_objects_pass(server):
    """The shapes the kit creates are accepted (the strict rules refuse only what the cluster refuses)."""
    ok = [
        server.request("POST", DEPLOY, json=deploy("ok")),
        server.request("POST", PODS, json=pod("ok", ports=[{"containerPort": 8000, "name": "http"}],
                                             resources={"requests": {"cpu": "500m", "nvidia.com/gpu": 1},
                                                        "limits": {"nvidia.com/gpu": 1}})),
        server.request("POST", SVC, json=service("ok")),
        server.request("POST", BINDINGS, json={"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                                               "metadata": {"name": "ok"}, "roleRef": {"kind": "Role", "name": "r"},
                                               "subjects": [{"kind": "User", "name": "alice"}]}),
        server.request("POST", CM, content=dumps(cm("ok", data={"k": "v"}))),  # no Content-Type: JSON
    ]
    assert [r.status_code for r in ok] == [201] * len(ok), [r.text for r in ok]
    binding = ok[3].json()
    assert binding["roleRef"]["apiGroup"] == binding["subjects"][0]["apiGroup"] == "rbac.authorization.k8s.io"


def test_secret_string_data_is_merged_into_data(server):
    r = server.request("POST", SECRETS, json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "merged"},
                                              "data": {"a": base64.b64encode(b"old").decode(),
                                                       "b": base64.b64encode(b"kept").decode()},
                                              "stringData": {"a": "new"}})
    assert r.status_code == 201, r.text
    stored = server.request("GET", f"{SECRETS}/merged").json()
    assert "stringData" not in stored
    assert {k: base64.b64decode(v).decode() for k, v in stored["data"].items()} == {"a": "new", "b": "kept"}


@pytest.mark.parametrize("path, body, change, says", [
    (DEPLOY, deploy("imm"), {"spec": {"selector": {"matchLabels": {"app": "b"}},
                                      "template": {"metadata": {"labels": {"app": "b"}}}}},
     'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"b"}, '
     "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"),
    (SVC, {**service("imm"), "spec": {**service()["spec"], "clusterIP": "10.96.0.10"}},
     {"spec": {"clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11"]}},
     'spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change once set'),
    (BINDINGS, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "imm"},
                "roleRef": {"kind": "Role", "name": "r", "apiGroup": "rbac.authorization.k8s.io"}},
     {"roleRef": {"name": "other"}}, "roleRef: Invalid value: "),
    (SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "imm"}, "type": "Opaque"},
     {"type": "kubernetes.io/tls"}, 'type: Invalid value: "kubernetes.io/tls": field is immutable'),
])
def test_immutable_fields(server, path, body, change, says):
    assert server.request("POST", path, json=body).status_code == 201
    before = server.request("GET", f"{path}/imm").json()
    r = server.request("PATCH", f"{path}/imm", content=dumps(change),
                       headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 422 and says in r.json()["message"], r.text
    assert server.request("GET", f"{path}/imm").json()["metadata"]["resourceVersion"] == \
        before["metadata"]["resourceVersion"]


def test_service_update_without_cluster_ip_keeps_the_allocated_one(server):
    body = {**service("keep"), "spec": {**service()["spec"], "clusterIP": "10.96.0.20"}}
    created = server.request("POST", SVC, json=body).json()
    replaced = {**service("keep"), "metadata": {"name": "keep", "resourceVersion": created["metadata"]["resourceVersion"]}}
    r = server.request("PUT", f"{SVC}/keep", json=replaced)
    assert r.status_code == 200 and r.json()["spec"]["clusterIP"] == "10.96.0.20", r.text


def test_resource_version_match(server):
    first = server.request("POST", CM, json=cm("rv1")).json()["metadata"]["resourceVersion"]
    server.request("POST", CM, json=cm("rv2"))
    now = server.request("GET", CM).json()["metadata"]["resourceVersion"]
    exact_old = server.request("GET", f"{CM}?resourceVersion={first}&resourceVersionMatch=Exact")
    assert exact_old.status_code == 410 and exact_old.json()["reason"] == "Expired"
    assert f"too old resource version: {first}" in exact_old.json()["message"]
    exact_now = server.request("GET", f"{CM}?resourceVersion={now}&resourceVersionMatch=Exact")
    assert exact_now.status_code == 200 and exact_now.json()["metadata"]["resourceVersion"] == now
    unchanged = server.request("GET", f"/api/v1/namespaces/{NS}/endpoints?resourceVersion={first}"
                                      "&resourceVersionMatch=Exact")
    assert unchanged.status_code == 200 and unchanged.json()["metadata"]["resourceVersion"] == first
    too_large = server.request("GET", f"{CM}?resourceVersion={int(now) + 100}&resourceVersionMatch=NotOlderThan")
    assert too_large.status_code == 504 and "Too large resource version" in too_large.json()["message"]
    no_rv = server.request("GET", f"{CM}?resourceVersionMatch=Exact")
    assert no_rv.status_code == 422
    assert "resourceVersionMatch is forbidden unless resourceVersion is provided" in no_rv.json()["message"]


def test_proxy_to_an_impossible_port_is_refused_cleanly(server):
    assert server.request("POST", PODS, json=pod("px")).status_code == 201
    r = server.request("GET", f"{PODS}/px:99999/proxy/")
    assert r.status_code == 503 and "invalid port" in r.json()["message"], r.text


def test_built_in_body_without_kind_takes_the_url_type(server):
    """Typed decoding defaults apiVersion/kind from the URL (runtime/serializer/json gvkWithDefaults)."""
    r = server.request("POST", CM, json={"metadata": {"name": "kindless"}})
    assert r.status_code == 201 and r.json()["kind"] == "ConfigMap"
