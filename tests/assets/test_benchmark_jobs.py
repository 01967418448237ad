"""assets/jobs/: the in-cluster benchmark Jobs are valid Kubernetes objects and their scripts do what they say.

Each Job's container runs a small bash script; the tests run that script locally with stand-ins for `pip`,
`python` and `guidellm` on PATH, so the arguments the real programs would receive are checked exactly.
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


def _fake_bin(tmp_path: Path) -> Path:
    """pip, python and guidellm stand-ins that append their argv (one per line, NUL-free) to $CALLS."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("pip", "python", "guidellm"):
        path = bin_dir / tool
        path.write_text(f'#!/bin/bash\n{{ echo "{tool}"; printf "%s\\n" "$@"; echo "--"; }} >> "$CALLS"\n')
        path.chmod(0o755)
    return bin_dir


def _run_job_script(
    job: dict, tmp_path: Path, **overrides: str
) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    container = _container(job)
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    env.update(overrides)
    env.update({"PATH": f"{_fake_bin(tmp_path)}:/usr/bin:/bin", "CALLS": str(tmp_path / "calls")})
    assert container["command"][:2] == ["/bin/bash", "-ec"]
    proc = subprocess.run(["/bin/bash", "-ec", container["args"][0]], env=env, capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    calls: list[list[str]] = []
    if (tmp_path / "calls").exists():
        current: list[str] = []
        for line in (tmp_path / "calls").read_text().splitlines():
            if line == "--":
                calls.append(current)
                current = []
            else:
                current.append(line)
    return proc, calls


def test_job_refuses_to_run_without_a_target_url(tmp_path: Path) -> None:
    proc, calls = _run_job_script(_load("traffic-runner-job.yaml"), tmp_path, LLMD_LAB_SOURCE="/src")
    assert proc.returncode == 2
    assert "TARGET_URL" in proc.stderr
    assert calls == [], "nothing may be installed or run before the target is known"


def test_traffic_runner_installs_this_repo_and_runs_the_traffic_module(tmp_path: Path) -> None:
    proc, calls = _run_job_script(_load("traffic-runner-job.yaml"), tmp_path, TARGET_URL=URL,
                                  LLMD_LAB_SOURCE="git+https://git.example/llmd_lab.git@main")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    pip, python = calls
    assert pip == ["pip", "install", "--quiet", "llmd_lab @ git+https://git.example/llmd_lab.git@main"]
    assert python[:4] == ["python", "-m", "llmd_lab.traffic", "--url"]
    assert python[4] == URL
    assert python[5:7] == ["--workload", "multi-turn"]
    assert python[7] == "--output" and python[8].startswith("/results/traffic-runner-")


def test_traffic_runner_needs_to_know_where_the_repo_is(tmp_path: Path) -> None:
    proc, calls = _run_job_script(_load("traffic-runner-job.yaml"), tmp_path, TARGET_URL=URL)
    assert proc.returncode == 2 and "LLMD_LAB_SOURCE" in proc.stderr
    assert calls == []


def _guidellm_argv(**env: str) -> list[str]:
    """The GuideLLM Job's argv as the kubelet expands ``$(VAR)`` (the lab's kubelet does it the same way)."""
    from llmd_lab.lab.kubelet.programs import container_argv, container_env

    job = _load("guidellm-job.yaml")
    container = _container(job)
    for item in container["env"]:
        if item["name"] in env:
            item["value"] = env[item["name"]]
    pod = {"metadata": {"name": "llmd-guidellm-abcde", "namespace": "ns"}, "spec": job["spec"]["template"]["spec"]}
    return container_argv(container, container_env(pod, container, pod_ip="10.0.0.9", node=None, time_scale=1.0))


@pytest.mark.parametrize("tokenizer", ["Qwen/Qwen3-0.6B", "/results/tokenizer"])
def test_guidellm_job_runs_the_current_cli_like_the_kits_helper(tokenizer: str) -> None:
    from llmd_lab.benchtools import GuideLLMRun

    argv = _guidellm_argv(TARGET_URL=URL, TOKENIZER=tokenizer)
    helper = GuideLLMRun(URL, "Qwen/Qwen3-0.6B", streams=(1, 2, 4, 8), prompt_tokens=256, output_tokens=128,
                         max_requests=200, max_seconds=120, tokenizer=tokenizer)  # fmt: skip
    expected = helper.command(Path("/results/guidellm-llmd-guidellm-abcde.json"))
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
