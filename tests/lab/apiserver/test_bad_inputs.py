"""Bad requests: each gets the right status code, a message naming what to fix, and leaves the store as it was."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

NS = "bad-inputs"
CM = f"/api/v1/namespaces/{NS}/configmaps"
DEPLOY = f"/apis/apps/v1/namespaces/{NS}/deployments"
GADGETS = f"/apis/example.com/v1/namespaces/{NS}/gadgets"
JSON_CT = {"Content-Type": "application/json"}
MERGE = {"Content-Type": "application/merge-patch+json"}
JSONPATCH = {"Content-Type": "application/json-patch+json"}


def cm(name: str = "new", **extra) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **extra}).encode()


def deploy(**spec) -> bytes:
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "new-deploy"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}, **spec}}
    return json.dumps(body).encode()


@dataclass
class Case:
    id: str
    method: str
    path: str
    status: int
    says: list[str]  # substrings of the Status message that tell the user what to fix
    body: bytes | None = None
    headers: dict = field(default_factory=dict)
    token: str | None = "default"


CASES = [
    Case("malformed-json", "POST", CM, 400, ["error decoding JSON", "valid JSON"], b'{"apiVersion": "v1",',
         JSON_CT),
    Case("malformed-yaml", "POST", CM, 400, ["error decoding YAML"], b"kind: ConfigMap\n  bad: [indent",
         {"Content-Type": "application/yaml"}),
    Case("body-is-a-list", "POST", CM, 400, ["one object"], b"[1, 2]", JSON_CT),
    Case("empty-body", "POST", CM, 400, ["body is empty"], b"", JSON_CT),
    Case("unknown-resource", "GET", f"/api/v1/namespaces/{NS}/widgets", 404,
         ["the server could not find the requested resource"]),
    Case("unknown-group", "POST", f"/apis/nope.example.com/v1/namespaces/{NS}/things", 404,
         ["could not find the requested resource"], cm(), JSON_CT),
    Case("wrong-apiversion", "POST", CM, 400, ["apps/v1", "apiVersion v1"],
         json.dumps({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}).encode(), JSON_CT),
    Case("wrong-kind-for-url", "POST", CM, 400, ["kind in the body (Secret)", "ConfigMap"],
         json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}).encode(), JSON_CT),
    Case("missing-name", "POST", CM, 422, ["metadata.name", "Required value"],
         json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}).encode(), JSON_CT),
    Case("invalid-name", "POST", CM, 422, ["metadata.name", "Bad_Name", "RFC 1123"], cm("Bad_Name"), JSON_CT),
    Case("wrong-type-replicas", "POST", DEPLOY, 422, ["spec.replicas", "integer"], deploy(replicas="two"), JSON_CT),
    Case("label-not-a-string", "POST", CM, 400, ["metadata.labels", "string"],
         json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"a": 1}}}).encode(),
         JSON_CT),
    Case("invalid-label-value", "POST", CM, 422, ["metadata.labels", "has space"],
         json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "x", "labels": {"a": "has space"}}}).encode(), JSON_CT),
    Case("stale-resource-version", "PUT", f"{CM}/existing", 409, ["the object has been modified", "latest version"],
         json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "existing", "resourceVersion": "1"}, "data": {"x": "y"}}).encode(), JSON_CT),
    Case("duplicate-create", "POST", CM, 409, ['configmaps "existing" already exists'], cm("existing"), JSON_CT),
    Case("oversized-body", "POST", CM, 413, ["larger than", "limit"],
         cm("big", data={"k": "x" * (70 * 1024)}), JSON_CT),
    Case("merge-patch-not-json", "PATCH", f"{CM}/existing", 400, ["invalid JSON"], b"{labels: x}", MERGE),
    Case("json-patch-not-a-list", "PATCH", f"{CM}/existing", 400, ["JSON array of operations"], b'{"op": "add"}',
         JSONPATCH),
    Case("json-patch-test-fails", "PATCH", f"{CM}/existing", 422, ["test operation failed"],
         b'[{"op": "test", "path": "/data/k", "value": "other"}, {"op": "remove", "path": "/data/k"}]', JSONPATCH),
    Case("json-patch-missing-path", "PATCH", f"{CM}/existing", 422, ["could not be applied"],
         b'[{"op": "replace", "path": "/data/missing/deep", "value": "x"}]', JSONPATCH),
    Case("json-patch-bad-op", "PATCH", f"{CM}/existing", 400, ["invalid JSON patch"],
         b'[{"op": "frobnicate", "path": "/data/k"}]', JSONPATCH),
    Case("unsupported-patch-type", "PATCH", f"{CM}/existing", 415, ["application/merge-patch+json"],
         b"{}", {"Content-Type": "text/plain"}),
    Case("strategic-patch-on-custom-resource", "PATCH", f"{GADGETS}/g", 415, ["not supported for custom resources"],
         b'{"spec": {"replicas": 2}}', {"Content-Type": "application/strategic-merge-patch+json"}),
    Case("apply-without-field-manager", "PATCH", f"{CM}/existing", 400, ["fieldManager is required"],
         b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: existing\n",
         {"Content-Type": "application/apply-patch+yaml"}),
    Case("bad-label-selector", "GET", f"{CM}?labelSelector=app%20in%20(web", 400, ["unable to parse requirement"]),
    Case("bad-label-key", "GET", f"{CM}?labelSelector=-bad-=x", 400, ["invalid label key"]),
    Case("unsupported-field-selector", "GET", f"{CM}?fieldSelector=spec.nodeName%3Dx", 400,
         ["field label not supported: spec.nodeName", "metadata.name"]),
    Case("no-token", "GET", CM, 401, ["Unauthorized"], token=None),
    Case("wrong-token", "GET", CM, 401, ["Unauthorized"], token="not-the-token"),
    Case("basic-auth-instead-of-bearer", "GET", CM, 401, ["Unauthorized"], token=None,
         headers={"Authorization": "Basic YWRtaW46YWRtaW4="}),
    Case("namespace-mismatch", "POST", CM, 400, ["does not match the namespace", "other"],
         json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "x", "namespace": "other"}}).encode(), JSON_CT),
    Case("name-mismatch", "PUT", f"{CM}/existing", 400, ["does not match the name on the URL"], cm("different"),
         JSON_CT),
    Case("missing-namespace", "POST", "/api/v1/namespaces/nope/configmaps", 404, ['namespaces "nope" not found'],
         cm(), JSON_CT),
    Case("strict-unknown-field", "POST", f"{DEPLOY}?fieldValidation=Strict", 400,
         ["strict decoding error", 'unknown field "spec.foo"'], deploy(foo=1), JSON_CT),
    Case("bad-field-validation-value", "POST", f"{CM}?fieldValidation=Loose", 400, ["Strict", "Warn", "Ignore"],
         cm(), JSON_CT),
    Case("bad-dry-run-value", "POST", f"{CM}?dryRun=Yes", 400, ['"All"'], cm(), JSON_CT),
    Case("bad-propagation-policy", "DELETE", f"{CM}/existing?propagationPolicy=Sideways", 400,
         ["propagationPolicy", "Foreground"]),
    Case("bad-limit", "GET", f"{CM}?limit=abc", 400, ["limit", "integer"]),
    Case("bad-continue-token", "GET", f"{CM}?limit=1&continue=%%%", 400, ["continue token"]),
    Case("negative-scale", "PATCH", f"{DEPLOY}/existing/scale", 422, ["spec.replicas", "Invalid value: -1: must be greater than or equal to 0"],
         b'{"spec": {"replicas": -1}}', MERGE),
    Case("get-missing-object", "GET", f"{CM}/ghost", 404, ['configmaps "ghost" not found']),
    Case("update-missing-object", "PUT", f"{CM}/ghost", 404, ['configmaps "ghost" not found'], cm("ghost"), JSON_CT),
    Case("status-of-kind-without-status", "PUT", f"{CM}/existing/status", 404, ["could not find"], cm("existing"),
         JSON_CT),
    Case("post-to-a-name", "POST", f"{CM}/existing", 405, ["does not allow this method"], cm(), JSON_CT),
    Case("delete-a-create-only-kind", "DELETE", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", 405,
         ["supports: create"]),
    Case("watch-bad-resource-version", "GET", f"{CM}?watch=1&resourceVersion=abc", 400, ["invalid resourceVersion"]),
    Case("crd-name-mismatch", "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", 422,
         ["metadata.name", "spec.names.plural"],
         json.dumps({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                     "metadata": {"name": "wrong.example.com"},
                     "spec": {"group": "example.com", "scope": "Namespaced",
                              "names": {"plural": "things", "kind": "Thing"},
                              "versions": [{"name": "v1", "served": True, "storage": True}]}}).encode(), JSON_CT),
    Case("resource-version-on-create", "POST", CM, 400, ["resourceVersion should not be set"],
         json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "x", "resourceVersion": "5"}}).encode(), JSON_CT),
]


@pytest.fixture(scope="module")
def bad_server():
    from labserver import start_api_server

    server = start_api_server(max_body_bytes=64 * 1024)
    ok = [
        server.request("POST", "/api/v1/namespaces", json={"metadata": {"name": NS}}),
        server.request("POST", CM, json={"metadata": {"name": "existing"}, "data": {"k": "v"}}),
        server.request("POST", DEPLOY, content=deploy().replace(b"new-deploy", b"existing"), headers=JSON_CT),
        server.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json={
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "gadgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "gadgets", "kind": "Gadget"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}]}}),
    ]
    ok.append(server.request("POST", GADGETS, json={"apiVersion": "example.com/v1", "kind": "Gadget",
                                                    "metadata": {"name": "g"}, "spec": {"replicas": 1}}))
    assert all(r.status_code == 201 for r in ok), [r.text for r in ok if r.status_code != 201]
    yield server
    server.stop()


def snapshot(server) -> tuple[str, str]:
    storage = server.store.storage
    objects = json.dumps({"/".join(gk): storage.by_namespace(gk) for gk in storage.group_kinds()}, sort_keys=True)
    return server.store.resource_version, objects


def test_at_least_thirty_cases():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(bad_server, case: Case):
    before = snapshot(bad_server)
    r = bad_server.request(case.method, case.path, content=case.body, headers=case.headers, token=case.token)
    assert r.status_code == case.status, r.text
    status = r.json()
    assert status["kind"] == "Status" and status["code"] == case.status and status["status"] == "Failure"
    for text in case.says:
        assert text in status["message"], f"{text!r} not in {status['message']!r}"
    assert bad_server.token not in r.text
    assert snapshot(bad_server) == before, "a rejected request changed the store"


def test_invalid_reports_causes_with_fields(bad_server):
    r = bad_server.request("POST", DEPLOY, content=deploy(replicas="two"), headers=JSON_CT)
    causes = r.json()["details"]["causes"]
    assert any(c["field"] == "spec.replicas" for c in causes)
    assert r.json()["reason"] == "Invalid"


def test_warn_mode_reports_unknown_fields_in_a_warning_header(bad_server):
    r = bad_server.request("POST", f"{DEPLOY}?fieldValidation=Warn&dryRun=All", content=deploy(foo=1),
                           headers=JSON_CT)
    assert r.status_code == 201 and 'unknown field \\"spec.foo\\"' in r.headers["warning"]
    assert "foo" not in r.json()["spec"]  # pruned, as kube-apiserver stores it
