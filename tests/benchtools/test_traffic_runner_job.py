"""assets/jobs/traffic-runner-job.yaml run for real in the lab, as an attendee: the kit's runner from the claim."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from labhelpers import api_client, eventually, run_cli

from llmd_lab import deploy, manifests
from llmd_lab.connection import connect

MODEL = "Qwen/Qwen3-0.6B"
REPO = Path(__file__).resolve().parents[2]
JOB = "llmd-traffic-runner"


def _finished(batch, namespace: str):
    def check():
        status = batch.read_namespaced_job(JOB, namespace).status
        done = [c for c in status.conditions or [] if c.type in ("Complete", "Failed") and c.status == "True"]
        return done and done[0]

    return check


@pytest.mark.slow
def test_traffic_runner_job_fails_without_the_kit_and_completes_with_it(fast_lab) -> None:
    """The Job as shipped, with only TARGET_URL and the workload set: the first run has no kit on the claim and
    fails as the image's python would (the lab does not lend it its own copy); once ``llmd_lab/`` is copied onto
    the claim (the documented step), the same Job completes and the runner's report is on the volume."""
    from kubernetes import client

    conn = connect("private-ai", start_lab=False)
    obj = manifests.llm_inference_service("qwen", f"hf://{MODEL}", model_name=MODEL, replicas=1, gpu="g6.4xlarge",
                                          queue="llmd", max_model_len=4096)  # fmt: skip
    deploy.apply(conn, obj)
    url = deploy.wait_ready(conn, "qwen", timeout_s=120, progress=False)["status"]["url"]

    found = run_cli(fast_lab.home, "kubeconfig", "--user", "user1")
    assert found.returncode == 0, found.stderr
    api = api_client(Path(found.stdout.strip()))
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    job = yaml.safe_load((REPO / "assets" / "jobs" / "traffic-runner-job.yaml").read_text())
    [container] = job["spec"]["template"]["spec"]["containers"]
    for item in container["env"]:
        item["value"] = {"TARGET_URL": url, "WORKLOAD": "random"}.get(item["name"], item.get("value"))
    core.create_namespaced_persistent_volume_claim("user1", yaml.safe_load((REPO / "assets/jobs/pvc.yaml").read_text()))

    batch.create_namespaced_job("user1", job)
    failed = eventually(_finished(batch, "user1"), 120, "the Job without the kit to finish")
    [pod] = core.list_namespaced_pod("user1", label_selector=f"batch.kubernetes.io/job-name={JOB}").items
    log = core.read_namespaced_pod_log(pod.metadata.name, "user1")
    assert failed.type == "Failed", log
    assert "No module named 'llmd_lab'" in log
    assert pod.status.container_statuses[0].state.terminated.exit_code == 1

    claim = core.read_namespaced_persistent_volume_claim("llmd-benchmark-results", "user1")
    volume = fast_lab.home / "volumes" / claim.spec.volume_name
    shutil.copytree(REPO / "llmd_lab", volume / "kit" / "llmd_lab", ignore=shutil.ignore_patterns("__pycache__"))
    batch.delete_namespaced_job(JOB, "user1", propagation_policy="Foreground")

    def gone():
        try:
            batch.read_namespaced_job(JOB, "user1")
        except client.ApiException as exc:
            return exc.status == 404
        return False

    eventually(gone, 60, "the failed Job to be deleted")
    batch.create_namespaced_job("user1", job)
    done = eventually(_finished(batch, "user1"), 280, "the Job with the kit to finish")
    [pod] = core.list_namespaced_pod("user1", label_selector=f"batch.kubernetes.io/job-name={JOB}").items
    log = core.read_namespaced_pod_log(pod.metadata.name, "user1")
    assert done.type == "Complete", log[-3000:]
    assert pod.status.phase == "Succeeded" and pod.status.container_statuses[0].restart_count == 0
    assert str(volume / "kit") in log  # the runner was imported from the claim, not from the lab's venv
    report = json.loads((volume / f"traffic-runner-{pod.metadata.name}.json").read_text())
    rows = report["requests"]
    assert len(rows) == 100 and all(r["ok"] for r in rows)  # random: 100 unique prompts
    assert {r["prompt_tokens"] for r in rows} == {256 + 8}  # exactly the asked count + ChatML's 8
    assert deploy.delete(conn, "qwen", timeout_s=60)


def test_container_paths_of_the_runner_land_on_the_claim(tmp_path: Path) -> None:
    from llmd_lab.sim.kit_runner import lab_argv, lab_pythonpath

    mounts = {"/results": tmp_path / "pv"}
    scratch = tmp_path / "scratch"
    assert lab_pythonpath("/results/kit:/opt/x", scratch, mounts) == [str(tmp_path / "pv" / "kit"),
                                                                      str(scratch / "opt" / "x")]  # fmt: skip
    argv = lab_argv(["--url", "http://x", "--output", "/results/r.json", "--output=/results/s.csv"], scratch, mounts)
    assert argv == ["--url", "http://x", "--output", str(tmp_path / "pv" / "r.json"),
                    f"--output={tmp_path / 'pv' / 's.csv'}"]  # fmt: skip
