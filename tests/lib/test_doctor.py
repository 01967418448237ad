"""doctor: each failure mode from the guides' troubleshooting, produced for real in a lab, diagnosed with a fix."""

from __future__ import annotations

import time

import pytest
from labhelpers import lab_connection, running_lab

from llmd_lab import deploy, doctor, k8s, manifests

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def conn(tmp_path_factory):
    with running_lab(tmp_path_factory.mktemp("doctor-lab"), "--time-scale", "200") as lab:
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
