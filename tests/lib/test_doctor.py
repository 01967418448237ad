"""doctor: each failure mode from the guides' troubleshooting, produced for real in a lab, diagnosed with a fix."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from llmd_lab import deploy, doctor, k8s, manifests
from llmd_lab.connect import connect

pytestmark = pytest.mark.slow


def _cli(home, *args):
    env = {**os.environ, "LLMD_LAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "llmd_lab.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def conn(tmp_path_factory):
    home = tmp_path_factory.mktemp("doctor-lab")
    started = _cli(home, "up", "--port", "0", "--time-scale", "200")
    if started.returncode != 0:
        pytest.fail(f"llmd-lab up failed:\n{started.stderr}")
    mp = pytest.MonkeyPatch()
    mp.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    mp.setenv("KUBECONFIG", str(home / "kubeconfig"))
    yield connect("private-ai", start_lab=False)
    mp.undo()
    _cli(home, "down")


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
    obj = manifests.llm_inference_service("huge", "hf://meta-llama/Llama-3.1-70B-Instruct",
                                          model_name="meta-llama/Llama-3.1-70B-Instruct", gpu="g6.4xlarge")  # fmt: skip
    with pytest.raises(manifests.ManifestError):
        deploy.apply(conn, obj)  # our validation refuses it first …
    deploy.apply(conn, obj, validate=False)  # … forced through, vLLM fails to start
    try:
        row = _until_finding(conn, "huge", lambda r: "huge-kserve" in r["check"] and "Pending" not in r["check"]
                             and r["status"] == "fail")  # fmt: skip
        assert "restarts" in row["evidence"] or "OOMKilled" in row["check"]
        assert "tensor" in row["fix"] or "memory" in row["fix"]
        assert "huge-kserve" in deploy.explain(conn, "huge", probe=False)
    finally:
        deploy.delete(conn, "huge", timeout_s=60)


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
