"""Schema validation: good objects pass, bad ones get Kubernetes-worded causes that name the field."""

from __future__ import annotations

import copy

import pytest

from llmd_lab.lab.apiserver.validation import (
    crd_json_schema,
    prune,
    strict_error_message,
    unknown_fields,
    validate_object,
)

LLMISVC = {
    "apiVersion": "serving.kserve.io/v1alpha1",
    "kind": "LLMInferenceService",
    "metadata": {"name": "qwen", "namespace": "demo", "labels": {"app": "qwen"}},
    "spec": {
        "model": {"uri": "hf://Qwen/Qwen3-0.6B", "name": "Qwen/Qwen3-0.6B", "criticality": "Critical"},
        "replicas": 2,
        "parallelism": {"tensor": 1},
        "template": {"containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
        "router": {"route": {}, "gateway": {}, "scheduler": {}},
    },
}
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p"},
    "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]},
}


def _with(obj: dict, path: str, value) -> dict:
    out = copy.deepcopy(obj)
    node = out
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return out


def _fields(causes: list[dict]) -> dict[str, tuple[str, str]]:
    return {c["field"]: (c["reason"], c["message"]) for c in causes}


def test_good_objects_have_no_causes(registry):
    assert validate_object(LLMISVC, registry) == []
    assert validate_object(POD, registry) == []
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": POD["spec"]}},
    }
    assert validate_object(deployment, registry) == []


def test_wrong_type_is_phrased_like_kube_apiserver(registry):
    causes = validate_object(_with(LLMISVC, "spec.replicas", "two"), registry)
    assert causes == [{
        "field": "spec.replicas",
        "message": 'Invalid value: "two": spec.replicas in body must be of type integer: "string"',
        "reason": "FieldValueTypeInvalid",
    }]


@pytest.mark.parametrize(
    ("path", "value", "field", "reason", "text"),
    [
        ("spec.model", {"name": "m"}, "spec.model.uri", "FieldValueRequired", "Required value"),
        ("spec.model.criticality", "Urgent", "spec.model.criticality", "FieldValueNotSupported",
         'Unsupported value: "Urgent": supported values: "Critical", "Standard", "Sheddable"'),
        ("spec.replicas", -1, "spec.replicas", "FieldValueInvalid", "should be greater than or equal to 0"),
        ("spec.parallelism", {"dataRPCPort": 70000}, "spec.parallelism.dataRPCPort", "FieldValueInvalid",
         "should be less than or equal to 65535"),
        ("spec.baseRefs", {"name": "x"}, "spec.baseRefs", "FieldValueTypeInvalid", "must be of type array"),
    ],
)
def test_crd_schema_rules_name_the_field(registry, path, value, field, reason, text):
    got = _fields(validate_object(_with(LLMISVC, path, value), registry))
    assert field in got, got
    assert got[field][0] == reason and text in got[field][1]


def test_model_is_optional_in_the_crd_as_upstream(registry):
    """red-hat-data-services/kserve@rhoai-3.0 config/crd/full: the LLMInferenceService spec has no ``required``
    list (presets may carry the model), so the schema accepts a service without one, as does a preset."""
    svc = copy.deepcopy(LLMISVC)
    del svc["spec"]["model"]
    assert "spec.model" not in _fields(validate_object(svc, registry))
    preset = {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "LLMInferenceServiceConfig",
              "metadata": {"name": "kserve-config-llm-template"}, "spec": {"template": {"containers": []}}}
    assert validate_object(preset, registry) == []


def test_int_or_string_and_preserved_podspecs(registry):
    route = {"apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": {"name": "r"},
             "spec": {"to": {"kind": "Service", "name": "s"}, "port": {"targetPort": "https"}}}
    assert validate_object(route, registry) == []
    assert validate_object(_with(route, "spec.port", {"targetPort": 8443}), registry) == []
    bad = _fields(validate_object(_with(route, "spec.port", {"targetPort": [1]}), registry))
    assert bad["spec.port.targetPort"][0] == "FieldValueTypeInvalid"
    # the real CRD embeds the full PodSpec schema: an unknown container field is refused under strict decoding
    weird = _with(LLMISVC, "spec.template", {"containers": [{"name": "main", "futureField": {"x": 1}}]})
    assert unknown_fields(weird, registry) == ["spec.template.containers[0].futureField"]


def test_builtin_kinds_use_the_kubernetes_1_32_schemas(registry):
    got = _fields(validate_object(_with(POD, "spec.containers", [{"image": "x", "ports": [{"containerPort": "80"}]}]),
                                  registry))
    assert got["spec.containers[0].name"] == ("FieldValueRequired", "Required value")
    assert got["spec.containers[0].ports[0].containerPort"][0] == "FieldValueTypeInvalid"
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}}
    assert _fields(validate_object(deployment, registry))["spec.selector"] == ("FieldValueRequired", "Required value")


def test_metadata_name_rules(registry):
    got = _fields(validate_object(_with(LLMISVC, "metadata.name", "Qwen_3"), registry))
    assert "RFC 1123 subdomain" in got["metadata.name"][1] and '"Qwen_3"' in got["metadata.name"][1]
    nameless = copy.deepcopy(POD)
    del nameless["metadata"]["name"]
    assert _fields(validate_object(nameless, registry))["metadata.name"][0] == "FieldValueRequired"
    nameless["metadata"]["generateName"] = "p-"
    assert validate_object(nameless, registry) == []
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "my.namespace"}}
    assert "RFC 1123 label" in _fields(validate_object(namespace, registry))["metadata.name"][1]


def test_unknown_kinds_are_left_to_the_store(registry):
    assert validate_object({"apiVersion": "maas.opendatahub.io/v1alpha1", "kind": "InferenceGateway"}, registry) == []


def test_unknown_fields_give_full_paths_for_strict_validation(registry):
    # the two mistakes in the workshop guides: `ref` for `refs`, and an EndpointPickerConfig field RHOAI 3.0 lacks
    obj = _with(LLMISVC, "spec.router", {"gateway": {"ref": [{"name": "gw"}]},
                                         "scheduler": {"endpointPickerConfig": "plugins: []"}})
    assert unknown_fields(obj, registry) == ["spec.router.gateway.ref", "spec.router.scheduler.endpointPickerConfig"]
    pod = _with(POD, "spec.containers", [{"name": "c", "imagePullPolicy": "Always", "bogus": 1}])
    pod["metadata"]["labelz"] = {}
    assert unknown_fields(pod, registry) == ["metadata.labelz", "spec.containers[0].bogus"]
    assert strict_error_message(obj, ['unknown field "spec.router.gateway.ref"']) == (
        'LLMInferenceService in version "v1alpha1" cannot be handled as a LLMInferenceService: '
        'strict decoding error: unknown field "spec.router.gateway.ref"'
    )


def test_prune_drops_only_unknown_fields(registry):
    obj = _with(LLMISVC, "spec.router", {"gateway": {"ref": [{"name": "gw"}]}, "route": {}})
    pruned = prune(obj, registry)
    assert pruned["spec"]["router"] == {"gateway": {}, "route": {}}
    assert obj["spec"]["router"]["gateway"] == {"ref": [{"name": "gw"}]}  # input untouched
    assert pruned["spec"]["template"] == LLMISVC["spec"]["template"]


def test_openapi_v3_quirks_translate_to_json_schema():
    schema = crd_json_schema({
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 0, "exclusiveMinimum": True},
            "s": {"type": "string", "nullable": True},
            "q": {"x-kubernetes-int-or-string": True},
        },
    })
    assert schema["properties"]["n"] == {"type": "integer", "exclusiveMinimum": 0}
    assert schema["properties"]["s"]["type"] == ["string", "null"]
    assert schema["properties"]["q"]["type"] == ["integer", "string"]


def test_builtin_status_is_not_held_to_the_schema_required_fields(registry):
    # kube-apiserver validates built-ins in Go; a Node's status.nodeInfo without machineID is fine there
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-1"},
            "status": {"nodeInfo": {"kubeletVersion": "v1.32.7"}, "capacity": {"nvidia.com/gpu": "1"}}}
    assert validate_object(node, registry) == []
    node["spec"] = {"unschedulable": "yes"}
    assert _fields(validate_object(node, registry))["spec.unschedulable"][0] == "FieldValueTypeInvalid"


def test_crd_defaults_fill_absent_fields_under_present_parents(registry):
    from llmd_lab.lab.apiserver.validation import apply_defaults

    pool = {"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool", "metadata": {"name": "p"},
            "spec": {"selector": {"matchLabels": {"app": "vllm"}}, "targetPorts": [{"number": 8000}],
                     "endpointPickerRef": {"name": "epp", "port": {"number": 9002}}}}
    defaulted = apply_defaults(pool, registry)
    assert defaulted["spec"]["endpointPickerRef"] == {
        "name": "epp", "port": {"number": 9002}, "group": "", "kind": "Service", "failureMode": "FailClose"}
    assert "failureMode" not in pool["spec"]["endpointPickerRef"]  # input untouched
    explicit = copy.deepcopy(pool)
    explicit["spec"]["endpointPickerRef"]["failureMode"] = "FailOpen"
    assert apply_defaults(explicit, registry)["spec"]["endpointPickerRef"]["failureMode"] == "FailOpen"
    assert apply_defaults(POD, registry) == POD
