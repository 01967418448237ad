"""deploy.wait_rolled_out against a lab of its own at --time-scale 200 (an EPP pod starts in well under a second)."""

from __future__ import annotations

import json
import uuid

import pytest
from labhelpers import lab_connection, running_lab

from llmd_lab import deploy, doctor, k8s, manifests


@pytest.fixture(scope="module")
def conn(tmp_path_factory):
    with running_lab(tmp_path_factory.mktemp("rollout-lab"), "--time-scale", "200") as lab:
        with lab_connection(lab, "default") as c:
            yield c


def test_wait_rolled_out_returns_once_the_new_epp_replaced_the_old(conn):
    """LIBRARY_NEEDS 5: Ready stays True while the old EPP serves; wait_rolled_out waits for the new one."""
    name = f"ro-{uuid.uuid4().hex[:6]}"
    obj = manifests.llm_inference_service(name, "hf://Qwen/Qwen3-0.6B", model_name="Qwen/Qwen3-0.6B",
                                          gpu="g6.4xlarge", scheduler={"prefix-cache-scorer": 1})  # fmt: skip
    deploy.apply(conn, obj)
    try:
        (first,) = deploy.wait_rolled_out(conn, name, timeout_s=60, progress=False)
        old = {p["metadata"]["name"] for p in k8s.pods(conn, conn.namespace, doctor.scheduler_selector(name))}
        assert len(old) == 1
        changed = manifests.llm_inference_service(name, "hf://Qwen/Qwen3-0.6B", model_name="Qwen/Qwen3-0.6B",
                                                  gpu="g6.4xlarge", scheduler={"queue-scorer": 1})  # fmt: skip
        deploy.apply(conn, changed)
        (dep,) = deploy.wait_rolled_out(conn, name, "scheduler", timeout_s=60, progress=False)
        assert dep["metadata"]["generation"] > first["metadata"]["generation"]
        assert "queue-scorer" in json.dumps(dep["spec"]["template"])
        frame = deploy.pods_frame(conn, name)
        epp = frame[(frame["role"] == "scheduler") & (frame["reason"] != "Terminating")]
        assert len(epp) == 1 and bool(epp["ready"].iloc[0]) and not set(epp["pod"]) & old
        with pytest.raises(ValueError, match="scheduler, workload, prefill"):
            deploy.wait_rolled_out(conn, name, "router", timeout_s=1)
    finally:
        deploy.delete(conn, name, timeout_s=60)
    with pytest.raises(deploy.DeployError, match="does not exist"):
        deploy.wait_rolled_out(conn, name, timeout_s=1, progress=False)
