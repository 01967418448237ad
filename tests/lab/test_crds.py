"""The CRDs the lab ships: loadable by name, structural, servable, and shaped like upstream's."""

from __future__ import annotations

import pytest

from llmd_lab.lab import crds
from llmd_lab.lab.apiserver.registry import ResourceRegistry
from llmd_lab.lab.apiserver.validation import structural_problems

# The CRDs the workshop's world has (issue 2); a profile picks among them.
REQUIRED = [
    "llminferenceservices.serving.kserve.io",
    "llminferenceserviceconfigs.serving.kserve.io",
    "inferencepools.inference.networking.k8s.io",
    "inferencepools.inference.networking.x-k8s.io",
    "inferencemodels.inference.networking.x-k8s.io",
    "inferenceobjectives.inference.networking.x-k8s.io",
    "gateways.gateway.networking.k8s.io",
    "gatewayclasses.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
    "leaderworkersets.leaderworkerset.x-k8s.io",
    "clusterqueues.kueue.x-k8s.io",
    "localqueues.kueue.x-k8s.io",
    "resourceflavors.kueue.x-k8s.io",
    "workloads.kueue.x-k8s.io",
    "servicemonitors.monitoring.coreos.com",
    "podmonitors.monitoring.coreos.com",
    "routes.route.openshift.io",
    "authpolicies.kuadrant.io",
    "subscriptions.operators.coreos.com",
    "clusterserviceversions.operators.coreos.com",
    "operatorgroups.operators.coreos.com",
    "datascienceclusters.datasciencecluster.opendatahub.io",
    "dscinitializations.dscinitialization.opendatahub.io",
    "clusterversions.config.openshift.io",
]


def _version(crd: dict, name: str) -> dict:
    return next(v for v in crd["spec"]["versions"] if v["name"] == name)


def test_every_required_crd_is_shipped_and_named_after_its_file():
    shipped = crds.available()
    assert set(REQUIRED) <= set(shipped)
    for crd in crds.load():
        spec = crd["spec"]
        assert crd["metadata"]["name"] == f"{spec['names']['plural']}.{spec['group']}"
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert spec["scope"] in ("Namespaced", "Cluster")
        assert sum(v["storage"] for v in spec["versions"]) == 1, crd["metadata"]["name"]


def test_load_selects_by_name_and_returns_independent_copies():
    (one,) = crds.load(["routes.route.openshift.io"])
    one["spec"]["group"] = "mutated"
    assert crds.load(["routes.route.openshift.io"])[0]["spec"]["group"] == "route.openshift.io"


def test_unknown_crd_name_fails_naming_the_known_ones():
    with pytest.raises(KeyError, match=r"llminferenceservices\.serving\.kserve\.io"):
        crds.load(["llminferenceservice.serving.kserve.io"])  # singular: a typo a profile could make


@pytest.mark.parametrize("name", crds.available())
def test_schemas_are_structural(name):
    (crd,) = crds.load([name])
    for version in crd["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        assert structural_problems(schema) == [], (name, version["name"])


def test_structural_check_catches_untyped_fields():
    bad = {"type": "object", "properties": {"spec": {"properties": {"x": {"type": "string"}}}}}
    assert structural_problems(bad) == [
        "openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"
    ]


def test_every_crd_registers_as_served_resources():
    registry = ResourceRegistry()
    for crd in crds.load():
        added = registry.register_crd(crd)
        assert [rt.version for rt in added] == [v["name"] for v in crd["spec"]["versions"]]
    llmisvc = registry.lookup_resource("serving.kserve.io", "v1alpha1", "llminferenceservices")
    assert llmisvc.short_names == ("llmisvc",) and llmisvc.has("status") and llmisvc.namespaced
    lws = registry.lookup_resource("leaderworkerset.x-k8s.io", "v1", "leaderworkersets")
    assert lws.has("scale") and lws.scale["labelSelectorPath"] == ".status.hpaPodSelector"
    assert not registry.lookup_resource("kueue.x-k8s.io", "v1beta1", "clusterqueues").namespaced


def test_llminferenceservice_shape_matches_kserve_rhoai_3_0():
    (crd,) = crds.load(["llminferenceservices.serving.kserve.io"])
    v1alpha1 = _version(crd, "v1alpha1")
    columns = [(c["name"], c["jsonPath"], c.get("priority", 0)) for c in v1alpha1["additionalPrinterColumns"]]
    assert columns == [
        ("URL", ".status.url", 0),
        ("Ready", ".status.conditions[?(@.type=='Ready')].status", 0),
        ("Reason", ".status.conditions[?(@.type=='Ready')].reason", 0),
        ("Age", ".metadata.creationTimestamp", 0),
        ("URLs", ".status.addresses[*].url", 1),
    ]
    spec = v1alpha1["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert set(spec["properties"]) == {
        "model", "replicas", "parallelism", "template", "worker", "prefill", "router", "baseRefs"
    }
    # kserve@rhoai-3.0 config/crd/full/serving.kserve.io_llminferenceservices.yaml: no required spec fields, model.uri
    # required; template/worker/prefill.*/scheduler.template a full PodSpec (no preserve-unknown-fields)
    assert "required" not in spec and spec["properties"]["model"]["required"] == ["uri"]
    for pod in (spec["properties"]["template"], spec["properties"]["worker"],
                spec["properties"]["prefill"]["properties"]["template"],
                spec["properties"]["router"]["properties"]["scheduler"]["properties"]["template"]):
        assert "x-kubernetes-preserve-unknown-fields" not in pod and "required" not in pod
        container = pod["properties"]["containers"]["items"]
        assert container["required"] == ["name"] and "stopSignal" in container["properties"]["lifecycle"]["properties"]
        assert container["properties"]["resources"]["properties"]["limits"]["additionalProperties"][
            "x-kubernetes-int-or-string"] is True
    pool_spec = spec["properties"]["router"]["properties"]["scheduler"]["properties"]["pool"]["properties"]["spec"]
    assert sorted(pool_spec["required"]) == ["extensionRef", "selector", "targetPortNumber"]
    assert {"parentRefs", "rules"} <= set(spec["properties"]["router"]["properties"]["route"]["properties"]["http"][
        "properties"]["spec"]["properties"])
    assert {"address", "addresses", "url", "conditions"} <= set(
        v1alpha1["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"])
    assert set(spec["properties"]["router"]["properties"]) == {"route", "gateway", "ingress", "scheduler"}
    assert set(spec["properties"]["parallelism"]["properties"]) == {
        "tensor", "pipeline", "data", "dataLocal", "dataRPCPort", "expert"
    }
    for name, field in spec["properties"].items():
        assert len(field.get("description", "")) > 40, f"spec.{name} needs a description that teaches"
    # the preset kind shares the spec but has no status and does not require a model
    (config,) = crds.load(["llminferenceserviceconfigs.serving.kserve.io"])
    config_schema = _version(config, "v1alpha1")["schema"]["openAPIV3Schema"]
    assert "status" not in config_schema["properties"] and "required" not in config_schema["properties"]["spec"]


def test_the_two_inferencepool_apis_keep_their_different_shapes():
    ga = crds.by_kind("inference.networking.k8s.io", "InferencePool")[0]
    alpha = crds.by_kind("inference.networking.x-k8s.io", "InferencePool")[0]
    ga_schema = _version(ga, "v1")["schema"]["openAPIV3Schema"]["properties"]
    alpha_schema = _version(alpha, "v1alpha2")["schema"]["openAPIV3Schema"]["properties"]
    assert ga_schema["spec"]["required"] == ["selector", "targetPorts", "endpointPickerRef"]
    assert "targetPortNumber" in alpha_schema["spec"]["properties"] and "extensionRef" in alpha_schema["spec"]["properties"]
    assert "parents" in ga_schema["status"]["properties"] and "parent" in alpha_schema["status"]["properties"]
    assert ga["spec"]["names"]["shortNames"] == ["infpool"] and alpha["spec"]["names"]["shortNames"] == ["xinfpool"]


def test_llminferenceservice_pod_fields_are_checked_like_the_real_crd(registry):
    """The embedded PodSpec (kubernetes-validate's schema, as config/crd/full embeds it): a misspelt container field
    is unknown (strict decoding rejects it), a wrong type is invalid, a pool spec needs all three fields."""
    from llmd_lab.lab.apiserver import validation

    svc = {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "LLMInferenceService",
           "metadata": {"name": "x", "namespace": "ns"},
           "spec": {"model": {"uri": "hf://Qwen/Qwen3-0.6B"},
                    "template": {"containers": [{"name": "main", "imagee": "oops",
                                                 "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "8Gi"}}}]}}}
    assert validation.unknown_fields(svc, registry) == ["spec.template.containers[0].imagee"]
    assert not validation.validate_object(svc, registry)
    svc["spec"]["template"]["containers"][0]["ports"] = [{"containerPort": "http"}]
    assert [c["field"] for c in validation.validate_object(svc, registry)] == [
        "spec.template.containers[0].ports[0].containerPort"]
    del svc["spec"]["template"]["containers"][0]["ports"]
    svc["spec"]["router"] = {"scheduler": {"pool": {"spec": {"selector": {"a": "b"}, "targetPortNumber": 8000}}}}
    causes = validation.validate_object(svc, registry)
    assert [(c["field"], c["reason"]) for c in causes] == [
        ("spec.router.scheduler.pool.spec.extensionRef", "FieldValueRequired")]
