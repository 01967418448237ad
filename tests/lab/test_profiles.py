"""Cluster profiles are data: each loads, yields the cluster shape the workshop expects, and bad files say why."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmd_lab.lab.profiles import ProfileError, available_profiles, load_profile


def by_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


def test_profiles_shipped() -> None:
    assert {"rhoai-3.0", "fresh", "course"} <= set(available_profiles())


@pytest.mark.parametrize("name", ["rhoai-3.0", "rhoai-3.0-kueue", "fresh", "course"])
def test_objects_are_unique_and_namespaces_come_first(name: str) -> None:
    objs = load_profile(name).objects()
    keys = [(o["apiVersion"], o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs]
    assert len(keys) == len(set(keys))
    namespaces = {o["metadata"]["name"] for o in by_kind(objs, "Namespace")}
    first_other = next(i for i, o in enumerate(objs) if o["kind"] != "Namespace")
    assert all(o["kind"] != "Namespace" for o in objs[first_other:])
    for o in objs:
        if o["metadata"].get("namespace"):
            assert o["metadata"]["namespace"] in namespaces, o["metadata"]


def test_rhoai_shape_matches_the_step_08_demo() -> None:
    profile = load_profile("rhoai-3.0")
    nodes = profile.node_objects()
    gpu_nodes = [n for n in nodes if "nvidia.com/gpu" in n["status"]["allocatable"]]
    by_type: dict[str, list[dict]] = {}
    for n in gpu_nodes:
        by_type.setdefault(n["metadata"]["labels"]["node.kubernetes.io/instance-type"], []).append(n)
    assert len(by_type["g6.4xlarge"]) >= 2 and len(by_type["g6.12xlarge"]) == 1
    big = by_type["g6.12xlarge"][0]
    assert big["status"]["capacity"]["nvidia.com/gpu"] == "4" and big["status"]["capacity"]["cpu"] == "48"
    assert big["status"]["capacity"]["memory"] == "192Gi"
    labels = by_type["g6.4xlarge"][0]["metadata"]["labels"]
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-L4" and labels["nvidia.com/gpu.count"] == "1"
    assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"} in gpu_nodes[0]["spec"]["taints"]
    objs = profile.objects()
    assert {c["status"]["phase"] for c in by_kind(objs, "ClusterServiceVersion")} == {"Succeeded"}
    assert any(c["metadata"]["name"].startswith("rhcl-operator") for c in by_kind(objs, "ClusterServiceVersion"))
    assert profile.has_crd("authpolicies.kuadrant.io") and profile.has_crd("leaderworkersets.leaderworkerset.x-k8s.io")
    gw = by_kind(objs, "Gateway")[0]
    assert (gw["metadata"]["namespace"], gw["metadata"]["name"]) == ("openshift-ingress", "openshift-ai-inference")
    assert gw["spec"]["gatewayClassName"] == "openshift-default"
    kserve = by_kind(objs, "DataScienceCluster")[0]["spec"]["components"]["kserve"]
    # rhods-operator@rhoai-3.0 config/crd/bases/datasciencecluster…yaml: rawDeploymentServiceConfig default Headless
    assert kserve["rawDeploymentServiceConfig"] == "Headless" and kserve["managementState"] == "Managed"
    presets = {o["metadata"]["name"] for o in by_kind(objs, "LLMInferenceServiceConfig")}
    assert {"kserve-config-llm-template", "kserve-config-llm-decode-template", "kserve-config-llm-prefill-template",
            "kserve-config-llm-worker-data-parallel", "kserve-config-llm-decode-worker-data-parallel",
            "kserve-config-llm-prefill-worker-data-parallel", "kserve-config-llm-scheduler",
            "kserve-config-llm-router-route"} == presets  # kserve@rhoai-3.0 config/llmisvc: no pipeline-parallel ones
    queues = {o["metadata"]["name"]: o for o in by_kind(objs, "LocalQueue")}
    assert queues["llmd"]["spec"]["clusterQueue"] == "rhoai-llmd-queue"
    assert by_kind(objs, "ClusterVersion")[0]["status"]["desired"]["version"].startswith("4.19")


def test_fresh_lacks_what_preflight_checks() -> None:
    profile = load_profile("fresh")
    objs = profile.objects()
    assert not [n for n in profile.node_objects() if "nvidia.com/gpu" in n["status"]["capacity"]]
    assert not profile.has_crd("leaderworkersets.leaderworkerset.x-k8s.io")
    assert not profile.has_crd("authpolicies.kuadrant.io")
    assert profile.gateway is None and not by_kind(objs, "Gateway")


def test_known_issue_lookup() -> None:
    profile = load_profile("rhoai-3.0")
    assert profile.issue("authPolicyRequiredForGateway") is True
    with pytest.raises(KeyError, match="unknown known-issue"):
        profile.issue("nope")


def test_bad_profiles_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"choose one of: .*rhoai-3\.0"):
        load_profile("no-such")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nopenshift: {version: 4.19.0}\nnodeTypes: {a: {cpu: '1', memory: 1Gi}}\n"
                   "nodes: [{type: b}]\ncrds: []\n")
    with pytest.raises(ProfileError, match=r"nodes\[0\].type 'b' is not in nodeTypes"):
        load_profile(bad)
    bad.write_text("name: x\nopenshift: {}\nnodeTypes: {}\nnodes: []\ncrds: []\nknownIssues: {typo: true}\n")
    with pytest.raises(ProfileError, match=r"knownIssues\.typo"):
        load_profile(bad)


def test_new_profile_needs_no_code(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(
        "name: tiny\nopenshift: {version: 4.20.1}\n"
        "nodeTypes: {g6.xlarge: {cpu: '4', memory: 16Gi, gpu: {product: NVIDIA-L4, count: 1, memoryMiB: 23034}}}\n"
        "nodes: [{type: g6.xlarge, count: 3}]\ncrds: []\n"
    )
    profile = load_profile(path)
    assert len(profile.node_objects()) == 3
    assert profile.node_objects()[0]["status"]["allocatable"]["cpu"] == "3500m"


@pytest.mark.parametrize("name", ["rhoai-3.0", "rhoai-3.0-kueue", "fresh", "course"])
def test_every_profile_crd_is_shipped(name: str) -> None:
    from llmd_lab.lab import crds

    assert set(load_profile(name).crds) <= set(crds.available())


def test_the_kueue_profile_extends_rhoai_and_enforces_the_queue_label() -> None:
    """rhoai-3.0-kueue = rhoai-3.0 + the RHOAI operator's Kueue label webhook on the Kueue-managed private-ai."""
    base, kueue = load_profile("rhoai-3.0"), load_profile("rhoai-3.0-kueue")
    assert kueue.issue("kueueRequiresQueueLabel") and not base.issue("kueueRequiresQueueLabel")
    assert kueue.issue("authPolicyRequiredForGateway") == base.issue("authPolicyRequiredForGateway")
    assert (kueue.crds, kueue.nodes, kueue.vllm) == (base.crds, base.nodes, base.vllm)
    ns = next(o for o in kueue.objects() if o["kind"] == "Namespace" and o["metadata"]["name"] == "private-ai")
    assert ns["metadata"]["labels"]["kueue.openshift.io/managed"] == "true"


def test_profiles_record_the_vllm_the_cluster_runs() -> None:
    for name in ("rhoai-3.0", "course"):
        vllm = load_profile(name).vllm
        assert vllm["image"].startswith("registry.redhat.io/rhaiis/vllm-cuda-rhel9:")
        assert vllm["version"].count(".") == 2 and "RELATED_IMAGE_RHAIIS_VLLM_CUDA_IMAGE" in vllm["source"]


def test_extends_must_name_another_profile(tmp_path: Path) -> None:
    bad = tmp_path / "loop.yaml"
    bad.write_text("extends: nope\nname: loop\n")
    with pytest.raises(ProfileError, match="extends 'nope'"):
        load_profile(bad)


def test_allocatable_is_capacity_minus_openshift_system_reserved() -> None:
    """openshift/machine-config-operator node-sizing defaults (500m CPU, 1Gi) + kubelet eviction (100Mi)."""
    from llmd_lab.lab.scheduler.quantity import parse_quantity

    nodes = {n["metadata"]["labels"]["node.kubernetes.io/instance-type"]: n for n in load_profile("course").node_objects()}
    g6 = nodes["g6.xlarge"]["status"]
    assert g6["capacity"]["cpu"] == "4" and g6["allocatable"]["cpu"] == "3500m"
    assert parse_quantity(g6["capacity"]["memory"]) == 16 * 1024**3
    assert parse_quantity(g6["allocatable"]["memory"]) == 16 * 1024**3 - 1024**3 - 100 * 1024**2


def test_profiles_state_the_model_download_bandwidth(tmp_path: Path) -> None:
    assert load_profile("rhoai-3.0").model_download_mbps > 0 and load_profile("course").model_download_mbps > 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nopenshift: {}\nnodeTypes: {}\nnodes: []\ncrds: []\nmodelDownload: {bandwidthMBps: fast}\n")
    with pytest.raises(ProfileError, match=r"modelDownload\.bandwidthMBps"):
        load_profile(bad)
