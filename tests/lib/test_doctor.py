"""doctor: each failure mode from the guides' troubleshooting, produced for real in a lab, diagnosed with a fix."""

from __future__ import annotations

import time

import pytest
from labhelpers import lab_connection, running_lab

from llmd_lab import deploy, doctor, k8s, manifests

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab(tmp_path_factory.mktemp("doctor-lab"), "--time-scale", "200") as running:
        yield running


@pytest.fixture(scope="module")
def conn(lab):
    with lab_connection(lab, "private-ai") as c:
        yield c


def _until_finding(conn, name: str, match, timeout_s: float = 60):
    """Run doctor until a row satisfies ``match(row)``; return that row (polling the API with a deadline)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = doctor.run(conn, name, probe=False)
        hits = [row for _, row in last.iterrows() if match(row)]
        if hits:
            return hits[0]
        time.sleep(0.2)
    raise AssertionError(f"no matching finding; last report:\n{last}")


def test_pending_on_gpus(conn):
    obj = manifests.llm_inference_service("greedy", "hf://Qwen/Qwen3-0.6B", replicas=12, gpu="g6.4xlarge")
    deploy.apply(conn, obj)
    try:
        row = _until_finding(conn, "greedy", lambda r: "Insufficient nvidia.com/gpu" in r["evidence"])
        assert row["status"] == "fail" and "scale the GPU MachineSet" in row["fix"]
    finally:
        deploy.delete(conn, "greedy", timeout_s=60)


def test_crashloop_when_the_model_cannot_fit(conn):
    # a gated repository: the storage-initializer needs HF_TOKEN from the Secret KServe reads (workload_storage.go)
    conn.core.create_namespaced_secret(conn.namespace, {"metadata": {"name": "hf-token"},
                                                        "stringData": {"HF_TOKEN": "hf_test"}})  # fmt: skip
    obj = manifests.llm_inference_service("huge", "hf://meta-llama/Llama-3.1-70B-Instruct",
                                          model_name="meta-llama/Llama-3.1-70B-Instruct", gpu="g6.4xlarge",
                                          annotations={"serving.kserve.io/storageSecretName": "hf-token"})  # fmt: skip
    with pytest.raises(manifests.ManifestError):
        deploy.apply(conn, obj)  # our validation refuses it first …
    deploy.apply(conn, obj, validate=False)  # … forced through, vLLM fails to start
    try:
        row = _until_finding(conn, "huge", lambda r: "huge-kserve" in r["check"] and "Pending" not in r["check"]
                             and r["status"] == "fail", timeout_s=180)  # fmt: skip
        assert "restarts" in row["evidence"] or "OOMKilled" in row["check"]
        assert "tensor" in row["fix"] or "memory" in row["fix"]
        assert "huge-kserve" in deploy.explain(conn, "huge", probe=False)
    finally:
        deploy.delete(conn, "huge", timeout_s=60)
        conn.core.delete_namespaced_secret("hf-token", conn.namespace)


def test_kv_metric_flag_and_model_name_404(conn):
    obj = manifests.llm_inference_service("plain", "hf://Qwen/Qwen3-0.6B", model_name="Qwen/Qwen3-0.6B", replicas=1,
                                          gpu="g6.4xlarge", scheduler="course", workarounds=False)  # fmt: skip
    obj["metadata"]["annotations"] = {manifests.ENABLE_AUTH_ANNOTATION: "false"}
    deploy.apply(conn, obj)
    try:
        deploy.wait_ready(conn, "plain", timeout_s=120, progress=False)
        report = doctor.run(conn, "plain").set_index("check")
        kv = report.loc["EPP KV-cache metric"]
        assert kv["status"] == "fail" and manifests.KV_METRIC_NAME in kv["fix"]
        assert report.loc["endpoint", "status"] == "pass"
        stored = deploy.get(conn, "plain")
        stored["spec"]["model"]["name"] = "qwen"  # what a client would send if it guessed the name
        row = doctor.diagnose_endpoint(conn, stored)[0]
        assert row.status == "fail" and "Qwen/Qwen3-0.6B" in row.evidence and "served" in row.fix
    finally:
        deploy.delete(conn, "plain", timeout_s=60)
    assert k8s.pods(conn, "private-ai", doctor.all_pods_selector("plain")) == []


def test_gated_model_without_a_token_is_explained(conn):
    """kserve@rhoai-3.0 workload_storage.go: the storage-initializer downloads hf:// weights with the token from the
    storageSecretName Secret; without one huggingface_hub raises GatedRepoError, the init container exits 1 and the
    pod shows Init:CrashLoopBackOff. doctor reads the init container's log and says how to attach a token."""
    obj = manifests.llm_inference_service("gated", "hf://meta-llama/Llama-3.1-8B-Instruct", gpu="g6.4xlarge")
    deploy.apply(conn, obj, validate=False)
    try:
        row = _until_finding(conn, "gated", lambda r: "storage-initializer" in r["check"], timeout_s=120)
        assert row["status"] == "fail" and "GatedRepoError" in row["evidence"]
        assert "storageSecretName" in row["fix"] and "HF_TOKEN" in row["fix"] and "ungated" in row["fix"]
    finally:
        deploy.delete(conn, "gated", timeout_s=60)


def test_presets_that_cannot_be_combined_are_explained(conn):
    """kserve@rhoai-3.0 pkg/controller/llmisvc/config_merge.go: a baseRef that names no LLMInferenceServiceConfig sets
    PresetsCombined=False (CombineBaseError) and KServe creates nothing; doctor says which config and what to fix."""
    obj = manifests.llm_inference_service("no-base", "hf://Qwen/Qwen3-0.6B", gpu="g6.4xlarge")
    obj["spec"]["baseRefs"] = [{"name": "no-such-config"}]
    deploy.apply(conn, obj, validate=False)
    try:
        row = _until_finding(conn, "no-base", lambda r: r["check"] == "KServe presets")
        assert row["status"] == "fail" and "CombineBaseError" in row["evidence"] and "no-such-config" in row["evidence"]
        assert "baseRefs" in row["fix"] and "pipeline" in row["fix"]
    finally:
        deploy.delete(conn, "no-base", timeout_s=60)


def test_a_project_you_have_no_role_in_is_a_permission_row_not_a_traceback(lab):
    """A 403 (RBAC: user1 is admin of project user1 only) comes back as a row naming the permission and who grants
    it, as kube-apiserver's Forbidden status says (kubernetes staging/src/k8s.io/apiserver/pkg/endpoints/handlers/
    responsewriters/errors.go)."""
    from dataclasses import replace
    from pathlib import Path

    from labhelpers import run_cli

    found = run_cli(lab.home, "kubeconfig", "--user", "user1")
    assert found.returncode == 0, found.stderr
    attendee = replace(lab, kubeconfig=Path(found.stdout.strip()))
    with lab_connection(attendee, "user1") as mine:  # connect() itself refuses a project you have no role in
        report = doctor.run(mine, "anything", namespace="private-ai", probe=False)
    [row] = [r for _, r in report.iterrows()]
    assert row["status"] == "fail" and "forbidden" in row["evidence"].lower() and "user1" in row["evidence"]
    assert "ask" in row["fix"] and "private-ai" in row["fix"]


def test_pods_refused_by_the_resource_quota_are_explained(monkeypatch):
    """kubernetes plugin/pkg/admission/resourcequota/controller.go refuses a pod with "exceeded quota: <quota>,
    requested: …, used: …, limited: …"; the ReplicaSet controller reports it as a FailedCreate event (the lab does
    not enforce ResourceQuota, so the event is given here)."""
    from types import SimpleNamespace

    refused = ('Error creating: pods "qwen-kserve-7d9-x2" is forbidden: exceeded quota: gpu-quota, requested: '
               "requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=2, limited: requests.nvidia.com/gpu=2")  # fmt: skip
    rs = {"metadata": {"name": "qwen-kserve-7d9", "namespace": "user1"}}
    monkeypatch.setattr(k8s, "list_objects", lambda *a, **k: [rs])
    monkeypatch.setattr(k8s, "events_for", lambda conn, obj: [
        {"type": "Warning", "reason": "FailedCreate", "message": refused}] if obj["kind"] == "ReplicaSet" else [])
    [row] = doctor.diagnose_quota(SimpleNamespace(namespace="user1"), "qwen", "user1")  # type: ignore[arg-type]
    assert row.status == "fail" and "exceeded quota: gpu-quota" in row.evidence
    assert "oc describe quota -n user1" in row.fix and "notebook 10" in row.fix


@pytest.mark.parametrize(("message", "expected"), [
    ("couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor nvidia-l4, "
     "1 more needed (ClusterQueue rhoai-main-queue: 5 of 5 in use)", "nominalQuota"),
    ("LocalQueue nope doesn't exist in namespace user1", "names no LocalQueue"),
    ("0/10 nodes are available: 4 Insufficient nvidia.com/gpu.", "scale the GPU MachineSet"),
])  # fmt: skip
def test_pending_reasons_each_get_their_fix(message, expected):
    """Kueue's messages (pkg/scheduler/flavorassigner: "insufficient unused quota for …") and kube-scheduler's."""
    assert expected in doctor._pending_fix(message)
