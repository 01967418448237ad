"""assets/jobs/: the in-cluster benchmark Jobs are valid Kubernetes objects and their scripts do what they say.

Neither Job runs a shell or installs anything: the tests expand each container's argv the way the kubelet
does and check it against the real program's own parser or the kit's helper.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
JOBS = REPO / "assets" / "jobs"
URL = "http://127.0.0.1:9/llmd-workshop/qwen"


def _load(name: str) -> dict:
    [doc] = [d for d in yaml.safe_load_all((JOBS / name).read_text()) if d]
    return doc


def _container(job: dict) -> dict:
    [container] = job["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("name", ["traffic-runner-job.yaml", "guidellm-job.yaml", "pvc.yaml"])
def test_manifest_validates_against_kubernetes_schemas(name: str) -> None:
    kubernetes_validate.validate(_load(name), kubernetes_validate.latest_version(), strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((JOBS / "kustomization.yaml").read_text())
    assert set(kustomization["resources"]) == {p.name for p in JOBS.glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize("name", ["traffic-runner-job.yaml", "guidellm-job.yaml"])
def test_job_is_cleanable_bounded_and_runs_restricted(name: str) -> None:
    job = _load(name)
    pvc = _load("pvc.yaml")
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels["app.kubernetes.io/part-of"] == pvc["metadata"]["labels"]["app.kubernetes.io/part-of"]
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] > 0
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert _container(job)["securityContext"]["allowPrivilegeEscalation"] is False
    [volume] = pod["volumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]


def _argv(name: str, **env: str) -> list[str]:
    """A Job's argv as the kubelet expands ``$(VAR)`` (the lab's kubelet does it the same way)."""
    from llmd_lab.lab.kubelet.programs import container_argv, container_env

    job = _load(name)
    container = _container(job)
    for item in container["env"]:
        if item["name"] in env:
            item["value"] = env[item["name"]]
    pod = {"metadata": {"name": "pod-abcde", "namespace": "ns"}, "spec": job["spec"]["template"]["spec"]}
    return container_argv(container, container_env(pod, container, pod_ip="10.0.0.9", node=None, time_scale=1.0))


def test_traffic_runner_runs_the_kits_module_from_the_claim_in_guidellms_image() -> None:
    from llmd_lab.lab.kubelet.programs import KIT_RUNNER, program_for
    from llmd_lab.traffic.__main__ import build_parser

    container = _container(_load("traffic-runner-job.yaml"))
    assert container["image"] == _container(_load("guidellm-job.yaml"))["image"]  # one image to mirror
    assert container["command"] == ["/opt/app-root/bin/python", "-m", "llmd_lab.traffic"]  # no shell, no pip
    env = {e["name"]: e.get("value") for e in container["env"]}
    [mount] = container["volumeMounts"]
    assert env["PYTHONPATH"].startswith(mount["mountPath"] + "/")  # the kit's copy on the claim
    argv = _argv("traffic-runner-job.yaml", TARGET_URL=URL)
    assert program_for(container, argv) == KIT_RUNNER
    args = build_parser().parse_args(argv[3:])  # the runner's own parser accepts exactly these
    assert (args.url, args.workload, args.concurrency) == (URL, "multi-turn", 4)
    assert str(args.output) == "/results/traffic-runner-pod-abcde.json"


@pytest.mark.parametrize("tokenizer", ["Qwen/Qwen3-0.6B", "/results/tokenizer"])
def test_guidellm_job_runs_the_current_cli_like_the_kits_helper(tokenizer: str) -> None:
    from llmd_lab.benchtools import GuideLLMRun

    argv = _argv("guidellm-job.yaml", TARGET_URL=URL, TOKENIZER=tokenizer)
    helper = GuideLLMRun(URL, "Qwen/Qwen3-0.6B", streams=(1, 2, 4, 8), prompt_tokens=256, output_tokens=128,
                         max_requests=200, max_seconds=120, tokenizer=tokenizer)  # fmt: skip
    expected = helper.command(Path("/results/guidellm-pod-abcde.json"))
    expected.remove("--disable-progress")
    assert argv[:2] == ["guidellm", "run"]

    def options(args: list[str]) -> list[tuple[str, ...]]:
        out, i = [], 2
        while i < len(args):
            width = 3 if args[i] == "--override" else 1 if args[i] == "--disable-progress" else 2
            out.append(tuple(args[i : i + width]))
            i += width
        return sorted(out)

    assert set(options(expected)) <= set(options(argv))
    assert ("--output", "kind=console") in options(argv)


def test_guidellm_job_needs_no_pip_at_run_time() -> None:
    container = _container(_load("guidellm-job.yaml"))
    assert container["image"].startswith("ghcr.io/vllm-project/guidellm:v0.8.1")
    assert container["command"] == ["guidellm", "run"]  # nothing installed in the pod: mirrorable offline


def test_traffic_module_entry_point_accepts_the_jobs_arguments() -> None:
    """The library must provide `python -m llmd_lab.traffic --url … --workload … --output …`."""
    proc = subprocess.run([sys.executable, "-m", "llmd_lab.traffic", "--help"], capture_output=True, text=True,
                          timeout=60, cwd=REPO, env={**os.environ})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for flag in ("--url", "--workload", "--output"):
        assert flag in proc.stdout
