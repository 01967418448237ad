"""OpenAPI v3 documents: what kubectl 1.32 needs for explain, server-side field validation and SMP."""

from __future__ import annotations

import pytest

from llmd_lab.lab import crds
from llmd_lab.lab.apiserver.openapi import (
    crd_schema_name,
    openapi_v3_document,
    openapi_v3_index,
    parse_gv_path,
)
from llmd_lab.lab.apiserver.registry import ResourceRegistry

REF = "#/components/schemas/"


def _patch_ops(doc: dict, group: str, version: str, kind: str) -> list[dict]:
    gvk = {"group": group, "version": version, "kind": kind}
    return [item["patch"] for item in doc["paths"].values()
            if "patch" in item and item["patch"]["x-kubernetes-group-version-kind"] == gvk]


def _resolve(doc: dict, schema: dict) -> dict:
    while True:
        ref = schema.get("$ref") or (schema.get("allOf") or [{}])[0].get("$ref")
        if not ref:
            return schema
        schema = doc["components"]["schemas"][ref.removeprefix(REF)]


def test_index_lists_every_served_group_version_with_a_hash(registry):
    paths = openapi_v3_index(registry)["paths"]
    assert {"api/v1", "apis/apps/v1", "apis/serving.kserve.io/v1alpha1",
            "apis/inference.networking.k8s.io/v1", "apis/inference.networking.x-k8s.io/v1alpha2"} <= set(paths)
    url = paths["apis/serving.kserve.io/v1alpha1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/serving.kserve.io/v1alpha1?hash=") and len(url.split("=")[1]) == 128
    assert parse_gv_path("apis/serving.kserve.io/v1alpha1") == ("serving.kserve.io", "v1alpha1")
    assert parse_gv_path("api/v1") == ("", "v1")


def test_index_hash_changes_when_a_crd_changes(registry):
    reg = ResourceRegistry()
    (crd,) = crds.load(["routes.route.openshift.io"])
    reg.register_crd(crd)
    before = openapi_v3_index(reg)["paths"]["apis/route.openshift.io/v1"]["serverRelativeURL"]
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] = "changed"
    reg.register_crd(crd)
    assert openapi_v3_index(reg)["paths"]["apis/route.openshift.io/v1"]["serverRelativeURL"] != before


def test_crd_schemas_are_named_like_kube_apiserver_names_them(registry):
    doc = openapi_v3_document(registry, "serving.kserve.io", "v1alpha1")
    name = crd_schema_name("serving.kserve.io", "v1alpha1", "LLMInferenceService")
    assert name == "io.kserve.serving.v1alpha1.LLMInferenceService"
    schema = doc["components"]["schemas"][name]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "serving.kserve.io", "kind": "LLMInferenceService", "version": "v1alpha1"}]
    # explain llminferenceservice.spec reads these descriptions; metadata resolves to ObjectMeta
    assert "replicas" in schema["properties"]["spec"]["properties"]
    assert "KV cache" in schema["properties"]["spec"]["properties"]["replicas"]["description"]
    assert "name" in _resolve(doc, schema["properties"]["metadata"])["properties"]


def test_every_reference_resolves(registry):
    for group, version in [("", "v1"), ("apps", "v1"), ("serving.kserve.io", "v1alpha1"),
                           ("leaderworkerset.x-k8s.io", "v1")]:
        doc = openapi_v3_document(registry, group, version)
        text = str(doc)
        refs = {part.split("'")[0] for part in text.split(REF)[1:]}
        assert refs <= set(doc["components"]["schemas"]), (group, refs - set(doc["components"]["schemas"]))


def test_patch_operations_advertise_server_side_field_validation(registry):
    # kubectl 1.32 sends fieldValidation=Strict only when the kind's PATCH operation lists the parameter
    for group, version, kind in [("serving.kserve.io", "v1alpha1", "LLMInferenceService"), ("", "v1", "Pod"),
                                 ("apps", "v1", "Deployment")]:
        doc = openapi_v3_document(registry, group, version)
        ops = _patch_ops(doc, group, version, kind)
        assert ops, kind
        names = {(p["name"], p["in"]) for p in ops[0]["parameters"]}
        assert {("fieldValidation", "query"), ("dryRun", "query"), ("fieldManager", "query")} <= names


def test_builtin_schemas_keep_kubernetes_shapes(registry):
    doc = openapi_v3_document(registry, "", "v1")
    schemas = doc["components"]["schemas"]
    pod = schemas["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    assert pod["type"] == "object" and "enum" not in pod["properties"]["kind"]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"  # strategic merge patch metadata
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "description": "IntOrString is a type that can hold an int32 or a string.",
        "type": "string", "format": "int-or-string"}


def test_scale_subresource_paths_for_leaderworkersets(registry):
    doc = openapi_v3_document(registry, "leaderworkerset.x-k8s.io", "v1")
    path = "/apis/leaderworkerset.x-k8s.io/v1/namespaces/{namespace}/leaderworkersets/{name}/scale"
    assert doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": REF + "io.k8s.api.autoscaling.v1.Scale"}


def test_unknown_group_version_is_a_key_error(registry):
    with pytest.raises(KeyError):
        openapi_v3_document(registry, "maas.opendatahub.io", "v1alpha1")
